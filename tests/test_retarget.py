import numpy as np
import pytest

from ganmotion.data.synthetic import Motion, pose_at
from ganmotion.errors import GanmotionError
from ganmotion.pose.retarget import BodyStats, Retargeter, body_stats, fixed_crop, target_body
from ganmotion.pose.schema import JOINT

HANDS = ("wrist", "pinky", "index", "thumb")


def _dancer(size: int, frames: int = 60, seed: int = 0) -> np.ndarray:
    """Exact keypoints (frames, 33, 3) of a synthetic figure about 0.72 * size tall."""
    motion = Motion.from_seed(seed)
    return np.stack([pose_at(motion, i / 30, size) for i in range(frames)])


def test_stats_follow_scale_and_translation():
    poses = _dancer(256)
    stats = body_stats(poses)
    assert stats.frames == 60
    assert 0.5 * 256 < stats.height < 0.8 * 256  # nose to ankle of a figure 72% of the frame
    moved = poses.copy()
    moved[..., :2] = moved[..., :2] * 2 + (10, 20)
    doubled = body_stats(moved)
    assert doubled.height == pytest.approx(2 * stats.height, rel=1e-5)
    np.testing.assert_allclose(doubled.feet, np.array(stats.feet) * 2 + (10, 20), rtol=1e-5)


def _stick_figure(knee_angle_deg: float) -> np.ndarray:
    """A front-facing stick figure (33, 3), knees bent outwards by the angle (0 = standing);
    thighs and shins 45 px, torso 60, nose 30 above the shoulders, ankles at y = 0."""
    bend = np.radians(knee_angle_deg)
    leg = 45 * np.cos(bend)
    pose = np.zeros((33, 3), np.float32)
    pose[:, 2] = 1
    pose[:, :2] = (0, -2 * leg - 90)  # face, hands: at the nose
    for sign, side in ((1, "left"), (-1, "right")):
        joints = {
            "shoulder": (20, -2 * leg - 60),
            "hip": (15, -2 * leg),
            "knee": (15 + 45 * np.sin(bend), -leg),
            "ankle": (15, 0),
            "heel": (15, 5),
            "foot_index": (20, 5),
        }
        for name, (x, y) in joints.items():
            pose[JOINT[f"{side}_{name}"], :2] = (sign * x, y)
    return pose


def test_height_does_not_shrink_when_the_person_crouches():
    standing, crouching = _stick_figure(0)[None], _stick_figure(40)[None]
    nose_to_ankle = [
        p[0, JOINT["left_ankle"], 1] - p[0, JOINT["nose"], 1] for p in (standing, crouching)
    ]
    assert nose_to_ankle[1] < 0.9 * nose_to_ankle[0]  # the naive measure shrinks by 12%
    assert body_stats(standing).height == pytest.approx(180, rel=1e-5)
    assert body_stats(crouching).height == pytest.approx(180, rel=1e-5)
    assert body_stats(crouching).feet == pytest.approx((0, 5))


def test_tall_source_takes_the_target_height_and_place():
    source = _dancer(512, seed=1)  # twice the target's size, elsewhere in the frame
    source[..., 0] += 100
    target = body_stats(_dancer(256, seed=2))
    retarget = Retargeter(body_stats(source), target)
    mapped = retarget(source)
    assert mapped.shape == source.shape and mapped.dtype == source.dtype
    result = body_stats(mapped)
    assert result.height == pytest.approx(target.height, rel=0.01)
    np.testing.assert_allclose(result.feet, target.feet, atol=0.5)
    np.testing.assert_array_equal(mapped[..., 2], source[..., 2])
    np.testing.assert_allclose(retarget(source[7]), mapped[7])  # one frame (33, 3) too


def test_nan_stays_nan():
    poses = _dancer(256, frames=3)
    poses[1] = np.nan
    poses[2, JOINT["left_wrist"]] = np.nan
    stats = body_stats(poses)
    assert stats.frames == 2
    mapped = Retargeter(stats, BodyStats(100.0, (50.0, 120.0), 1))(poses)
    np.testing.assert_array_equal(np.isnan(mapped), np.isnan(poses))


def test_fixed_crop_keeps_proportions_and_fits_the_body():
    poses = _dancer(720, seed=3)
    poses[..., 0] += 300  # anywhere in a wide frame
    stats = body_stats(poses)
    size = 256
    mapped = fixed_crop(stats, size, margin=0.15)(poses)
    result = body_stats(mapped)
    assert result.height == pytest.approx(size / 1.3, rel=1e-5)
    assert result.feet[0] == pytest.approx(size / 2, abs=0.5)
    assert result.feet[1] == pytest.approx(size - 0.15 * result.height, abs=0.5)
    body = [j for name, j in JOINT.items() if not name.endswith(HANDS)]  # raised hands may leave
    assert (mapped[:, body, :2] >= 0).all() and (mapped[:, body, :2] < size).all()
    # Proportions: every pairwise distance scales by the same factor.
    a, b = poses[0, :, :2], mapped[0, :, :2]
    ratio = np.linalg.norm(b[1:] - b[0], axis=1) / np.linalg.norm(a[1:] - a[0], axis=1)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)


def test_body_stats_needs_a_body():
    with pytest.raises(GanmotionError, match="source.mp4: no frame shows a whole body"):
        body_stats(np.full((10, 33, 3), np.nan, np.float32), where="source.mp4")
    legless = _dancer(256, frames=5)
    legless[:, JOINT["left_knee"] :, 2] = 0.1  # legs out of the picture
    with pytest.raises(GanmotionError, match="no frame shows a whole body"):
        body_stats(legless)


def test_stats_round_trip_through_json_and_manifest():
    stats = body_stats(_dancer(128))
    assert BodyStats.from_json(stats.to_json()) == stats
    assert target_body(stats.to_json(), "shards/manifest.json") == stats
    with pytest.raises(GanmotionError, match="shards/manifest.json: .*no whole body"):
        target_body(None, "shards/manifest.json")
    with pytest.raises(GanmotionError, match="malformed"):
        target_body({"height": 3}, "shards/manifest.json")
