"""Training benchmark: images/s of a seed-style loop vs the ganmotion Trainer, 1 and 2 processes.

    python benchmarks/training.py                      # tiny (64x64) only: ~3 min on 2 cores
    python benchmarks/training.py --sizes tiny,512     # and the 512 config: ~6 more minutes

For each size (`tiny`: configs/gan_tiny.yaml, CPU-sized; `512`: configs/gan_512.yaml with a
batch of 1) and on the same models (built from that config: same seed, critic_steps, batch size
and Adam), measured side by side in one run, variants interleaved (A B C ... A B C ...), median
of the repeats:

  A  seed-style loop: one process, fp32, a plain PyTorch loop over a DataLoader of
     `SeedStyleFrames` (one JPEG file per frame read with PIL, skeleton drawn per sample with
     PIL; the frames are unpacked from the same shards). The losses are ganmotion.losses, so the
     math is the Trainer's; the loop has the seed's shape: separate critic forwards for real,
     fake and the penalty's interpolates, a fresh generator forward for the generator step,
     no EMA, no Accelerate.
  B  the ganmotion Trainer, 1 process (`python train/gan.py`), every core, fp32 (run.precision
     is set to 'no' even where the config says bf16, to compare like with like); then the same
     in bf16 autocast (`--no-bf16` leaves that row out).
  B1 the Trainer, 1 process limited to the threads one process of C gets: the baseline of the
     scaling ratio (C / B1 is 2.0 for perfect scaling); C / B says whether two processes beat
     one process using the whole machine.
  C  the Trainer, 2 processes (`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu
     --num_processes 2`), OMP_NUM_THREADS = cores / 2 each, so the two ranks do not
     oversubscribe the cores. The batch size is per rank: a step of 2 processes trains 2x the
     images.

Images/s are training images consumed per second: steps x critic_steps x batch x processes.
For the Trainer it is its own `images_per_second` from metrics.jsonl: it times each window of
`run.log_every` steps and so leaves out start-up, validation and checkpoints (configured to fall
outside the timed windows); the windows of the first `warmup` steps are skipped. The seed-style
loop is timed the same way in this process: `warmup` steps untimed, then `steps` timed.

Share of the ceiling (benchmarks/common.py): images/s x FLOP per training image / the
machine's measured matrix-product rate (bf16 rows against bf16, the rest against fp32). FLOP per
image is counted once per size on one extra, untimed seed-style step (critic passes, gradient
penalty, generator pass, all backwards) and charged to every variant: same models, same losses.

Prints a table per size and writes JSON (results/training.json) with the machine (CPU model,
flags, ceiling) and the exact command line. Without `--shards`, shards are made with `prepare`
from ../shared/data/taichi2.mp4 (or a synthetic clip when it is absent) at each size, in a
temporary folder; with `--shards`, one folder serves every size and both loaders resize its
crops.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from common import count_flops, describe, free_port, machine, share, write_result  # this folder
from data_stream import SeedStyleFrames, unpack_to_files

from ganmotion.config import load_config
from ganmotion.data.prepare import PrepareConfig, prepare
from ganmotion.data.synthetic import write_clip
from ganmotion.errors import GanmotionError, command_line
from ganmotion.losses import (
    critic_loss,
    generator_adversarial_loss,
    gradient_penalty,
)
from ganmotion.models.critic import PatchCritic
from ganmotion.models.generator import UNetGenerator
from ganmotion.training import checkpoint as ckpt
from ganmotion.training.config import GanConfig
from ganmotion.training.tracking import read_metrics

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "taichi2.mp4"
TRAIN_SCRIPT = ROOT / "train" / "gan.py"
NEVER = 10**9  # sample_every / checkpoint_every: only the (untimed) ones at the last step


@dataclass(frozen=True)
class Size:
    """One model size: its config and how much of it to run on a CPU."""

    config: Path
    batch: int | None  # per process; None keeps the config's
    warmup: int  # steps run before timing
    steps: int  # steps timed
    repeats: int  # runs of each variant


SIZES = {
    "tiny": Size(ROOT / "configs" / "gan_tiny.yaml", None, warmup=10, steps=20, repeats=3),
    # At 512 a step (5 critic micro-batches of 1) takes ~10 s on 2 cores: a handful of steps.
    "512": Size(ROOT / "configs" / "gan_512.yaml", 1, warmup=1, steps=1, repeats=2),
}


@dataclass(frozen=True)
class Variant:
    name: str
    processes: int
    threads: int  # per process
    precision: str = "no"
    seed_style: bool = False
    tree: Path | None = None  # another checkout's trainer (--baseline-tree); None: this one


def variants(cores: int, bf16: bool, baseline: Path | None = None) -> list[Variant]:
    """The rows of a size's table; with `baseline`, each Trainer row also runs that
    checkout's trainer, next to ours in the same interleaved repeats."""
    half = max(1, cores // 2)
    rows = [
        Variant("A  seed-style loop (PIL files, fp32)", 1, cores, seed_style=True),
        Variant("B  ganmotion Trainer, 1 process", 1, cores),
    ]
    if bf16:
        rows.append(Variant("B  ganmotion Trainer, 1 process, bf16", 1, cores, "bf16"))
    rows += [
        Variant(f"B1 ganmotion Trainer, 1 process, {half} thread(s)", 1, half),
        Variant("C  ganmotion Trainer, 2 processes", 2, half),
    ]
    if baseline is None:
        return rows
    twins = [
        dataclasses.replace(row, name=f"{row.name} [baseline]", tree=baseline)
        for row in rows
        if not row.seed_style
    ]
    return rows + twins


# ------------------------------------------------------------------ data


def make_shards(video: Path, sizes: set[int], workdir: Path) -> dict[int, Path]:
    """Shards at each image size; poses are detected once (at the first size) and reused."""
    keypoints = None
    if not video.is_file():
        print(f"{video} not found: using a synthetic clip")
        video, keypoints = write_clip(workdir / "synthetic.mp4", frames=240, size=256)
    shards = {}
    for size in sorted(sizes, reverse=True):
        shards[size] = workdir / f"shards-{size}"
        started = time.perf_counter()
        summary = prepare(
            video, shards[size], PrepareConfig(size=size), keypoints_file=keypoints, progress=False
        )
        print(f"prepare {size}x{size}: {summary.line()} in {time.perf_counter() - started:.0f} s")
        keypoints = keypoints or shards[size] / "keypoints.npy"
    return shards


# ------------------------------------------------------------------ A: the seed-style loop


def forever(loader):
    while True:
        yield from loader


def seed_style_images_per_second(
    config: GanConfig, files: Path, size: Size, measure_flops: bool = False
) -> tuple[float, float | None]:
    """The WGAN-GP step as a single-process course project writes it, fp32, no Accelerate:
    images/s, and with `measure_flops` the FLOP per image of one extra step (untimed)."""
    if config.loss.perceptual_weight > 0:
        raise GanmotionError("the seed-style loop here has no perceptual loss: set it to 0")
    torch.manual_seed(config.run.seed)  # the Trainer's initial weights
    generator = UNetGenerator.from_config(config.generator)
    critic = PatchCritic.from_config(config.critic)
    g_opt = torch.optim.Adam(
        generator.parameters(), lr=config.generator_optim.lr, betas=config.generator_optim.betas
    )
    c_opt = torch.optim.Adam(
        critic.parameters(), lr=config.critic_optim.lr, betas=config.critic_optim.betas
    )
    batch = config.data.stream.batch_size
    loader = torch.utils.data.DataLoader(
        SeedStyleFrames(files, config.data.stream.size),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=0,
    )
    batches = forever(loader)
    weights = config.loss
    history = []

    def step() -> None:
        for _ in range(config.critic_steps):
            skeleton, real = next(batches)
            with torch.no_grad():
                fake = generator(skeleton)
            loss = critic_loss(critic(skeleton, real), critic(skeleton, fake))
            loss = loss + weights.gp_weight * gradient_penalty(critic, skeleton, real, fake)
            c_opt.zero_grad()
            loss.backward()
            c_opt.step()
        fake = generator(skeleton)
        loss = weights.adversarial_weight * generator_adversarial_loss(critic(skeleton, fake))
        loss = loss + weights.l1_weight * F.l1_loss(fake, real)
        g_opt.zero_grad()
        loss.backward()
        g_opt.step()
        history.append(loss.item())

    images_per_step = config.critic_steps * batch
    flop_per_image = count_flops(step) / images_per_step if measure_flops else None
    for _ in range(size.warmup):
        step()
    started = time.perf_counter()
    for _ in range(size.steps):
        step()
    seconds = time.perf_counter() - started
    return size.steps * images_per_step / seconds, flop_per_image


# ------------------------------------------------------------------ B, C: the Trainer


def trainer_command(variant: Variant, config_path: Path, overrides: list[str]) -> list[str]:
    if variant.tree is not None:  # the same config file, as that checkout has it
        config_path = variant.tree / config_path.relative_to(ROOT)
    script = TRAIN_SCRIPT if variant.tree is None else variant.tree / "train" / "gan.py"
    args = [str(script), "--config", str(config_path), *overrides]
    if variant.processes == 1:
        return [sys.executable, *args]
    accelerate = str(Path(sys.executable).parent / "accelerate")
    return [
        accelerate, "launch", "--multi_gpu", "--num_processes", str(variant.processes),
        "--main_process_port", str(free_port()), *args,
    ]  # fmt: skip


def trainer_images_per_second(
    variant: Variant, config_path: Path, overrides: list[str], size: Size, out_dir: Path
) -> float:
    """Run train/gan.py and read its images_per_second (all processes) after the warm-up."""
    overrides = [*overrides, f"run.out_dir={out_dir}", f"run.precision='{variant.precision}'"]
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": str(variant.threads),
        "MKL_NUM_THREADS": str(variant.threads),
    }
    if variant.tree is not None:  # its own ganmotion package, ahead of the installed one
        paths = [str(variant.tree), env.get("PYTHONPATH")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    command = trainer_command(variant, config_path, overrides)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise GanmotionError(f"{shlex.join(command)} failed ({result.returncode}):\n{tail}")
    state = ckpt.read_state(ckpt.latest_checkpoint(out_dir / "checkpoints"))
    if state["world_size"] != variant.processes:  # a launch that fell back to 1 process
        raise GanmotionError(f"{variant.name}: ran with world size {state['world_size']}")
    rates = [
        row["images_per_second"]
        for row in read_metrics(out_dir)
        if "images_per_second" in row and row["step"] > size.warmup
    ]
    # Equal images per window: total images / total seconds is the harmonic mean.
    return len(rates) / sum(1 / r for r in rates)


# ------------------------------------------------------------------ the benchmark


def bench_size(
    name: str, size: Size, shards: Path, rows: list[Variant], workdir: Path, ceiling: dict
) -> dict:
    log_every = math.gcd(size.warmup, size.steps)
    overrides = [
        f"data.shards={shards}",
        "data.workers=0",
        "data.val_batches=1",
        f"run.steps={size.warmup + size.steps}",
        f"run.log_every={log_every}",
        f"run.sample_every={NEVER}",
        f"run.checkpoint_every={NEVER}",
        "run.tensorboard=false",
    ]
    if size.batch is not None:
        overrides.append(f"data.stream.batch_size={size.batch}")
    config = load_config(GanConfig, size.config, [*overrides, "run.precision='no'"])
    files = workdir / f"files-{name}"
    if not files.exists():
        unpack_to_files(shards, files)

    runs: dict[str, list[float]] = {row.name: [] for row in rows}
    launches = 0
    flop_per_image = None
    for repeat in range(size.repeats):  # interleaved, so drift in machine load hits every variant
        for row in rows:
            started = time.perf_counter()
            if row.seed_style:
                torch.set_num_threads(row.threads)
                rate, flops = seed_style_images_per_second(config, files, size, repeat == 0)
                flop_per_image = flops or flop_per_image
            else:
                launches += 1
                out = workdir / f"run-{name}-{launches}"
                rate = trainer_images_per_second(row, size.config, overrides, size, out)
            runs[row.name].append(rate)
            print(
                f"  [{name} {repeat + 1}/{size.repeats}] {row.name:<48} {rate:8.3g} images/s "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )

    seed = statistics.median(runs[rows[0].name])
    results = {}
    for row in rows:
        rate = statistics.median(runs[row.name])
        precision = "fp32" if row.precision == "no" else row.precision
        top = ceiling["bf16_gflops" if precision == "bf16" else "fp32_gflops"]
        results[row.name] = {
            "processes": row.processes,
            "threads_per_process": row.threads,
            "precision": precision,
            "images_per_s": rate,
            "images_per_s_per_process": rate / row.processes,
            "vs_seed_style": rate / seed,
            "ceiling_share": share(rate, flop_per_image, top) if flop_per_image else None,
            "runs": runs[row.name],
        }
    two = next(r for r in rows if r.processes == 2)
    one_same_threads = next(
        r
        for r in rows
        if r.processes == 1
        and r.threads == two.threads
        and r.precision == "no"
        and not r.seed_style
    )
    one_all = next(
        r for r in rows if r.processes == 1 and r.precision == "no" and not r.seed_style
    )  # the first such row: B, every core
    versus_baseline = {
        row.name: results[row.name]["images_per_s"]
        / results[f"{row.name} [baseline]"]["images_per_s"]
        for row in rows
        if f"{row.name} [baseline]" in results
    }
    scaling = {
        "2 processes vs 1 process at the same threads per process": (
            results[two.name]["images_per_s"] / results[one_same_threads.name]["images_per_s"]
        ),
        "2 processes vs 1 process using every core": (
            results[two.name]["images_per_s"] / results[one_all.name]["images_per_s"]
        ),
    }
    return {
        "config": str(size.config.relative_to(ROOT)),
        "image_size": config.data.stream.size,
        "batch_per_process": config.data.stream.batch_size,
        "critic_steps": config.critic_steps,
        "warmup_steps": size.warmup,
        "timed_steps": size.steps,
        "repeats": size.repeats,
        "gflop_per_image": flop_per_image / 1e9 if flop_per_image else None,
        "trainer_overrides": overrides,
        "two_process_command": shlex.join(
            ["ACCELERATE_USE_CPU=1", f"OMP_NUM_THREADS={two.threads}"]
            + trainer_command(two, size.config, [*overrides, "run.precision='no'"])
        ).replace(f"{ROOT}/", ""),
        "variants": results,
        "scaling": scaling,
        "versus_baseline": versus_baseline,
    }


def rate(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.3f}"


def print_table(name: str, result: dict) -> None:
    print(
        f"\n{name}: {result['config']}, {result['image_size']}x{result['image_size']}, "
        f"batch {result['batch_per_process']} per process, critic_steps {result['critic_steps']}, "
        f"{result['timed_steps']} steps timed after {result['warmup_steps']}, "
        f"median of {result['repeats']}, {result['gflop_per_image'] or float('nan'):.2f} GFLOP "
        "per image"
    )
    print(
        f"{'variant':<58} {'procs x threads':>15} {'images/s':>9} {'per proc':>9} {'vs A':>6} "
        f"{'ceiling':>8}"
    )
    for variant, row in result["variants"].items():
        layout = f"{row['processes']} x {row['threads_per_process']}"
        fraction = row["ceiling_share"]
        print(
            f"{variant:<58} {layout:>15} {rate(row['images_per_s']):>9} "
            f"{rate(row['images_per_s_per_process']):>9} {row['vs_seed_style']:>5.2f}x "
            f"{'-' if fraction is None else f'{fraction:.1%}':>8}"
        )
    for label, ratio in result["scaling"].items():
        print(f"scaling, {label}: {ratio:.2f}x")
    for label, ratio in result.get("versus_baseline", {}).items():
        print(f"this tree vs the baseline tree, {label.strip()}: {ratio:.2f}x")


@command_line
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny", help=f"comma-separated, of {list(SIZES)}")
    parser.add_argument("--shards", type=Path, help="shards from prepare (default: make them)")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--repeats", type=int, help="runs of each variant (default: per size)")
    parser.add_argument("--warmup", type=int, help="steps before timing (default: per size)")
    parser.add_argument("--steps", type=int, help="steps timed (default: per size)")
    parser.add_argument("--batch-512", type=int, default=SIZES["512"].batch)
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", help="skip the bf16 row")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "training.json")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="another checkout (e.g. `git worktree add /tmp/before REV`): its trainer runs "
        "beside this one's, interleaved, as the '[baseline]' rows",
    )
    args = parser.parse_args()
    names = args.sizes.split(",")
    unknown = [n for n in names if n not in SIZES]
    if unknown:
        parser.error(f"--sizes: unknown {unknown}, choose from {list(SIZES)}")

    sizes = {}
    for name in names:
        size = SIZES[name]
        sizes[name] = Size(
            size.config,
            args.batch_512 if name == "512" else size.batch,
            size.warmup if args.warmup is None else args.warmup,
            args.steps or size.steps,
            args.repeats or size.repeats,
        )
    host = machine()  # before the load of the benchmark itself
    print(describe(host), flush=True)
    cores = os.cpu_count() or 1
    baseline = args.baseline_tree.resolve() if args.baseline_tree else None
    rows = variants(cores, args.bf16, baseline)
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.shards is not None:
            shards = {name: args.shards.resolve() for name in sizes}  # resized by both loaders
        else:
            pixels = {
                name: load_config(GanConfig, size.config).data.stream.size
                for name, size in sizes.items()
            }
            made = make_shards(args.video, set(pixels.values()), workdir)
            shards = {name: made[pixels[name]] for name in sizes}
        for name, size in sizes.items():
            results[name] = bench_size(name, size, shards[name], rows, workdir, host["ceiling"])
    seconds = time.perf_counter() - started

    for name, result in results.items():
        print_table(name, result)
    print(f"\n{seconds:.0f} s in all")

    report = {
        "machine": host,
        "shards": str(args.shards) if args.shards else f"prepare from {args.video}",
        "baseline_tree": str(baseline) if baseline else None,
        "seconds": seconds,
        "ceiling_share": "images/s x GFLOP per image (one seed-style step, counted) / ceiling "
        "GFLOP/s of the variant's dtype (benchmarks/common.py)",
        "sizes": results,
    }
    write_result(args.out, report)


if __name__ == "__main__":
    raise SystemExit(main())
