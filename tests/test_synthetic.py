"""Synthetic clips: exact keypoints, determinism, smoothness, drawing and the file round trip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ganmotion.data import synthetic
from ganmotion.data.masks import read_masks
from ganmotion.data.synthetic import (
    Appearance,
    Motion,
    keypoints_path_for,
    main,
    make_clip,
    masks_path_for,
    person_mask,
    pose_at,
    render_background,
    render_person,
    write_clip,
)
from ganmotion.errors import GanmotionError
from ganmotion.pose.schema import JOINT, NUM_JOINTS, missing_frame
from ganmotion.video import probe_video, read_frames

SIZE = 128
FRAMES = 90


@pytest.fixture(scope="module")
def clip() -> tuple[list[np.ndarray], np.ndarray]:
    return make_clip(FRAMES, size=SIZE, fps=30.0, motion_seed=3, appearance_seed=5)


def _many_poses(seeds: range, size: int, seconds: float = 40.0, fps: float = 6.0) -> np.ndarray:
    """(seeds, T, 33, 3) keypoints sampled over a long stretch of each motion."""
    times = np.arange(0.0, seconds, 1.0 / fps)
    return np.stack(
        [np.stack([pose_at(Motion.from_seed(s), float(t), size) for t in times]) for s in seeds]
    )


def test_clip_shapes_and_keypoint_ranges(clip):
    frames, keypoints = clip
    assert keypoints.shape == (FRAMES, NUM_JOINTS, 3)
    assert keypoints.dtype == np.float32
    assert np.isfinite(keypoints).all()
    assert (keypoints[..., :2] >= 0).all() and (keypoints[..., :2] < SIZE).all()
    assert (keypoints[..., 2] == 1.0).all()
    assert len(frames) == FRAMES
    for frame in frames:
        assert frame.shape == (SIZE, SIZE, 3) and frame.dtype == np.uint8


@pytest.mark.parametrize("size", [64, 256])
def test_every_joint_inside_the_frame_over_long_motions(size):
    poses = _many_poses(range(40), size)
    assert np.isfinite(poses).all()
    assert (poses[..., :2] >= 0).all() and (poses[..., :2] < size).all()
    assert (poses[..., 2] == 1.0).all()


def test_same_seeds_give_identical_clips_and_different_motion_seeds_differ():
    frames_a, kp_a = make_clip(20, size=96, motion_seed=7, appearance_seed=2)
    frames_b, kp_b = make_clip(20, size=96, motion_seed=7, appearance_seed=2)
    np.testing.assert_array_equal(kp_a, kp_b)
    for a, b in zip(frames_a, frames_b, strict=True):
        np.testing.assert_array_equal(a, b)

    _, kp_other = make_clip(20, size=96, motion_seed=8, appearance_seed=2)
    assert np.abs(kp_other - kp_a).max() > 0.05 * 96

    # The appearance seed changes the pixels but not the motion.
    frames_c, kp_c = make_clip(20, size=96, motion_seed=7, appearance_seed=3)
    np.testing.assert_array_equal(kp_c, kp_a)
    assert not np.array_equal(frames_c[0], frames_a[0])


def test_different_motion_seeds_give_clearly_different_motions():
    poses = _many_poses(range(6), SIZE, seconds=10.0, fps=3.0)[..., :2]
    for i in range(len(poses)):
        for j in range(i + 1, len(poses)):
            mean_gap = np.linalg.norm(poses[i] - poses[j], axis=-1).mean()
            assert mean_gap > 0.02 * SIZE, (i, j, mean_gap)


def test_seeds_and_appearance_are_reproducible_values():
    assert Motion.from_seed(11) == Motion.from_seed(11)
    assert Motion.from_seed(11) != Motion.from_seed(12)
    assert Appearance.from_seed(4) == Appearance.from_seed(4)
    appearance = Appearance.from_seed(4)
    for colour in (appearance.skin, appearance.shirt, appearance.trousers, appearance.hair):
        assert len(colour) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in colour)


def test_motion_is_smooth(clip):
    _, keypoints = clip
    step = np.linalg.norm(np.diff(keypoints[..., :2], axis=0), axis=-1)  # (N-1, 33) pixels
    assert 0 < step.mean() < 0.03 * SIZE
    assert step.max() < 0.1 * SIZE  # no joint jumps between frames
    # ... and across many motions at 30 fps.
    for seed in range(10):
        motion = Motion.from_seed(seed)
        kp = np.stack([pose_at(motion, i / 30.0, SIZE) for i in range(150)])
        step = np.linalg.norm(np.diff(kp[..., :2], axis=0), axis=-1)
        assert 0 < step.mean() < 0.03 * SIZE, seed
        assert step.max() < 0.1 * SIZE, seed


def test_pose_is_continuous_in_time():
    motion = Motion.from_seed(5)
    a = pose_at(motion, 2.0, SIZE)
    b = pose_at(motion, 2.0 + 1e-5, SIZE)
    assert np.abs(a - b).max() < 0.01  # no jumps: at most 1000 px/s


def test_figure_scale_and_feet_on_the_floor(clip):
    _, keypoints = clip
    feet = [JOINT[f"{s}_{p}"] for s in ("left", "right") for p in ("heel", "foot_index")]
    lowest = keypoints[:, feet, 1].max(axis=1)
    assert np.ptp(lowest) < 1.0  # the lower foot always stands on the same floor line
    height = lowest - keypoints[:, JOINT["nose"], 1]
    assert (height > 0.5 * SIZE).all() and (height < 0.8 * SIZE).all()


def test_landmarks_are_anatomically_consistent():
    poses = _many_poses(range(10), SIZE, seconds=20.0, fps=2.0)

    def x(name):
        return poses[..., JOINT[name], 0]

    def y(name):
        return poses[..., JOINT[name], 1]

    # Eyes above the nose above the mouth; the nose between the eyes.
    assert (y("left_eye") < y("nose")).all() and (y("nose") < y("mouth_left")).all()
    assert ((x("right_eye") < x("nose")) & (x("nose") < x("left_eye"))).all()
    # Hands are a short way from the wrist, feet just below the ankle.
    for side in ("left", "right"):
        forearm = np.hypot(
            x(f"{side}_wrist") - x(f"{side}_elbow"), y(f"{side}_wrist") - y(f"{side}_elbow")
        )
        for part in ("index", "pinky", "thumb"):
            reach = np.hypot(
                x(f"{side}_{part}") - x(f"{side}_wrist"), y(f"{side}_{part}") - y(f"{side}_wrist")
            )
            assert (reach > 0).all() and (reach < 0.5 * forearm).all()
        assert (y(f"{side}_heel") > y(f"{side}_ankle")).all()
        assert (y(f"{side}_foot_index") > y(f"{side}_heel")).all()


def test_poses_include_raised_and_crossing_arms():
    poses = _many_poses(range(10), SIZE, seconds=30.0, fps=4.0)
    nose_y = poses[..., JOINT["nose"], 1]
    centre_x = (poses[..., JOINT["left_shoulder"], 0] + poses[..., JOINT["right_shoulder"], 0]) / 2
    for side, sign in (("left", 1), ("right", -1)):
        wrist = poses[..., JOINT[f"{side}_wrist"], :2]
        assert (wrist[..., 1] < nose_y).any()  # raised above the head
        assert (sign * (wrist[..., 0] - centre_x) < 0).any()  # across the body's midline


def test_left_is_on_the_image_right():
    poses = _many_poses(range(20), SIZE, seconds=20.0, fps=2.0)
    for left, right in (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")):
        assert (poses[..., JOINT[left], 0] > poses[..., JOINT[right], 0]).all()
    for left, right in (("left_eye", "right_eye"), ("left_ear", "right_ear")):
        assert (poses[..., JOINT[left], 0] > poses[..., JOINT[right], 0]).all()


def test_person_is_drawn_where_the_keypoints_are():
    appearance = Appearance.from_seed(1)
    background = render_background(appearance, SIZE)
    for seed, t in ((1, 0.0), (2, 3.3), (9, 7.1)):
        keypoints = pose_at(Motion.from_seed(seed), t, SIZE)
        frame = render_person(keypoints, appearance, SIZE)
        changed = np.abs(frame.astype(np.int16) - background).sum(axis=-1) > 30
        p = keypoints[:, :2]
        mid_hip = (p[JOINT["left_hip"]] + p[JOINT["right_hip"]]) / 2
        mid_shoulder = (p[JOINT["left_shoulder"]] + p[JOINT["right_shoulder"]]) / 2
        points = [mid_hip, (mid_hip + mid_shoulder) / 2, p[JOINT["nose"]]]
        points += [p[JOINT[n]] for n in ("left_knee", "right_knee", "left_elbow", "right_elbow")]
        for point in points:
            col, row = np.rint(point).astype(int)
            assert changed[row, col], (seed, t, point)
        # ... and not everywhere: far from the figure the background is untouched.
        assert not changed[1, 1] and not changed[1, SIZE - 2]
        assert 0.03 < changed.mean() < 0.5


def test_person_moves_with_the_keypoints():
    appearance = Appearance.from_seed(0)
    keypoints = pose_at(Motion.from_seed(0), 0.0, SIZE)
    moved = keypoints.copy()
    moved[:, 0] -= 30.0
    a = render_person(keypoints, appearance, SIZE).astype(np.int16)
    b = render_person(moved, appearance, SIZE).astype(np.int16)
    mid_hip = np.rint((keypoints[JOINT["left_hip"], :2] + keypoints[JOINT["right_hip"], :2]) / 2)
    col, row = mid_hip.astype(int)
    assert np.abs(a[row, col] - b[row, col]).sum() > 30


def test_background_is_static_and_missing_person_renders_background():
    appearance = Appearance.from_seed(6)
    background = render_background(appearance, SIZE)
    np.testing.assert_array_equal(render_person(missing_frame(), appearance, SIZE), background)
    background[:] = 0  # callers get a copy: the cached background is unharmed
    assert render_background(appearance, SIZE).any()
    frames, _ = make_clip(10, size=SIZE, motion_seed=1, appearance_seed=6)
    corner = np.s_[:10, :10]  # far from the figure
    for frame in frames:
        np.testing.assert_array_equal(frame[corner], frames[0][corner])


def test_the_mask_is_what_render_person_paints_of_the_figure(clip):
    """Inside the mask the frame differs from the background plate; outside it (beyond the
    one-pixel anti-aliased fringe) the frame is the plate, or the plate darkened by at most
    35%: the contact shadow, which is floor, not person."""
    frames, keypoints = clip
    appearance = Appearance.from_seed(5)
    plate = render_background(appearance, SIZE).astype(np.int16)
    ring = np.ones((3, 3), np.uint8)
    for index in range(0, FRAMES, 15):
        mask = person_mask(keypoints[index], appearance, SIZE)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
        assert 0.03 < (mask > 0).mean() < 0.3
        frame = frames[index].astype(np.int16)
        changed = (frame != plate).any(axis=2)
        inside = cv2.erode(mask, ring) > 0
        assert changed[inside].all()
        outside = cv2.dilate(mask, ring) == 0
        shaded = ((frame <= plate) & (frame >= np.floor(0.65 * plate) - 1)).all(axis=2)
        assert shaded[outside].all()
        assert (changed & outside).any()  # the shadow is there, and left out of the mask
    assert not person_mask(missing_frame(), appearance, SIZE).any()


def test_invalid_arguments_raise_ganmotion_error():
    with pytest.raises(GanmotionError):
        make_clip(0, size=SIZE)
    with pytest.raises(GanmotionError, match="--size 8: must be 32 to 4096 pixels"):
        make_clip(5, size=8)
    with pytest.raises(GanmotionError):
        make_clip(5, size=SIZE, fps=0.0)
    with pytest.raises(GanmotionError, match="--fps 1e-300: must be 1 to 1000"):
        make_clip(5, size=SIZE, fps=1e-300)
    with pytest.raises(GanmotionError):
        Motion.from_seed(-1)
    with pytest.raises(GanmotionError):
        render_person(np.zeros((17, 3), np.float32), Appearance.from_seed(0), SIZE)


def test_keypoints_path_for():
    assert keypoints_path_for("a/b/run.mp4") == Path("a/b/run.keypoints.npy")
    assert keypoints_path_for(Path("clip.v2.mp4")) == Path("clip.v2.keypoints.npy")
    assert masks_path_for("a/b/run.mp4") == Path("a/b/run.masks.npz")


def test_write_clip_round_trip(tmp_path):
    frames, size, fps = 24, 96, 24.0
    video, kp_path = write_clip(tmp_path / "clip.mp4", frames, size=size, fps=fps, motion_seed=2)
    assert video == tmp_path / "clip.mp4"
    assert kp_path == keypoints_path_for(video) == tmp_path / "clip.keypoints.npy"

    info = probe_video(video)
    assert (info.width, info.height, info.frame_count) == (size, size, frames)
    assert info.fps == pytest.approx(fps)
    decoded = list(read_frames(video))
    assert len(decoded) == frames and decoded[0].shape == (size, size, 3)

    keypoints = np.load(kp_path, allow_pickle=False)
    assert keypoints.shape == (frames, NUM_JOINTS, 3) and keypoints.dtype == np.float32
    expected_frames, expected_kp = make_clip(frames, size=size, fps=fps, motion_seed=2)
    np.testing.assert_array_equal(keypoints, expected_kp)
    mask_of = read_masks(masks_path_for(video), frames, size, size)
    for index in range(frames):
        expected = person_mask(keypoints[index], Appearance.from_seed(0), size)
        np.testing.assert_array_equal(mask_of(index), expected)
    # The video holds those frames, up to H.264's losses.
    for got, want in zip(decoded, expected_frames, strict=True):
        assert np.abs(got.astype(np.int16) - want).mean() < 4.0

    names = ["clip.keypoints.npy", "clip.masks.npz", "clip.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_write_clip_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    real = synthetic.render_person
    calls = []

    def failing(keypoints, appearance, size):
        calls.append(1)
        if len(calls) > 3:
            raise GanmotionError("boom")
        return real(keypoints, appearance, size)

    monkeypatch.setattr(synthetic, "render_person", failing)
    with pytest.raises(GanmotionError, match="boom"):
        write_clip(tmp_path / "clip.mp4", 10, size=64)
    assert list(tmp_path.iterdir()) == []


def test_write_clip_rejects_other_suffixes(tmp_path):
    with pytest.raises(GanmotionError, match=r"\.mp4"):
        write_clip(tmp_path / "clip.avi", 5, size=64)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_a_clip(tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    argv = ["--out", str(out), "--frames", "12", "--size", "64", "--fps", "12"]
    assert main(argv + ["--motion-seed", "4", "--appearance-seed", "1"]) == 0
    assert out.is_file() and keypoints_path_for(out).is_file()
    assert np.load(keypoints_path_for(out), allow_pickle=False).shape == (12, NUM_JOINTS, 3)
    printed = capsys.readouterr().out.strip()
    assert len(printed.splitlines()) == 1
    for part in (str(out), "12 frames", "64x64", "1.00 s"):
        assert part in printed


def test_cli_missing_directory_fails_cleanly(tmp_path, capsys):
    out = tmp_path / "missing" / "clip.mp4"
    assert main(["--out", str(out), "--frames", "5", "--size", "64"]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_cli_help_and_bad_values(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--motion-seed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", "x.mp4", "--frames", "0"])
    assert exit_info.value.code == 2
