"""How much of the pose that MediaPipe reads in a model's output is contrast: the output of
composed (alpha) checkpoints sharpened by an unsharp mask, x + amount * (x - Gaussian(x,
sigma)), laid on one part of the image at a time, and scored on the pose (PCK@0.1, the share
of frames with a person, read mirrored) against what it costs the image (mask SSIM and
person-box SSIM, whole-crop SSIM and PSNR), like `ganmotion eval`.

A variant is WHERE:SIGMA@AMOUNT, WHERE one of
  image        the composed image
  person       the person layer only (after the checkpoint's inside blur), then composed
  background   the background only, then composed
  outlineD     the composed image within D px either side of the alpha's outline (>= 0.5)
and every model also gets the row as composed (`none`). The checkpoint's own
`compose.inside_blur` is applied as at inference, or the one `--inside-blur` gives.

    .venv/bin/python benchmarks/sharpen_probe.py --shards OUT/shards seed0=OUT/run \\
        seed1=OTHER/run --variants image:2@0.5 image:2@1 person:2@0.5 background:2@2 \\
        outline2:2@1 --inside-blur 1.5@6 --out sharpen.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from common import machine, write_result  # this folder

from ganmotion.errors import GanmotionError
from ganmotion.eval import (
    detect_poses,
    load_frames,
    parse_model,
    person_scores,
    pose_scores,
    reconstruction,
    skeletons_of,
)
from ganmotion.images import to_unit_range
from ganmotion.models.generator import INSIDE_BLUR_HELP, ComposeConfig, ComposedGenerator
from ganmotion.pose.detector import DetectorConfig, PoseDetector
from ganmotion.training.checkpoint import checkpoint_folder, load_generator

WHERE = ("image", "person", "background", "outline")


def parse_variant(spec: str) -> tuple[str, int, float, float]:
    """'outline3:2@1' -> ('outline', 3, 2.0, 1.0); the band is 0 for the other places."""
    try:
        where, rest = spec.split(":")
        sigma, amount = (float(v) for v in rest.split("@"))
        band = int(where[len("outline") :]) if where.startswith("outline") else 0
        where = "outline" if where.startswith("outline") else where
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected WHERE:SIGMA@AMOUNT") from None
    if where not in WHERE or sigma <= 0 or (where == "outline" and band < 1):
        raise argparse.ArgumentTypeError(
            f"{spec!r}: WHERE is {', '.join(WHERE)} (outlineD, D >= 1)"
        )
    return where, band, sigma, amount


def unsharp(images: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """(N, H, W, C) float -> the same sharpened by an unsharp mask of that Gaussian sigma."""
    return np.stack([x + amount * (x - cv2.GaussianBlur(x, (0, 0), sigma)) for x in images])


def outline_band(alpha: np.ndarray, band: int) -> np.ndarray:
    """(N, H, W) alpha -> (N, H, W, 1) float: 1 within `band` px (chessboard) either side of
    the outline of alpha >= 0.5."""
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    person = (alpha >= 0.5).astype(np.uint8)
    near = [cv2.dilate(p, kernel) - cv2.erode(p, kernel) for p in person]
    return np.stack(near).astype(np.float32)[..., None]


@torch.no_grad()
def layers(generator: ComposedGenerator, skeletons: np.ndarray, batch: int = 8):
    """The person (after the inside blur), alpha and background of a composed generator's
    output for skeletons (N, S, S, 3) uint8, as float arrays in [0, 255], channels last."""
    people, alphas = [], []
    for i in range(0, len(skeletons), batch):
        x = to_unit_range(torch.from_numpy(skeletons[i : i + batch]).permute(0, 3, 1, 2))
        person, alpha = generator.person_and_alpha(generator.generator(x))
        people.append(person)
        alphas.append(alpha)

    def to_image(t: torch.Tensor) -> np.ndarray:  # to_uint8_images, not yet rounded
        return ((t.clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).numpy()

    return (
        to_image(torch.cat(people)),
        torch.cat(alphas)[:, 0].numpy(),
        to_image(generator.background)[0],
    )


def sharpened(person, alpha, background, where, band, sigma, amount) -> np.ndarray:
    """The composed image (N, H, W, 3) uint8 with one part sharpened (where None: as is)."""
    a = alpha[..., None]
    if where == "person":
        person = unsharp(person, sigma, amount)
    if where == "background":
        background = unsharp(background[None], sigma, amount)[0]
    image = a * person + (1 - a) * background
    if where == "image":
        image = unsharp(image, sigma, amount)
    if where == "outline":
        image = image + outline_band(alpha, band) * (unsharp(image, sigma, amount) - image)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="LABEL=RUN", help="composed checkpoints")
    parser.add_argument("--shards", required=True, help="the frames and their driving poses")
    parser.add_argument("--split", default="val")
    parser.add_argument("--variants", nargs="+", type=parse_variant, default=[], metavar="V")
    parser.add_argument("--inside-blur", metavar="SIGMA[@DEPTH]", help=INSIDE_BLUR_HELP)
    parser.add_argument("--out", type=Path, help="JSON of every row")
    args = parser.parse_args()
    compose = ComposeConfig.parse(args.inside_blur)
    frames = load_frames(args.shards, args.split)
    detector = PoseDetector(DetectorConfig(static_image_mode=True))
    variants = [(None, 0, 0.0, 0.0), *args.variants]
    rows = {}
    print(f"{len(frames.keys)} frames of {args.shards} ({args.split})")
    print("| model | sharpened | PCK@0.1 | detected | read mirrored | mask SSIM | box SSIM | "
          "SSIM | PSNR dB |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, spec in (parse_model(m) for m in args.models):
        generator = load_generator(checkpoint_folder(Path(spec)), compose=compose)
        if not isinstance(generator, ComposedGenerator):
            raise GanmotionError(f"{spec}: not a composed (alpha) generator")
        person, alpha, background = layers(generator, skeletons_of(frames, generator.skeleton))
        for where, band, sigma, amount in variants:
            name = "none" if where is None else f"{where}{band or ''}:{sigma:g}@{amount:g}"
            image = sharpened(person, alpha, background, where, band, sigma, amount)
            scores = {
                **pose_scores(detect_poses(image, detector), frames),
                **reconstruction(image, frames.images),
                **person_scores(image, frames),
            }
            rows[f"{label}/{name}"] = scores
            print(f"| {label} | {name} | {scores['pck@0.1']:.3f} | {scores['detected']:.2f} | "
                  f"{scores['mirrored']:.3f} | {scores['mask_ssim']:.4f} | "
                  f"{scores['box_ssim']:.4f} | {scores['ssim']:.4f} | {scores['psnr']:.2f} |",
                  flush=True)  # fmt: skip
    detector.close()
    if len(args.models) > 1:
        print("\nmean over the models:")
        for name in dict.fromkeys(key.split("/", 1)[1] for key in rows):
            mean = {k: np.mean([r[k] for key, r in rows.items() if key.endswith(f"/{name}")])
                    for k in ("pck@0.1", "mask_ssim", "box_ssim", "ssim", "psnr")}  # fmt: skip
            print(f"  {name:22s} PCK@0.1 {mean['pck@0.1']:.3f}  mask SSIM {mean['mask_ssim']:.4f}  "
                  f"box SSIM {mean['box_ssim']:.4f}  SSIM {mean['ssim']:.4f}  "
                  f"PSNR {mean['psnr']:.2f}")  # fmt: skip
    if args.out:
        write_result(args.out, {"shards": args.shards, "rows": rows, "machine": machine(False)})


if __name__ == "__main__":
    main()
