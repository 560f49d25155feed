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
from ganmotion.files import atomic_write, check_writable
from ganmotion.images import to_uint8_images


def tile_rows(*batches: torch.Tensor) -> np.ndarray:
    """One row per batch ((B, 3, H, W) in [-1, 1]), samples side by side, as RGB uint8."""
    rows = [torch.cat(list(batch.detach().float().cpu()), dim=2) for batch in batches]
    return to_uint8_images(torch.cat(rows, dim=1)[None])[0]


def preview_grid(skeleton: torch.Tensor, image: torch.Tensor) -> np.ndarray:
    """Rows skeleton / image / overlay of a batch ((B, 3, H, W) in [-1, 1]) as RGB uint8."""
    return tile_rows(skeleton, image, torch.maximum(image, skeleton))


# What one sample of the grid costs in memory, per pixel: its uint8 batch (11 bytes: skeleton,
# image, mask, background, inside), the same as float32 (44), the grid's float rows (36) and
# the grid as uint8 RGB and BGR (18).
BYTES_PER_PIXEL = 109
MAX_BYTES = 8 * 2**30


def check_grid(count: int, size: int) -> None:
    """A one-line error, before any sample is read, for a grid that cannot be drawn or would
    not fit in memory (`MAX_BYTES`)."""
    if count < 1:
        raise GanmotionError(f"--count must be >= 1, got {count}")
    if not 16 <= size <= 4096:
        raise GanmotionError(f"--size must be in [16, 4096], got {size}")
    needed = count * size * size * BYTES_PER_PIXEL
    if needed > MAX_BYTES:
        raise GanmotionError(
            f"--count {count} at --size {size}: the grid needs about {needed / 2**30:.0f} GiB "
            f"of memory, more than {MAX_BYTES / 2**30:.0f} GiB; show fewer or smaller samples"
        )


def write_preview(
    shards: str, out: Path, split: str, count: int, size: int | None, augment: bool
) -> None:
    check_writable(out)
    if not cv2.haveImageWriter(str(out)):
        raise GanmotionError(f"{out}: OpenCV cannot write this kind of image; use .png or .jpg")
    manifest = load_manifest(shards)
    size = manifest.image_size if size is None else size
    check_grid(count, size)
    config = StreamConfig(size=size, batch_size=count, augment=augment, shuffle_buffer=4 * count)
    stream = TrainingStream(shard_urls(shards, split), config, batches_per_epoch=1)
    batch = next(iter(stream))
    grid = cv2.cvtColor(preview_grid(batch.skeleton, batch.image), cv2.COLOR_RGB2BGR)
    with atomic_write(out) as tmp:
        if not cv2.imwrite(str(tmp), grid):
            raise GanmotionError(f"{out}: OpenCV could not write the image")


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
