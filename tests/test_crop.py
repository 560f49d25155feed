import cv2
import numpy as np
import pytest

from ganmotion.data.crop import (
    CropPolicy,
    crop_frame,
    crop_mask,
    crop_window,
    fixed_crop,
    keypoints_to_crop,
    smooth_crops,
)
from ganmotion.pose.schema import missing_frame


def test_keypoints_follow_the_pixels_they_mark():
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[120:124, 250:254] = 255  # a bright 4x4 square centred on (251.5, 121.5)
    keypoints = np.zeros((33, 3), np.float32)
    keypoints[0] = (251.5, 121.5, 1)
    crop = np.array([240.0, 130.0, 101.0])
    image = crop_frame(frame, crop, 64).astype(float)[..., 0]
    mapped = keypoints_to_crop(keypoints, crop, 64)[0]
    ys, xs = np.mgrid[:64, :64]
    centre = ((xs * image).sum() / image.sum(), (ys * image).sum() / image.sum())
    np.testing.assert_allclose(centre, mapped[:2], atol=0.3)


def test_a_crop_leaving_the_frame_is_padded_with_its_reflection_and_a_mask_with_0():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    crop = np.array([20.0, 50.0, 100.0])  # window x0 -30: 30 columns leave the frame
    image = crop_frame(frame, crop, 100)  # no resize: pixel for pixel
    assert image.shape == (100, 100, 3)
    np.testing.assert_array_equal(image[:, 30:], frame[:, :70])
    np.testing.assert_array_equal(image[:, :30], frame[:, 30:0:-1])  # -k shows column k
    mask = crop_mask(np.full((100, 100), 255, np.uint8), crop, 100)
    assert mask[:, :30].max() == 0 and mask[:, 30:].min() == 255


@pytest.mark.timeout(20)  # OpenCV's reflection of an empty image never returns
@pytest.mark.parametrize(
    ("frame_shape", "window"),
    [
        pytest.param((7, 9), (-10, -3, 12), id="2-columns-in-the-square-10-of-padding"),
        pytest.param((7, 9), (-11, 2, 12), id="1-column-in-the-square"),
        pytest.param((7, 9), (8, 4, 12), id="1-column-in-the-square-at-the-right"),
        pytest.param((7, 9), (-11, -11, 12), id="1-pixel-in-the-square-at-a-corner"),
        pytest.param((7, 9), (-3, -3, 13), id="padding-on-every-side"),
        pytest.param((7, 9), (-20, 1, 30), id="padding-wider-than-the-frame"),
        pytest.param((7, 1), (-5, -2, 10), id="a-frame-1-px-wide"),
        pytest.param((7, 9), (20, 2, 5), id="a-square-that-misses-the-frame"),
    ],
)
def test_padding_wider_than_the_square_s_part_of_the_frame_reflects_the_frame(frame_shape, window):
    """The padding is the frame reflected about its edges (numpy's "reflect" is OpenCV's
    BORDER_REFLECT_101), not the square's part of the frame reflected; a mask's is 0."""
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (*frame_shape, 3), dtype=np.uint8)
    x0, y0, side = window
    crop = np.array([x0 + side / 2, y0 + side / 2, side], np.float64)
    assert crop_window(crop) == window
    margin = 40
    around = ((margin, margin), (margin, margin))
    cut = np.s_[y0 + margin : y0 + margin + side, x0 + margin : x0 + margin + side]
    reflected = np.pad(frame, (*around, (0, 0)), mode="reflect")[cut]
    np.testing.assert_array_equal(crop_frame(frame, crop, side), reflected)
    mask = crop_mask(np.full(frame_shape, 255, np.uint8), crop, side)
    np.testing.assert_array_equal(mask, np.pad(np.full(frame_shape, 255, np.uint8), around)[cut])


def test_a_mask_crops_like_its_frame_and_stays_binary():
    """A mask drawn as the frame's red channel: cropped (down and up, and leaving the frame),
    it is the red channel cropped with black padding (a frame's is its reflection, a mask's
    0), thresholded at half."""
    rng = np.random.default_rng(1)
    mask = np.zeros((120, 160), np.uint8)
    for _ in range(6):
        x, y = rng.integers(10, 150), rng.integers(10, 110)
        mask[y - 9 : y + 9, x - 5 : x + 5] = 255
    frame = np.dstack([mask, np.zeros_like(mask), np.zeros_like(mask)])
    for crop, size in [((70.0, 60.0, 101.0), 48), ((20.0, 100.0, 60.0), 96)]:
        cropped = crop_mask(mask, np.array(crop), size)
        assert cropped.shape == (size, size) and set(np.unique(cropped)) <= {0, 255}
        red = crop_frame(frame, np.array(crop), size, cv2.BORDER_CONSTANT)[..., 0]
        np.testing.assert_array_equal(cropped, np.where(red >= 128, 255, 0))
    outside = crop_mask(np.full((100, 100), 255, np.uint8), np.array([0.0, 50.0, 100.0]), 50)
    assert outside[:, :20].max() == 0 and outside[:, 30:].min() == 255


def _walking(frames: int) -> np.ndarray:
    """A stick person drifting right by 1 px a frame, waving one arm, with noise."""
    rng = np.random.default_rng(0)
    base = np.zeros((33, 3), np.float32)
    base[:, 0] = rng.uniform(-40, 40, 33)
    base[:, 1] = np.linspace(-150, 150, 33)
    base[:, 2] = 1
    out = np.repeat(base[None], frames, 0)
    out[:, :, 0] += 300 + np.arange(frames)[:, None]
    out[:, :, 1] += 240
    out[:, 15, 0] += 80 * np.sin(np.arange(frames) / 3)  # the arm swings out and back
    out[:, :, :2] += rng.normal(0, 2, (frames, 33, 2))  # detector noise
    return out


def test_smooth_crops_contain_every_visible_joint_and_move_smoothly():
    keypoints = _walking(120)
    crops = smooth_crops(keypoints, fps=30)
    half = crops[:, 2:3] / 2
    assert (np.abs(keypoints[:, :, :2] - crops[:, None, :2]) <= half[:, None]).all()
    steps = np.linalg.norm(np.diff(crops[:, :2], axis=0), axis=1) / crops[1:, 2]
    raw_steps = np.linalg.norm(np.diff(keypoints[:, :, :2].mean(1), axis=0), axis=1)
    assert steps.mean() < 0.01
    assert (np.diff(crops[:, 2]) ** 2).mean() < (np.diff(raw_steps) ** 2).mean()


def test_frames_without_a_person_get_no_crop_and_do_not_break_smoothing():
    keypoints = _walking(60)
    keypoints[20:30] = missing_frame()
    crops = smooth_crops(keypoints, fps=30, policy=CropPolicy())
    assert np.isnan(crops[20:30]).all()
    assert np.isfinite(crops[:20]).all() and np.isfinite(crops[30:]).all()


def _window_holds(crop: np.ndarray, points: np.ndarray) -> bool:
    x0, y0, side = crop_window(crop)
    x, y = points[..., 0], points[..., 1]
    return bool((x >= x0).all() and (x <= x0 + side - 1).all() and (y >= y0).all()
                and (y <= y0 + side - 1).all())  # fmt: skip


def test_a_fixed_crop_holds_every_visible_joint_with_the_margin_in_whole_pixels():
    keypoints = _walking(120)  # x 300..420 +- 40 and the arm, y 90..390
    keypoints[50:60] = missing_frame()
    keypoints[70, 3] = (2000.0, 2000.0, 0.1)  # an unseen joint does not stretch the box
    crop = fixed_crop(keypoints, width=1920, height=1080)
    visible = keypoints[..., 2] >= 0.5
    assert _window_holds(crop, keypoints[visible][None])
    x0, y0, side = crop_window(crop)
    assert (crop == (x0 + side / 2, y0 + side / 2, side)).all()  # exactly its window
    extent = np.ptp(keypoints[visible][:, :2], axis=0).max()
    assert side == np.ceil(extent * (1 + 2 * CropPolicy().margin))


def test_a_fixed_crop_stays_inside_the_frame_when_the_joints_allow_it():
    keypoints = _walking(60)
    keypoints[..., 1] -= 80  # the head near the top edge: a centred box would leave the frame
    crop = fixed_crop(keypoints, width=800, height=600)
    x0, y0, side = crop_window(crop)
    assert y0 == 0 and side <= 600 and _window_holds(crop, keypoints)
    # A frame too small for the margin: the margin gives way, the joints stay inside.
    small = fixed_crop(keypoints, width=560, height=330)
    x0, y0, side = crop_window(small)
    assert side == 330 and y0 == 0 and 0 <= x0 <= 560 - 330 and _window_holds(small, keypoints)
    # Joints spanning more than the frame: the box must leave it (padded there).
    wide = fixed_crop(keypoints, width=1000, height=200)
    assert crop_window(wide)[2] > 200 and _window_holds(wide, keypoints)


def test_a_clip_without_a_person_has_no_fixed_crop():
    keypoints = np.stack([missing_frame()] * 5)
    assert np.isnan(fixed_crop(keypoints, width=64, height=64)).all()
