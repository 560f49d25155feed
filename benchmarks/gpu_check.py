"""The GPU check: everything the lent GPU machine must measure, in one run of about 8 minutes.

    make gpu-bundle                                     # here, once: clip, poses, masks, wheels
    python benchmarks/gpu_check.py --bundle .gpu_bundle --out $OUT      # there (README: GPU)
    python benchmarks/gpu_check.py --smoke --out /tmp/gpu_check        # anywhere: CPU, seconds

The GPU machine has no MediaPipe, WebDataset or PyAV and no network, so `make gpu-bundle`
brings the sample clip (taichi2) with its MediaPipe poses and person masks computed here, and
the wheels of the two missing packages the parts need. Each part runs as subprocesses under its
own time limit: one that overruns is killed with everything it started and reported as such,
and the parts after it still run (one that needs its output says so and is skipped).

  prepare    the clip prepared from its given poses and masks (no MediaPipe): 256 px shards
             for the quality part, 512 px for the speed parts
  quality    train/gan.py with the project's best recipe (configs/gan_cpu256.yaml, the global
             batch of its two CPU processes on one GPU) for a few minutes, its EMA generator
             exported to ONNX and evaluated on the held-out frames without the pose columns;
             gen.onnx, its sidecar and the contact sheet come back in --out, so that the pose
             accuracy is measured here afterwards (`ganmotion eval --model gen.onnx`)
  training   train/gan.py with configs/gan_512.yaml (bf16) for a fixed number of steps:
             images/s of the steady windows, and the GPU's utilisation over them (NVML's
             share of time a kernel ran, sampled every 0.1 s)
  runner     infer/video.py over the clip with its given poses and the training part's 512 px
             checkpoint, bf16, batch 32: frames/s end to end and per stage (the slowest stage
             is the bottleneck)
  generator  benchmarks/inference.py on the GPU: the torch variants at 256 and 512 px, batches
             1, 8 and 32, each against the GPU's measured matrix-product ceiling
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
LOG_TAIL_LINES = 25

GOALS = {
    "generator": "512 px, best mode: >= 30% of the bf16 peak; batch 1 latency < 5 ms",
    "runner": "512 px end to end with given poses: >= 1000 frames/s, bottleneck named",
    "training": "512 px, bf16, one GPU: images/s, GPU utilisation >= 80%",
    "quality": "person detected in >= 80% of generated held-out frames (measured afterwards, "
    "with MediaPipe, on the gen.onnx that comes back)",
}


# ONNX Runtime has only its CPU provider there (onnxruntime-gpu cannot travel), and the fp32
# compiled row says nothing the bf16 ones do not.
GENERATOR_SKIPPED = ("torch.compile", "onnxruntime fp32", "onnxruntime fp16 ONNX")


@dataclass(frozen=True)
class Settings:
    """What differs between the real check and its smoke run."""

    device: str
    quality_size: int
    speed_size: int
    quality_config: str
    quality_minutes: float
    quality_overrides: tuple[str, ...]
    speed_config: str
    speed_steps: int
    speed_log_every: int
    speed_overrides: tuple[str, ...]
    runner_options: tuple[str, ...]
    generator_options: tuple[str, ...]
    tests: tuple[str, ...]
    limits: dict[str, float]


GPU = Settings(
    device="cuda",
    quality_size=256,
    speed_size=512,
    quality_config="configs/gan_cpu256.yaml",
    quality_minutes=2.0,
    # The recipe's global batch (2 CPU processes x 4) on one process; loader workers, which
    # the CPU recipe leaves out to keep its 2 cores for the models.
    quality_overrides=("data.stream.batch_size=8", "data.workers=6"),
    speed_config="configs/gan_512.yaml",
    speed_steps=60,
    speed_log_every=5,
    speed_overrides=("data.workers=8",),
    runner_options=("--precision", "bf16", "--batch", "32"),
    # Not timed: fp32 compiled, and max-autotune (minutes of autotuning per batch shape,
    # past the part's limit; reduce-overhead's CUDA graphs are timed).
    generator_options=(
        "--sizes",
        "256,512",
        "--batches",
        "1,8,32",
        "--repeats",
        "3",
        "--frames",
        "256",
        "--skip",
        ",".join(GENERATOR_SKIPPED + ("torch.compile max-autotune bf16 channels_last",)),
    ),  # fmt: skip
    tests=("-m", "gpu", "tests/test_gpu.py", "tests/test_backends.py"),  # where gpu cases are
    limits={
        "prepare": 45,
        "quality": 190,
        "training": 50,
        "runner": 35,
        "generator": 100,
        "tests": 90,
    },
)

SMOKE = Settings(
    device="cpu",
    quality_size=64,
    speed_size=64,
    quality_config="configs/gan_tiny.yaml",
    quality_minutes=0.15,
    quality_overrides=("run.log_every=1",),
    speed_config="configs/gan_tiny.yaml",
    speed_steps=4,
    speed_log_every=1,
    speed_overrides=(),
    runner_options=("--batch", "4"),
    generator_options=(
        "--sizes",
        "64",
        "--batches",
        "1,2",
        "--repeats",
        "1",
        "--frames",
        "2",
        "--skip",
        ",".join(GENERATOR_SKIPPED),
    ),  # fmt: skip
    tests=("-m", "gpu", "tests/test_gpu.py", "tests/test_backends.py"),
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

    def part_of(self, part: Part, body: Callable[[], dict]) -> None:
        self.part, self.deadline = part, time.time() + part.limit_s
        started = time.perf_counter()
        print(f"gpu_check: {part.name} (limit {part.limit_s:g} s) ...", flush=True)
        try:
            part.results = body()
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
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_second"] for r in rows if "images_per_second" in r]
    return rates[skip_windows:]


def check_prepare(runner: Runner, s: Settings, clip: Path, work: Path) -> dict:
    keypoints = clip.with_name(f"{clip.stem}.keypoints.npy")
    results = {}
    for size in sorted({s.quality_size, s.speed_size}):
        shards = work / f"shards{size}"
        command = runner.run(
            f"prepare{size}",
            PYTHON, "-m", "ganmotion.data.prepare", "--video", clip, "--keypoints", keypoints,
            "--out", shards, "--size", size, "--overwrite", "--quiet",
        )  # fmt: skip
        manifest = json.loads((shards / "manifest.json").read_text())
        results[str(size)] = {
            "seconds": round(command.seconds, 1),
            "splits": {k: v.get("samples") for k, v in manifest.get("splits", {}).items()},
        }
    return results


def check_quality(runner: Runner, s: Settings, work: Path, out: Path) -> dict:
    shards, run = work / f"shards{s.quality_size}", work / "quality"
    if not (shards / "manifest.json").is_file():
        raise PartFailed(f"no {shards}: the prepare part did not make it")
    runner.run(
        "train",
        PYTHON, "train/gan.py", "--config", s.quality_config, f"data.shards={shards}",
        f"run.out_dir={run}", f"run.max_minutes={s.quality_minutes}", "run.schedule_by=time",
        "run.steps=1000000", "run.tensorboard=false", *s.quality_overrides,
    )  # fmt: skip
    status = json.loads((run / "status.json").read_text())
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
    rates = training_rates(run, skip_windows=2)
    columns = ("psnr", "ssim", "box_ssim", "mask_ssim", "mask_iou", "flicker")
    return {
        "config": s.quality_config,
        "overrides": list(s.quality_overrides),
        "minutes": s.quality_minutes,
        "steps": status.get("step"),
        "median_images_per_second": statistics.median(rates) if rates else None,
        "eval": {
            name: {c: model.get(c) for c in columns}
            for name, model in report.get("models", {}).items()
        },
        "pose_columns": "owed: ganmotion eval --model gen.onnx --shards <the same clip prepared "
        f"at {s.quality_size} px here>",
    }


def check_training(runner: Runner, s: Settings, work: Path) -> dict:
    shards, run = work / f"shards{s.speed_size}", work / "speed"
    if not (shards / "manifest.json").is_file():
        raise PartFailed(f"no {shards}: the prepare part did not make it")
    skip = 2  # warm-up windows: cuDNN's algorithm search, the loader workers starting
    with Utilisation(run / "metrics.jsonl") as busy:
        runner.run(
            "train",
            PYTHON, "train/gan.py", "--config", s.speed_config, f"data.shards={shards}",
            f"run.out_dir={run}", f"run.steps={s.speed_steps}",
            f"run.log_every={s.speed_log_every}", f"run.checkpoint_every={s.speed_steps}",
            "run.sample_every=100000",
            "run.tensorboard=false", *s.speed_overrides,
        )  # fmt: skip
    rates = training_rates(run, skip)
    config = json.loads((run / "config.json").read_text())
    return {
        "config": s.speed_config,
        "overrides": list(s.speed_overrides),
        "steps": s.speed_steps,
        "precision": config["run"]["precision"],
        "batch_size": config["data"]["stream"]["batch_size"],
        "median_images_per_second": statistics.median(rates) if rates else None,
        "images_per_second_windows": rates,
        "gpu_utilisation": busy.steady_mean(skip),
        "gpu_utilisation_samples": len(busy.samples),
        "gpu_utilisation_missing": None if busy.read else busy.missing,
    }


def check_runner(runner: Runner, s: Settings, clip: Path, work: Path) -> dict:
    model = work / "speed"
    if not (model / "checkpoints").is_dir():
        raise PartFailed(f"no checkpoint in {model}: the training part did not make one")
    summary = work / "runner.json"
    runner.run(
        "infer",
        PYTHON, "infer/video.py", "--source", clip,
        "--poses", clip.with_name(f"{clip.stem}.keypoints.npy"), "--model", model,
        "--out", work / "runner.mp4", "--device", s.device, "--no-audio", "--quiet",
        "--summary-json", summary, *s.runner_options,
    )  # fmt: skip
    result = json.loads(summary.read_text())
    stages = result["stage_frames_per_second"]
    return {
        "options": list(s.runner_options),
        "frames": result["frames"],
        "frames_per_second": result["frames_per_second"],
        "stage_frames_per_second": stages,
        "bottleneck": min(stages, key=stages.get) if stages else None,
    }


def check_generator(runner: Runner, s: Settings, work: Path) -> dict:
    out = work / "generator.json"
    runner.run(
        "inference",
        PYTHON, "benchmarks/inference.py", "--device", s.device, *s.generator_options,
        "--out", out,
    )  # fmt: skip
    report = json.loads(out.read_text())
    ceiling = report["device_ceiling"] or report["machine"]["ceiling"]
    best = {}
    for size, result in report["generator"].items():
        timed = {
            (name, batch): (fps, row["ceiling_share"][batch])
            for name, row in result["variants"].items()
            if "frames_per_s" in row
            for batch, fps in row["frames_per_s"].items()
        }
        (name, batch), (fps, share) = max(timed.items(), key=lambda kv: kv[1][0])
        batch1 = {n: f for (n, b), (f, _) in timed.items() if b == "1"}
        fastest1 = max(batch1, key=batch1.get)
        best[size] = {
            "gflop_per_frame": result["gflop_per_frame"],
            "best": {"variant": name, "batch": int(batch), "frames_per_s": fps, "share": share},
            "batch1": {"variant": fastest1, "latency_ms": 1000 / batch1[fastest1]},
            "variants": {
                name: {
                    key: row.get(key)
                    for key in ("frames_per_s", "ceiling_share", "max_relative_error", "failure")
                }
                for name, row in result["variants"].items()
            },
        }
    return {"ceiling_gflops": {k: ceiling[k] for k in ("fp32_gflops", "bf16_gflops")}, **best}


def check_tests(runner: Runner, s: Settings) -> dict:
    command = runner.run(
        "pytest", PYTHON, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *s.tests
    )
    return pytest_counts(command.tail)


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
    parts = report["parts"]
    lines = [
        "# GPU check",
        "",
        f"`{report['command']}` on {report['date']}: {report['machine_line']}",
        "",
        "| part | status | seconds | limit | reason |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for name, part in parts.items():
        lines.append(
            f"| {name} | {part['status']} | {part['seconds']:.0f} | {part['limit_s']:g} | "
            f"{part['reason']} |"
        )
    generator = parts["generator"]["results"]
    if generator:
        lines += ["", f"## Generator ({GOALS['generator']})", ""]
        lines += ["| size | best variant | batch | frames/s | share of ceiling | batch 1 |"]
        lines += ["| ---: | --- | ---: | ---: | ---: | --- |"]
        for size, result in generator.items():
            if size == "ceiling_gflops":
                continue
            best, one = result["best"], result["batch1"]
            lines.append(
                f"| {size} | {best['variant']} | {best['batch']} | {number(best['frames_per_s'])} "
                f"| {percent(best['share'])} | {one['latency_ms']:.2f} ms ({one['variant']}) |"
            )
        ceiling = generator["ceiling_gflops"]
        lines.append(
            f"\nCeiling measured: {number(ceiling['bf16_gflops'] / 1000, 3)} TFLOP/s bf16, "
            f"{number(ceiling['fp32_gflops'] / 1000, 3)} fp32."
        )
    training = parts["training"]["results"]
    if training:
        lines += ["", f"## Training ({GOALS['training']})", ""]
        lines.append(
            f"{training['config']} ({training['precision']}, batch {training['batch_size']}), "
            f"{training['steps']} steps: **{number(training['median_images_per_second'])} "
            f"images/s** (median of the steady windows), GPU utilisation "
            f"**{percent(training['gpu_utilisation'])}**."
        )
    runner = parts["runner"]["results"]
    if runner:
        lines += ["", f"## Runner ({GOALS['runner']})", ""]
        stages = ", ".join(f"{k} {v:,.0f}" for k, v in runner["stage_frames_per_second"].items())
        lines.append(
            f"{runner['frames']} frames, {' '.join(runner['options'])}: "
            f"**{number(runner['frames_per_second'])} frames/s** end to end; stages (frames/s of "
            f"busy time): {stages}; bottleneck: **{runner['bottleneck']}**."
        )
    quality = parts["quality"]["results"]
    if quality:
        lines += ["", f"## Quality ({GOALS['quality']})", ""]
        lines.append(
            f"{quality['config']} {' '.join(quality['overrides'])}, {quality['minutes']:g} min: "
            f"{quality['steps']} steps, {number(quality['median_images_per_second'])} images/s."
        )
        lines += ["", "| model | PSNR | SSIM | box SSIM | mask SSIM | alpha IoU | flicker |"]
        lines += ["| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, row in quality["eval"].items():
            values = [row.get(c) for c in ("psnr", "ssim", "box_ssim", "mask_ssim", "mask_iou")]
            cells = " | ".join(number(v, 3) for v in values)
            lines.append(f"| {name} | {cells} | {number(row.get('flicker'), 2)} |")
        lines.append(f"\nPose columns {quality['pose_columns']}.")
    tests = parts["tests"]["results"]
    if tests:
        lines += ["", "## Tests (pytest -m gpu)", ""]
        lines.append(", ".join(f"{n} {what}" for what, n in tests["counts"].items()))
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
            "prepare": lambda: check_prepare(runner, settings, clip, work),
            "quality": lambda: check_quality(runner, settings, work, args.out),
            "training": lambda: check_training(runner, settings, work),
            "runner": lambda: check_runner(runner, settings, clip, work),
            "generator": lambda: check_generator(runner, settings, work),
            "tests": lambda: check_tests(runner, settings),
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
