"""How much of a composing model's error is its alpha? Lays each model's person layer over
its background twice, with its own alpha and with the real person mask as the alpha, and
scores both on the held-out frames: the share of the real mask where the alpha is at least
0.5; PSNR over the full frame (per frame, as `ganmotion eval`), the room (outside the real
mask) and the person (inside it), these two pooled over the pixels; and the person box and
mask SSIM of `ganmotion eval`.

On a moving camera the background is the mean room, so where the alpha misses the person
the mean room shows through: the gap between the two lines is what a perfect alpha would
give, and what it would not.

    .venv/bin/python benchmarks/alpha_coverage.py --shards abl/taichi \\
        head_weight=abl/taichi_head_weight mask_30=abl/taichi_mask_30
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ganmotion import metrics
from ganmotion.eval import load_frames, parse_model, person_scores, skeletons_of
from ganmotion.images import to_uint8_images, to_unit_range
from ganmotion.models.generator import ComposedGenerator
from ganmotion.training.checkpoint import checkpoint_folder, load_generator

BATCH = 8


def pooled_psnr(squared_error: np.ndarray) -> float:
    """PSNR in dB of squared errors (8-bit levels) pooled over all their pixels."""
    return float(10 * np.log10(255**2 / squared_error.mean()))


@torch.no_grad()
def person_layer(generator: ComposedGenerator, skeleton: torch.Tensor):
    """The person layer (N, 3, S, S) and alpha (N, 1, S, S) before composition."""
    batches = [generator.generator(skeleton[i : i + BATCH]) for i in range(0, len(skeleton), BATCH)]
    output = torch.cat(batches)
    return output[:, :-1], output[:, -1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="LABEL=RUN", help="run or checkpoint folders")
    parser.add_argument("--shards", required=True, help="the frames, their poses and masks")
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    frames = load_frames(args.shards, args.split)
    if frames.masks is None:
        parser.error(f"{args.shards}: the {args.split} split has no person masks")
    mask = torch.from_numpy(frames.masks[:, None] / 255.0).float()
    person = np.broadcast_to(frames.masks[..., None] > 127, frames.images.shape)
    real = frames.images.astype(np.float64)
    print(f"{len(frames.keys)} frames of {args.shards} ({args.split}), {frames.size} px")
    columns = ["mask covered", "PSNR dB", "room PSNR", "person PSNR", "box SSIM", "mask SSIM"]
    print("| model | alpha | " + " | ".join(columns) + " |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, run in (parse_model(m) for m in args.models):
        generator = load_generator(checkpoint_folder(run))
        if not isinstance(generator, ComposedGenerator):
            parser.error(f"{run}: its generator has no alpha")
        skeleton = torch.from_numpy(skeletons_of(frames, generator.skeleton))
        skeleton = to_unit_range(skeleton.permute(0, 3, 1, 2))
        layer, alpha = person_layer(generator, skeleton)
        for name, cover in (("its own", alpha), ("the real mask", mask)):
            image = to_uint8_images(cover * layer + (1 - cover) * generator.background)
            error = (image.astype(np.float64) - real) ** 2
            full = metrics.mean_psnr(metrics.psnr(image, frames.images))  # as ganmotion eval
            scores = person_scores(image, frames)
            covered = (cover[mask > 0.5] >= 0.5).float().mean()
            room, body = pooled_psnr(error[~person]), pooled_psnr(error[person])
            print(f"| {label} | {name} | {covered:.3f} | {full:.2f} | {room:.2f} | {body:.2f} | "
                  f"{scores['box_ssim']:.4f} | {scores['mask_ssim']:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
