import io
import json
import shutil
import tarfile

import cv2
import numpy as np
import pytest
from conftest import listing

from ganmotion.data.crop import crop_mask
from ganmotion.data.masks import MaskWriter
from ganmotion.data.prepare import PrepareConfig, main, masks_file_for, prepare
from ganmotion.data.synthetic import Appearance, keypoints_path_for, masks_path_for, person_mask
from ganmotion.errors import GanmotionError
from ganmotion.pose.retarget import body_stats, target_body
from ganmotion.pose.schema import JOINT, has_person
from ganmotion.video import VideoWriter

TORSO = [JOINT[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]


def _tar_samples(path):
    """{key: {extension: bytes}} of one shard, read with plain tarfile."""
    samples = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            key, extension = member.name.split(".", 1)
            samples.setdefault(key, {})[extension] = tar.extractfile(member).read()
    return samples


def _read_shards(root):
    manifest = json.loads((root / "manifest.json").read_text())
    splits = {}
    for name, split in manifest["splits"].items():
        samples = {}
        for shard in split["shards"]:
            found = _tar_samples(root / shard["name"])
            assert len(found) == shard["samples"], shard["name"]
            samples.update(found)
        assert len(samples) == split["samples"]
        splits[name] = samples
    return manifest, splits


# --- the real sample video ------------------------------------------------------------------


def test_taichi_has_a_pose_on_at_least_95_percent_of_frames(taichi_shards):
    manifest = json.loads((taichi_shards / "manifest.json").read_text())
    keypoints = np.load(taichi_shards / "keypoints.npy")
    assert manifest["frames"]["read"] == len(keypoints) == 901
    assert has_person(keypoints).mean() >= 0.95
    assert manifest["frames"]["kept"] == has_person(keypoints).sum()


def test_taichi_shards_match_manifest_and_keypoints_lie_in_crops(taichi_shards):
    manifest, splits = _read_shards(taichi_shards)
    assert manifest["image_size"] == 128
    total = sum(len(s) for s in splits.values())
    assert total == manifest["frames"]["kept"]
    for samples in splits.values():
        for key, sample in samples.items():
            assert set(sample) == {"jpg", "pose.npy", "mask.png"}, key
            pose = np.load(io.BytesIO(sample["pose.npy"]), allow_pickle=False)
            visible = pose[:, 2] >= 0.5
            assert (pose[visible, :2] >= -0.5).all() and (pose[visible, :2] <= 127.5).all(), key


def _mask(sample: dict) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(sample["mask.png"], np.uint8), cv2.IMREAD_UNCHANGED)


def _torso_points(pose: np.ndarray) -> np.ndarray:
    """The torso's corners and its centre, rounded to pixels (5, 2) as (x, y)."""
    torso = pose[TORSO, :2]
    return np.round(np.vstack([torso, torso.mean(axis=0)])).astype(int)


def test_taichi_masks_come_from_mediapipe_and_cover_the_person_in_the_crop(taichi_shards):
    manifest, splits = _read_shards(taichi_shards)
    assert manifest["source"]["masks"] == "mediapipe-pose"
    assert manifest["frames"]["kept_without_mask"] == 0
    shares, torso_on_mask = [], []
    for samples in splits.values():
        for sample in samples.values():
            mask = _mask(sample)
            assert mask.shape == (128, 128) and mask.dtype == np.uint8
            assert set(np.unique(mask)) <= {0, 255}
            shares.append((mask > 0).mean())
            pose = np.load(io.BytesIO(sample["pose.npy"]), allow_pickle=False)
            xs, ys = _torso_points(pose).T
            torso_on_mask.append((mask[ys.clip(0, 127), xs.clip(0, 127)] > 0).mean())
    # The crop fits the body with a margin: the person is a good part of it, never all.
    assert 0.1 < np.median(shares) < 0.6 and max(shares) < 0.9, (min(shares), max(shares))
    assert np.mean(torso_on_mask) > 0.98


def test_taichi_crop_centre_is_stable(taichi_shards):
    crops = np.load(taichi_shards / "crops.npy")
    found = np.isfinite(crops[:, 0])
    both = found[1:] & found[:-1]
    moves = np.linalg.norm(np.diff(crops[:, :2], axis=0), axis=1) / crops[1:, 2]
    assert moves[both].mean() < 0.02


def test_taichi_validation_range_is_contiguous_and_after_training(taichi_shards):
    manifest, splits = _read_shards(taichi_shards)
    frames = {name: sorted(int(k.rsplit("_", 1)[1]) for k in s) for name, s in splits.items()}
    assert not set(frames["train"]) & set(frames["val"])
    assert max(frames["train"]) < min(frames["val"])
    assert frames["val"] == list(range(frames["val"][0], frames["val"][-1] + 1))
    assert len(frames["val"]) == round(0.1 * manifest["frames"]["kept"])
    assert manifest["splits"]["val"]["frame_range"] == [frames["val"][0], frames["val"][-1] + 1]


def test_taichi_manifest_records_a_plausible_training_body(taichi_shards):
    manifest = json.loads((taichi_shards / "manifest.json").read_text())
    body = target_body(manifest["body"], str(taichi_shards))
    assert body.frames >= 0.9 * manifest["splits"]["train"]["samples"]
    # Crop pixels of a 128 px crop fitted around the whole body with a 15% margin.
    assert 0.5 * 128 < body.height < 128
    assert 0.3 * 128 < body.feet[0] < 0.7 * 128 and 0.7 * 128 < body.feet[1] < 128


# --- synthetic clip, exact keypoints --------------------------------------------------------


def test_synthetic_prepare_maps_exact_keypoints_into_crops(synthetic_clip, synthetic_shards):
    _, keypoints_file = synthetic_clip
    manifest, splits = _read_shards(synthetic_shards)
    assert manifest["source"]["keypoints"] == "given"
    assert manifest["frames"] == {
        "read": 96,
        "kept": 96,
        "skipped_no_person": 0,
        "kept_without_mask": 0,
    }
    assert len(manifest["splits"]["train"]["shards"]) >= 4
    truth = np.load(keypoints_file)
    crops = np.load(synthetic_shards / "crops.npy")
    key = sorted(splits["train"])[10]
    pose = np.load(io.BytesIO(splits["train"][key]["pose.npy"]))
    frame = int(key.rsplit("_", 1)[1])
    # Undo the crop mapping by hand: source = (crop + 0.5) * side / size - 0.5 + corner.
    side = round(crops[frame, 2])
    corner = np.round(crops[frame, :2] - side / 2)
    back = (pose[:, :2] + 0.5) * side / 64 - 0.5 + corner
    np.testing.assert_allclose(back, truth[frame, :, :2], atol=1e-3)


def test_synthetic_shards_carry_the_clip_s_exact_masks_cropped_like_the_frames(
    synthetic_clip, synthetic_shards
):
    video, keypoints_file = synthetic_clip
    assert masks_file_for(keypoints_file) == masks_path_for(video)
    assert masks_file_for(keypoints_file.with_name("poses.npy")) is None
    manifest, splits = _read_shards(synthetic_shards)
    assert manifest["source"]["masks"] == "given"
    truth = np.load(keypoints_file)
    crops = np.load(synthetic_shards / "crops.npy")
    appearance = Appearance.from_seed(0)  # write_clip's default
    for samples in splits.values():
        for key, sample in samples.items():
            frame = int(key.rsplit("_", 1)[1])
            mask = _mask(sample)
            full = person_mask(truth[frame], appearance, 128)
            np.testing.assert_array_equal(mask, crop_mask(full, crops[frame], 64), key)
            pose = np.load(io.BytesIO(sample["pose.npy"]), allow_pickle=False)
            xs, ys = _torso_points(pose).T
            assert (mask[ys, xs] == 255).all(), key


def test_given_keypoints_without_a_mask_file_get_mediapipe_masks(synthetic_clip, tmp_path):
    video, keypoints_file = synthetic_clip
    given = tmp_path / "poses.npy"  # not <stem>.keypoints.npy: no mask file goes with it
    shutil.copy(keypoints_file, given)
    out = tmp_path / "shards"
    prepare(video, out, PrepareConfig(size=32, workers=1), keypoints_file=given, progress=False)
    manifest, splits = _read_shards(out)
    assert manifest["source"]["keypoints"] == "given"
    assert manifest["source"]["masks"] == "mediapipe-pose"
    np.testing.assert_array_equal(np.load(out / "keypoints.npy"), np.load(keypoints_file))
    samples = [s for split in splits.values() for s in split.values()]
    with_mask = [s for s in samples if "mask.png" in s]
    # MediaPipe misses the drawn figure in some frames; those samples have no mask.
    assert len(samples) - len(with_mask) == manifest["frames"]["kept_without_mask"]
    assert len(with_mask) >= len(samples) // 2
    assert all(0 < (_mask(s) > 0).mean() < 0.8 for s in with_mask)


def test_manifest_body_is_the_body_of_the_training_poses(synthetic_shards):
    manifest, splits = _read_shards(synthetic_shards)
    poses = [
        np.load(io.BytesIO(splits["train"][key]["pose.npy"])) for key in sorted(splits["train"])
    ]
    assert manifest["manifest_version"] == 1
    assert target_body(manifest["body"], "manifest.json") == body_stats(np.stack(poses))


# --- bad input: one-line errors, nothing left behind -----------------------------------------


def _fails(capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    return err


def test_missing_video(tmp_path, capsys):
    err = _fails(
        capsys,
        ["--video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")],
        "no such file",
    )
    assert "nope.mp4" in err
    assert listing(tmp_path) == []


def test_file_that_is_not_a_video(tmp_path, capsys):
    (tmp_path / "notes.mp4").write_bytes(b"\x00\x01 definitely not a video " * 100)
    _fails(
        capsys,
        ["--video", str(tmp_path / "notes.mp4"), "--out", str(tmp_path / "o")],
        "notes.mp4: not a readable video",
    )
    assert listing(tmp_path) == ["notes.mp4"]


def test_empty_video(tmp_path, capsys):
    import av

    container = av.open(str(tmp_path / "empty.mp4"), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    container.start_encoding()
    container.close()  # a valid mp4 header and no frames
    _fails(
        capsys,
        ["--video", str(tmp_path / "empty.mp4"), "--out", str(tmp_path / "o")],
        "empty.mp4: contains no frames",
    )
    assert listing(tmp_path) == ["empty.mp4"]


def test_video_without_a_person(tmp_path, capsys):
    rng = np.random.default_rng(0)
    with VideoWriter(tmp_path / "room.mp4", fps=10) as writer:
        wall = rng.integers(90, 110, (96, 128, 3), dtype=np.uint8)
        for _ in range(8):
            writer.write(wall)
    _fails(
        capsys,
        [
            "--video",
            str(tmp_path / "room.mp4"),
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "1",
            "--quiet",
        ],
        "room.mp4: no person found in any of its 8 frames",
    )
    assert listing(tmp_path) == ["room.mp4"]


def test_non_empty_output_is_refused_unless_overwrite(synthetic_clip, tmp_path, capsys):
    video, keypoints = synthetic_clip
    out = tmp_path / "shards"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    argv = [
        "--video",
        str(video),
        "--keypoints",
        str(keypoints),
        "--out",
        str(out),
        "--size",
        "32",
        "--quiet",
    ]
    _fails(capsys, argv, "shards: directory exists and is not empty (use --overwrite")
    assert listing(out) == ["precious.txt"]
    assert main([*argv, "--overwrite"]) == 0
    assert "precious.txt" not in listing(out) and "manifest.json" in listing(out)
    assert listing(tmp_path) == ["shards"]


def test_keypoints_that_do_not_fit_the_video(synthetic_clip, tmp_path, capsys):
    video, keypoints = synthetic_clip
    short = tmp_path / "short.npy"
    np.save(short, np.load(keypoints)[:50])
    _fails(
        capsys,
        ["--video", str(video), "--keypoints", str(short), "--out", str(tmp_path / "o"), "--quiet"],
        "short.npy: has 50 frames of keypoints",
    )
    assert listing(tmp_path) == ["short.npy"]


def test_a_mask_file_that_does_not_fit_the_video(synthetic_clip, tmp_path, capsys):
    video, keypoints = synthetic_clip
    given = keypoints_path_for(tmp_path / "dancer.mp4")
    shutil.copy(keypoints, given)
    with MaskWriter(masks_path_for(tmp_path / "dancer.mp4")) as masks:
        for _ in range(96):
            masks.write(np.zeros((64, 64), np.uint8))
    err = _fails(
        capsys,
        ["--video", str(video), "--keypoints", str(given), "--out", str(tmp_path / "o"), "--quiet"],
        "dancer.masks.npz: masks are (96, 64, 64) but the video and its keypoints are "
        "(96, 128, 128)",
    )
    assert str(tmp_path) in err
    assert listing(tmp_path) == ["dancer.keypoints.npy", "dancer.masks.npz"]


def test_invalid_settings_are_rejected_before_any_work(tmp_path):
    with pytest.raises(GanmotionError, match="--val-fraction 1.5"):
        prepare(tmp_path / "x.mp4", tmp_path / "o", PrepareConfig(val_fraction=1.5))
