"""The shard manifest: prepare writes a `Manifest`, everything else reads one, and a damaged
manifest is a one-line error naming the file and the key."""

import json
import shutil

import pytest

from ganmotion.data.manifest import Manifest, load_manifest, shard_urls
from ganmotion.errors import GanmotionError


def test_the_manifest_reads_back_exactly_as_prepare_wrote_it(synthetic_shards):
    written = json.loads((synthetic_shards / "manifest.json").read_text())
    manifest = load_manifest(synthetic_shards)
    assert isinstance(manifest, Manifest)
    assert manifest.to_json() == written
    assert manifest.image_size == 64 and manifest.validation_split == "val"
    train = manifest.splits["train"]
    assert train.samples == sum(shard.samples for shard in train.shards)
    assert manifest.frames.kept == sum(split.samples for split in manifest.splits.values())


def damaged(shards, tmp_path, change) -> str:
    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    data = json.loads((copy / "manifest.json").read_text())
    change(data)
    (copy / "manifest.json").write_text(json.dumps(data))
    return str(copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("splits"), "missing key splits; prepare the shards again"),
        (lambda m: m.pop("image_size"), "missing key image_size"),
        (lambda m: m["splits"]["train"]["shards"][0].pop("name"), "missing key splits.train."),
        (lambda m: m.update(image_size="big"), "image_size must be int, got 'big'"),
        (lambda m: m.update(image_size=100000), "image_size must be in [16, 4096]"),
        (lambda m: m["splits"]["train"].update(samples=-1), "splits.train.samples must be >= 0"),
        (lambda m: m["splits"].pop("train"), "no train split with shards"),
        (lambda m: m.update(manifest_version=0), "manifest version 0 is not 1"),
        (lambda m: m.update(extra=1), "unknown key extra"),
        (lambda m: m["source"].update(masks="paint"), "source.masks must be one of"),
        (lambda m: m.update(camera="shaky"), "camera must be one of static, moving"),
        (lambda m: m["plate"].pop("file"), "missing key plate.file"),
    ],
)
def test_a_damaged_manifest_is_a_one_line_error(synthetic_shards, tmp_path, change, message):
    root = damaged(synthetic_shards, tmp_path, change)
    with pytest.raises(GanmotionError) as error:
        shard_urls(root, "train")
    text = str(error.value)
    assert text.startswith(f"{root}/manifest.json: ") and message in text, text
    assert "\n" not in text


def test_a_manifest_from_before_masks_reads_as_shards_without_masks(synthetic_shards, tmp_path):
    def forget_masks(manifest: dict) -> None:
        del manifest["source"]["masks"], manifest["frames"]["kept_without_mask"]

    assert load_manifest(synthetic_shards).has_masks
    old = load_manifest(damaged(synthetic_shards, tmp_path, forget_masks))
    assert not old.has_masks and old.source.masks is None
    assert old.frames.kept_without_mask == 0


def test_a_manifest_from_before_the_camera_measurement_still_loads(synthetic_shards, tmp_path):
    def forget_camera(manifest: dict) -> None:
        del manifest["camera"], manifest["camera_measure"], manifest["plate"]

    assert load_manifest(synthetic_shards).camera == "static"
    old = load_manifest(damaged(synthetic_shards, tmp_path, forget_camera))
    assert old.camera is None and old.camera_measure is None and old.plate is None


def test_a_manifest_that_is_not_an_object_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(GanmotionError, match="manifest.json: expected a JSON object, got list"):
        load_manifest(tmp_path)
