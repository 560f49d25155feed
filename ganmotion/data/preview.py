"""Look at what training will see: a grid of (skeleton, image, overlay) from the shard stream.

python -m ganmotion.data.preview --shards data/shards --out preview.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from ganmotion.data.manifest import load_manifest, shard_urls
from ganmotion.data.stream import StreamConfig, TrainingStream
from ganmotion.errors import GanmotionError, command_line
from ganmotion.files import atomic_write
from ganmotion.images import to_uint8_images


def tile_rows(*batches: torch.Tensor) -> np.ndarray:
    """One row per batch ((B, 3, H, W) in [-1, 1]), samples side by side, as RGB uint8."""
    rows = [torch.cat(list(batch.detach().float().cpu()), dim=2) for batch in batches]
    return to_uint8_images(torch.cat(rows, dim=1)[None])[0]


def preview_grid(skeleton: torch.Tensor, image: torch.Tensor) -> np.ndarray:
    """Rows skeleton / image / overlay of a batch ((B, 3, H, W) in [-1, 1]) as RGB uint8."""
    return tile_rows(skeleton, image, torch.maximum(image, skeleton))


def write_preview(
    shards: str, out: Path, split: str, count: int, size: int | None, augment: bool
) -> None:
    manifest = load_manifest(shards)
    config = StreamConfig(
        size=size or manifest.image_size,
        batch_size=count,
        augment=augment,
        shuffle_buffer=4 * count,
    )
    stream = TrainingStream(shard_urls(shards, split), config, batches_per_epoch=1)
    batch = next(iter(stream))
    if not out.parent.is_dir():
        raise GanmotionError(f"{out}: directory {out.parent} does not exist")
    grid = cv2.cvtColor(preview_grid(batch.skeleton, batch.image), cv2.COLOR_RGB2BGR)
    with atomic_write(out) as tmp:
        if not cv2.imwrite(str(tmp), grid):
            raise GanmotionError(f"{out}: could not write an image with this extension")


@command_line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ganmotion preview", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shards", required=True, help="shard directory or URL (with manifest.json)"
    )
    parser.add_argument("--out", required=True, type=Path, help="image to write (.png or .jpg)")
    parser.add_argument("--split", default="train", help="split to draw from (default %(default)s)")
    parser.add_argument(
        "--count", type=int, default=8, help="samples in the grid (default %(default)s)"
    )
    parser.add_argument("--size", type=int, default=None, help="image size (default: the shards')")
    parser.add_argument(
        "--no-augment", action="store_true", help="show samples without augmentation"
    )
    args = parser.parse_args(argv)
    write_preview(args.shards, args.out, args.split, args.count, args.size, not args.no_augment)
    print(f"wrote {args.out} ({args.count} samples from {args.shards} {args.split})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
