"""Where inside the person a model wins or loses its mask SSIM: the SSIM map of `ganmotion
eval` over the real person mask, split by each pixel's distance from the mask's edge.

On the held-out frames, for each model and the mean training crop (eval's floor), per band
of distance inside the real mask (px at the shards' size): the band's share of the mask;
the SSIM there (the mean of the map over the band's pixels: over all bands, the mask SSIM
of `ganmotion eval`); the texture the image has there and the real frame has, as the
standard deviation within the SSIM window (grey levels, the mean over channels); and, for
a model with an alpha, the share of the band where its alpha is below 0.5 (the room shows
through). SSIM prefers a flat patch to a texture in the wrong place: a band where the
mean image's flat colour beats the model is one where the model's texture does not match.

With --blur, each model's frames and the real frames are also scored blurred by Gaussians
of those sigmas; with --pose, each row also gets the share of frames in which MediaPipe
finds a person, and PCK@0.1: what a smoother image gains in SSIM, and what it costs the
pose. With --inside D, the blur is laid only where a pixel lies more than D px inside the
person (its own alpha >= 0.5; the real mask for the real frames and a model without alpha),
over a 2 px ramp: whether the detector needs the texture deep inside the person or only
that at its edge.

    .venv/bin/python benchmarks/mask_ssim_depth.py --shards OUT/shards \\
        shipped=OUT/run other=OTHER/gen.onnx --blur 1 2 --pose --out depth.json
    .venv/bin/python benchmarks/mask_ssim_depth.py --shards OUT/shards shipped=OUT/run \\
        --blur 1 2 --inside 6 --pose --out depth_inside.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from common import machine, write_result  # this folder

from ganmotion import metrics
from ganmotion.eval import (
    detect_poses,
    generate,
    load_frames,
    parse_model,
    pose_scores,
    skeletons_of,
)
from ganmotion.runtime.backends import load_backend

BANDS_PX = ((0, 2), (2, 4), (4, 7), (7, 12), (12, None))  # (from, to]: distance to the edge
RAMP_PX = 2  # --inside: the blur's weight rises from 0 to 1 over this many px inward


def depth_inside(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> float32: each pixel's distance to the nearest pixel outside."""
    return np.stack([cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5) for m in masks])


def inside_weight(person: np.ndarray, inside: float) -> np.ndarray:
    """(N, H, W) bool -> (N, H, W, 1): 0 up to `inside` px into the person, rising to 1 over
    RAMP_PX: where `blurred` lays its blur."""
    return np.clip((depth_inside(person) - inside) / RAMP_PX, 0, 1)[..., None]


def blurred(images: np.ndarray, sigma: float, weight: np.ndarray | None = None) -> np.ndarray:
    """uint8 (N, H, W, 3) blurred by a Gaussian of `sigma` px; with `weight` (`inside_weight`)
    only that much at each pixel."""
    smooth = np.stack([cv2.GaussianBlur(image, (0, 0), sigma) for image in images])
    if weight is None:
        return smooth
    return np.round(weight * smooth + (1 - weight) * images).astype(np.uint8)


class Bands:
    """The real person mask of each held-out frame cut into BANDS_PX by distance from its edge,
    on the positions of the SSIM map (half a window in from the border)."""

    def __init__(self, masks: np.ndarray):
        edge = metrics.SSIM_WINDOW // 2
        inside = masks > 127
        distance = depth_inside(inside)
        self.edge = edge
        self.inside, distance = self.on_map(inside), self.on_map(distance)
        self.masks = [
            self.inside & (distance > lo) & (distance <= (hi or np.inf)) for lo, hi in BANDS_PX
        ]
        self.names = [f"{lo}-{hi}" if hi else f"{lo}+" for lo, hi in BANDS_PX]

    def on_map(self, values: np.ndarray) -> np.ndarray:
        """(N, H, W) per pixel -> (N, H - 10, W - 10) on the map's positions."""
        return values[:, self.edge : -self.edge, self.edge : -self.edge]

    def share(self) -> list[float]:
        return [round(float(b.sum() / self.inside.sum()), 3) for b in self.masks]

    def means(self, values: np.ndarray, digits: int) -> list[float]:
        """The mean of a map (N, H - 10, W - 10) over each band."""
        return [round(float(values[b].mean()), digits) for b in self.masks]

    def scores(self, images: np.ndarray, real: np.ndarray, masks: np.ndarray) -> dict:
        # as `ganmotion eval`: each frame's mean over its mask, a frame without one left out
        per_frame = metrics.ssim(images, real, weights=masks)
        return {
            "ssim": self.means(metrics.ssim_map(images, real).numpy(), 4),
            "std": self.means(metrics.window_std(images).numpy(), 2),
            "mask_ssim": round(float(np.nanmean(per_frame)), 4),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("models", nargs="+", metavar="LABEL=MODEL", help="as ganmotion eval")
    parser.add_argument("--shards", required=True, help="the frames, their poses and masks")
    parser.add_argument("--split", default="val")
    parser.add_argument(
        "--blur",
        type=float,
        nargs="*",
        default=[],
        metavar="SIGMA",
        help="also score each model's frames blurred by these Gaussians (px)",
    )
    parser.add_argument(
        "--inside",
        type=float,
        default=None,
        metavar="PX",
        help="lay the --blur only deeper than PX px inside the person (its alpha >= 0.5)",
    )
    parser.add_argument(
        "--pose",
        action="store_true",
        help="also the share of frames MediaPipe finds a person in, and PCK@0.1",
    )
    parser.add_argument("--out", type=Path, default=Path("mask_ssim_depth.json"))
    args = parser.parse_args()

    frames = load_frames(args.shards, args.split)
    if frames.masks is None:
        raise SystemExit(f"{args.shards}: the {args.split} frames have no person masks")
    bands = Bands(frames.masks)
    detector = None
    if args.pose:
        from ganmotion.pose.detector import DetectorConfig, PoseDetector

        detector = PoseDetector(DetectorConfig(static_image_mode=True))
    models = [parse_model(m) for m in args.models]
    if "mean" not in [spec for _, spec in models]:
        models.append(("mean", "mean"))
    result = {"shards": args.shards, "split": args.split, "frames": len(frames.keys)}
    result["bands_px"], result["share_of_mask"] = bands.names, bands.share()
    result["real_std"] = bands.means(metrics.window_std(frames.images).numpy(), 2)
    result["rows"] = {}
    print(f"{len(frames.keys)} frames of {args.shards} ({args.split}), {frames.size} px")
    heads = [f"{n} px ({s:.0%})" for n, s in zip(bands.names, result["share_of_mask"])]
    heads += ["mask SSIM"] + (["detected", "PCK@0.1"] if detector else [])
    print("| model | " + " | ".join(heads) + " |\n| --- |" + " ---: |" * len(heads))
    if args.blur:  # what the blur alone does to SSIM and to the detector: the real frames
        models.append(("real", "real"))
    for label, spec in models:
        if spec == "real":
            generated, alpha = frames.images, None
        else:
            backend = load_backend(spec, shards=args.shards)
            skeletons = skeletons_of(frames, backend.skeleton)
            generated, alpha = generate(backend, skeletons, frames.keypoints, batch=8)
        blurs = [0.0] + (args.blur if spec != "mean" else [])
        weight, where = None, ""
        if args.inside is not None and len(blurs) > 1:
            person = frames.masks > 127 if alpha is None else alpha >= 0.5
            weight, where = inside_weight(person, args.inside), f" deeper than {args.inside:g} px"
        for sigma in blurs:
            images = generated
            if sigma:
                images = blurred(generated, sigma, weight)
            row = f"{label}, blurred {sigma:g} px{where}" if sigma else label
            scores = {
                "model": spec,
                "blur_sigma_px": sigma,
                **bands.scores(images, frames.images, frames.masks),
            }
            if sigma and weight is not None:
                scores["blur_deeper_than_px"] = args.inside
            cells = [f"{s:.3f} (std {d:.1f})" for s, d in zip(scores["ssim"], scores["std"])]
            cells.append(f"{scores['mask_ssim']:.4f}")
            if detector is not None:
                pose = pose_scores(detect_poses(images, detector), frames)
                scores.update(detected=pose["detected"], pck=pose["pck@0.1"])
                cells += [f"{pose['detected']:.3f}", f"{pose['pck@0.1']:.3f}"]
            result["rows"][row] = scores
            print(f"| {row} | " + " | ".join(cells) + " |")
        if alpha is not None:
            below = bands.means(bands.on_map(alpha) < 0.5, 3)
            result["rows"][label]["alpha_below_half"] = below
            print(f"| {label}: alpha < 0.5 | " + " | ".join(f"{b:.0%}" for b in below) + " |")
    print("| real std | " + " | ".join(f"{d:.1f}" for d in result["real_std"]) + " |")
    if detector is not None:
        detector.close()
    result["machine"] = machine(measure_ceiling=False)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
