"""`python infer/video.py` / `ganmotion infer`: make the target person perform a video's motion.

    python infer/video.py --source dance.mp4 --model gen.onnx --out out.mp4 --batch 16
    python infer/video.py --source dance.mp4 --model runs/gan/checkpoints/step-002000 \\
        --out out.mp4 --side-by-side
    python infer/video.py --source dance.mp4 --model nearest --target-shards data/shards \\
        --out nearest.mp4
    python infer/video.py --source dance.mp4 --model gen.onnx --out beach.mp4 \\
        --background beach.jpg          # a model with alpha: the person on another background
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganmotion.errors import GanmotionError, command_line
from ganmotion.files import atomic_write, check_writable
from ganmotion.models.generator import INSIDE_BLUR_HELP, ComposeConfig
from ganmotion.pose.filters import OneEuroConfig
from ganmotion.pose.retarget import MOTIONS
from ganmotion.pose.schema import load_keypoints
from ganmotion.video import MIN_STORED_SHARE, X264_PRESETS, check_complete

BACKEND_CHOICES = ("torch", "onnxruntime", "tensorrt")
PRECISION_CHOICES = ("fp32", "bf16", "fp16")  # TorchBackend.PRECISIONS, without importing torch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infer/video.py",
        description="Run a generator over a source video: decode, pose, smooth, retarget, "
        "render, generate in batches and encode, overlapped. Writes OUT atomically and prints "
        "a summary (frames, frames without pose, frames/s per stage and end to end).",
    )
    parser.add_argument("--source", required=True, help="the video whose motion is transferred")
    parser.add_argument(
        "--model",
        required=True,
        help="a checkpoint folder (torch), gen.onnx (onnxruntime), gen.plan (tensorrt), or "
        "'nearest' (the seed's nearest-neighbour baseline over --target-shards)",
    )
    parser.add_argument("--out", required=True, type=Path, help="the .mp4 to write (H.264)")
    parser.add_argument(
        "--batch",
        type=int,
        help="frames per generator call (default: 16 on a GPU; 1 on a CPU, where bigger "
        "batches measured slower per frame)",
    )
    parser.add_argument(
        "--backend", choices=BACKEND_CHOICES, help="confirm the backend (chosen by file type)"
    )
    parser.add_argument(
        "--device", help="torch/tensorrt device, e.g. cuda:1 (default: cuda if any)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        help="torch backend: run the generator under autocast in bf16/fp16 (default fp32)",
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="torch backend: NHWC memory layout"
    )
    parser.add_argument(
        "--compile",
        nargs="?",
        const="default",
        metavar="MODE",
        help="torch backend: torch.compile the generator (compiles in the first batch); MODE "
        "default, reduce-overhead or max-autotune (on a GPU both replay CUDA graphs)",
    )
    parser.add_argument(
        "--target-shards",
        help="the target's training shards: its body measurements for retargeting (default: "
        "from the checkpoint's config or the model's sidecar), and the nearest baseline's images",
    )
    parser.add_argument(
        "--no-retarget",
        action="store_true",
        help="keep the source body's proportions (framed around it) instead of mapping it onto "
        "the target's height and position",
    )
    parser.add_argument(
        "--full-frame",
        action="store_true",
        help="write the target's whole frame at its resolution, the person laid into its room "
        "(the plate of a static camera, or --background) where its body stood; needs a model "
        "with alpha and the target's shards",
    )
    parser.add_argument(
        "--motion",
        choices=MOTIONS,
        default="keep",
        help="keep: the source's moves across the room, as far as the output holds the whole "
        "body (the default); center: the person held where the target stands",
    )
    parser.add_argument(
        "--side-by-side", action="store_true", help="write source | skeleton | generated"
    )
    parser.add_argument(
        "--background",
        type=Path,
        help="a model with alpha: put the person on this image instead of the room it was "
        "trained in; the image becomes the crop's background (scaled to cover the model's "
        "square, centre cut)",
    )
    parser.add_argument(
        "--pose-workers", type=int, default=1, help="MediaPipe processes (1: tracking mode)"
    )
    parser.add_argument(
        "--poses", type=Path, help="use these keypoints (.npy, (N, 33, 3)) instead of detecting"
    )
    parser.add_argument(
        "--save-poses", type=Path, help="also write the detected keypoints (.npy) for --poses"
    )
    smoothing = OneEuroConfig()
    parser.add_argument("--no-smoothing", action="store_true", help="turn the One-Euro filter off")
    parser.add_argument(
        "--min-cutoff",
        type=float,
        default=smoothing.min_cutoff,
        help=f"One-Euro minimum cutoff in Hz: lower is smoother ({smoothing.min_cutoff})",
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=smoothing.beta,
        help=f"One-Euro speed coefficient: higher lags less in fast moves ({smoothing.beta})",
    )
    parser.add_argument(
        "--max-gap",
        type=float,
        default=smoothing.max_gap_s,
        help="seconds a lost pose is held before frames are marked 'no pose' "
        f"({smoothing.max_gap_s})",
    )
    parser.add_argument(
        "--crf",
        type=int,
        default=18,
        help="H.264 quality: 0 (lossless) to 51; lower is better and bigger, 18 looks "
        "lossless, 23 is libx264's default (18)",
    )
    parser.add_argument(
        "--preset",
        default="veryfast",
        help=f"libx264 speed, one of {', '.join(X264_PRESETS)}: slower makes a smaller file "
        "at the same --crf (veryfast)",
    )
    parser.add_argument(
        "--no-audio",
        action="store_true",
        help="leave the source's sound out (by default it is copied into the output, or "
        "transcoded to AAC where an mp4 cannot carry it, and cut to the output's length)",
    )
    parser.add_argument(
        "--summary-json", type=Path, help="also write the summary as JSON to this file"
    )
    parser.add_argument(
        "--accept-truncated",
        action="store_true",
        help="run on a source that holds fewer frames than its container declares (cut "
        f"short: refused below {MIN_STORED_SHARE:.0%}% by default)",  # %%: argparse %-formats help
    )
    parser.add_argument("--inside-blur", metavar="SIGMA[@DEPTH]", help=INSIDE_BLUR_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace):
    from ganmotion.runtime.backends import load_backend
    from ganmotion.runtime.background import (
        OnBackground,
        fit_background,
        full_frame_of,
        read_image,
    )
    from ganmotion.runtime.pipeline import RunnerConfig, VideoPipeline
    from ganmotion.runtime.target import resolve_target, target_entry

    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise GanmotionError(f"{out}: the output must be an .mp4 file")
    # The flags first (RunnerConfig checks them); --batch's default waits for the backend.
    config = RunnerConfig(
        batch_size=1 if args.batch is None else args.batch,
        pose_workers=args.pose_workers,
        smoothing=OneEuroConfig(
            min_cutoff=args.min_cutoff,
            beta=args.beta,
            max_gap_s=args.max_gap,
            enabled=not args.no_smoothing,
        ),
        retarget=not args.no_retarget,
        motion=args.motion,
        side_by_side=args.side_by_side,
        crf=args.crf,
        preset=args.preset,
        audio=not args.no_audio,
    )
    # Every output before any work: the video takes minutes, and main writes the summary after.
    for path in (out, args.save_poses, args.summary_json):
        if path is not None:
            check_writable(path)
    stored = check_complete(args.source, args.accept_truncated)
    poses = load_keypoints(args.poses) if args.poses is not None else None
    background = read_image(args.background) if args.background is not None else None
    torch_options = {
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "compose": ComposeConfig.parse(args.inside_blur),
    }
    backend = load_backend(args.model, args.backend, args.device, args.target_shards, torch_options)
    if args.batch is None:
        config = replace(config, batch_size=default_batch(backend))
    full_frame = None
    if args.full_frame:  # a --background is the room of the whole frame
        shards = target_entry(args.model, args.target_shards)["shards"]
        full_frame = full_frame_of(shards, backend, args.model, background)
    elif background is not None:
        backend = OnBackground(backend, fit_background(background, backend.size), args.model)
    target = None
    if config.retarget:
        target = resolve_target(args.model, args.target_shards, backend.size)
    summary = VideoPipeline(backend, config, target, full_frame).run(
        args.source, out, poses=poses, progress=not args.quiet
    )
    summary.frames_declared = stored.declared
    if args.save_poses is not None:
        save_poses(np.stack(summary.poses), Path(args.save_poses))
    return summary


def default_batch(backend) -> int:
    """Frames per generator call when --batch is not given: 16 where the generator runs on a
    GPU; 1 on a CPU, where a batch of 8 ran 0.6x as fast per frame as a batch of 1 (cache
    bound convolutions; benchmarks/RESULTS.md)."""
    gpu_providers = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
    on_gpu = backend.device.type == "cuda" or getattr(backend, "provider", "") in gpu_providers
    return 16 if on_gpu else 1


def save_poses(poses: np.ndarray, path: Path) -> None:
    with atomic_write(path) as tmp, open(tmp, "wb") as file:
        np.save(file, poses)


@command_line
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary = run(args)
    for line in summary.lines():
        print(line)
    if args.summary_json is not None:
        with atomic_write(args.summary_json) as tmp:
            tmp.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
