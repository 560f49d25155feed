"""The command line shared by train/gan.py and train/vanilla.py."""

from __future__ import annotations

import argparse
import os

import yaml

from ganmotion.config import config_to_dict, load_config
from ganmotion.errors import GanmotionError, command_line
from ganmotion.files import check_writable
from ganmotion.training.config import GanConfig, VanillaConfig
from ganmotion.training.preemption import REQUEUE_EXIT_CODE, PreemptionFlag


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description,
        epilog=(
            "Overrides are section.key=value (YAML values), e.g. run.steps=2000 "
            "generator_optim.lr=2e-4 data.stream.batch_size=4. Exit status "
            f"{REQUEUE_EXIT_CODE} means preempted: a checkpoint was saved, requeue with "
            "--resume latest."
        ),
    )
    parser.add_argument("--config", help="YAML config (configs/*.yaml); defaults if omitted")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    parser.add_argument(
        "--resume",
        metavar="latest|auto|DIR",
        help="continue from the newest or a given checkpoint; auto: the newest if there is "
        "one, else start fresh (for jobs that may be requeued)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    parser.add_argument(
        "--get",
        metavar="section.key",
        help="print one value of the resolved config and exit (for job scripts: run.out_dir)",
    )
    return parser


def config_value(config: GanConfig | VanillaConfig, dotted: str) -> str:
    """One value of the resolved config, as YAML would write it (scalars bare)."""
    value = config_to_dict(config)
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise GanmotionError(f"--get {dotted}: no such config key")
        value = value[key]
    return (
        yaml.safe_dump(value, default_flow_style=True, width=float("inf"))
        .removesuffix("\n...\n")
        .strip()
    )


@command_line
def main(
    config_class: type[GanConfig] | type[VanillaConfig],
    argv: list[str] | None = None,
    preemption: PreemptionFlag | None = None,
) -> int:
    """`preemption`: the flag the script installed first thing (see train/gan.py)."""
    description = (config_class.__doc__ or "").splitlines()[0]
    args = build_parser(description).parse_args(argv)
    is_main = int(os.environ.get("RANK", "0")) == 0
    config = load_config(config_class, args.config, args.overrides)
    if args.get:
        print(config_value(config, args.get))
        return 0
    if is_main:
        print(yaml.safe_dump(config_to_dict(config), sort_keys=False).rstrip())
    if args.dry_run:
        return 0
    check_writable(config.run.out_dir, folder=True)  # now, not after the start-up
    # Both import accelerate, torch: not for --help.
    from ganmotion.training import shutdown
    from ganmotion.training.loop import Trainer

    shutdown.import_before_process_group()
    trainer = Trainer(config, resume=args.resume)
    group = shutdown.hold_process_group()
    status = trainer.run(preemption)
    del trainer  # the last references to the DDP wrappers (or DeepSpeed engines)
    group.end()  # communication threads joined: the exit cannot abort (issue 12)
    return status
