import numpy as np
import pytest

from ganmotion.data.synthetic import Motion, pose_at
from ganmotion.errors import GanmotionError
from ganmotion.metrics import keypoint_jitter
from ganmotion.pose.filters import OneEuroConfig, PoseSmoother, body_scale, smooth_sequence
from ganmotion.pose.schema import JOINT, missing_frame

FPS = 30.0
WRIST = JOINT["left_wrist"]


def _pose(size: int = 256) -> np.ndarray:
    """A whole standing body (33, 3), torso about 0.2 * size long."""
    return pose_at(Motion.from_seed(0), 0.0, size)


def _still(frames: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    poses = np.repeat(_pose()[None], frames, axis=0)
    poses[..., :2] += np.random.default_rng(seed).normal(0, noise, poses[..., :2].shape)
    return poses


# --- the metric -----------------------------------------------------------------------------


def test_jitter_is_zero_for_constant_velocity_and_ignores_hidden_joints():
    poses = _still(10)
    poses[..., 0] += 3.0 * np.arange(10)[:, None]
    assert keypoint_jitter(poses) == pytest.approx(0.0, abs=1e-4)
    poses[5, WRIST, 0] += 100  # a glitch on a joint that is not visible is not counted
    poses[5, WRIST, 2] = 0.1
    poses[7] = np.nan
    assert keypoint_jitter(poses) == pytest.approx(0.0, abs=1e-4)
    assert np.isnan(keypoint_jitter(np.full((5, 33, 3), np.nan, np.float32)))


# --- the filter -----------------------------------------------------------------------------


def test_constant_pose_stays_exactly_constant():
    poses = _still(60)
    smoothed, statuses = smooth_sequence(poses, FPS)
    np.testing.assert_array_equal(smoothed, poses)
    assert statuses == ["detected"] * 60


def test_noise_on_a_still_pose_is_mostly_removed():
    poses = _still(300, noise=0.5)  # 1% of the torso, about twice MediaPipe's on real video
    smoothed, _ = smooth_sequence(poses, FPS)
    assert keypoint_jitter(smoothed) < keypoint_jitter(poses) / 6  # 8.9x when measured


def test_lag_at_constant_velocity_is_bounded_by_beta():
    config = OneEuroConfig()
    torso = body_scale(_pose())
    poses = _still(90)
    poses[..., 0] += 2 * torso / FPS * np.arange(90)[:, None]  # two torso lengths a second
    smoothed, _ = smooth_sequence(poses, FPS, config)
    lag = np.abs(poses[30:, :, 0] - smoothed[30:, :, 0])  # after a second to settle
    # The lag of a fast joint tends to torso / (2 pi beta) from below (OneEuroConfig.beta).
    assert lag.max() < torso / (2 * np.pi * config.beta)
    assert lag.max() < 0.05 * torso


def test_smoothing_does_not_depend_on_image_scale():
    poses = _still(100, noise=1.0)
    poses[..., 0] += np.linspace(0, 80, 100)[:, None]
    small, _ = smooth_sequence(poses, FPS)
    large = poses.copy()
    large[..., :2] *= 3
    large, _ = smooth_sequence(large, FPS)
    np.testing.assert_allclose(large[..., :2], 3 * small[..., :2], rtol=1e-5, atol=1e-3)


def test_short_gaps_are_held_and_long_ones_are_missing():
    poses = _still(40, noise=1.0)
    poses[10:17] = np.nan  # 7 frames = 0.233 s <= max_gap_s
    poses[25:33] = np.nan  # 8 frames = 0.267 s > max_gap_s
    smoothed, statuses = smooth_sequence(poses, FPS, OneEuroConfig(max_gap_s=0.25))
    assert statuses[10:17] == ["held"] * 7
    assert statuses[25:32] == ["held"] * 7 and statuses[32] == "missing"
    assert statuses[17:25] == ["detected"] * 8 and statuses[33:] == ["detected"] * 7
    for i in range(10, 17):
        np.testing.assert_array_equal(smoothed[i], smoothed[9])
    assert np.isnan(smoothed[32]).all()


def test_long_gap_resets_the_filter():
    before = _still(30)
    after = _still(10)
    after[..., 0] += 200  # the person is elsewhere when they come back
    gap = np.full((20, 33, 3), np.nan, np.float32)
    smoothed, statuses = smooth_sequence(np.concatenate([before, gap, after]), FPS)
    assert statuses[50:] == ["detected"] * 10
    np.testing.assert_array_equal(smoothed[50:], after)  # no smear from the old place


def test_streaming_accepts_none_and_starts_missing():
    smoother = PoseSmoother(OneEuroConfig(), FPS)
    assert smoother(None) == (None, "missing")
    assert smoother(missing_frame())[1] == "missing"
    pose, status = smoother(_pose())
    assert status == "detected" and pose.dtype == np.float32
    held, status = smoother(None)
    assert status == "held"
    np.testing.assert_array_equal(held, pose)


def test_nan_joints_do_not_poison_the_filter():
    poses = _still(60, noise=1.0)
    holes = poses.copy()
    holes[20:25, WRIST] = np.nan
    smoothed, statuses = smooth_sequence(poses, FPS)
    with_holes, statuses_holes = smooth_sequence(holes, FPS)
    assert statuses_holes == statuses == ["detected"] * 60
    assert np.isnan(with_holes[20:25, WRIST]).all()
    assert np.isfinite(with_holes[25:, WRIST]).all()
    others = np.arange(33) != WRIST
    np.testing.assert_array_equal(with_holes[:, others], smoothed[:, others])
    # Back after a short absence, the wrist continues near where it was: no jump.
    assert np.abs(with_holes[25, WRIST, :2] - smoothed[19, WRIST, :2]).max() < 3


def test_visibility_is_passed_through():
    poses = _still(30, noise=1.0)
    poses[:, :, 2] = np.random.default_rng(1).uniform(0, 1, (30, 33))
    smoothed, _ = smooth_sequence(poses, FPS)
    np.testing.assert_array_equal(smoothed[..., 2], poses[..., 2])


def test_disabled_passes_poses_through():
    poses = _still(30, noise=1.0)
    smoothed, statuses = smooth_sequence(poses, FPS, OneEuroConfig(enabled=False))
    np.testing.assert_array_equal(smoothed, poses)
    assert statuses == ["detected"] * 30


# --- real footage ---------------------------------------------------------------------------


def test_smoothing_reduces_mediapipe_jitter_on_taichi(taichi):
    from ganmotion.pose.detector import DetectorConfig, PoseDetector
    from ganmotion.video import probe_video, read_frames

    with PoseDetector(DetectorConfig(static_image_mode=False)) as detector:
        raw = [detector(frame) for frame in read_frames(taichi, 0, 150)]
    raw = np.stack([missing_frame() if k is None else k for k in raw])
    smoothed, statuses = smooth_sequence(raw, probe_video(taichi).fps)
    assert statuses.count("missing") == 0
    ratio = keypoint_jitter(raw) / keypoint_jitter(smoothed)
    assert ratio > 2.5, f"jitter only {ratio:.2f}x lower"  # 3.5x when measured


def test_bad_settings_are_rejected():
    with pytest.raises(GanmotionError, match="--min-cutoff 0: must be > 0"):
        OneEuroConfig(min_cutoff=0)
    # An infinite beta times a still joint's zero speed is NaN: the joint would vanish.
    with pytest.raises(GanmotionError, match="--beta inf: must be a finite number >= 0"):
        OneEuroConfig(beta=float("inf"))
    with pytest.raises(GanmotionError, match="fps=0"):
        PoseSmoother(OneEuroConfig(), fps=0)
