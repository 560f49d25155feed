"""The GPU check: everything the lent GPU machine must measure, in one run of about 8 minutes.

    make gpu-bundle                                     # here, once: clip, poses, masks, wheels
    python benchmarks/gpu_check.py --bundle .gpu_bundle --out $OUT      # there (README: GPU)
    python benchmarks/gpu_check.py --smoke --out /tmp/gpu_check        # anywhere: CPU, ~2 min

The GPU machine has no MediaPipe, WebDataset or PyAV and no network, so `make gpu-bundle`
brings the sample clip (taichi2) with its MediaPipe poses and person masks computed here, and
wheels of PyAV and WebDataset. Each part runs as subprocesses under its
own time limit: one that overruns is killed with everything it started and reported as such,
and the parts after it still run (one that needs its output says so and is skipped).

  prepare    the clip prepared at 256 px from its given poses and masks (no MediaPipe)
  quality    train/gan.py with the project's best recipe (configs/gan_cpu256.yaml, the global
             batch of its two CPU processes on one GPU) for 1.5 minutes, its EMA generator
             exported to ONNX and evaluated on the held-out frames without the pose columns;
             gen.onnx, its sidecar and the contact sheet come back in --out, so that the pose
             accuracy is measured here afterwards (`ganmotion eval --model gen.onnx`)
  training   train/gan.py with configs/gan_512.yaml (bf16) for 40 steps on the same shards
             (the stream resizes the crops to 512): images/s of the steady windows, and the
             GPU's utilisation over them (NVML's share of time a kernel ran, every 0.1 s)
  runner     infer/video.py over the clip with its given poses and the training part's 512 px
             checkpoint, bf16, batch 32: frames/s end to end and per stage (the slowest stage
             is the bottleneck)
  generator  benchmarks/inference.py on the GPU: the torch variants at 512 and 256 px, batches
             1, 8 and 32, and the compiled ones (with CUDA graphs) at 512, each against the
             GPU's measured matrix-product ceiling; one command per group, so an overrun keeps
             the groups before it
  tests      pytest -m gpu

Writes gpu_check.json (every part: status, seconds, commands, the end of its log, its
numbers) and gpu_check.md (the tables against issue 14's goals) in --out, beside the files
of the quality part: at most 8 files, as the device tool brings back.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from common import describe, machine  # this folder

from ganmotion.files import atomic_write
from ganmotion.training.tracking import read_metrics

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
LOG_TAIL_LINES = 25
# The software of benchmarks/common.py's machine() that the report's header names.
VERSIONS_SHOWN = ("python", "torch", "numpy", "opencv", "onnx", "onnxruntime", "accelerate")

GOALS = {
    "generator": "512 px, best mode: >= 30% of the bf16 peak; batch 1 latency < 5 ms",
    "runner": "512 px end to end with given poses: >= 1000 frames/s, bottleneck named",
    "training": "512 px, bf16, one GPU: images/s, GPU utilisation >= 80%",
    "quality": "person detected in >= 80% of generated held-out frames (measured afterwards, "
    "with MediaPipe, on the gen.onnx that comes back)",
}


# The variants benchmarks/inference.py times, and groups of them to leave out of one run.
EAGER = ("torch channels_last", "torch bf16", "torch bf16 channels_last")
EAGER_FP16 = ("torch fp16", "torch fp16 channels_last")  # rows on CUDA only
COMPILED = ("torch.compile", "torch.compile bf16 channels_last")
GRAPHED = ("torch.compile reduce-overhead bf16 channels_last",)  # CUDA graphs
# max-autotune spends minutes autotuning each batch shape, past any limit here; ONNX Runtime
# has only its CPU provider on the GPU machine (onnxruntime-gpu cannot travel).
NEVER = (
    "torch.compile max-autotune bf16 channels_last",
    "onnxruntime fp32",
    "onnxruntime fp16 ONNX",
)


def skipping(*groups: tuple[str, ...]) -> tuple[str, str]:
    return ("--skip", ",".join(name for group in groups for name in group))


@dataclass(frozen=True)
class Settings:
    """What differs between the real check and its smoke run."""

    device: str
    size: int  # of the shards, and of the quality part's model
    quality_config: str
    quality_minutes: float
    quality_overrides: tuple[str, ...]
    speed_config: str
    speed_steps: int
    speed_log_every: int
    speed_overrides: tuple[str, ...]
    runner_options: tuple[str, ...]
    # benchmarks/inference.py runs, one command each so that one overrunning the part's limit
    # leaves the others' numbers: (label, its arguments)
    generator_runs: tuple[tuple[str, tuple[str, ...]], ...]
    tests: tuple[str, ...]
    limits: dict[str, float]


TIMING = ("--repeats", "3", "--frames", "256")
GPU_TESTS = ("-m", "gpu", "tests/test_gpu.py", "tests/test_backends.py")  # where gpu cases are
GPU = Settings(
    device="cuda",
    size=256,
    quality_config="configs/gan_cpu256.yaml",
    quality_minutes=1.5,
    # The recipe's global batch (2 CPU processes x 4) on one process; loader workers, which
    # the CPU recipe leaves out to keep its 2 cores for the models.
    quality_overrides=("data.stream.batch_size=8", "data.workers=6"),
    # At 512 px from the 256 px shards (the stream resizes the crops): the step's speed, with
    # the JPEGs decoded in loader workers, not a model of the person at 512.
    speed_config="configs/gan_512.yaml",
    speed_steps=40,
    speed_log_every=5,
    speed_overrides=("data.workers=8",),
    runner_options=("--precision", "bf16", "--batch", "32"),
    generator_runs=(
        (
            "512",
            ("--sizes", "512", "--batches", "1,8,32", *TIMING, *skipping(COMPILED, GRAPHED, NEVER)),
        ),
        (
            "256",
            ("--sizes", "256", "--batches", "1,8,32", *TIMING, *skipping(COMPILED, GRAPHED, NEVER)),
        ),
        (
            "512-compiled",
            (
                "--sizes",
                "512",
                "--batches",
                "1,32",
                *TIMING,
                *skipping(EAGER, EAGER_FP16, COMPILED[:1], NEVER),
            ),
        ),
    ),
    tests=GPU_TESTS,
    limits={
        "prepare": 40,
        "quality": 160,
        "training": 65,
        "runner": 35,
        "generator": 110,
        "tests": 80,
    },
)

SMOKE = Settings(
    device="cpu",
    size=64,
    quality_config="configs/gan_tiny.yaml",
    quality_minutes=0.15,
    quality_overrides=("run.log_every=1",),
    speed_config="configs/gan_tiny.yaml",
    speed_steps=4,
    speed_log_every=1,
    speed_overrides=(),
    runner_options=("--batch", "4"),
    generator_runs=(
        (
            "64",
            (
                "--sizes",
                "64",
                "--batches",
                "1,2",
                "--repeats",
                "1",
                "--frames",
                "2",
                *skipping(COMPILED, NEVER),
            ),
        ),
    ),
    tests=GPU_TESTS,
    limits={
        "prepare": 120,
        "quality": 180,
        "training": 120,
        "runner": 120,
        "generator": 120,
        "tests": 120,
    },
)


# ------------------------------------------------------------------------------- running


@dataclass
class Command:
    label: str
    argv: list[str]
    returncode: int | None = None  # None: killed at the part's time limit
    seconds: float = 0.0
    tail: list[str] = field(default_factory=list)


@dataclass
class Part:
    name: str
    limit_s: float
    status: str = "not run"  # ok, failed, timed out, skipped
    seconds: float = 0.0
    reason: str = ""
    commands: list[Command] = field(default_factory=list)
    results: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "limit_s": self.limit_s,
            "seconds": round(self.seconds, 1),
            "commands": [
                {
                    "label": c.label,
                    "argv": c.argv,
                    "returncode": c.returncode,
                    "seconds": round(c.seconds, 1),
                    "log_tail": c.tail,
                }
                for c in self.commands
            ],
            "results": self.results,
        }


class PartFailed(Exception):
    """A part cannot go on: its command failed or overran, or what it needs is missing."""


class Runner:
    """Runs the parts' commands, each part within its time limit, logging to `logs`."""

    def __init__(self, logs: Path, env: dict[str, str]):
        self.logs, self.env = logs, env
        self.part: Part | None = None
        self.deadline = 0.0

    def run(self, label: str, *argv: str | Path, env: dict[str, str] | None = None) -> Command:
        """Run one command of the current part; PartFailed when it fails or overruns."""
        command = Command(label, [str(a) for a in argv])
        self.part.commands.append(command)
        log = self.logs / f"{self.part.name}-{label}.log"
        started = time.perf_counter()
        with open(log, "w") as out:
            process = subprocess.Popen(
                command.argv,
                cwd=ROOT,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed whole at the limit
            )
            try:
                command.returncode = process.wait(timeout=max(1.0, self.deadline - time.time()))
            except subprocess.TimeoutExpired:
                kill_group(process)
        command.seconds = time.perf_counter() - started
        lines = log.read_text(errors="replace").replace("\r", "\n").splitlines()
        command.tail = [line for line in lines if line.strip()][-LOG_TAIL_LINES:]
        if command.returncode is None:
            raise PartFailed(f"{label}: killed at the part's limit of {self.part.limit_s:g} s")
        if command.returncode != 0:
            last = command.tail[-1] if command.tail else "(no output)"
            raise PartFailed(f"{label} exited {command.returncode}: {last}")
        return command

    def part_of(self, part: Part, body: Callable[[dict], None]) -> None:
        """Run `body`, which fills in the part's results as it goes: what it has when a
        command fails or overruns stays in the report."""
        self.part, self.deadline = part, time.time() + part.limit_s
        started = time.perf_counter()
        print(f"gpu_check: {part.name} (limit {part.limit_s:g} s) ...", flush=True)
        try:
            body(part.results)
            part.status = "ok"
        except PartFailed as error:
            timed_out = any(c.returncode is None for c in part.commands)
            part.status = "timed out" if timed_out else "failed"
            part.reason = str(error)
        except Exception as error:  # the check's own parsing: reported, the rest goes on
            part.status, part.reason = "failed", f"{type(error).__name__}: {error}"
        part.seconds = time.perf_counter() - started
        print(f"gpu_check: {part.name} {part.status} in {part.seconds:.0f} s {part.reason}")


def kill_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL what is left after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class Utilisation:
    """NVML's GPU utilisation (share of time a kernel ran), sampled every 0.1 s in a thread,
    each sample with the number of logged training windows so far (to keep the steady ones);
    nothing where NVML is absent."""

    def __init__(self, metrics: Path):
        self.metrics, self.samples = metrics, []
        self.stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.read = lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        except Exception as error:  # no NVML (a CPU machine): no samples
            self.read, self.missing = None, f"{type(error).__name__}: {error}"
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def windows(self) -> int:
        try:
            return self.metrics.read_text().count("images_per_second")
        except OSError:
            return 0

    def sample(self) -> None:
        while not self.stop.wait(0.1):
            self.samples.append((self.read(), self.windows()))

    def __enter__(self) -> Utilisation:
        if self.read is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def steady_mean(self, skip_windows: int) -> float | None:
        """Mean utilisation (0-1) over the samples after the first `skip_windows` windows."""
        steady = [u for u, w in self.samples if w > skip_windows]
        return statistics.mean(steady) / 100 if steady else None


# --------------------------------------------------------------------------------- parts


def training_rates(run: Path, skip_windows: int) -> list[float]:
    """The images/s of a run's logged windows after the first `skip_windows`."""
    rates = [r["images_per_second"] for r in read_metrics(run) if "images_per_second" in r]
    return rates[skip_windows:]


def check_prepare(runner: Runner, s: Settings, clip: Path, work: Path, results: dict) -> None:
    shards = work / "shards"
    command = runner.run(
        "prepare",
        PYTHON, "-m", "ganmotion.data.prepare", "--video", clip,
        "--keypoints", clip.with_name(f"{clip.stem}.keypoints.npy"), "--out", shards,
        "--size", s.size, "--overwrite", "--quiet",
    )  # fmt: skip
    manifest = json.loads((shards / "manifest.json").read_text())
    results["size"] = s.size
    results["seconds"] = round(command.seconds, 1)
    results["splits"] = {k: v.get("samples") for k, v in manifest.get("splits", {}).items()}


def prepared(work: Path) -> Path:
    shards = work / "shards"
    if not (shards / "manifest.json").is_file():
        raise PartFailed(f"no {shards}: the prepare part did not make it")
    return shards


def check_quality(runner: Runner, s: Settings, work: Path, out: Path, results: dict) -> None:
    shards, run = prepared(work), work / "quality"
    results.update(
        config=s.quality_config, overrides=list(s.quality_overrides), minutes=s.quality_minutes
    )
    runner.run(
        "train",
        PYTHON, "train/gan.py", "--config", s.quality_config, f"data.shards={shards}",
        f"run.out_dir={run}", f"run.max_minutes={s.quality_minutes}", "run.schedule_by=time",
        "run.steps=1000000", "run.tensorboard=false", *s.quality_overrides,
    )  # fmt: skip
    results["steps"] = json.loads((run / "status.json").read_text()).get("step")
    rates = training_rates(run, skip_windows=2)
    results["median_images_per_second"] = statistics.median(rates) if rates else None
    runner.run(
        "export", PYTHON, "export/to_onnx.py", "--checkpoint", run, "--out", out / "gen.onnx"
    )
    runner.run(
        "eval",
        PYTHON, "-m", "ganmotion.cli", "eval", "--compare", "nearest", f"gan={out / 'gen.onnx'}",
        "--shards", shards, "--no-pose", "--out", work / "eval",
    )  # fmt: skip
    shutil.copy(work / "eval" / "contact_sheet.png", out / "contact_sheet.png")
    report = json.loads((work / "eval" / "report.json").read_text())
    columns = ("psnr", "ssim", "box_ssim", "mask_ssim", "mask_iou", "flicker")
    results["eval"] = {
        name: {c: model.get(c) for c in columns} for name, model in report["models"].items()
    }
    results["pose_columns"] = (
        "owed: ganmotion eval --model gen.onnx --shards <the same clip prepared at "
        f"{s.size} px here>"
    )


def check_training(runner: Runner, s: Settings, work: Path, results: dict) -> None:
    shards, run = prepared(work), work / "speed"
    results.update(config=s.speed_config, overrides=list(s.speed_overrides), steps=s.speed_steps)
    skip = 2  # warm-up windows: cuDNN's algorithm search, the loader workers starting
    with Utilisation(run / "metrics.jsonl") as busy:
        try:
            runner.run(
                "train",
                PYTHON, "train/gan.py", "--config", s.speed_config, f"data.shards={shards}",
                f"run.out_dir={run}", f"run.steps={s.speed_steps}",
                f"run.log_every={s.speed_log_every}", f"run.checkpoint_every={s.speed_steps}",
                "run.sample_every=100000", "run.tensorboard=false", *s.speed_overrides,
            )  # fmt: skip
        finally:  # an overrun still has the windows it logged
            rates = training_rates(run, skip)  # none when it stopped before logging one
            results["median_images_per_second"] = statistics.median(rates) if rates else None
            results["images_per_second_windows"] = rates
            results["gpu_utilisation"] = busy.steady_mean(skip)
            results["gpu_utilisation_samples"] = len(busy.samples)
            results["gpu_utilisation_missing"] = None if busy.read else busy.missing
    config = json.loads((run / "config.json").read_text())
    results["precision"] = config["run"]["precision"]
    results["batch_size"] = config["data"]["stream"]["batch_size"]


def check_runner(runner: Runner, s: Settings, clip: Path, work: Path, results: dict) -> None:
    model = work / "speed"
    if not (model / "checkpoints").is_dir():
        raise PartFailed(f"no checkpoint in {model}: the training part did not make one")
    summary = work / "runner.json"
    results["options"] = list(s.runner_options)
    runner.run(
        "infer",
        PYTHON, "infer/video.py", "--source", clip,
        "--poses", clip.with_name(f"{clip.stem}.keypoints.npy"), "--model", model,
        "--out", work / "runner.mp4", "--device", s.device, "--no-audio", "--quiet",
        "--summary-json", summary, *s.runner_options,
    )  # fmt: skip
    result = json.loads(summary.read_text())
    stages = result["stage_frames_per_second"]
    results["frames"] = result["frames"]
    results["frames_per_second"] = result["frames_per_second"]
    results["stage_frames_per_second"] = stages
    results["bottleneck"] = min(stages, key=stages.get) if stages else None


def check_generator(runner: Runner, s: Settings, work: Path, results: dict) -> None:
    """Each run's variants, merged by size, then the best of each size; filled in after
    every run, so that an overrun keeps the runs before it."""
    merged: dict[str, dict] = {}
    for label, options in s.generator_runs:
        out = work / f"generator-{label}.json"
        runner.run(
            f"inference-{label}",
            PYTHON, "benchmarks/inference.py", "--device", s.device, *options, "--out", out,
        )  # fmt: skip
        report = json.loads(out.read_text())
        ceiling = report["device_ceiling"] or report["machine"]["ceiling"]
        results["ceiling_gflops"] = {k: ceiling[k] for k in ("fp32_gflops", "bf16_gflops")}
        for size, result in report["generator"].items():
            entry = merged.setdefault(size, {"gflop_per_frame": result["gflop_per_frame"]})
            entry.setdefault("variants", {}).update(result["variants"])
            results.setdefault("sizes", {})[size] = best_of(entry)


def best_of(entry: dict) -> dict:
    """The fastest variant and batch of one size, and the lowest latency at batch 1."""
    timed = {
        (name, batch): (fps, row["ceiling_share"][batch])
        for name, row in entry["variants"].items()
        if "frames_per_s" in row
        for batch, fps in row["frames_per_s"].items()
    }
    (name, batch), (fps, share) = max(timed.items(), key=lambda kv: kv[1][0])
    batch1 = {n: f for (n, b), (f, _) in timed.items() if b == "1"}
    fastest1 = max(batch1, key=batch1.get)
    keys = ("frames_per_s", "ceiling_share", "max_relative_error", "failure")
    return {
        "gflop_per_frame": entry["gflop_per_frame"],
        "best": {
            "variant": name,
            "batch": int(batch),
            "frames_per_s": fps,
            "tflops": fps * entry["gflop_per_frame"] / 1000,
            "share": share,
        },
        "batch1": {"variant": fastest1, "latency_ms": 1000 / batch1[fastest1]},
        "variants": {n: {k: row.get(k) for k in keys} for n, row in entry["variants"].items()},
    }


def check_tests(runner: Runner, s: Settings, results: dict) -> None:
    try:
        runner.run(
            "pytest", PYTHON, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *s.tests
        )
    finally:  # failures are what this part is for: their lines go into the report
        results.update(pytest_counts(runner.part.commands[-1].tail))


def pytest_counts(lines: list[str]) -> dict:
    """pytest's closing counts ("3 passed, 2 skipped in 4.1s") and its FAILED/ERROR/SKIPPED
    lines."""
    counts = {}
    for line in lines:
        for number, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", line):
            counts[what] = int(number)
    notes = [line for line in lines if line.startswith(("FAILED", "ERROR", "SKIPPED"))]
    return {"counts": counts, "notes": notes}


# ------------------------------------------------------------------------------ reporting


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(report: dict) -> str:
    """The report's tables; a part that stopped early shows what it had."""
    parts = {name: part["results"] for name, part in report["parts"].items()}
    lines = [
        "# GPU check",
        "",
        f"`{report['command']}` on {report['date']}: {report['machine_line']}",
        "",
        "Versions: "
        + ", ".join(f"{name} {report['machine'].get(name)}" for name in VERSIONS_SHOWN),
        "",
        "| part | status | seconds | limit | reason |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for name, part in report["parts"].items():
        lines.append(
            f"| {name} | {part['status']} | {part['seconds']:.0f} | {part['limit_s']:g} | "
            f"{part['reason']} |"
        )
    generator = parts["generator"]
    if generator.get("sizes"):
        lines += ["", f"## Generator ({GOALS['generator']})", ""]
        lines += ["| size | best variant | batch | frames/s | TFLOP/s | share | batch 1 |"]
        lines += ["| ---: | --- | ---: | ---: | ---: | ---: | --- |"]
        for size, result in generator["sizes"].items():
            best, one = result["best"], result["batch1"]
            lines.append(
                f"| {size} | {best['variant']} | {best['batch']} | {number(best['frames_per_s'])} "
                f"| {number(best['tflops'], 2)} | {percent(best['share'])} "
                f"| {one['latency_ms']:.2f} ms ({one['variant']}) |"
            )
        ceiling = generator["ceiling_gflops"]
        lines.append(
            f"\nShare: of the matrix-product ceiling measured in the variant's dtype, "
            f"{number(ceiling['bf16_gflops'] / 1000, 3)} TFLOP/s bf16 and "
            f"{number(ceiling['fp32_gflops'] / 1000, 3)} fp32."
        )
    training = parts["training"]
    if training.get("images_per_second_windows") is not None:
        lines += ["", f"## Training ({GOALS['training']})", ""]
        lines.append(
            f"{training['config']} ({training.get('precision', '?')}, batch "
            f"{training.get('batch_size', '?')}), {training['steps']} steps: "
            f"**{number(training['median_images_per_second'])} images/s** (median of the steady "
            f"windows), GPU utilisation **{percent(training['gpu_utilisation'])}**."
        )
    runner = parts["runner"]
    if runner.get("stage_frames_per_second"):
        lines += ["", f"## Runner ({GOALS['runner']})", ""]
        stages = ", ".join(f"{k} {v:,.0f}" for k, v in runner["stage_frames_per_second"].items())
        lines.append(
            f"{runner['frames']} frames, {' '.join(runner['options'])}: "
            f"**{number(runner['frames_per_second'])} frames/s** end to end; stages (frames/s of "
            f"busy time): {stages}; bottleneck: **{runner['bottleneck']}**."
        )
    quality = parts["quality"]
    if quality.get("steps") is not None:
        lines += ["", f"## Quality ({GOALS['quality']})", ""]
        lines.append(
            f"{quality['config']} {' '.join(quality['overrides'])}, {quality['minutes']:g} min: "
            f"{quality['steps']} steps, {number(quality['median_images_per_second'])} images/s."
        )
    if quality.get("eval"):
        lines += ["", "| model | PSNR | SSIM | box SSIM | mask SSIM | alpha IoU | flicker |"]
        lines += ["| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, row in quality["eval"].items():
            values = [row.get(c) for c in ("psnr", "ssim", "box_ssim", "mask_ssim", "mask_iou")]
            cells = " | ".join(number(v, 3) for v in values)
            lines.append(f"| {name} | {cells} | {number(row.get('flicker'), 2)} |")
        lines.append(f"\nPose columns {quality['pose_columns']}.")
    tests = parts["tests"]
    if tests.get("counts") is not None:
        lines += ["", "## Tests (pytest -m gpu)", ""]
        lines.append(", ".join(f"{n} {what}" for what, n in tests["counts"].items()) or "no count")
        lines += [f"- {note}" for note in tests["notes"]]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- main


def smoke_bundle(work: Path) -> Path:
    """A synthetic clip with its exact poses and masks, laid out as `make gpu-bundle` lays out
    the real one."""
    from ganmotion.data.synthetic import write_clip

    (work / "bundle").mkdir(exist_ok=True)
    video, _ = write_clip(work / "bundle" / "clip.mp4", frames=48, size=128)
    return video


def bundle_clip(bundle: Path) -> Path:
    """The bundle's clip: its one .mp4, with <stem>.keypoints.npy and <stem>.masks.npz."""
    clips = sorted(bundle.glob("*.mp4"))
    if len(clips) != 1:
        raise SystemExit(f"{bundle}: expected one .mp4 (make gpu-bundle), found {len(clips)}")
    for suffix in (".keypoints.npy", ".masks.npz"):
        if not clips[0].with_name(clips[0].stem + suffix).is_file():
            raise SystemExit(f"{bundle}: {clips[0].stem}{suffix} is missing (make gpu-bundle)")
    return clips[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--bundle", type=Path, default=ROOT / ".gpu_bundle", help="[.gpu_bundle]")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: seconds")
    parser.add_argument(
        "--parts", default="prepare,quality,training,runner,generator,tests", help="[all]"
    )
    parser.add_argument("--work", type=Path, help="scratch folder [a temporary one]")
    args = parser.parse_args()
    settings = SMOKE if args.smoke else GPU
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA GPU here (--smoke runs it on the CPU)")
    wanted = args.parts.split(",")
    unknown = set(wanted) - set(settings.limits)
    if unknown:
        raise SystemExit(f"gpu_check: unknown parts {', '.join(sorted(unknown))}")

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as scratch:
        work = args.work or Path(scratch)
        (work / "logs").mkdir(parents=True, exist_ok=True)
        clip = smoke_bundle(work) if args.smoke else bundle_clip(args.bundle)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
        }
        runner = Runner(work / "logs", env)
        bodies = {
            "prepare": lambda results: check_prepare(runner, settings, clip, work, results),
            "quality": lambda results: check_quality(runner, settings, work, args.out, results),
            "training": lambda results: check_training(runner, settings, work, results),
            "runner": lambda results: check_runner(runner, settings, clip, work, results),
            "generator": lambda results: check_generator(runner, settings, work, results),
            "tests": lambda results: check_tests(runner, settings, results),
        }
        started = time.perf_counter()
        parts = {}
        for name, body in bodies.items():
            parts[name] = Part(name, settings.limits[name])
            if name in wanted:
                runner.part_of(parts[name], body)
            else:
                parts[name].status = "skipped"
                parts[name].reason = "not in --parts"
    host = machine(measure_ceiling=False)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "smoke": args.smoke,
        "machine": host,
        "machine_line": describe(host),
        "seconds": round(time.perf_counter() - started, 1),
        "goals": GOALS,
        "parts": {name: part.to_json() for name, part in parts.items()},
    }
    with atomic_write(args.out / "gpu_check.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=float) + "\n")
    with atomic_write(args.out / "gpu_check.md") as tmp:
        tmp.write_text(markdown(report))
    print(markdown(report))
    failed = [name for name, part in parts.items() if part.status not in ("ok", "skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
