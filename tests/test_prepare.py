import io
import json
import shutil
import tarfile

import cv2
import numpy as np
import pytest
from conftest import listing

from ganmotion.data.background import STATIC_THRESHOLD, crop_plate, inside_frame, load_plate
from ganmotion.data.crop import crop_frame, crop_mask, crop_window
from ganmotion.data.manifest import CameraMeasure, load_manifest
from ganmotion.data.masks import MaskWriter
from ganmotion.data.prepare import (
    FIXED_MAX_RATIO,
    PrepareConfig,
    choose_crop,
    main,
    masks_file_for,
    prepare,
)
from ganmotion.data.synthetic import (
    Appearance,
    keypoints_path_for,
    make_clip,
    masks_path_for,
    person_mask,
    render_background,
)
from ganmotion.errors import GanmotionError
from ganmotion.pose.retarget import body_stats, target_body
from ganmotion.pose.schema import JOINT, has_person
from ganmotion.video import VideoWriter, read_frames

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
            assert set(sample) == {"jpg", "pose.npy", "mask.png", "box.npy"}, key
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


def test_taichi_camera_is_moving_so_the_crop_tracks_and_there_is_no_plate(taichi_shards):
    manifest = load_manifest(taichi_shards)
    assert manifest.camera == "moving"
    # The camera pans and zooms: far above the threshold (measured 16 grey levels).
    assert manifest.camera_measure.residual > 2 * STATIC_THRESHOLD
    assert manifest.crop_policy["kind"] == "smoothed-square"
    assert manifest.crop_policy["requested"] == "auto"
    assert manifest.crop_policy["reason"].startswith("auto: moving camera")
    assert manifest.plate is None and not (taichi_shards / "plate.png").exists()


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
        "declared": 96,  # by the container: the file holds all of them
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


def test_crops_leaving_the_frame_are_padded_with_its_reflection_not_black(
    synthetic_clip, synthetic_shards
):
    """The tracking crops of the synthetic clip leave its 128 px frame: there the stored
    crop is the frame reflected about its edge (up to JPEG), and the mask 0."""
    video, _ = synthetic_clip
    manifest, splits = _read_shards(synthetic_shards)
    assert manifest["crop_policy"]["pad"] == "reflect"
    frames = list(read_frames(video))
    crops = np.load(synthetic_shards / "crops.npy")
    errors, brightness = [], []
    for samples in splits.values():
        for key, sample in samples.items():
            box = np.load(io.BytesIO(sample["box.npy"]), allow_pickle=False)
            outside = inside_frame(box, (128, 128), 64) == 0
            if not outside.any():
                continue
            frame = int(key.rsplit("_", 1)[1])
            image = cv2.imdecode(np.frombuffer(sample["jpg"], np.uint8), cv2.IMREAD_COLOR)
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(int)
            reflected = crop_frame(frames[frame], crops[frame], 64)
            errors.append(np.abs(image - reflected).max(axis=2)[outside])
            brightness.append(image[outside].mean())
            assert (_mask(sample)[outside] == 0).all(), key
    assert len(errors) >= 10, len(errors)  # all 96 here
    errors = np.concatenate(errors)
    assert errors.mean() < 4 and np.percentile(errors, 99) < 16, errors.mean()  # JPEG: 2.5, 8
    assert min(brightness) > 40, min(brightness)  # the room's colours, no black border


def test_manifest_body_is_the_body_of_the_training_poses(synthetic_shards):
    manifest, splits = _read_shards(synthetic_shards)
    poses = [
        np.load(io.BytesIO(splits["train"][key]["pose.npy"])) for key in sorted(splits["train"])
    ]
    assert manifest["manifest_version"] == 1
    assert target_body(manifest["body"], "manifest.json") == body_stats(np.stack(poses))


# --- the camera, the background plate and the crop ------------------------------------------


@pytest.fixture(scope="module")
def synthetic_auto(synthetic_clip, tmp_path_factory):
    """The synthetic clip (a static camera) prepared as a user would: `--crop auto`."""
    video, keypoints = synthetic_clip
    out = tmp_path_factory.mktemp("auto") / "shards"
    prepare(video, out, PrepareConfig(size=64), keypoints_file=keypoints, progress=False)
    return out


def _grown(masks: np.ndarray, radius: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    return np.stack([cv2.dilate(mask.astype(np.uint8), kernel) > 0 for mask in masks])


def _codec_room(tmp_path, size: int) -> np.ndarray:
    """The synthetic room as the clip's codec shows it: written as a video and read back
    (H.264 stores colour at half resolution, which alone moves sharp colour edges by tens
    of grey levels at 128 px)."""
    with VideoWriter(tmp_path / "room.mp4", fps=30) as writer:
        for _ in range(3):
            writer.write(render_background(Appearance.from_seed(0), size))
    return next(read_frames(tmp_path / "room.mp4"))


def test_a_static_camera_gets_a_fixed_crop_and_a_plate_by_default(synthetic_auto):
    manifest = load_manifest(synthetic_auto)
    assert manifest.camera == "static" and manifest.camera_measure.residual <= 2
    assert manifest.camera_measure.frames == 96 and manifest.camera_measure.side == 128
    assert manifest.crop_policy["kind"] == "fixed-square"
    assert manifest.crop_policy["requested"] == "auto"
    assert manifest.crop_policy["reason"].startswith("auto: static camera")
    assert manifest.crop_policy["pad"] == "reflect"
    assert manifest.plate.file == "plate.png" and manifest.plate.frames == 96


def test_synthetic_plate_is_the_room_wherever_the_person_ever_left(synthetic_auto, tmp_path):
    manifest = load_manifest(synthetic_auto)
    plate = load_plate(synthetic_auto, manifest)
    assert plate.shape == (128, 128, 3) and plate.dtype == np.uint8
    frames, keypoints = make_clip(96, 128)  # write_clip's defaults: the clip, uncompressed
    frames = np.stack(frames)
    appearance = Appearance.from_seed(0)
    room = render_background(appearance, 128)
    masks = np.stack([person_mask(k, appearance, 128) > 0 for k in keypoints])
    # Where the person (grown by the plate's margin, 4 px here) was absent and the frame
    # showed the room itself (no contact shadow) in most of those frames.
    free = ~_grown(masks, 4)
    clean = (frames == room).all(axis=3)
    seen = (free & clean).sum(axis=0) > free.sum(axis=0) / 2
    assert seen.mean() > 0.85
    error = np.abs(plate.astype(int) - _codec_room(tmp_path, 128)).max(axis=2)[seen]
    assert error.mean() < 3 and np.percentile(error, 98) < 12, (error.mean(), error.max())
    # Holes: pixels never 4 px from the person (every frame went into this plate), filled
    # from the room around them, not left black or painted with the person.
    holes = masks.all(axis=0)
    assert holes.mean() < manifest.plate.filled <= (~free.any(axis=0)).mean()
    filled_error = np.abs(plate[holes].astype(int) - room[holes]).mean()
    person_error = np.abs(frames[:, holes].astype(int) - room[holes]).mean()
    assert filled_error < 20 and filled_error < 0.5 * person_error, (filled_error, person_error)


def test_fixed_crop_is_one_box_that_holds_every_keypoint_of_every_frame(
    synthetic_clip, synthetic_auto
):
    manifest, splits = _read_shards(synthetic_auto)
    keypoints = np.load(synthetic_clip[1])
    crops = np.load(synthetic_auto / "crops.npy")
    assert (crops == crops[0]).all()
    np.testing.assert_array_equal(crops[0], manifest["crop_policy"]["box"])
    x0, y0, side = crop_window(crops[0])
    assert (keypoints[..., 0] >= x0).all() and (keypoints[..., 0] <= x0 + side - 1).all()
    assert (keypoints[..., 1] >= y0).all() and (keypoints[..., 1] <= y0 + side - 1).all()
    # The figure spans most of the square frame: the box is the frame, no padding.
    assert (x0, y0, side) == (0, 0, 128)
    for samples in splits.values():
        for key, sample in samples.items():
            pose = np.load(io.BytesIO(sample["pose.npy"]), allow_pickle=False)
            assert (pose[:, :2] >= -0.5).all() and (pose[:, :2] <= 63.5).all(), key


def test_the_plate_crops_like_each_sample(synthetic_auto):
    manifest = load_manifest(synthetic_auto)
    plate = load_plate(synthetic_auto, manifest)
    crops = np.load(synthetic_auto / "crops.npy")
    _, splits = _read_shards(synthetic_auto)
    errors = []
    for samples in splits.values():
        for key, sample in samples.items():
            box = np.load(io.BytesIO(sample["box.npy"]), allow_pickle=False)
            frame = int(key.rsplit("_", 1)[1])
            assert box.dtype == np.int32 and tuple(box) == crop_window(crops[frame]), key
            image = cv2.imdecode(np.frombuffer(sample["jpg"], np.uint8), cv2.IMREAD_COLOR)
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(int)
            background = ~_grown(_mask(sample)[None] > 0, 2)[0]
            errors.append(np.abs(image - crop_plate(plate, box, 64)).max(axis=2)[background])
    errors = np.concatenate(errors)
    # JPEG, H.264 and the contact shadow, which moves with the feet: a mean of 3.7 grey
    # levels, against 6.8 for the plate cut one source pixel off.
    assert errors.mean() < 4.5 and np.percentile(errors, 90) <= 8, errors.mean()


def test_a_static_camera_asked_for_a_tracking_crop_still_gets_its_plate(synthetic_shards):
    manifest = load_manifest(synthetic_shards)  # prepared with --crop track
    assert manifest.camera == "static" and manifest.plate is not None
    assert manifest.crop_policy["kind"] == "smoothed-square"
    assert manifest.crop_policy["reason"] == "--crop track"
    assert (synthetic_shards / "plate.png").is_file()


@pytest.fixture(scope="module")
def panning_clip(tmp_path_factory) -> tuple:
    """(video, keypoints .npy) of the synthetic person filmed by a camera panning 32 px to
    the right over 40 frames: 128 px windows of a 160 px clip, masks beside the keypoints."""
    folder = tmp_path_factory.mktemp("panning")
    frames, keypoints = make_clip(40, 160)
    appearance = Appearance.from_seed(0)
    video = folder / "panning.mp4"
    shifted = keypoints.copy()
    with VideoWriter(video, fps=30) as writer, MaskWriter(masks_path_for(video)) as masks:
        for i, (frame, pose) in enumerate(zip(frames, keypoints)):
            x0 = round(i * 32 / 39)
            writer.write(frame[16:144, x0 : x0 + 128])
            masks.write(person_mask(pose, appearance, 160)[16:144, x0 : x0 + 128])
            shifted[i, :, :2] -= (x0, 16)
    np.save(keypoints_path_for(video), shifted, allow_pickle=False)
    return video, keypoints_path_for(video)


def test_a_moving_camera_gets_a_tracking_crop_and_no_plate(panning_clip, tmp_path):
    video, keypoints = panning_clip
    prepare(video, tmp_path / "s", PrepareConfig(size=32), keypoints_file=keypoints, progress=False)
    manifest = load_manifest(tmp_path / "s")
    assert manifest.camera == "moving"
    assert manifest.camera_measure.residual > 2 * STATIC_THRESHOLD
    assert manifest.crop_policy["kind"] == "smoothed-square"
    assert manifest.crop_policy["reason"].startswith("auto: moving camera")
    assert manifest.plate is None and not (tmp_path / "s" / "plate.png").exists()


def test_crop_fixed_on_the_command_line_holds_every_keypoint_in_one_box(
    panning_clip, tmp_path, capsys
):
    video, keypoints = panning_clip
    argv = ["--video", str(video), "--keypoints", str(keypoints), "--out", str(tmp_path / "s")]
    assert main([*argv, "--size", "32", "--crop", "fixed", "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert "moving camera (residual" in line and line.endswith("fixed crop (--crop fixed)")
    manifest = load_manifest(tmp_path / "s")
    assert manifest.crop_policy["kind"] == "fixed-square" and manifest.plate is None
    crops, truth = np.load(tmp_path / "s" / "crops.npy"), np.load(keypoints)
    assert (crops == crops[0]).all()
    x0, y0, side = crop_window(crops[0])
    assert (truth[..., 0] >= x0).all() and (truth[..., 0] <= x0 + side - 1).all()
    assert (truth[..., 1] >= y0).all() and (truth[..., 1] <= y0 + side - 1).all()


def test_crop_like_cuts_another_motion_with_the_target_s_box(synthetic_auto, tmp_path, capsys):
    """A new motion of the same camera, cut with the target's fixed box: its samples lie
    where the target's do, so the target's plate is their room pixel for pixel."""
    from ganmotion.data.synthetic import write_clip

    video, keypoints = write_clip(tmp_path / "other.mp4", frames=40, size=128, motion_seed=11)
    argv = ["--video", str(video), "--keypoints", str(keypoints), "--out", str(tmp_path / "s")]
    assert main([*argv, "--size", "64", "--crop-like", str(synthetic_auto), "--quiet"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"fixed crop (--crop-like {synthetic_auto})")
    target, manifest = load_manifest(synthetic_auto), load_manifest(tmp_path / "s")
    assert manifest.crop_policy["kind"] == "fixed-square"
    assert manifest.crop_policy["box"] == target.crop_policy["box"]
    own = np.load(tmp_path / "s" / "crops.npy")
    assert (own == np.float32(target.crop_policy["box"])).all()
    # Its own fixed box would differ: the other motion reaches elsewhere.
    fixed = prepare(video, tmp_path / "own", PrepareConfig(size=64), keypoints, progress=False)
    assert fixed.crop == "fixed"
    assert load_manifest(tmp_path / "own").crop_policy["box"] != target.crop_policy["box"]


def test_crop_like_needs_fixed_shards_of_the_same_frame_size(
    synthetic_clip, synthetic_shards, synthetic_auto, tmp_path, capsys
):
    from ganmotion.data.synthetic import write_clip

    video, keypoints = synthetic_clip
    argv = ["--video", str(video), "--keypoints", str(keypoints), "--out", str(tmp_path / "s")]
    _fails(capsys, [*argv, "--crop-like", str(synthetic_shards)],
           f"--crop-like {synthetic_shards}: its crop tracks the person")  # fmt: skip
    small, small_keypoints = write_clip(tmp_path / "small.mp4", frames=8, size=96)
    other = ["--video", str(small), "--keypoints", str(small_keypoints)]
    _fails(capsys, [*other, "--out", str(tmp_path / "s"), "--crop-like", str(synthetic_auto)],
           "its video is 128x128, this one 96x96")  # fmt: skip
    _fails(capsys, [*argv, "--crop", "track", "--crop-like", str(synthetic_auto)],
           "--crop track and --crop-like")  # fmt: skip
    _fails(capsys, [*argv, "--crop-like", str(tmp_path / "none")], "no such file")
    assert not (tmp_path / "s").exists()


def test_auto_picks_fixed_for_a_static_camera_unless_the_box_would_be_too_large():
    static = CameraMeasure(residual=1.0, threshold=6.0, frames=50, side=160)
    moving = CameraMeasure(residual=16.0, threshold=6.0, frames=50, side=160)
    tracking = np.array([[50.0, 50.0, 100.0]] * 4 + [[np.nan] * 3])  # median side 100
    small, large = np.array([60.0, 60.0, 140.0]), np.array([80.0, 60.0, 160.0])
    assert FIXED_MAX_RATIO == 1.5
    assert choose_crop("auto", static, small, tracking)[0] == "fixed"
    kind, reason = choose_crop("auto", static, large, tracking)
    assert kind == "track" and "1.60x the tracking crop's median side (> 1.5)" in reason
    kind, reason = choose_crop("auto", moving, small, tracking)
    assert kind == "track" and reason == "auto: moving camera, residual 16 > 6 grey levels"
    assert choose_crop("fixed", moving, large, tracking) == ("fixed", "--crop fixed")
    assert choose_crop("track", static, small, tracking) == ("track", "--crop track")


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


def test_missing_parents_of_out_are_made_once_the_shards_can_be_written(
    synthetic_clip, tmp_path, capsys
):
    """`prepare --out data/shards` works in a fresh checkout (data/ is not in git), as the
    README has it; a person-less video leaves no folder behind."""
    video, keypoints = synthetic_clip
    out = tmp_path / "data" / "taichi" / "shards"
    common = ["--size", "32", "--quiet", "--out", str(out)]
    assert main(["--video", str(video), "--keypoints", str(keypoints), *common]) == 0
    assert "manifest.json" in listing(out)
    nobody = tmp_path / "nobody.npy"
    np.save(nobody, np.full_like(np.load(keypoints), np.nan))
    elsewhere = tmp_path / "other" / "shards"
    _fails(
        capsys,
        ["--video", str(video), "--keypoints", str(nobody), "--size", "32", "--quiet",
         "--out", str(elsewhere)],
        "no person found",
    )  # fmt: skip
    assert not (tmp_path / "other").exists()


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
    with pytest.raises(GanmotionError, match="--crop wide: must be one of auto, track, fixed"):
        prepare(tmp_path / "x.mp4", tmp_path / "o", PrepareConfig(crop_mode="wide"))


def test_a_video_accepted_cut_short_says_so_in_the_summary():
    from ganmotion.data.prepare import PrepareSummary

    whole = PrepareSummary(272, 270, 2, 3, 1.0, frames_declared=272)
    cut = PrepareSummary(272, 270, 2, 3, 1.0, frames_declared=901)
    assert "CUT SHORT" not in whole.line()
    assert cut.line().endswith("; CUT SHORT: 272 of the 901 frames its container declares")
