import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ganmotion.data import stream as stream_module
from ganmotion.data.background import Backdrop, inside_frame
from ganmotion.data.manifest import load_manifest, shard_urls
from ganmotion.data.stream import (
    StreamConfig,
    TrainingStream,
    augmentation_matrix,
    decode_sample,
    shards_for,
    transform_sample,
    validation_batches,
)
from ganmotion.errors import GanmotionError
from ganmotion.images import to_uint8_images
from ganmotion.pose.render import SkeletonStyle
from ganmotion.pose.schema import JOINT


def test_batches_have_the_requested_shape_and_range(synthetic_shards):
    stream = TrainingStream(
        shard_urls(synthetic_shards), StreamConfig(size=96, batch_size=4), batches_per_epoch=5
    )
    batches = list(stream)
    assert len(batches) == len(stream) == 5
    for skeleton, image, keypoints, mask, *_ in batches:
        assert skeleton.shape == image.shape == (4, 3, 96, 96)
        assert mask.shape == (4, 1, 96, 96) and mask.dtype == torch.float32
        assert mask.min() >= 0 and mask.max() <= 1 and 0.02 < mask.mean() < 0.5
        assert keypoints.shape == (4, 33, 3) and keypoints.dtype == torch.float32
        assert skeleton.dtype == image.dtype == torch.float32
        for tensor in (skeleton, image):
            assert tensor.min() >= -1 and tensor.max() <= 1
        assert skeleton.max() > 0.5 and (skeleton == -1).float().mean() > 0.5  # lines on black
        assert image.std() > 0.1


def test_the_stream_draws_in_the_style_its_config_makes(synthetic_shards):
    assert StreamConfig(size=64).skeleton == SkeletonStyle.for_size(64)
    config = StreamConfig(size=64, batch_size=4, line_thickness=3, joint_radius=5)
    assert config.skeleton == SkeletonStyle(64, 3, 5)
    assert StreamConfig(size=64, occluded=0.4).skeleton == SkeletonStyle(64, 1, 2, occluded=0.4)
    (batch,) = validation_batches(shard_urls(synthetic_shards, "val"), config, 1)
    drawn = np.stack([config.skeleton.render(k) for k in batch.keypoints.numpy()])
    np.testing.assert_array_equal(to_uint8_images(batch.skeleton), drawn)
    default = SkeletonStyle.for_size(64).render(batch.keypoints[0].numpy())
    assert not np.array_equal(drawn[0], default)


def test_flip_mirrors_the_image_and_swaps_left_and_right_joints():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    keypoints = rng.uniform(0, 63, (33, 3)).astype(np.float32)
    config = StreamConfig(size=64, max_scale=0, max_shift=0, flip_probability=1.0)
    mask = rng.integers(0, 2, (64, 64), dtype=np.uint8) * 255
    flipped_image, flipped, flipped_mask, *_ = transform_sample(image, keypoints, mask, config, rng)
    np.testing.assert_array_equal(flipped_image, cv2.flip(image, 1))
    np.testing.assert_array_equal(flipped_mask, cv2.flip(mask, 1))
    for left, right in [("left_wrist", "right_wrist"), ("left_ankle", "right_ankle")]:
        assert flipped[JOINT[left], 0] == pytest.approx(63 - keypoints[JOINT[right], 0], abs=1e-4)
        assert flipped[JOINT[left], 1] == pytest.approx(keypoints[JOINT[right], 1], abs=1e-4)


def test_flipped_stream_samples_are_mirrors_of_plain_ones(synthetic_shards):
    urls = shard_urls(synthetic_shards)
    plain = StreamConfig(size=64, batch_size=4, augment=False)
    mirrored = StreamConfig(size=64, batch_size=4, max_scale=0, max_shift=0, flip_probability=1)
    _, image, _, mask, *_ = next(iter(TrainingStream(urls, plain, 1)))
    skeleton_f, image_f, _, mask_f, *_ = next(iter(TrainingStream(urls, mirrored, 1)))
    torch.testing.assert_close(image_f, image.flip(-1))
    torch.testing.assert_close(mask_f, mask.flip(-1))
    # The mirrored skeleton is drawn from swapped joints: not a pixel mirror of the plain one,
    # because left limbs keep their own colours.
    skeleton = next(iter(TrainingStream(urls, plain, 1))).skeleton
    assert not torch.equal(skeleton_f, skeleton.flip(-1))


@pytest.mark.parametrize("seed", range(8))
def test_augmented_keypoints_stay_on_the_pixels_they_mark(seed):
    """A bright dot drawn at the left wrist ends up where the transformed left wrist says."""
    rng = np.random.default_rng(seed)
    image = np.zeros((80, 80, 3), np.uint8)
    keypoints = np.zeros((33, 3), np.float32)
    keypoints[:, :2] = rng.uniform(20, 60, (33, 2))
    x, y = np.round(keypoints[JOINT["left_wrist"], :2]).astype(int)
    keypoints[JOINT["left_wrist"], :2] = (x, y)
    image[y - 1 : y + 2, x - 1 : x + 2] = 255
    config = StreamConfig(size=64, max_scale=0.2, max_shift=0.1, flip_probability=0.5)
    _, flip = augmentation_matrix(80, config, np.random.default_rng(seed + 100))
    mask = np.zeros((80, 80), np.uint8)
    rng = np.random.default_rng(seed + 100)
    out, moved, *_ = transform_sample(image, keypoints, mask, config, rng)
    # After a flip the dot belongs to the joint now called right_wrist.
    expected = moved[JOINT["right_wrist" if flip else "left_wrist"], :2]
    weight = out[..., 0].astype(float)
    ys, xs = np.mgrid[:64, :64]
    centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
    np.testing.assert_allclose(centroid, expected, atol=0.35)


@pytest.mark.parametrize("flip_probability", [0.0, 1.0])
def test_the_mask_moves_with_the_image(flip_probability):
    """A mask that is the image's red channel stays its red channel through any zoom, shift
    and flip, wherever the warp stays on the crop: the same matrix, the same interpolation.
    Past the crop's edge the image is reflected and the mask 0."""
    config = StreamConfig(size=64, max_scale=0.2, max_shift=0.1, flip_probability=flip_probability)
    keypoints = np.zeros((33, 3), np.float32)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        mask = np.zeros((80, 80), np.uint8)
        for _ in range(4):
            x, y = rng.integers(5, 75, 2)
            mask[y - 4 : y + 5, x - 3 : x + 4] = 255
        image = np.dstack([mask, rng.integers(0, 255, (80, 80, 2), dtype=np.uint8)])
        out, _, out_mask, _, inside = transform_sample(image, keypoints, mask, config, rng)
        assert out_mask.shape == (64, 64) and out_mask.dtype == np.uint8 and out_mask.any()
        on_crop = inside == 255
        np.testing.assert_array_equal(out_mask[on_crop], out[..., 0][on_crop])
        assert out_mask[inside == 0].max(initial=0) == 0


def test_past_the_crop_the_warp_reflects_colours_and_leaves_maps_0():
    """A crop of one colour stays that colour to its edges however the augmentation moves
    it (a black border would be padding the critic learns); its mask and inside map are 0
    where the warp leaves the crop."""
    image = np.full((80, 80, 3), (200, 120, 40), np.uint8)
    whole = np.full((80, 80), 255, np.uint8)
    keypoints = np.zeros((33, 3), np.float32)
    config = StreamConfig(size=64, max_scale=0.2, max_shift=0.1)
    left = 0
    for seed in range(8):
        out = transform_sample(image, keypoints, whole, config, np.random.default_rng(seed))
        assert (out.image == (200, 120, 40)).all() and out.background is out.image
        np.testing.assert_array_equal(out.mask, out.inside)  # the same map, the same warp
        left += int((out.inside == 0).sum())
    assert left > 0  # some of the warps left the crop


@pytest.mark.parametrize(("source", "max_scale"), [(64, 0.6), (80, 0.6), (64, 0.9)])
def test_the_warp_gives_the_pixels_of_opencv_s_borders_however_far_it_zooms_out(source, max_scale):
    """Image and mask (padded beforehand, then warped as one) are what OpenCV's own borders
    give, reflection and 0, even when the augmentation reads far past the crop."""
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (source, source, 3), dtype=np.uint8)
    mask = rng.integers(0, 256, (source, source), dtype=np.uint8)
    keypoints = np.zeros((33, 3), np.float32)
    config = StreamConfig(size=64, max_scale=max_scale, max_shift=0.3)
    for seed in range(8):
        matrix, _ = augmentation_matrix(source, config, np.random.default_rng(seed))
        out = transform_sample(image, keypoints, mask, config, np.random.default_rng(seed))
        for warped, alone, border in [
            (out.image, image, cv2.BORDER_REFLECT_101),
            (out.mask, mask, cv2.BORDER_CONSTANT),
        ]:
            want = cv2.warpAffine(
                alone, matrix, (64, 64), flags=cv2.INTER_LINEAR, borderMode=border
            )
            # Equal with OpenCV 4.11; 5.1 rounds 1-2 pixels in 12,288 one level apart when the
            # channels are warped together. A wrong border is off by far more.
            difference = np.abs(warped.astype(int) - want.astype(int))
            assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_with_a_plate_the_image_outside_the_frame_is_the_plate_s():
    """Where a crop (or its warp) leaves the frame, the real image shows what a composed
    one does, the background; inside it, the image as warped alone."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    plate = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    inside = np.full((80, 80), 255, np.uint8)
    inside[:, :12] = inside[70:] = 0  # the crop left the frame at the left and the bottom
    mask = np.zeros((80, 80), np.uint8)
    mask[20:60, 30:50] = 255
    keypoints = np.zeros((33, 3), np.float32)
    config = StreamConfig(size=64, max_scale=0.2, max_shift=0.1)
    for seed in range(4):
        out = transform_sample(
            image, keypoints, mask, config, np.random.default_rng(seed), plate, inside
        )
        alone = transform_sample(image, keypoints, mask, config, np.random.default_rng(seed))
        outside, frame = out.inside == 0, out.inside == 255
        assert outside.any() and frame.any()
        np.testing.assert_array_equal(out.image[outside], out.background[outside])
        np.testing.assert_array_equal(out.image[frame], alone.image[frame])
        assert out.mask[outside].max() == 0
        np.testing.assert_array_equal(out.mask, alone.mask)


def test_stream_masks_cover_the_person_the_keypoints_mark(synthetic_shards):
    stream = TrainingStream(
        shard_urls(synthetic_shards), StreamConfig(size=64, batch_size=8), batches_per_epoch=3
    )
    torso = [JOINT[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    for batch in stream:
        centre = batch.keypoints[:, torso, :2].mean(dim=1).round().long()  # (B, 2) x, y
        on_mask = batch.mask[torch.arange(8), 0, centre[:, 1], centre[:, 0]]
        assert (on_mask > 0.5).all(), on_mask
        assert ((batch.mask > 0.5).float().mean(dim=(1, 2, 3)) < 0.5).all()


def _without_masks(shards, root):
    """A copy of `shards` as an older ganmotion wrote them: no mask.png, no masks in the
    manifest."""
    root.mkdir()
    manifest = json.loads((shards / "manifest.json").read_text())
    del manifest["source"]["masks"], manifest["frames"]["kept_without_mask"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            with (
                tarfile.open(shards / shard["name"]) as old,
                tarfile.open(root / shard["name"], "w") as new,
            ):
                for member in old.getmembers():
                    if not member.name.endswith(".mask.png"):
                        new.addfile(member, old.extractfile(member))
    return root


def test_shards_without_masks_train_with_the_whole_crop_as_mask(
    synthetic_shards, tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr(stream_module, "_warned_no_mask", False)
    root = _without_masks(synthetic_shards, tmp_path / "old")
    assert not load_manifest(root).has_masks
    config = StreamConfig(size=64, batch_size=4)
    with caplog.at_level(logging.WARNING, logger="ganmotion.data.stream"):
        (batch,) = validation_batches(shard_urls(root, "val"), config, 1)
        augmented = list(TrainingStream(shard_urls(root), config, 2))
    assert torch.equal(batch.mask, torch.ones(4, 1, 64, 64))
    # Augmented, the whole crop is warped like the image: 0 only where the image is padding.
    for mask in (b.mask for b in augmented):
        assert mask.shape == (4, 1, 64, 64) and (mask > 0.5).float().mean() > 0.7
    warnings = [r.getMessage() for r in caplog.records if "has no mask.png" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once per process, not per sample or epoch
    assert "the whole crop" in warnings[0] and "prepare again" in warnings[0]


def test_a_mask_that_does_not_fit_its_image_is_a_bad_sample():
    jpg = cv2.imencode(".jpg", np.zeros((32, 32, 3), np.uint8))[1].tobytes()
    png = cv2.imencode(".png", np.zeros((16, 32), np.uint8))[1].tobytes()
    pose = io.BytesIO()
    np.save(pose, np.zeros((33, 3), np.float32))
    sample = {"__key__": "clip_000007", "jpg": jpg, "pose.npy": pose.getvalue()}
    assert decode_sample(sample)[2] is None
    with pytest.raises(
        GanmotionError, match="sample clip_000007: mask.png is 32x16, its jpg 32x32"
    ):
        decode_sample({**sample, "mask.png": png})


def test_epochs_differ_and_replay_exactly(synthetic_shards):
    stream = TrainingStream(shard_urls(synthetic_shards), StreamConfig(size=32, batch_size=4), 2)
    first, second = list(stream), list(stream)
    assert not torch.equal(first[0][1], second[0][1])
    stream.set_epoch(0)
    again = list(stream)
    for one, two in zip(first, again):
        assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_loader_workers_give_full_epochs(synthetic_shards):
    stream = TrainingStream(
        shard_urls(synthetic_shards), StreamConfig(size=32, batch_size=4), 6, num_workers=2
    )
    assert sum(1 for _ in stream) == 6


def test_shards_are_split_by_rank_then_worker():
    urls = [f"s{i}" for i in range(8)]
    assert shards_for(urls, 0, 2, 0, 1) == ["s0", "s2", "s4", "s6"]
    assert shards_for(urls, 1, 2, 1, 2) == ["s3", "s7"]
    assert shards_for(urls[:1], 1, 2, 0, 1) == ["s0"]  # too few shards: share, do not starve


READER = """
import json, sys
from ganmotion.data.manifest import shard_urls
from ganmotion.data.stream import StreamConfig, TrainingStream
stream = TrainingStream(shard_urls(sys.argv[1]), StreamConfig(size=32, batch_size=4), 7)
batches = sum(1 for _ in stream)
print(json.dumps({"batches": batches, "shards": sorted(set(stream.shards.opened))}))
"""


def test_two_ranks_get_equal_epochs_from_disjoint_shards(synthetic_shards):
    results = []
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(synthetic_shards)],
            env={**os.environ, "RANK": str(rank), "WORLD_SIZE": "2"},
            stdout=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["batches"] == results[1]["batches"] == 7
    rank0, rank1 = set(results[0]["shards"]), set(results[1]["shards"])
    assert rank0 and rank1 and not rank0 & rank1
    assert rank0 | rank1 <= set(shard_urls(synthetic_shards))


def test_corrupt_shard_is_skipped_with_a_warning_and_counted(synthetic_shards, tmp_path, caplog):
    root = tmp_path / "shards"
    shutil.copytree(synthetic_shards, root)
    urls = shard_urls(root)
    middle = urls[len(urls) // 2]
    with open(middle, "r+b") as shard:  # keep the size, ruin the content
        shard.write(os.urandom(4096))
    stream = TrainingStream(urls, StreamConfig(size=32, batch_size=4), batches_per_epoch=12)
    with caplog.at_level(logging.WARNING, logger="ganmotion.data.stream"):
        batches = list(stream)
    assert len(batches) == 12
    assert stream.skipped.count >= 1
    assert any("skipping unreadable shard data" in r.message for r in caplog.records)
    assert any(os.path.basename(middle) in r.getMessage() for r in caplog.records)


@pytest.fixture
def http_root(synthetic_shards):
    handler = partial(SimpleHTTPRequestHandler, directory=str(synthetic_shards))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="WebDataset reads http:// with curl")
def test_shards_stream_over_http(http_root):
    manifest = load_manifest(http_root)
    urls = shard_urls(http_root)
    assert urls[0].startswith("http://127.0.0.1")
    stream = TrainingStream(urls, StreamConfig(size=manifest.image_size, batch_size=4), 3)
    assert [tuple(batch.skeleton.shape) for batch in stream] == [(4, 3, 64, 64)] * 3


def test_missing_split_and_empty_urls_are_clear_errors(synthetic_shards, tmp_path):
    with pytest.raises(GanmotionError, match="has no 'test' split"):
        shard_urls(synthetic_shards, "test")
    with pytest.raises(GanmotionError, match="manifest.json: no such file"):
        shard_urls(tmp_path)
    with pytest.raises(GanmotionError, match="no shard URLs"):
        TrainingStream([])


def test_the_background_is_the_plate_cut_and_warped_like_the_image(synthetic_shards):
    manifest = load_manifest(synthetic_shards)
    assert manifest.camera == "static" and manifest.plate is not None
    backdrop = Backdrop.of_shards(synthetic_shards, manifest)
    config = StreamConfig(size=64, batch_size=8, max_scale=0.3, max_shift=0.2)
    stream = TrainingStream(
        shard_urls(synthetic_shards), config, batches_per_epoch=2, backdrop=backdrop
    )
    for batch in stream:
        room = (batch.mask < 0.01) & (batch.inside > 0.99)
        person = batch.mask > 0.99
        difference = (batch.background - batch.image).abs().mean(1, keepdim=True)
        # The room of every crop is the plate (up to JPEG and resampling), wherever the
        # augmentation moved it; where the person stands the plate shows the room instead.
        assert difference[room].mean() < 0.03
        assert difference[person].mean() > 0.2
        # Where the augmentation or the crop leaves the frame, nothing is inside, there is
        # no person, and the image shows the plate there as a composed image does: the
        # plate reflected about the frame's edge, not black.
        outside = batch.inside == 0
        assert outside.any() and (batch.mask[outside] == 0).all()
        outside = outside.expand_as(batch.image)
        assert torch.equal(batch.image[outside], batch.background[outside])
        assert batch.image[outside].mean() > -0.5


def _padded_black(shards: Path, root: Path) -> Path:
    """A copy of `shards` as ganmotion wrote them before it reflected the frame: crops black
    where they leave the frame, the manifest's pad "constant-black"."""
    shutil.copytree(shards, root)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["crop_policy"]["pad"] == "reflect"
    manifest["crop_policy"]["pad"] = "constant-black"
    (root / "manifest.json").write_text(json.dumps(manifest))
    size, frame = (
        manifest["image_size"],
        (manifest["source"]["width"], manifest["source"]["height"]),
    )
    padded = 0
    for url in shard_urls(root):
        with tarfile.open(url) as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
        boxes = {m.name.split(".")[0]: np.load(io.BytesIO(data)) for m, data in members
                 if m.name.endswith(".box.npy")}  # fmt: skip
        with tarfile.open(url, "w") as tar:
            for member, data in members:
                key = member.name.split(".")[0]
                if member.name.endswith(".jpg"):
                    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                    outside = inside_frame(boxes[key], frame, size) == 0
                    padded += int(outside.any())
                    image[outside] = 0
                    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
                    member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    assert padded > 0  # some crops leave the frame
    return root


def test_shards_padded_black_before_reflection_still_train(synthetic_shards, tmp_path):
    root = _padded_black(synthetic_shards, tmp_path / "old")
    manifest = load_manifest(root)
    assert manifest.crop_policy["pad"] == "constant-black" and manifest.plate is not None
    backdrop = Backdrop.of_shards(root, manifest)
    config = StreamConfig(size=64, batch_size=8)
    (batch,) = validation_batches(shard_urls(root, "val"), config, 1, backdrop)
    batches = [batch, *TrainingStream(shard_urls(root), config, 2, backdrop=backdrop)]
    for batch in batches:
        # Their black padding is the plate's in what the critic sees, as in new shards.
        outside = (batch.inside == 0).expand_as(batch.image)
        assert torch.equal(batch.image[outside], batch.background[outside])
    assert any((b.inside == 0).any() for b in batches)


def test_without_a_backdrop_each_sample_is_its_own_background(synthetic_shards):
    config = StreamConfig(size=64, batch_size=4)
    (batch,) = validation_batches(shard_urls(synthetic_shards, "val"), config, 1)
    assert torch.equal(batch.background, batch.image)
    assert torch.equal(batch.inside, torch.ones_like(batch.inside))


# ----------------------------------------------------------------- unreadable data ends the stream


def copy_shards(synthetic_shards, tmp_path) -> tuple[Path, list[str]]:
    root = tmp_path / "shards"
    shutil.copytree(synthetic_shards, root)
    return root, shard_urls(root)


def rewrite_jpgs(shard: str, content: bytes) -> None:
    """The shard with every sample's jpg replaced by `content`: a readable tar, undecodable
    samples."""
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w") as tar:
        for member, data in members:
            if member.name.endswith(".jpg"):
                data = content
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def skipping_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "skipping unreadable" in r.getMessage()]


@pytest.mark.timeout(60)  # it looped forever before issue 15
def test_a_stream_of_only_unreadable_shards_stops_with_one_line(synthetic_shards, tmp_path, caplog):
    _, urls = copy_shards(synthetic_shards, tmp_path)
    for url in urls:
        Path(url).write_bytes(os.urandom(Path(url).stat().st_size))
    stream = TrainingStream(urls, StreamConfig(size=32, batch_size=4), batches_per_epoch=5)
    with caplog.at_level(logging.WARNING, logger="ganmotion.data.stream"):
        with pytest.raises(GanmotionError, match="32 shards in a row could not be read") as error:
            list(stream)
    assert "\n" not in str(error.value) and "shards/" in str(error.value)
    # Rate-limited: the first three in full, then one at 10 (and 100, 1000, ...).
    assert len(skipping_warnings(caplog)) == 4, skipping_warnings(caplog)


@pytest.mark.timeout(60)  # it looped forever before issue 15
def test_samples_that_never_decode_stop_the_stream(synthetic_shards, tmp_path):
    _, urls = copy_shards(synthetic_shards, tmp_path)
    for url in urls:
        rewrite_jpgs(url, b"not a jpeg")
    stream = TrainingStream(urls, StreamConfig(size=32, batch_size=4), batches_per_epoch=5)
    with pytest.raises(GanmotionError, match="32 samples in a row could not be read.*'jpg'"):
        list(stream)


@pytest.mark.timeout(60)  # it looped forever before issue 15
def test_mostly_undecodable_samples_stop_the_stream_by_their_share(
    synthetic_shards, tmp_path, monkeypatch
):
    _, urls = copy_shards(synthetic_shards, tmp_path)
    for url in urls[: max(1, len(urls) * 3 // 4)]:
        rewrite_jpgs(url, b"not a jpeg")
    # Never 32 bad samples in a row here: only the share can stop it.
    monkeypatch.setattr(stream_module, "MAX_FAILURES_IN_A_ROW", 10**9)
    stream = TrainingStream(urls, StreamConfig(size=32, batch_size=4), batches_per_epoch=10**6)
    with pytest.raises(GanmotionError, match=r"of \d+ samples could not be read \(more than 50%\)"):
        list(stream)


def test_a_few_bad_samples_are_skipped_not_fatal(synthetic_shards, tmp_path):
    _, urls = copy_shards(synthetic_shards, tmp_path)
    rewrite_jpgs(urls[0], b"not a jpeg")  # one shard of several: well under half
    assert len(urls) >= 4
    stream = TrainingStream(urls, StreamConfig(size=32, batch_size=4), batches_per_epoch=60)
    assert len(list(stream)) == 60
    assert stream.bad_samples.count > 0


@pytest.mark.timeout(60)  # it looped forever before issue 15
def test_a_loader_worker_error_reaches_the_user_as_one_line(synthetic_shards, tmp_path):
    _, urls = copy_shards(synthetic_shards, tmp_path)
    for url in urls:
        Path(url).write_bytes(b"")
    stream = TrainingStream(urls, StreamConfig(size=32, batch_size=4), 5, num_workers=1)
    with pytest.raises(GanmotionError) as error:
        list(stream)
    assert str(error.value).startswith("32 shards in a row could not be read")
    assert "\n" not in str(error.value)


@pytest.mark.skipif(shutil.which("curl") is None, reason="WebDataset reads http:// with curl")
@pytest.mark.timeout(60)  # it looped forever before issue 15
def test_http_404_shards_stop_the_stream(http_root):
    urls = [f"{http_root}/missing-{i}.tar" for i in range(3)]
    stream = TrainingStream(urls, StreamConfig(size=32, batch_size=4), batches_per_epoch=5)
    started = time.monotonic()
    with pytest.raises(GanmotionError, match="32 shards in a row could not be read.*missing-"):
        list(stream)
    assert time.monotonic() - started < 30


@pytest.mark.skipif(shutil.which("curl") is None, reason="WebDataset reads http:// with curl")
@pytest.mark.timeout(60)  # it looped forever before issue 15
def test_a_shard_server_that_dies_mid_run_stops_the_stream(synthetic_shards):
    handler = partial(SimpleHTTPRequestHandler, directory=str(synthetic_shards))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    stream = TrainingStream(shard_urls(root), StreamConfig(size=32, batch_size=4), 10**6)
    batches = iter(stream)
    next(batches)
    server.shutdown()
    server.server_close()
    started = time.monotonic()
    with pytest.raises(GanmotionError, match="could not be read"):
        for _ in batches:
            pass
    assert time.monotonic() - started < 30
