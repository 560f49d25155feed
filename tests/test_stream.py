import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
import torch

from ganmotion.data.manifest import load_manifest, shard_urls
from ganmotion.data.stream import (
    StreamConfig,
    TrainingStream,
    augmentation_matrix,
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
    for skeleton, image, keypoints in batches:
        assert skeleton.shape == image.shape == (4, 3, 96, 96)
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
    flipped_image, flipped = transform_sample(image, keypoints, config, rng)
    np.testing.assert_array_equal(flipped_image, cv2.flip(image, 1))
    for left, right in [("left_wrist", "right_wrist"), ("left_ankle", "right_ankle")]:
        assert flipped[JOINT[left], 0] == pytest.approx(63 - keypoints[JOINT[right], 0], abs=1e-4)
        assert flipped[JOINT[left], 1] == pytest.approx(keypoints[JOINT[right], 1], abs=1e-4)


def test_flipped_stream_samples_are_mirrors_of_plain_ones(synthetic_shards):
    urls = shard_urls(synthetic_shards)
    plain = StreamConfig(size=64, batch_size=4, augment=False)
    mirrored = StreamConfig(size=64, batch_size=4, max_scale=0, max_shift=0, flip_probability=1)
    _, image, _ = next(iter(TrainingStream(urls, plain, 1)))
    skeleton_f, image_f, _ = next(iter(TrainingStream(urls, mirrored, 1)))
    torch.testing.assert_close(image_f, image.flip(-1))
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
    out, moved = transform_sample(image, keypoints, config, np.random.default_rng(seed + 100))
    # After a flip the dot belongs to the joint now called right_wrist.
    expected = moved[JOINT["right_wrist" if flip else "left_wrist"], :2]
    weight = out[..., 0].astype(float)
    ys, xs = np.mgrid[:64, :64]
    centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
    np.testing.assert_allclose(centroid, expected, atol=0.35)


def test_epochs_differ_and_replay_exactly(synthetic_shards):
    stream = TrainingStream(shard_urls(synthetic_shards), StreamConfig(size=32, batch_size=4), 2)
    first, second = list(stream), list(stream)
    assert not torch.equal(first[0][1], second[0][1])
    stream.set_epoch(0)
    again = list(stream)
    for (s1, i1, k1), (s2, i2, k2) in zip(first, again):
        assert torch.equal(s1, s2) and torch.equal(i1, i2) and torch.equal(k1, k2)


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
    assert [tuple(s.shape) for s, _, _ in stream] == [(4, 3, 64, 64)] * 3


def test_missing_split_and_empty_urls_are_clear_errors(synthetic_shards, tmp_path):
    with pytest.raises(GanmotionError, match="has no 'test' split"):
        shard_urls(synthetic_shards, "test")
    with pytest.raises(GanmotionError, match="manifest.json: no such file"):
        shard_urls(tmp_path)
    with pytest.raises(GanmotionError, match="no shard URLs"):
        TrainingStream([])
