"""Evaluate generators on held-out frames of the target person, all on the same frames.

    python -m ganmotion.eval --model runs/gan --shards data/shards
    python -m ganmotion.eval --compare nearest vanilla=runs/vanilla gan=runs/gan \\
        --shards data/shards --out eval/

For every frame of the split (by default `val`, the contiguous held-out range) the skeleton
drawn from its keypoints goes in (in each model's own skeleton style, the one it was trained
on), and the output is compared with the real frame:

- reconstruction: PSNR, SSIM, L1 and, given a local AlexNet weights file, LPIPS, over the
  whole frame; and PSNR, SSIM and L1 of the person alone, twice: inside a padded box around
  the real frame's keypoints (compared at 128 px, as Everybody Dance Now's body crops) and
  over the real frame's person mask (where the shards carry masks). A moving camera's
  background cannot be predicted from a pose, so the person columns are what tell whether
  the person is right;
- the alpha of a model that has one (trained with generator.alpha): the IoU of where it puts
  the person (alpha > 0.5) with the real person mask (> 127), per frame, averaged (where the
  shards carry masks);
- pose accuracy: MediaPipe runs on each generated frame and its keypoints are compared with
  the keypoints that drove it (PCK at 0.05 and 0.1 torso heights, mean error in pixels,
  share of frames where a person with a visible torso is found, and the share of frames
  read mirrored: PCK@0.1 higher by 0.2 with left and right exchanged, a figure taken for one
  seen from behind). The same detector on the real frames gives the reference row: the best
  a generator can score with this detector;
- temporal stability: the mean frame-to-frame difference of the output over that of the
  real frames (flicker ratio, 1 = as steady as the real video) and the keypoint jitter of
  the output's detected poses.

Every report has a floor row, `mean`: the mean training crop as a constant image, which
any generator must beat (`--no-floor` leaves it out). It writes report.json, report.md (the
tables, also printed) and contact_sheet.png (rows: skeleton, real, each model) into --out;
models drawn in different styles get a skeleton row each, named after the first of them.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ganmotion import metrics
from ganmotion.data.manifest import load_manifest, shard_urls
from ganmotion.data.stream import decoded_samples
from ganmotion.errors import GanmotionError, command_line
from ganmotion.files import atomic_files, check_writable
from ganmotion.images import to_uint8_images, to_unit_range
from ganmotion.models.generator import INSIDE_BLUR_HELP, ComposeConfig
from ganmotion.pose.render import SkeletonStyle

# Frames are upscaled to at least this size before pose detection: MediaPipe's person
# detector misses people in small crops (it finds far fewer at 64 px than at 256 px).
DETECT_SIZE = 256


@dataclass
class Frames:
    """The frames of one split in order: images (N, S, S, 3) uint8, keypoints (N, 33, 3) in
    their pixels, `consecutive` (N - 1,) True where frame i + 1 follows frame i in the
    video (False across frames the preparation skipped), and the person masks (N, S, S)
    uint8 0/255, None unless every frame has one."""

    keys: list[str]
    images: np.ndarray
    keypoints: np.ndarray
    consecutive: np.ndarray
    masks: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.images.shape[1]


def load_frames(shards: str, split: str = "val", max_frames: int | None = None) -> Frames:
    """The samples of a split, sorted by (clip, frame); the first `max_frames` if given."""
    manifest, urls = load_manifest(shards), shard_urls(shards, split)
    counts = [shard.samples for shard in manifest.splits[split].shards]
    samples = list(decoded_samples(shards, split, urls, manifest.image_size, counts))
    if not samples:
        raise GanmotionError(f"{shards}: the {split} split has no samples")
    samples.sort(key=lambda s: _clip_frame(s.key))
    samples = samples[:max_frames]
    keys = [s.key for s in samples]
    order = [_clip_frame(k) for k in keys]
    consecutive = np.array(
        [a[0] == b[0] and b[1] == a[1] + 1 for a, b in zip(order, order[1:])], dtype=bool
    )
    masked = all(s.mask is not None for s in samples)
    return Frames(
        keys,
        np.stack([s.image for s in samples]),
        np.stack([s.keypoints for s in samples]),
        consecutive,
        np.stack([s.mask for s in samples]) if masked else None,
    )


def _clip_frame(key: str) -> tuple[str, int]:
    """`{clip}_{frame:06d}` -> (clip, frame)."""
    clip, _, frame = key.rpartition("_")
    return clip, int(frame) if frame.isdigit() else -1


def skeletons_of(frames: Frames, skeleton: SkeletonStyle) -> np.ndarray:
    """The skeleton images (N, S, S, 3) uint8 a model sees for the frames, drawn in its style
    (`backend.skeleton`), as its training stream drew them."""
    return np.stack([skeleton.render(k) for k in frames.keypoints])


def generate(
    backend, skeletons: np.ndarray, keypoints: np.ndarray, batch: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run a Backend over skeletons (N, S, S, 3) uint8 -> images (N, S, S, 3) uint8, and the
    alpha (N, S, S) float32 in [0, 1] of a model that has one (None otherwise)."""
    images, alphas = [], []
    for start in range(0, len(skeletons), batch):
        skeleton = torch.from_numpy(skeletons[start : start + batch]).permute(0, 3, 1, 2)
        skeleton = to_unit_range(skeleton)
        points = torch.from_numpy(keypoints[start : start + batch].astype(np.float32))
        if backend.has_alpha:
            image, alpha = backend.with_alpha(skeleton, points)
            alphas.append(alpha[:, 0].float().cpu().numpy())
        else:
            image = backend(skeleton, points)
        images.append(to_uint8_images(image))
    return np.concatenate(images), np.concatenate(alphas) if alphas else None


def mask_iou(alpha: np.ndarray, masks: np.ndarray) -> float:
    """Mean over frames of the IoU of alpha (N, S, S) in [0, 1] above 0.5 with the real person
    masks (N, S, S) uint8 above 127; a frame where both are empty counts 1 (they agree)."""
    predicted, real = alpha > 0.5, masks > 127
    union = (predicted | real).sum(axis=(1, 2))
    overlap = (predicted & real).sum(axis=(1, 2))
    return float(np.mean(np.where(union > 0, overlap / np.maximum(union, 1), 1.0)))


def detect_poses(images: np.ndarray, detector) -> np.ndarray:
    """Keypoints (N, 33, 3) found in images (N, S, S, 3), in their pixels; NaN rows where
    nobody is found. Frames are upscaled to DETECT_SIZE first."""
    size = images.shape[1]
    scale = max(1.0, DETECT_SIZE / size)
    found = np.full((len(images), 33, 3), np.nan, dtype=np.float32)
    for i, image in enumerate(images):
        if scale > 1:
            side = round(size * scale)
            image = cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)
        keypoints = detector(image)
        if keypoints is not None:
            # pixel centres: x_small + 0.5 = (x_big + 0.5) / scale
            keypoints[:, :2] = (keypoints[:, :2] + 0.5) / scale - 0.5
            found[i] = keypoints
    return found


def score(
    generated: np.ndarray,
    frames: Frames,
    detector=None,
    lpips: metrics.LPIPS | None = None,
    alpha: np.ndarray | None = None,
) -> dict:
    """Every metric of one generator's frames (and alpha (N, S, S), if it has one) against
    the real ones."""
    masked = alpha is not None and frames.masks is not None
    result = {
        **reconstruction(generated, frames.images),
        "lpips": float(lpips(generated, frames.images).mean()) if lpips is not None else None,
        **person_scores(generated, frames),
        "mask_iou": mask_iou(alpha, frames.masks) if masked else None,
        "flicker": metrics.frame_difference(generated, frames.consecutive)
        / metrics.frame_difference(frames.images, frames.consecutive),
    }
    if detector is not None:
        result.update(pose_scores(detect_poses(generated, detector), frames))
    return result


def reconstruction(
    generated: np.ndarray, real: np.ndarray, weights: np.ndarray | None = None, prefix: str = ""
) -> dict:
    """PSNR (dB), SSIM and L1 of image pairs (N, H, W, 3) uint8, averaged over the frames;
    with `weights` (N, H, W), over the weighted pixels. Keys get `prefix`."""
    return {
        f"{prefix}psnr": metrics.mean_psnr(metrics.psnr(generated, real, weights)),
        f"{prefix}ssim": float(np.nanmean(metrics.ssim(generated, real, weights=weights))),
        f"{prefix}l1": float(np.nanmean(metrics.l1(generated, real, weights))),
    }


def person_scores(generated: np.ndarray, frames: Frames) -> dict:
    """Reconstruction of the person alone: in the padded box of the real keypoints (both
    images cut to it and compared at metrics.PERSON_CROP_SIZE), and over the real person mask
    (None where the shards have no masks)."""
    boxes = metrics.person_boxes(frames.keypoints, frames.size)
    scores = reconstruction(
        metrics.crop_boxes(generated, boxes), metrics.crop_boxes(frames.images, boxes), None, "box_"
    )
    if frames.masks is None:
        return {**scores, "mask_psnr": None, "mask_ssim": None, "mask_l1": None}
    return {**scores, **reconstruction(generated, frames.images, frames.masks, "mask_")}


def pose_scores(detected: np.ndarray, frames: Frames) -> dict:
    scores = metrics.pose_accuracy(detected, frames.keypoints)
    del scores["frames"]
    scores["mirrored"] = metrics.mirrored_share(detected, frames.keypoints)
    # jitter only across consecutive frames: a gap would read as a jump
    runs = np.split(detected, np.flatnonzero(~frames.consecutive) + 1)
    jitters = [metrics.keypoint_jitter(r) for r in runs if len(r) >= 3]
    scores["jitter"] = float(np.nanmean(jitters)) if np.isfinite(jitters).any() else math.nan
    return scores


# ----------------------------------------------------------------------- the report

RECONSTRUCTION_COLUMNS = (  # (key, heading, format)
    ("psnr", "PSNR dB ↑", "{:.2f}"),
    ("ssim", "SSIM ↑", "{:.4f}"),
    ("l1", "L1 ↓", "{:.4f}"),
    ("lpips", "LPIPS ↓", "{:.4f}"),
    ("box_psnr", "person box PSNR ↑", "{:.2f}"),
    ("box_ssim", "box SSIM ↑", "{:.4f}"),
    ("box_l1", "box L1 ↓", "{:.4f}"),
    ("mask_psnr", "person mask PSNR ↑", "{:.2f}"),
    ("mask_ssim", "mask SSIM ↑", "{:.4f}"),
    ("mask_l1", "mask L1 ↓", "{:.4f}"),
    ("mask_iou", "alpha mask IoU ↑", "{:.3f}"),
)
POSE_COLUMNS = (
    ("pck@0.05", "PCK@0.05 ↑", "{:.3f}"),
    ("pck@0.1", "PCK@0.1 ↑", "{:.3f}"),
    ("error_px", "pose error px ↓", "{:.2f}"),
    ("detected", "detected ↑", "{:.3f}"),
    ("mirrored", "read mirrored ↓", "{:.3f}"),
    ("flicker", "flicker (real = 1)", "{:.3f}"),
    ("jitter", "jitter px/frame² ↓", "{:.2f}"),
)


def markdown_table(report: dict) -> str:
    """The report's models as Markdown tables: reconstruction (whole frame, person box,
    person mask, and the alpha's mask IoU where a model has alpha), then pose and time (with
    the real frames' reference row)."""
    rows = dict(report["models"])
    tables = [_table(rows, RECONSTRUCTION_COLUMNS)]
    if report.get("real"):
        rows["real frames (reference)"] = report["real"]
    tables.append(_table(rows, POSE_COLUMNS))
    return "\n\n".join(t for t in tables if t)


def _table(rows: dict[str, dict], columns: tuple) -> str:
    shown = [c for c in columns if any(r.get(c[0]) is not None for r in rows.values())]
    if not shown:
        return ""
    lines = [
        "| model | " + " | ".join(h for _, h, _ in shown) + " |",
        "| --- |" + " ---: |" * len(shown),
    ]
    for name, row in rows.items():
        cells = [_cell(row.get(key), fmt) for key, _, fmt in shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value, fmt: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return fmt.format(value)


def contact_sheet(
    frames: Frames,
    skeletons: dict[str, np.ndarray],
    outputs: dict[str, np.ndarray],
    columns: int = 8,
) -> np.ndarray:
    """An RGB image: one row each for every skeleton style, real and every model, `columns`
    frames spread over the split, a label at the left of each row."""
    picks = np.linspace(0, len(frames.keys) - 1, min(columns, len(frames.keys))).round()
    picks = picks.astype(int)
    size = frames.size
    rows = {**skeletons, "real": frames.images, **outputs}
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    longest = max(cv2.getTextSize(name, font, scale, 1)[0][0] for name in rows)
    label_width = max(120, longest + 12)
    sheet = np.full((size * len(rows), label_width + size * len(picks), 3), 255, np.uint8)
    for r, (name, images) in enumerate(rows.items()):
        top = r * size
        cv2.putText(sheet, name, (6, top + size // 2 + 5), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        for c, index in enumerate(picks):
            left = label_width + c * size
            sheet[top : top + size, left : left + size] = images[index]
    return sheet


# ----------------------------------------------------------------------- evaluation


def parse_model(spec: str) -> tuple[str, str]:
    """`label=path`, or a path (labelled by its folder or file name), or `nearest`."""
    if "=" in spec:
        label, _, path = spec.partition("=")
        if not label or not path:
            raise GanmotionError(f"--compare {spec!r}: expected LABEL=MODEL")
        return label, path
    if spec in ("nearest", "mean"):
        return spec, spec
    path = Path(spec)
    name = path.stem if path.suffix == ".onnx" else path.name
    if path.parent.name == "checkpoints":  # RUN/checkpoints/step-N: say which run
        name = f"{path.parent.parent.name}/{path.name}"
    return name, spec


def evaluate(
    args: argparse.Namespace,
) -> tuple[dict, dict[str, np.ndarray], Frames, dict[str, np.ndarray]]:
    """The report, each model's output frames, the frames and the skeletons drawn from them:
    {"skeleton": images} when every model reads one style, else {"skeleton (label)": images}
    for each style, labelled by the first model drawn in it."""
    from ganmotion.runtime.backends import load_backend

    models = [parse_model(s) for s in ([args.model] if args.model else []) + (args.compare or [])]
    if not models:
        raise GanmotionError("nothing to evaluate: give --model or --compare")
    if not args.no_floor and "mean" not in [spec for _, spec in models]:
        models.append(("mean", "mean"))  # the floor: a constant image, the mean training crop
    labels = [label for label, _ in models]
    if len(set(labels)) != len(labels):
        raise GanmotionError(f"two models with one label in {labels}: use LABEL=MODEL")
    frames = load_frames(args.shards, args.split, args.max_frames)
    started = time.perf_counter()
    lpips = None
    if args.lpips_backbone is not None:
        lpips = metrics.LPIPS(args.lpips_backbone)
    else:
        print("LPIPS skipped: no --lpips-backbone (AlexNet weights; nothing is downloaded)")
    detector = None
    if not args.no_pose:
        from ganmotion.pose.detector import DetectorConfig, PoseDetector

        detector = PoseDetector(DetectorConfig(static_image_mode=True))
    # Each style's first model and the skeletons drawn in it: models trained alike share them.
    drawn: dict[SkeletonStyle, tuple[str, np.ndarray]] = {}
    report = {
        "shards": str(args.shards),
        "split": args.split,
        "frames": len(frames.keys),
        "first_frame": frames.keys[0],
        "last_frame": frames.keys[-1],
        "image_size": frames.size,
        "models": {},
    }
    outputs = {}
    torch_options = {"compose": ComposeConfig.parse(args.inside_blur)}
    if args.inside_blur is not None:
        report["inside_blur"] = args.inside_blur
    shards = args.target_shards or args.shards
    for label, spec in tqdm(models, desc="models", unit="model", disable=None):
        backend = load_backend(spec, shards=shards, torch_options=torch_options)
        if backend.size != frames.size:
            raise GanmotionError(
                f"{spec}: generates {backend.size} px images, the shards at {args.shards} "
                f"hold {frames.size} px frames"
            )
        style = backend.skeleton
        if style not in drawn:
            drawn[style] = label, skeletons_of(frames, style)
        outputs[label], alpha = generate(backend, drawn[style][1], frames.keypoints, args.batch)
        scores = score(outputs[label], frames, detector, lpips, alpha)
        report["models"][label] = {
            "model": spec,
            "weights": _weights(spec),
            "skeleton": style.to_dict(),
            **scores,
        }
    if detector is not None:
        report["real"] = pose_scores(detect_poses(frames.images, detector), frames)
        report["real"]["flicker"] = 1.0
        detector.close()
    report["seconds"] = round(time.perf_counter() - started, 1)
    if len(drawn) == 1:
        ((_, images),) = drawn.values()
        return report, outputs, frames, {"skeleton": images}
    return report, outputs, frames, {f"skeleton ({first})": s for first, s in drawn.values()}


def _weights(spec: str) -> str:
    """What a model spec ran: a run folder or RUN/best resolved to its checkpoint folder."""
    from ganmotion.training.checkpoint import checkpoint_folder

    path = Path(spec)
    return str(checkpoint_folder(path).resolve()) if path.is_dir() else spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganmotion eval",
        description="Measure generators on held-out frames of the target: PSNR, SSIM, L1, "
        "LPIPS, pose accuracy (MediaPipe on the output), flicker.",
    )
    parser.add_argument(
        "--model", help="a checkpoint or run folder, a .onnx, a .plan, nearest or mean"
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="[LABEL=]MODEL",
        help="several models on the same frames, side by side (e.g. nearest vanilla=runs/v)",
    )
    parser.add_argument("--shards", required=True, help="the target's shards (folder or URL)")
    parser.add_argument("--split", default="val", help="split to evaluate on [val]")
    parser.add_argument(
        "--target-shards",
        help="training shards for the nearest baseline's lookup [--shards]: set it when "
        "--shards holds other frames of the person (e.g. unseen poses)",
    )
    parser.add_argument("--max-frames", type=int, help="the first N frames of the split only")
    parser.add_argument("--batch", type=int, default=8, help="frames per generator call [8]")
    parser.add_argument(
        "--lpips-backbone",
        type=Path,
        help="torchvision AlexNet weights (.pth/.safetensors) for LPIPS; skipped without",
    )
    parser.add_argument("--no-pose", action="store_true", help="skip pose accuracy (MediaPipe)")
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="leave out the floor row `mean` (the mean training crop as a constant image)",
    )
    parser.add_argument("--sheet-frames", type=int, default=8, help="contact sheet columns [8]")
    parser.add_argument(
        "--inside-blur", metavar="SIGMA[@DEPTH]", help=INSIDE_BLUR_HELP + " (every checkpoint)"
    )
    parser.add_argument("--out", type=Path, default=Path("eval_out"), help="folder [eval_out]")
    return parser


def run(args: argparse.Namespace) -> dict:
    if args.max_frames is not None and args.max_frames < 2:
        raise GanmotionError(f"--max-frames must be >= 2, got {args.max_frames}")
    if args.batch < 1:
        raise GanmotionError(f"--batch must be >= 1, got {args.batch}")
    if args.sheet_frames < 1:
        raise GanmotionError(f"--sheet-frames must be >= 1, got {args.sheet_frames}")
    if not args.out.parent.is_dir():
        raise GanmotionError(f"{args.out}: directory {args.out.parent} does not exist")
    check_writable(args.out, folder=True)  # before the minutes of evaluation
    report, outputs, frames, skeletons = evaluate(args)
    table = markdown_table(report)
    sheet = contact_sheet(frames, skeletons, outputs, args.sheet_frames)
    header = (
        f"{report['frames']} frames of {report['shards']} ({report['split']}: "
        f"{report['first_frame']} .. {report['last_frame']}), {report['image_size']} px"
    )
    names = ("report.json", "report.md", "contact_sheet.png")
    with atomic_files(args.out, *names) as tmp:  # all three, or none (a full disk)
        tmp["report.json"].write_text(json.dumps(report, indent=2))
        tmp["report.md"].write_text(f"{header}\n\n{table}\n")
        if not cv2.imwrite(str(tmp["contact_sheet.png"]), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            raise GanmotionError(f"{args.out / 'contact_sheet.png'}: cannot write the image")
    print(f"{header}\n\n{table}\n\nwrote {args.out}/report.json, report.md, contact_sheet.png")
    return report


@command_line
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
