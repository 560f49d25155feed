import numpy as np
import pytest

from ganmotion.data.synthetic import Motion, pose_at
from ganmotion.errors import GanmotionError
from ganmotion.pose.render import SkeletonStyle
from ganmotion.pose.retarget import (
    BodyStats,
    InFrame,
    Retargeter,
    body_stats,
    fixed_crop,
    target_body,
)
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


def _drawn(keypoints: np.ndarray) -> np.ndarray:
    return np.isfinite(keypoints).all(-1) & (keypoints[..., 2] >= 0.5)


def _crossing(size: int, frames: int = 90) -> np.ndarray:
    """A dancer who walks across a frame four times its size, left edge to right edge."""
    poses = _dancer(size, frames)
    poses[..., 0] += np.linspace(-1.5 * size, 1.5 * size, frames)[:, None]
    return poses


def test_keep_moves_the_body_back_only_as_far_as_the_frame_needs():
    size = 128
    poses = _crossing(size)
    in_frame = InFrame(size, "keep", margin=0.04)
    kept = np.stack([in_frame(pose) for pose in poses])
    low, high = 0.04 * size, 0.96 * (size - 1)
    drawn = _drawn(kept)
    assert (kept[drawn][:, :2] >= low - 1e-4).all() and (kept[drawn][:, :2] <= high + 1e-4).all()
    middle = len(poses) // 2  # where the walk passes the middle of the frame: untouched
    np.testing.assert_array_equal(kept[middle], poses[middle])
    # The move across is kept up to the edges: left side at the start, right at the end.
    assert kept[0, drawn[0], 0].min() == pytest.approx(low)
    assert kept[-1, drawn[-1], 0].max() == pytest.approx(high)
    # Proportions and the vertical position are untouched.
    np.testing.assert_allclose(kept[..., 1], poses[..., 1])
    np.testing.assert_allclose(
        np.diff(kept[..., 0], axis=1), np.diff(poses[..., 0], axis=1), atol=1e-4
    )


def test_center_holds_the_hips_where_the_target_stands():
    size = 128
    poses = _crossing(size)
    kept = np.stack([InFrame(size, "center", anchor_x=60.0)(pose) for pose in poses])
    hips = kept[:, [JOINT["left_hip"], JOINT["right_hip"]], 0].mean(axis=1)
    np.testing.assert_allclose(hips, 60.0, atol=1e-3)


def test_a_body_larger_than_the_frame_is_centred_and_hidden_joints_do_not_count():
    size = 64
    pose = _dancer(256, frames=1)[0]  # 0.72 * 256 tall in a 64 px square
    pose[JOINT["left_wrist"]] = (-500.0, -500.0, 0.1)  # not drawn: its visibility is low
    moved = InFrame(size, "keep")(pose)
    drawn = _drawn(moved)
    top, bottom = moved[drawn, 1].min(), moved[drawn, 1].max()  # taller than the square
    assert (top + bottom) / 2 == pytest.approx((size - 1) / 2, abs=0.05)
    assert moved[drawn, 0].min() >= 0.04 * size - 1e-3
    assert moved[drawn, 0].max() <= 0.96 * (size - 1) + 1e-3
    with pytest.raises(GanmotionError, match="motion must be one of keep, center"):
        InFrame(size, "follow")


def test_a_style_that_draws_hidden_joints_keeps_them_in_the_frame_too():
    size = 128
    pose = _dancer(size, frames=1)[0]
    wrist = JOINT["left_wrist"]
    pose[wrist] = (-10.0, 30.0, 0.1)  # hidden, and left of the frame
    for occluded, kept in ((0.0, False), (0.4, True)):
        style = SkeletonStyle.for_size(size, occluded=occluded)
        moved = InFrame(size, "keep", min_visibility=style.min_visibility)(pose)
        assert (moved[wrist, 0] >= 0.04 * size - 1e-3) == kept
    x, y = np.round(moved[wrist, :2]).astype(int)
    assert style.render(moved)[y, x].any()  # dim, but drawn where it was kept
