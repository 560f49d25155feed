"""`ganmotion train-video`: your own video -> a trained, exported, evaluated generator within a
wall-clock budget, on this machine's CPU cores (`make train VIDEO=me.mp4 MINUTES=60`).

    ganmotion train-video --video me.mp4 --minutes 60 [--out train_out]

Stages, each one command whose output goes to OUT/logs/<stage>.log:

    prepare    ganmotion prepare --video V --out OUT/shards --size 256 --overwrite
    train      accelerate launch train/gan.py ... run.schedule_by=time run.max_minutes=M
    export     export/to_onnx.py --checkpoint OUT/run --out OUT/gen.onnx
    eval       ganmotion eval --compare nearest gan=OUT/gen.onnx --shards OUT/shards
               --max-frames 100

The learning rates decay (cosine) to 0 over the budget's minutes, not over a number of steps
(run.schedule_by: time): however fast this machine is, and however much of it other jobs
take while the run goes on, training ends at the end of its budget with the schedule
finished. (This recipe once timed 20 steps and fitted run.steps to the budget at that pace.
On taichi2 a calibration beside the test suite planned 1199 steps where the budget held 1765,
and one at a quiet moment planned 2630 of which 1933 got done: benchmarks/RESULTS.md.) The
budget (--minutes) is for training; start-up, prepare, export and eval come on top, and the
ETA counts them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganmotion.errors import GanmotionError, command_line

ROOT = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = ROOT / "train" / "gan.py"
EXPORT_SCRIPT = ROOT / "export" / "to_onnx.py"
DEFAULT_CONFIG = ROOT / "configs" / "gan_cpu256.yaml"

STEP_CAP = 10**9  # run.steps: the schedules run on time, and no budget reaches this
# For the ETA. Measured on 2 CPU cores shared with other jobs (load average 8), 256 px: export
# with its parity check 28 s; eval 427 s for 30 held-out frames (MediaPipe pose on the real
# frames and on each model's, nearest-neighbour search). The per-frame figure below assumes
# a machine of its own, about 4x faster: an estimate, not a measurement. Eval is capped at
# the first EVAL_FRAMES held-out frames so that it stays minutes, not an hour.
EXPORT_SECONDS = 30.0
EVAL_SECONDS = 60.0
EVAL_SECONDS_PER_FRAME = 4.0
EVAL_FRAMES = 100

EXIT_USAGE = 2

# Runs `command` with its output to `log` under `env`; the command's exit status.
Runner = Callable[[list[str], Path, dict[str, str]], int]


@dataclass(frozen=True)
class Options:
    video: Path
    out: Path
    minutes: float
    config: Path = DEFAULT_CONFIG
    processes: int = 2
    size: int = 256
    keypoints: Path | None = None


class StageFailed(Exception):
    def __init__(self, stage: str, status: int, log: Path):
        super().__init__(f"train-video: stage '{stage}' failed (exit {status}); its log: {log}")


def run_command(command: list[str], log: Path, env: dict[str, str]) -> int:
    with open(log, "w") as out:
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode


def clock_time(seconds: float) -> str:
    """H:MM:SS."""
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def free_port() -> int:
    """A TCP port nobody listens on now, for the launched processes' rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_overrides(options: Options) -> list[str]:
    """What every training stage sets in the config: the shards, the run folder, the size."""
    out = options.out
    return [
        f"data.shards={out / 'shards'}",
        f"run.out_dir={out / 'run'}",
        f"data.stream.size={options.size}",
    ]


class Recipe:
    """The stages in order, with a line each: what runs, where its log is, time so far and
    the time to go. `run` and `clock` are the only ways out (tests replace them)."""

    def __init__(self, options: Options, run: Runner | None = None, clock=time.monotonic):
        self.options, self.run, self.clock = options, run or run_command, clock
        out = options.out
        self.logs, self.shards, self.run_dir = out / "logs", out / "shards", out / "run"
        self.model, self.eval_dir = out / "gen.onnx", out / "eval"
        self.started = clock()
        self.finish_at: float | None = None  # when all stages should be done (clock time)
        self.env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}

    def __call__(self) -> None:
        options = self.options
        self.logs.mkdir(parents=True, exist_ok=True)
        prepare = [sys.executable, "-m", "ganmotion.data.prepare", "--video", str(options.video),
                   "--out", str(self.shards), "--size", str(options.size), "--overwrite",
                   "--quiet"]  # fmt: skip
        if options.keypoints is not None:
            prepare += ["--keypoints", str(options.keypoints)]
        self.stage(
            "prepare",
            prepare,
            f"{options.video} -> {options.size} px shards (then {options.minutes:g} min of "
            "training, export and eval)",
        )
        budget = 60 * options.minutes
        self.finish_at = self.clock() + budget + self.finishing_seconds()
        self.train(budget)
        self.finish_at = self.clock() + self.finishing_seconds()
        export = [sys.executable, str(EXPORT_SCRIPT), "--checkpoint", str(self.run_dir),
                  "--out", str(self.model)]  # fmt: skip
        self.stage("export", export, f"newest checkpoint -> {self.model}")
        self.finish_at = self.clock() + self.eval_seconds()
        evaluate = [sys.executable, "-m", "ganmotion.eval", "--compare", "nearest",
                    f"gan={self.model}", "--shards", str(self.shards), "--out",
                    str(self.eval_dir), "--max-frames", str(EVAL_FRAMES)]  # fmt: skip
        self.stage(
            "eval", evaluate, f"against nearest neighbour on {self.eval_frames()} held-out frames"
        )
        print(
            f"train-video: done in {clock_time(self.clock() - self.started)}: generator "
            f"{self.model}, quality {self.eval_dir / 'report.md'}, run {self.run_dir}",
            flush=True,
        )

    def train(self, budget: float) -> None:
        """Train for `budget` seconds, the learning rates decaying over them."""
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)  # a fresh run: the shards were just replaced
        minutes = f"{budget / 60:.6g}"
        train = self.launch(
            "run.schedule_by=time", f"run.max_minutes={minutes}", f"run.steps={STEP_CAP}"
        )
        self.stage("train", train, f"{minutes} min, the learning rates decaying over them")

    def launch(self, *overrides: str) -> list[str]:
        """`accelerate launch train/gan.py` on this machine's CPU cores with the recipe's
        config, shards and run folder, then `overrides`."""
        options = self.options
        accelerate = Path(sys.executable).with_name("accelerate")
        processes = ["--num_processes", str(options.processes)]
        if options.processes > 1:
            processes = ["--multi_gpu", *processes]
        return [str(accelerate), "launch", *processes, "--main_process_port", str(free_port()),
                str(TRAIN_SCRIPT), "--config", str(options.config), *run_overrides(options),
                *overrides]  # fmt: skip

    def finishing_seconds(self) -> float:
        return EXPORT_SECONDS + self.eval_seconds()

    def eval_seconds(self) -> float:
        return EVAL_SECONDS + EVAL_SECONDS_PER_FRAME * self.eval_frames()

    def eval_frames(self) -> int:
        manifest = json.loads((self.shards / "manifest.json").read_text())
        return min(EVAL_FRAMES, manifest["splits"]["val"]["samples"])

    def stage(self, name: str, command: list[str], what: str) -> None:
        log = self.logs / f"{name}.log"
        elapsed = self.clock() - self.started
        to_go = (
            "" if self.finish_at is None else f", {clock_time(self.finish_at - self.clock())} to go"
        )
        print(f"train-video [{clock_time(elapsed)}{to_go}] {name}: {what} (log: {log})", flush=True)
        status = self.run(command, log, self.env)
        if status != 0:
            raise StageFailed(name, status, log)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def parse(argv: list[str] | None) -> Options:
    parser = OneLineParser(
        prog="ganmotion train-video",
        description=" ".join((__doc__ or "").split("\n\n")[0].split()),  # the first paragraph
        epilog="OUT is reused: its shards and run are replaced.",
    )
    parser.add_argument("--video", type=Path, required=True, help="target video of one person")
    parser.add_argument(
        "--minutes", type=float, required=True, help="wall-clock budget of the training"
    )
    parser.add_argument("--out", type=Path, default=Path("train_out"), help="[train_out]")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="GAN config [configs/gan_cpu256.yaml]"
    )
    parser.add_argument("--processes", type=int, default=2, help="training processes [2]")
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels [256]")
    parser.add_argument(
        "--keypoints", type=Path, help="passed to prepare (e.g. a synthetic clip's exact poses)"
    )
    args = parser.parse_args(argv)
    return Options(**vars(args))


def check(options: Options) -> None:
    """Every input problem, before anything is written: a GanmotionError naming it."""
    if not options.video.is_file():
        raise GanmotionError(f"--video {options.video}: no such file")
    if options.keypoints is not None and not options.keypoints.is_file():
        raise GanmotionError(f"--keypoints {options.keypoints}: no such file")
    if not (options.minutes > 0 and math.isfinite(options.minutes)):
        raise GanmotionError(f"--minutes must be > 0, got {options.minutes:g}")
    if options.processes < 1:
        raise GanmotionError(f"--processes must be >= 1, got {options.processes}")
    for script in (TRAIN_SCRIPT, EXPORT_SCRIPT):
        if not script.is_file():
            raise GanmotionError(f"{script}: not found (train-video runs from a checkout)")
    # The config as the training stages will load it: a bad size or key fails now, not
    # after prepare. (Imports torch.)
    from ganmotion.config import load_config
    from ganmotion.training.config import GanConfig

    load_config(GanConfig, options.config, run_overrides(options))


@command_line
def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    try:
        check(options)
    except GanmotionError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        Recipe(options)()
    except StageFailed as failure:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
