"""Person masks of a whole video in one file, read and written one frame at a time.

The file is an .npz (a zip that `np.load` reads) with one member per frame, `000000`,
`000001`, ...: each an (H, W) uint8 array, 0/255 (bool is accepted too). Deflated, binary
masks take about 1/60 of their raw bytes (a synthetic clip's 96 frames at 128 px: 27 KB
against 1.6 MB), and neither side ever holds more than one frame.

    with MaskWriter(path) as masks:
        for mask in ...:
            masks.write(mask)
    mask_of = read_masks(path, frames, height, width)   # mask_of(index) -> (H, W) 0/255
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganmotion.errors import GanmotionError

MasksOfFrames = Callable[[int], np.ndarray | None]
"""Frame index -> that frame's person mask (H, W) uint8 0/255 in source pixels, or None."""


def _member(index: int) -> str:
    return f"{index:06d}"


class MaskWriter:
    """Appends frames' masks to a new mask file at `path`."""

    def __init__(self, path: str | os.PathLike):
        self._archive = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self.count = 0

    def write(self, mask: np.ndarray) -> None:
        """Append the next frame's mask, (H, W) uint8 0/255."""
        with self._archive.open(f"{_member(self.count)}.npy", "w") as member:
            np.lib.format.write_array(member, np.ascontiguousarray(mask), allow_pickle=False)
        self.count += 1

    def close(self) -> None:
        self._archive.close()

    def __enter__(self) -> MaskWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_masks(path: str | os.PathLike, frames: int, height: int, width: int) -> MasksOfFrames:
    """The masks of a video of `frames` frames of height x width, from the mask file `path`;
    a file that does not fit is a one-line error that names it and both shapes."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:  # EOFError: empty
        raise GanmotionError(
            f"{path}: not a mask file (.npz, one array per frame): {error or 'empty file'}"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise GanmotionError(f"{path}: not a mask file (.npz, one array per frame)")

    def frame(index: int) -> np.ndarray:
        try:
            return archive[_member(index)]
        except (KeyError, ValueError, zipfile.BadZipFile) as error:
            raise GanmotionError(f"{path}: no readable mask for frame {index} ({error})") from None

    first = frame(0) if archive.files else np.zeros((0, 0), np.uint8)
    if (len(archive.files), *first.shape) != (frames, height, width):
        raise GanmotionError(
            f"{path}: masks are {(len(archive.files), *first.shape)} but the video and its "
            f"keypoints are {(frames, height, width)} (frames, height, width)"
        )

    def mask_of(index: int) -> np.ndarray:
        mask = frame(index)
        if mask.shape != (height, width) or mask.dtype not in (np.uint8, np.bool_):
            raise GanmotionError(
                f"{path}: frame {index}'s mask is {mask.dtype} {mask.shape}, not uint8 "
                f"{(height, width)}"
            )
        return np.where(mask if mask.dtype == np.bool_ else mask >= 128, 255, 0).astype(np.uint8)

    return mask_of
