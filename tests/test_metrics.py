"""Metric functions against known values and reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ganmotion import metrics
from ganmotion.errors import GanmotionError
from ganmotion.pose.schema import FLIP_PERMUTATION, JOINT


def image_pair(seed: int = 0, shape=(3, 48, 56, 3)) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random image batch and a noisy, shifted copy of it."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (shape[0], shape[1] // 8, shape[2] // 8, 3)).astype(np.float64)
    smooth = np.stack([np.kron(b, np.ones((8, 8, 1))) for b in base])  # blocks of structure
    other = np.roll(smooth, 2, axis=2) + rng.normal(0, 20, smooth.shape)
    return smooth.astype(np.uint8), np.clip(other, 0, 255).astype(np.uint8)


def test_identical_images_are_perfect():
    a, _ = image_pair()
    assert np.all(np.isinf(metrics.psnr(a, a)))
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert np.all(metrics.l1(a, a) == 0)


def test_ssim_matches_scikit_image_in_float64():
    a, b = image_pair(seed=1)
    ours = metrics.ssim(a, b)
    reference = [
        structural_similarity(
            x / 255.0, y / 255.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0, channel_axis=-1,
        )
        for x, y in zip(a, b)
    ]  # fmt: skip
    assert 0.05 < min(reference) and max(reference) < 0.95  # a pair that is neither
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_the_ssim_map_is_what_ssim_averages():
    a, b = image_pair(seed=1)
    ssim_map = metrics.ssim_map(a, b)
    fits = metrics.SSIM_WINDOW - 1
    assert ssim_map.shape == (len(a), a.shape[1] - fits, a.shape[2] - fits)
    np.testing.assert_allclose(ssim_map.mean(dim=(1, 2)).numpy(), metrics.ssim(a, b), rtol=1e-12)
    weights = np.zeros(a.shape[:3])
    weights[:, 20:30, 5:40] = 1  # the map's positions are the pixels 5 (half a window) in
    np.testing.assert_allclose(
        ssim_map[:, 15:25, 0:35].mean(dim=(1, 2)).numpy(), metrics.ssim(a, b, weights=weights)
    )


def test_window_std_is_the_texture_within_the_ssim_window():
    flat = np.full((1, 20, 20, 3), 100, np.uint8)
    stripes = flat.copy()
    stripes[:, :, ::2] = 120  # columns alternating 100 and 120: a std near 10 everywhere
    assert metrics.window_std(flat).shape == (1, 10, 10)
    assert metrics.window_std(flat).abs().max() < 1e-6
    std = metrics.window_std(stripes)
    assert torch.all((std > 9) & (std <= 10))  # the Gaussian weighs the columns unevenly


def test_psnr_and_l1_match_their_definitions():
    a, b = image_pair(seed=2)
    reference = [peak_signal_noise_ratio(y, x, data_range=255) for x, y in zip(a, b)]
    np.testing.assert_allclose(metrics.psnr(a, b), reference, rtol=1e-9)
    expected = np.abs(a / 127.5 - b / 127.5).mean(axis=(1, 2, 3))  # on the [-1, 1] scale
    np.testing.assert_allclose(metrics.l1(a, b), expected, rtol=1e-9)


def test_images_smaller_than_the_ssim_window_are_refused():
    tiny = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="smaller than the SSIM window"):
        metrics.ssim(tiny, tiny)


def standing(frames: int = 4, torso: float = 40.0) -> np.ndarray:
    """Keypoints of an upright body whose torso (shoulders' to hips' midpoint) is `torso` px."""
    k = np.zeros((frames, 33, 3), np.float32)
    k[..., 2] = 1.0
    k[:, :, 0] = 50 + np.arange(33)  # every joint somewhere distinct
    k[:, :, 1] = 100
    k[:, JOINT["left_shoulder"], :2] = (40, 60)
    k[:, JOINT["right_shoulder"], :2] = (60, 60)
    k[:, JOINT["left_hip"], :2] = (42, 60 + torso)
    k[:, JOINT["right_hip"], :2] = (58, 60 + torso)
    return k


def test_pck_of_identical_keypoints_is_one():
    k = standing()
    result = metrics.pose_accuracy(k, k)
    assert result["pck@0.05"] == 1.0 and result["pck@0.1"] == 1.0
    assert result["error_px"] == 0.0 and result["detected"] == 1.0


def test_pck_counts_distance_in_torso_heights_and_missed_frames_as_misses():
    driving = standing(frames=4, torso=40.0)
    detected = driving.copy()
    detected[..., 0] += 0.07 * 40  # every joint 0.07 torso heights off
    assert metrics.pose_accuracy(detected, driving)["pck@0.05"] == 0.0
    assert metrics.pose_accuracy(detected, driving)["pck@0.1"] == 1.0
    detected[1] = np.nan  # nobody found in one frame of four
    result = metrics.pose_accuracy(detected, driving)
    assert result["pck@0.1"] == 0.75 and result["detected"] == 0.75
    assert result["error_px"] == pytest.approx(0.07 * 40, rel=1e-5)  # over detected frames


def test_joints_found_at_low_visibility_are_misses():
    driving = standing(frames=2)
    detected = driving.copy()
    detected[1, :, 2] = 1e-4  # a "person" on a smeared image: nothing really found
    detected[1, :, :2] += 500
    result = metrics.pose_accuracy(detected, driving)
    assert result["pck@0.1"] == 0.5 and result["detected"] == 0.5
    assert result["error_px"] == 0.0  # over the joints found, all in frame 0


def test_frames_without_a_visible_torso_are_not_judged():
    driving = standing(frames=2)
    driving[0, JOINT["left_hip"], 2] = 0.1
    detected = driving.copy()
    detected[0] += 30  # far off, but in the frame that cannot be judged
    result = metrics.pose_accuracy(detected, driving)
    assert result["frames"] == 1 and result["pck@0.05"] == 1.0


def test_frames_found_with_left_and_right_exchanged_read_mirrored():
    driving = standing(frames=4)
    for name, joint in JOINT.items():  # left joints 20 px left of the right ones
        driving[:, joint, 0] = 50 + 10 * (name.startswith("right") - name.startswith("left"))
    detected = driving.copy()
    detected[:2] = driving[:2][:, FLIP_PERMUTATION]  # two frames taken for a back view
    detected[3] = np.nan  # nobody found: a miss, not a mirror
    assert metrics.pose_accuracy(detected, driving)["pck@0.1"] < 0.5
    assert metrics.mirrored_share(detected, driving) == 0.5
    assert metrics.mirrored_share(driving, driving) == 0.0
    assert np.isnan(metrics.mirrored_share(detected[:0], driving[:0]))


def test_frame_difference_uses_only_consecutive_pairs():
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    frames[2] = 90
    assert metrics.frame_difference(frames) == 45.0
    assert metrics.frame_difference(frames, np.array([True, False])) == 0.0


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("lpips") / "alexnet.pth"
    torch.save(torchvision.models.alexnet().state_dict(), path)  # random: no download here
    return path


def test_lpips_is_zero_for_identical_images_and_positive_otherwise(alexnet_file):
    lpips = metrics.LPIPS(alexnet_file)
    a, b = image_pair(seed=3, shape=(2, 64, 64, 3))
    assert np.all(lpips(a, a) == 0)
    assert np.all(lpips(a, b) > 0)


def test_lpips_without_its_backbone_file_says_what_is_missing(tmp_path):
    with pytest.raises(GanmotionError, match="LPIPS backbone weights not found"):
        metrics.LPIPS(tmp_path / "alexnet.pth")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(GanmotionError, match="not an AlexNet state dict"):
        metrics.LPIPS(tmp_path / "other.pth")


def test_weighted_metrics_see_only_the_weighted_pixels():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    generated = real.copy()
    generated[:, :, 16:] = 255 - generated[:, :, 16:]  # the right half is wrong
    left = np.zeros((2, 32, 32), np.uint8)
    left[:, :, :16] = 255
    assert np.all(metrics.l1(generated, real, left) == 0)
    assert np.all(np.isinf(metrics.psnr(generated, real, left)))
    assert metrics.l1(generated, real, 255 - left).min() > 0.5
    whole = np.full((2, 32, 32), 255, np.uint8)  # weights all alike: the plain means
    assert np.allclose(metrics.l1(generated, real, whole), metrics.l1(generated, real))
    assert np.allclose(metrics.ssim(generated, real, weights=whole), metrics.ssim(generated, real))
    # the SSIM map weighted to the left half only (window centres 5 px from the edges)
    inside = np.zeros((2, 32, 32))
    inside[:, :, 5:11] = 1
    assert np.allclose(metrics.ssim(generated, real, weights=inside), 1)
    assert np.isnan(metrics.l1(generated, real, np.zeros((2, 32, 32)))).all()


def test_person_boxes_hold_the_visible_keypoints_with_a_margin():
    keypoints = np.full((2, 33, 3), np.nan, np.float32)
    keypoints[0, :, :2] = np.linspace(20, 40, 33)[:, None]  # a diagonal from (20, 20) to (40, 40)
    keypoints[0, :, 2] = 1.0
    x0, y0, x1, y1 = metrics.person_boxes(keypoints, 64)[0]
    assert (x0, y0) <= (17, 17) and (x1, y1) >= (43, 43)  # 15% of 20 px on each side
    assert x1 - x0 == y1 - y0  # square
    assert list(metrics.person_boxes(keypoints, 64)[1]) == [0, 0, 64, 64]  # nobody: all of it
    images = np.zeros((2, 64, 64, 3), np.uint8)
    assert metrics.crop_boxes(images, metrics.person_boxes(keypoints, 64)).shape == (2, 128, 128, 3)
