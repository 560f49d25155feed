"""The camera measurement and the background plate, on small arrays and clips whose truth is
known: a masked median, a static and a panning camera, a plate with and without holes."""

from __future__ import annotations

import cv2
import numpy as np

from ganmotion.data.background import (
    STATIC_THRESHOLD,
    PlateBuilder,
    crop_plate,
    inside_frame,
    masked_median,
    measure_camera,
)
from ganmotion.data.crop import crop_frame
from ganmotion.data.synthetic import Appearance, render_background
from ganmotion.video import VideoWriter


def test_masked_median_counts_only_valid_samples():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, (7, 4, 5, 3), dtype=np.uint8)
    valid = rng.random((7, 4, 5)) < 0.5
    valid[:, 0, 0] = False  # never valid: median 0, count 0
    median, count = masked_median(values, valid)
    assert median.shape == (4, 5, 3) and count.shape == (4, 5)
    np.testing.assert_array_equal(count, valid.sum(axis=0))
    for y in range(4):
        for x in range(5):
            samples = values[valid[:, y, x], y, x].astype(float)
            # The mean of the two middle values, rounded half up, for an even count.
            want = np.floor(np.median(samples, axis=0) + 0.5) if len(samples) else 0
            np.testing.assert_array_equal(median[y, x], want, f"{(y, x)}")
    assert median[0, 0].tolist() == [0, 0, 0]


def _walker(frames: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames, H, W, 3) frames of a textured room and (frames, H, W) masks of a dark
    rectangle (the person) crossing it, except for a column it never leaves."""
    room = render_background(Appearance.from_seed(1), max(height, width))[:height, :width]
    video = np.repeat(room[None], frames, axis=0)
    masks = np.zeros((frames, height, width), np.uint8)
    for i in range(frames):
        x0 = int(i * (width - 20) / max(frames - 1, 1))
        masks[i, 10:50, x0 : x0 + 20] = 255
        masks[i, 20:40, 30:34] = 255  # always covered: a hole in the plate
    video[masks > 0] = (20, 30, 40)
    return video, masks


def _write_video(path, frames) -> None:
    with VideoWriter(path, fps=25) as writer:
        for frame in frames:
            writer.write(frame)


def test_plate_is_the_room_where_the_person_ever_left_and_holes_are_filled():
    video, masks = _walker(24, 64, 96)
    plate = PlateBuilder(24, 64, 96)
    for index, (frame, mask) in enumerate(zip(video, masks)):
        if plate.wants(index):
            plate.add(frame, mask)
    image, filled = plate.result()
    room = render_background(Appearance.from_seed(1), 96)[:64, :96]
    # Holes: pixels never at least the margin (4 px here) from the person, at least the
    # pixels the person never left.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    seen = (np.stack([cv2.dilate(mask, kernel) for mask in masks]) == 0).any(axis=0)
    holes = masks.min(axis=0) > 0
    assert holes.mean() < filled <= (~seen).mean()
    # No codec here: exact wherever the person was ever that far away.
    np.testing.assert_array_equal(image[seen], room[seen])
    # Holes are filled from the room around them, not left black or the person's colour.
    filled_error = np.abs(image[holes].astype(int) - room[holes]).mean()
    assert filled_error < 0.5 * np.abs(np.array((20, 30, 40)) - room[holes]).mean()


def test_a_plate_of_a_long_video_takes_evenly_spaced_frames_within_its_budget():
    plate = PlateBuilder(frames=10_000, height=1080, width=1920)
    taken = [index for index in range(10_000) if plate.wants(index)]
    assert 25 <= len(taken) <= 35  # 256 MiB at 4 bytes a pixel: 32 frames
    assert len(set(np.diff(taken))) == 1


def test_a_static_camera_measures_static_and_a_panning_one_moving(tmp_path):
    room = render_background(Appearance.from_seed(2), 160)
    frames, height, width = 30, 96, 128
    video, masks = _walker(frames, height, width)
    person = masks > 0
    panned = np.stack(
        [np.where(person[i, ..., None], video[i], room[8 : 8 + height, i : i + width])
         for i in range(frames)]
    )  # fmt: skip
    _write_video(tmp_path / "static.mp4", video)
    _write_video(tmp_path / "panning.mp4", panned)

    def masks_of(index: int) -> np.ndarray:
        return masks[index]

    static, decoded = measure_camera(tmp_path / "static.mp4", masks_of, frames)
    moving, _ = measure_camera(tmp_path / "panning.mp4", masks_of, frames)
    assert decoded == frames and static.frames == frames and static.side == width
    assert static.motion == "static" and static.residual <= 2, static
    assert moving.motion == "moving" and moving.residual > 2 * STATIC_THRESHOLD, moving


def test_a_plate_crops_like_a_frame():
    rng = np.random.default_rng(3)
    plate = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    for crop in [(40.0, 30.0, 33.0), (5.0, 50.0, 40.0)]:  # inside, and leaving the frame
        crop = np.array(crop)
        side = int(round(crop[2]))
        box = np.array([round(crop[0] - side / 2), round(crop[1] - side / 2), side])
        cut = crop_plate(plate, box, 24)
        np.testing.assert_array_equal(cut, crop_frame(plate, crop, 24))
    # Where the square leaves the frame, the plate is reflected like the frame, not black.
    assert (cut[inside_frame(box, (80, 60), 24) == 0] > 10).mean() > 0.9


def test_inside_frame_marks_the_crop_pixels_the_frame_covers():
    frame = np.full((30, 100, 3), 200, np.uint8)
    box = np.array([-10, 0, 40])  # 10 px off the left edge, 10 px below the bottom
    inside = inside_frame(box, (100, 30), 40)
    # The frame cut with black padding (not the reflection a frame gets): 0 where it is not.
    cropped = crop_frame(frame, np.array([10.0, 20.0, 40.0]), 40, cv2.BORDER_CONSTANT)
    np.testing.assert_array_equal(inside > 0, cropped[..., 0] > 0)
    assert inside[:, :10].max() == 0 and inside[30:].max() == 0 and inside[:30, 10:].min() == 255
    # At another size the same box marks the same share of the crop.
    assert (inside_frame(box, (100, 30), 80) > 0).mean() == (inside > 0).mean()
