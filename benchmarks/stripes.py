"""Where a generator's stripes come from: the person's fine texture, generated against real.

The 60-minute taichi2 model drew regular stripes down the suit (benchmarks/RESULTS.md).
Issue 13 asked whether they are the skeleton's limb colours leaking through the generator's
full-resolution skip connection. This measures, on the held-out frames, inside the real
person mask (eroded by 3 px, so that the outline's edge is left out):

    texture    the luminance less its Gaussian blur (sigma 2 px): the fine detail
    spectrum   the texture's power per spatial frequency, along rows (variation across x:
               vertical stripes) and along columns, generated / real per frequency bin;
               the bin where the generated excess peaks gives the stripes' period in px
    strokes    the texture's power within 3 px of the drawn skeleton strokes / elsewhere
               in the mask; a leak of the input's strokes raises it in the generated
               frames above the real frames' ratio (the limbs run down the middle of the
               body, where the real suit also has folds)
    leak       on the stroke pixels themselves, the image's fine colour (RGB less its blur,
               less its grey) regressed on the stroke's colour (its RGB less its grey):
               the share of a limb's colour that shows in the image there, about 0 for
               the real frames
    line       the fine luminance on the stroke pixels less that in a ring 2-4 px beside
               them, in grey levels: a stroke printed as a bright or dark line shows as a
               value away from the real frames'
    profile    the mean fine luminance (signed, grey levels) and its power at each whole
               distance 0-15 px from the nearest stroke: bands that run beside the limbs
               show as an oscillation over distance, their spacing as its period

    .venv/bin/python benchmarks/stripes.py --shards OUT/shards --model OUT/gen.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from common import machine, write_result  # this folder

from ganmotion.eval import generate, load_frames, skeletons_of
from ganmotion.runtime.backends import load_backend

ERODE_PX = 3
STROKE_REACH_PX = 3
BLUR_SIGMA = 2.0


def texture(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, S, S) float32: luminance less its Gaussian blur."""
    luma = np.stack([cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) for i in images]).astype(np.float32)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), BLUR_SIGMA) for f in luma])
    return luma - blurred


def spectrum(detail: np.ndarray, region: np.ndarray, axis: int) -> np.ndarray:
    """Power of `detail` (N, S, S) within `region` (N, S, S) bool per frequency along
    `axis` (2: along rows, 1: along columns), summed over frames and lines, per pixel."""
    power = np.abs(np.fft.rfft(detail * region, axis=axis)) ** 2
    other = 1 if axis == 2 else 2
    return power.sum(axis=(0, other)) / max(1, region.sum())


def colour_leak(images: np.ndarray, drawn: np.ndarray, on: np.ndarray) -> float:
    """How much of the skeleton strokes' colour shows in the images' fine colour on the
    stroke pixels `on` (within the region): the least-squares slope of one on the other."""
    rgb = images.astype(np.float32)
    fine = rgb - np.stack([cv2.GaussianBlur(i, (0, 0), BLUR_SIGMA) for i in rgb])
    fine -= fine.mean(axis=3, keepdims=True)
    stroke = drawn.astype(np.float32)
    stroke -= stroke.mean(axis=3, keepdims=True)
    return float((fine[on] * stroke[on]).sum() / (stroke[on] ** 2).sum())


def line_contrast(detail: np.ndarray, on: np.ndarray, beside: np.ndarray) -> float:
    """Mean fine luminance on the stroke pixels `on` less that on the pixels `beside` them."""
    return float(detail[on].mean() - detail[beside].mean())


def distance_profile(
    detail: np.ndarray, distance: np.ndarray, region: np.ndarray, reach: int = 16
) -> dict[str, list[float]]:
    """Mean fine luminance and its power at each whole distance (px) from the strokes."""
    means, powers = [], []
    for d in range(reach):
        band = region & (distance >= d) & (distance < d + 1)
        means.append(round(float(detail[band].mean()), 2) if band.any() else None)
        powers.append(round(float((detail[band] ** 2).mean()), 1) if band.any() else None)
    return {"mean": means, "power": powers}


def stroke_ratio(detail: np.ndarray, region: np.ndarray, strokes: np.ndarray) -> float:
    """Mean texture power near the strokes / elsewhere, within the region."""
    near, away = region & strokes, region & ~strokes
    return float((detail[near] ** 2).mean() / (detail[away] ** 2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--shards", required=True)
    parser.add_argument("--model", required=True, help="checkpoint folder or .onnx")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path, default=Path("stripes.json"))
    args = parser.parse_args()

    frames = load_frames(args.shards, args.split)
    if frames.masks is None:
        raise SystemExit(f"{args.shards}: the {args.split} frames have no person masks")
    backend = load_backend(args.model, shards=args.shards)
    drawn = skeletons_of(frames, backend.skeleton)
    generated, _ = generate(backend, drawn, frames.keypoints, batch=8)

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ERODE_PX + 1,) * 2)
    region = np.stack([cv2.erode(m, kernel) > 127 for m in frames.masks])
    # Every stroke mask below is one distance map's: on, beside (2-4 px) and near the strokes.
    off_stroke = np.stack([(d.max(axis=2) == 0).astype(np.uint8) for d in drawn])
    distance = np.stack([cv2.distanceTransform(o, cv2.DIST_L2, 5) for o in off_stroke])
    on, beside = region & (distance == 0), region & (distance >= 2) & (distance <= 4)
    strokes = distance <= STROKE_REACH_PX

    real, fake = texture(frames.images), texture(generated)
    size = frames.size
    result = {"shards": args.shards, "model": args.model, "frames": len(frames.keys)}
    for name, axis in (("across_x", 2), ("across_y", 1)):
        ratio = spectrum(fake, region, axis) / np.maximum(spectrum(real, region, axis), 1e-9)
        ratio[0] = 0  # the mean, not a texture
        peak = int(ratio[2:].argmax()) + 2  # periods below S/2 px: longer is shading
        result[name] = {
            "peak_bin": peak,
            "peak_period_px": round(size / peak, 2),
            "peak_excess": round(float(ratio[peak]), 2),
            "median_excess": round(float(np.median(ratio[2:])), 3),
            "excess_by_period_px": {
                f"{size / k:.1f}": round(float(ratio[k]), 2) for k in range(2, size // 2 + 1)
            },
        }
    result["texture_power"] = {
        "real": round(float((real[region] ** 2).mean()), 2),
        "generated": round(float((fake[region] ** 2).mean()), 2),
    }
    result["near_strokes_over_away"] = {
        "real": round(stroke_ratio(real, region, strokes), 3),
        "generated": round(stroke_ratio(fake, region, strokes), 3),
    }
    result["colour_leak"] = {
        "real": round(colour_leak(frames.images, drawn, on), 4),
        "generated": round(colour_leak(generated, drawn, on), 4),
    }
    result["line"] = {
        "real": round(line_contrast(real, on, beside), 3),
        "generated": round(line_contrast(fake, on, beside), 3),
    }
    result["profile_px"] = {
        "real": distance_profile(real, distance, region),
        "generated": distance_profile(fake, distance, region),
    }
    result["machine"] = machine(measure_ceiling=False)
    write_result(args.out, result)
    for name in ("across_x", "across_y"):
        r = result[name]
        print(f"{name}: generated/real power peaks at a period of {r['peak_period_px']} px "
              f"({r['peak_excess']}x; median {r['median_excess']}x)")  # fmt: skip
    for name in ("texture_power", "near_strokes_over_away", "colour_leak", "line"):
        print(f"{name}: real {result[name]['real']}, generated {result[name]['generated']}")
    print("px from a stroke | fine luminance real, generated | power real, generated")
    profile = result["profile_px"]
    for d in range(len(profile["real"]["mean"])):
        cells = [profile[k][q][d] for q in ("mean", "power") for k in ("real", "generated")]
        print(f"{d:4d} | " + " ".join("-" if c is None else f"{c:7.2f}" for c in cells))


if __name__ == "__main__":
    main()
