"""What one training step costs under config variants: seconds per `train_step`, side by side.

    python benchmarks/step_cost.py --shards taichi60/shards \
        --variant "loss.gp_every=1" --variant "loss.gp_every=2" --variant "loss.gp_every=4"

Each variant is the config (default configs/gan_cpu256.yaml) with its overrides, built as a
Trainer in this process and stepped with 1 thread: the work of one rank of the 2-process CPU
recipe, without the gradient all-reduce. The variants' steps are interleaved in rounds
(A B C, A B C, ...) so that load from elsewhere falls on all of them alike; after `--warmup`
untimed steps each, the mean seconds per step of the rounds (and the median) is reported,
and each variant's mean as a ratio to the first's. Steps continue each variant's own run
(its learning rates, its batches): a variant that changes what is trained changes it as in
a real run.

Writes JSON (results/step_cost.json) with the machine and the exact command line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import describe, machine, write_result  # noqa: E402

from ganmotion.config import load_config  # noqa: E402
from ganmotion.training.config import GanConfig  # noqa: E402
from ganmotion.training.loop import Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", type=Path, required=True, help="shards from prepare")
    parser.add_argument(
        "--config",
        type=Path,
        default=HERE.parent / "configs" / "gan_cpu256.yaml",
        help="GAN config [configs/gan_cpu256.yaml]",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="space-separated config overrides of one variant (repeat; '' is the config as is)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant [3]")
    parser.add_argument("--rounds", type=int, default=8, help="timed steps per variant [8]")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results" / "step_cost.json",
        help="JSON result [benchmarks/results/step_cost.json]",
    )
    args = parser.parse_args()
    variants = args.variant or [""]
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as scratch:
        runs = []
        for index, variant in enumerate(variants):
            overrides = [
                f"data.shards={args.shards}",
                f"run.out_dir={scratch}/{index}",
                "run.tensorboard=false",
                *variant.split(),
            ]
            trainer = Trainer(load_config(GanConfig, args.config, overrides))
            runs.append((trainer, trainer.batches(0)))
        seconds = [[] for _ in variants]
        for step in range(args.warmup + args.rounds):
            for (trainer, data), times in zip(runs, seconds):
                started = time.perf_counter()
                trainer.objective.train_step(data, step)
                if step >= args.warmup:
                    times.append(time.perf_counter() - started)
            print(f"round {step + 1}/{args.warmup + args.rounds}", file=sys.stderr, flush=True)

    # Means, not medians: a variant that does more work on some steps than on others (a
    # lazy penalty on every other step) has two step times, and its median is either one.
    means = [statistics.mean(times) for times in seconds]
    rows = [
        {
            "variant": variant or "(config)",
            "mean_s": mean,
            "median_s": statistics.median(times),
            "ratio": mean / means[0],
            "seconds": times,
        }
        for variant, mean, times in zip(variants, means, seconds)
    ]
    print(f"{'variant':40s} {'mean s':>7s} {'median':>7s} {'ratio':>6s}")
    for row in rows:
        print(
            f"{row['variant']:40s} {row['mean_s']:7.3f} {row['median_s']:7.3f} {row['ratio']:6.3f}"
        )
    host = machine(measure_ceiling=False)
    print(describe(host))
    write_result(
        args.out,
        {
            "machine": host,
            "config": str(args.config),
            "threads": 1,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
