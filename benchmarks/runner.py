"""End-to-end runner benchmark: ganmotion's pipelined, batched video runner against a seed-style
loop, same model, same clip, one run.

    python benchmarks/runner.py                        # taichi2.mp4, first 300 frames, 256 px
    python benchmarks/runner.py --sizes 128,256 --repeats 3     # ~13 min on 2 cores

The seed-style loop is the course project's inference, frame by frame in one thread: decode a
frame, MediaPipe (tracking mode, in process), crop, draw the skeleton, run the generator on a
batch of one in PyTorch eager fp32, encode. ganmotion's runner (ganmotion.runtime.pipeline)
does the same work with decode, pose detection (worker processes), smoothing, rendering,
batched generation and encoding overlapped through bounded queues. Its variants:

  pipeline torch b1            torch eager fp32, batch 1, 1 pose worker (tracking mode)
  pipeline torch bf16 b1       torch under bf16 autocast, batch 1
  pipeline onnxruntime b1      ONNX Runtime fp32, batch 1, 1 pose worker
  pipeline onnxruntime b1 2w   the same with 2 pose workers (static-image mode)
  pipeline ... full-frame      torch / ONNX Runtime b1 writing the full frame (--full-frame:
                               the person laid into a frame of the clip's size through its
                               alpha) instead of the crop; the composition counts as encoding

and, to show what overlapping buys when the generator is not on the CPU, both runners again
with an off-CPU stand-in for the generator: it takes the real generator's measured seconds per
frame but sleeps instead of computing (as a GPU's kernels leave the CPU free). Those two rows
compare with each other ("vs seed" is against the off-CPU seed loop); they measure the
runners, not any GPU.

The generator is the configs/gan_512.yaml architecture built at each size with random weights
(seed 0): speed does not depend on the weights. Retargeting is off in both (the seed had none;
the crop is the runner's fixed framing around the first measured body), so both render the
same skeletons. Variants are interleaved per repeat. The table gives, per variant (median run of
the repeats): the steady frames/s end to end, from the 60th frame written to the 40th before
the end (what a long video sees; start-up is a few seconds: MediaPipe loading, pose processes
starting, the runner's calibration on the first 30 poses), its ratio to the seed-style loop,
the rate over the whole clip with start-up, the seconds to the first frame written, and each
stage's busy time as frames/s (the smallest is the bottleneck), and the generator's share of
the machine's ceiling (benchmarks/common.py): steady frames/s x the generator's counted FLOP per
frame / the measured matrix-product rate in the variant's dtype (bf16 rows against bf16). End to
end, that is the share of the CPU's matrix rate the generator gets while pose detection,
decoding and encoding run beside it; the off-CPU rows compute nothing and get none.
Writes results/runner.json with the machine (CPU model, flags, ceiling) and the exact command
line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from common import count_flops, describe, machine, share, write_result  # this folder

from ganmotion.config import load_config
from ganmotion.errors import GanmotionError, command_line
from ganmotion.export.onnx import export_generator
from ganmotion.images import to_uint8_images, to_unit_range
from ganmotion.models.generator import ComposedGenerator, UNetGenerator
from ganmotion.pose.detector import DetectorConfig, PoseDetector
from ganmotion.pose.render import SkeletonStyle
from ganmotion.pose.retarget import body_stats, fixed_crop
from ganmotion.runtime import OnnxRuntimeBackend, TorchBackend
from ganmotion.runtime.background import FullFrame
from ganmotion.runtime.pipeline import RunnerConfig, RunSummary, VideoPipeline, no_pose_frame
from ganmotion.training.config import GanConfig
from ganmotion.video import VideoWriter, probe_video, read_frames

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = ROOT / "configs" / "gan_512.yaml"
SAMPLE = ROOT.parent / "shared" / "data" / "taichi2.mp4"
SEED = "seed-style loop"
SEED_OFF_CPU = "seed-style loop, off-CPU gen"
PIPELINE_OFF_CPU = "pipeline b1, off-CPU gen"
FULL_FRAME_TORCH = "pipeline torch b1 full-frame"
FULL_FRAME_ORT = "pipeline ort b1 full-frame"
# The steady rate is timed from the 60th frame written to the 40th before the end: by then the
# start-up is over, and the last frames are left out because once decoding and pose detection
# have finished, the generator drains its queues (4 frames each at batch 1) with the CPU to
# itself, faster than in steady state.
STEADY_AFTER, STEADY_BEFORE_END = 60, 40


def build_generator(size: int) -> UNetGenerator | ComposedGenerator:
    """The config's generator at `size`, as a trained one runs: an alpha generator composed
    over a plate (grey here; its values do not change the speed)."""
    torch.manual_seed(0)
    config = load_config(GanConfig, CONFIG).generator
    generator = UNetGenerator.from_config(config.__class__(**{**vars(config), "size": size}))
    if generator.config.alpha:
        grey = torch.full((3, size, size), 128, dtype=torch.uint8)  # a plate is 8-bit pixels
        generator = ComposedGenerator(generator, to_unit_range(grey))
    return generator.eval()


def seed_loop(source: Path, generator: torch.nn.Module, size: int, out: Path) -> dict:
    """The course project's inference loop, one frame at a time: seconds in all and per stage."""
    busy: dict[str, float] = defaultdict(float)
    clock = time.perf_counter

    def timed(stage: str, work, *args):
        tick = clock()
        result = work(*args)
        busy[stage] += clock() - tick
        return result

    started = clock()
    written: list[float] = []
    frames, mapping = read_frames(source), None
    skeleton = SkeletonStyle.for_size(size)  # the runner's too: both draw the same skeletons
    with (
        PoseDetector(DetectorConfig(static_image_mode=False)) as detect,
        VideoWriter(out, probe_video(source).fps) as writer,
    ):
        while (image := timed("decode", next, frames, None)) is not None:
            pose = timed("pose", detect, image)
            if pose is not None and mapping is None:
                try:
                    mapping = fixed_crop(body_stats(pose[None]), size)
                except GanmotionError:  # not a whole body in view yet
                    pass
            if pose is None or mapping is None:
                timed("encode", writer.write, no_pose_frame(size))
                written.append(clock() - started)
                continue
            drawn = timed("track", skeleton.render, mapping(pose))
            generated = timed("generate", generate_one, generator, drawn)
            timed("encode", writer.write, generated)
            written.append(clock() - started)
    return {"seconds": clock() - started, "stage_seconds": dict(busy), "written": written}


def pipeline_run(
    backend, config: RunnerConfig, source: Path, out: Path, full_frame: FullFrame | None = None
) -> dict:
    """VideoPipeline.run's loop (frames -> encoder), keeping the time each frame is written;
    the composition into the full frame, if any, counts as encoding."""
    pipeline = VideoPipeline(backend, config, None, full_frame)
    written: list[float] = []
    started = time.perf_counter()
    summary = RunSummary(str(source), str(out), backend.name, config.batch_size)
    with VideoWriter(out, probe_video(source).fps) as writer:
        encoding = 0.0
        for frame in pipeline.frames(source, summary=summary):
            tick = time.perf_counter()
            writer.write(pipeline.output(frame))
            encoding += time.perf_counter() - tick
            written.append(time.perf_counter() - started)
    summary.stage_seconds["encode"] = encoding
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "stage_seconds": summary.stage_seconds, "written": written}


def steady_fps(written: list[float]) -> float:
    """Frames/s between the STEADY_AFTER-th frame written and the STEADY_BEFORE_END-th from
    the end: start-up (loading MediaPipe, starting pose processes, the runner's calibration on
    the first 30 poses) and the final drain left out."""
    first, last = STEADY_AFTER, len(written) - 1 - STEADY_BEFORE_END
    if last <= first:
        raise GanmotionError(
            f"--frames must be more than {STEADY_AFTER + STEADY_BEFORE_END + 1} to time a steady "
            "stretch"
        )
    return (last - first) / (written[last] - written[first])


class OffCpuGenerator(torch.nn.Module):
    """Stands in for a generator on an accelerator: it takes `seconds_per_frame` per frame
    (measured from the real generator on this CPU) without using the CPU (it sleeps, which
    releases the GIL), and returns grey images. Not a model of any GPU's speed: it shows how
    much of the other stages' time each runner hides behind the generator's."""

    def __init__(self, size: int, seconds_per_frame: float):
        super().__init__()
        self.size, self.seconds_per_frame = size, seconds_per_frame

    def forward(self, skeleton: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds_per_frame * len(skeleton))
        return torch.zeros(len(skeleton), 3, self.size, self.size)


class OffCpuBackend:
    """OffCpuGenerator as a runner backend."""

    name, needs_keypoints, device = "off-cpu", False, torch.device("cpu")

    def __init__(self, generator: OffCpuGenerator):
        self.generator, self.size = generator, generator.size
        self.skeleton = SkeletonStyle.for_size(generator.size)

    def __call__(self, skeleton: torch.Tensor, keypoints=None) -> torch.Tensor:
        return self.generator(skeleton)


def seconds_per_frame(generator: UNetGenerator, size: int, calls: int = 10) -> float:
    """The real generator's median seconds per frame at batch 1 on this CPU."""
    skeleton = np.zeros((size, size, 3), np.uint8)
    generate_one(generator, skeleton)  # warm-up
    times = []
    for _ in range(calls):
        tick = time.perf_counter()
        generate_one(generator, skeleton)
        times.append(time.perf_counter() - tick)
    return sorted(times)[calls // 2]


def generate_one(generator: torch.nn.Module, skeleton: np.ndarray) -> np.ndarray:
    batch = to_unit_range(torch.from_numpy(skeleton).permute(2, 0, 1)[None])
    with torch.no_grad():
        return to_uint8_images(generator(batch))[0]


def pipeline_variants(generator: UNetGenerator | ComposedGenerator, onnx: Path, clip: Path) -> dict:
    """name -> (backend, RunnerConfig, FullFrame or None) of the runner variants. The
    full-frame rows lay the person into a frame of the clip's size (its first frame as the
    room, the crop a centred square of 0.8 of its height): what --full-frame costs."""
    plain = TorchBackend(generator, "cpu")
    bf16 = TorchBackend(generator, "cpu", precision="bf16")
    ort = OnnxRuntimeBackend.load(onnx)
    one = RunnerConfig(batch_size=1, retarget=False)
    variants = {
        "pipeline torch b1": (plain, one, None),
        "pipeline torch bf16 b1": (bf16, one, None),
        "pipeline onnxruntime b1": (ort, one, None),
        "pipeline onnxruntime b1 2w": (
            ort,
            RunnerConfig(batch_size=1, pose_workers=2, retarget=False),
            None,
        ),
    }
    if getattr(plain, "has_alpha", False):
        room = next(read_frames(clip))
        height, width = room.shape[:2]
        side = round(0.8 * height)
        window = ((width - side) // 2, (height - side) // 2, side)
        full = FullFrame(room, window, plain.background)
        variants[FULL_FRAME_TORCH] = (plain, one, full)
        variants[FULL_FRAME_ORT] = (ort, one, full)
    return variants


def trim(source: Path, frames: int, out: Path) -> Path:
    """The first `frames` frames of `source` as a clip of their own (both sides read it)."""
    with VideoWriter(out, probe_video(source).fps) as writer:
        for image in read_frames(source, stop=frames):
            writer.write(image)
    return out


def bench_size(
    size: int, clip: Path, frames: int, repeats: int, workdir: Path, ceiling: dict
) -> dict:
    generator = build_generator(size)
    with torch.no_grad():
        flop_per_frame = count_flops(lambda: generator(torch.zeros(1, 3, size, size)))
    onnx = workdir / f"gen{size}.onnx"
    export_generator(generator, onnx)
    variants = pipeline_variants(generator, onnx, clip)
    off_cpu = OffCpuGenerator(size, seconds_per_frame(generator, size))
    variants[PIPELINE_OFF_CPU] = (OffCpuBackend(off_cpu), RunnerConfig(1, retarget=False), None)
    runs: dict[str, list[dict]] = defaultdict(list)
    for repeat in range(repeats):
        out = workdir / "out.mp4"
        runs[SEED].append(seed_loop(clip, generator, size, out))
        runs[SEED_OFF_CPU].append(seed_loop(clip, off_cpu, size, out))
        for name, (backend, config, full_frame) in variants.items():
            runs[name].append(pipeline_run(backend, config, clip, out, full_frame))
            assert len(runs[name][-1]["written"]) == frames, name
        print(f"{size} px, repeat {repeat + 1}/{repeats} done", file=sys.stderr)
    result = {}
    for name, timings in runs.items():
        fps = [steady_fps(t["written"]) for t in timings]
        middle = sorted(range(len(fps)), key=fps.__getitem__)[len(fps) // 2]  # the median run
        chosen = timings[middle]
        result[name] = {
            "frames_per_s": fps[middle],
            "runs_frames_per_s": fps,
            "whole_clip_frames_per_s": frames / chosen["seconds"],
            "first_frame_s": chosen["written"][0],
            "stage_frames_per_s": {
                stage: frames / seconds for stage, seconds in chosen["stage_seconds"].items()
            },
        }
    for name, row in result.items():
        seed = SEED_OFF_CPU if "off-CPU" in name else SEED
        row["vs_seed"] = row["frames_per_s"] / result[seed]["frames_per_s"]
        top = ceiling["bf16_gflops" if "bf16" in name else "fp32_gflops"]
        computed = "off-CPU" not in name  # the stand-in sleeps: no matrix work to share
        row["ceiling_share"] = share(row["frames_per_s"], flop_per_frame, top) if computed else None
    result[SEED]["generator_gflop_per_frame"] = flop_per_frame / 1e9
    result[SEED_OFF_CPU]["generator_seconds_per_frame"] = off_cpu.seconds_per_frame
    return result


def print_table(size: int, result: dict, frames: int, repeats: int) -> None:
    print(
        f"\n{size}x{size}, {frames} frames, median of {repeats}: frames/s end to end, steady "
        f"(frames {STEADY_AFTER}..{frames - 1 - STEADY_BEFORE_END}) and over the whole clip "
        "with start-up; the generator's share of the ceiling; then each stage's busy rate"
    )
    stages = ("decode", "pose", "track", "generate", "encode")
    print(
        f"{'variant':<28}{'steady':>8}{'vs seed':>9}{'whole':>8}{'1st (s)':>9}{'ceiling':>9}  "
        + "".join(f"{s:>9}" for s in stages)
    )
    for name, row in result.items():
        cells = "".join(f"{row['stage_frames_per_s'].get(s, float('nan')):>9.1f}" for s in stages)
        fraction = "-" if row["ceiling_share"] is None else f"{row['ceiling_share']:.1%}"
        print(
            f"{name:<28}{row['frames_per_s']:>8.2f}{row['vs_seed']:>8.2f}x"
            f"{row['whole_clip_frames_per_s']:>8.2f}{row['first_frame_s']:>9.2f}{fraction:>9}  "
            f"{cells}"
        )


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text!r}") from None
    return values


@command_line
def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--source", type=Path, default=SAMPLE, help="the clip (taichi2.mp4)")
    parser.add_argument("--frames", type=int, default=300, help="its first N frames (300)")
    parser.add_argument("--sizes", type=int_list, default=[256], help="image sizes (256)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (3)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "runner.json")
    args = parser.parse_args()
    if not args.source.is_file():
        parser.error(f"{args.source}: no such file")
    if args.frames < 1 or args.repeats < 1:
        parser.error("--frames and --repeats must be >= 1")

    host = machine()  # before the load of the benchmark itself
    print(describe(host), flush=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        clip = trim(args.source, args.frames, workdir / "clip.mp4")
        frames = probe_video(clip).frame_count
        for size in args.sizes:
            results[str(size)] = bench_size(
                size, clip, frames, args.repeats, workdir, host["ceiling"]
            )
    seconds = time.perf_counter() - started
    load_after = os.getloadavg()
    for size in args.sizes:
        print_table(size, results[str(size)], frames, args.repeats)
    print(
        f"\n{seconds:.0f} s in all; 1-min load average {load_before[0]:.1f} before / "
        f"{load_after[0]:.1f} after on {os.cpu_count()} cores"
    )
    report = {
        "machine": host,
        "source": str(args.source),
        "frames": frames,
        "repeats": args.repeats,
        "seconds": seconds,
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        "ceiling_share": "steady frames/s x generator GFLOP per frame / ceiling GFLOP/s of the "
        "variant's dtype (benchmarks/common.py); none for the off-CPU rows",
        "sizes": results,
    }
    write_result(args.out, report)


if __name__ == "__main__":
    raise SystemExit(main())
