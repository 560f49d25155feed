"""Mask files: one compressed array per frame, written and read a frame at a time, and a file
that does not fit its video is a one-line error naming it and both shapes."""

import numpy as np
import pytest

from ganmotion.data.masks import MaskWriter, read_masks
from ganmotion.errors import GanmotionError


def _masks(frames: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((frames, height, width)) < 0.3).astype(np.uint8) * 255


def _write(path, masks) -> None:
    with MaskWriter(path) as writer:
        for mask in masks:
            writer.write(mask)


def test_masks_round_trip_and_compress(tmp_path):
    masks = _masks(5, 24, 40)
    masks[:, :12] = 0  # binary masks are mostly runs: deflate takes most of their bytes away
    _write(tmp_path / "clip.masks.npz", masks)
    mask_of = read_masks(tmp_path / "clip.masks.npz", 5, 24, 40)
    for index in (3, 0, 4):  # any order
        np.testing.assert_array_equal(mask_of(index), masks[index])
    assert (tmp_path / "clip.masks.npz").stat().st_size < masks.nbytes / 2


def test_boolean_masks_are_read_as_0_and_255(tmp_path):
    masks = _masks(2, 8, 8)
    _write(tmp_path / "m.npz", masks > 0)
    np.testing.assert_array_equal(read_masks(tmp_path / "m.npz", 2, 8, 8)(1), masks[1])


@pytest.mark.parametrize(
    ("frames", "height", "width"),
    [(6, 24, 40), (5, 40, 24)],
)
def test_masks_that_do_not_fit_the_video_name_the_file_and_both_shapes(
    tmp_path, frames, height, width
):
    _write(tmp_path / "clip.masks.npz", _masks(5, 24, 40))
    with pytest.raises(GanmotionError) as error:
        read_masks(tmp_path / "clip.masks.npz", frames, height, width)
    text = str(error.value)
    assert "clip.masks.npz: masks are (5, 24, 40)" in text, text
    assert str((frames, height, width)) in text and "\n" not in text


def test_a_file_that_is_not_a_mask_file_is_refused(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all" * 10)
    with pytest.raises(GanmotionError, match=r"junk.npz: not a mask file"):
        read_masks(tmp_path / "junk.npz", 1, 8, 8)
    np.save(tmp_path / "one.npy", np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(GanmotionError, match=r"one.npy: not a mask file"):
        read_masks(tmp_path / "one.npy", 1, 8, 8)


def test_a_frame_of_another_type_is_refused_when_read(tmp_path):
    masks = _masks(2, 8, 8).astype(np.float32)
    _write(tmp_path / "m.npz", masks)
    mask_of = read_masks(tmp_path / "m.npz", 2, 8, 8)
    with pytest.raises(GanmotionError, match=r"m.npz: frame 1's mask is float32 \(8, 8\)"):
        mask_of(1)
