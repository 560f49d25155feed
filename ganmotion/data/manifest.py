"""The manifest that describes a directory of shards, and the shard URLs it lists.

A shard root is a local directory or an http(s) URL of one; both hold `manifest.json` and
the tars `{split}-{index:06d}.tar` it names.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ganmotion.config import config_to_dict, from_dict, ranged
from ganmotion.errors import GanmotionError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ShardEntry:
    """One tar of a split: its file name beside manifest.json and its sample count."""

    name: str
    samples: int = ranged(0, 0)


@dataclass(frozen=True)
class SplitEntry:
    """One split: the contiguous source frames [start, end) it was cut from, its samples."""

    frame_range: tuple[int, int]
    samples: int = ranged(0, 0)
    shards: tuple[ShardEntry, ...] = ()


@dataclass(frozen=True)
class SourceVideo:
    """The video the shards were prepared from, and where its keypoints and masks came from.

    keypoints: "mediapipe-pose", or "given" (a keypoints file).
    masks: where each sample's `mask.png` came from: "mediapipe-pose" (its segmentation),
        "given" (a masks file, such as a synthetic clip's); None for shards prepared before
        ganmotion stored masks, whose samples have none.
    """

    video: str
    sha256: str
    width: int = ranged(0, 1)
    height: int = ranged(0, 1)
    fps: float = ranged(0.0, 0, low_open=True)
    keypoints: str = "mediapipe-pose"
    masks: Literal["mediapipe-pose", "given"] | None = None


@dataclass(frozen=True)
class FrameCounts:
    """Frames of the source video: read, kept as samples, skipped for want of a person, and
    kept without a mask (given keypoints show a person where MediaPipe segmented no one);
    `declared` is what its container declares (0: unknown, or manifests written before it),
    more than `read` when the file was cut short and accepted (`prepare --accept-truncated`)."""

    read: int = ranged(0, 0)
    kept: int = ranged(0, 0)
    skipped_no_person: int = ranged(0, 0)
    kept_without_mask: int = ranged(0, 0)
    declared: int = ranged(0, 0)


@dataclass(frozen=True)
class CameraMeasure:
    """The figure that decided `Manifest.camera` (`ganmotion.data.background` measures it).

    residual: 90th percentile of |frame - temporal median| over the background pixels of
        the sampled frames, in grey levels (0-255), each frame's median difference removed.
    threshold: the camera is static when `residual` is at most this.
    frames: frames sampled, evenly spaced over the video.
    side: long side, in pixels, the frames were shrunk to for the measurement.
    """

    residual: float = ranged(0.0, 0)
    threshold: float = ranged(6.0, 0)
    frames: int = ranged(1, 1)
    side: int = ranged(1, 1)

    @property
    def motion(self) -> Literal["static", "moving"]:
        return "static" if self.residual <= self.threshold else "moving"


@dataclass(frozen=True)
class PlateEntry:
    """The background plate of a static camera: the room without the person.

    file: its PNG beside manifest.json, (source height, source width) RGB in source-frame
        pixels; a sample's `box.npy` cuts it like the sample's jpg
        (`ganmotion.data.background.crop_plate`).
    frames: evenly spaced frames it is the per-pixel median of.
    filled: share of its pixels that were never at least a margin (1% of the long side, at
        least 4 px) away from the person in those frames, filled by inpainting.
    """

    file: str
    frames: int = ranged(1, 1)
    filled: float = ranged(0.0, 0, 1)


@dataclass(frozen=True)
class Manifest:
    """What `prepare` wrote: manifest.json, read back typed (DESIGN.md, "Shards").

    image_size: side of the square crops in the shards.
    crop_policy: the crop settings (`CropPolicy.to_json()`); `kind` is "smoothed-square"
        (a crop that tracks the person) or "fixed-square" (one box for the whole clip, in
        `box`); `requested` is what `--crop` asked for and `reason` why the kind was chosen;
        `pad` what fills a crop where it leaves the frame: "reflect" (the frame reflected
        about its edge) or, in shards prepared before, "constant-black".
    body: the training poses' body statistics (`BodyStats.to_json()`), the target that
        retargeting maps onto; None when no training frame shows a whole body.
    splits: "train" and (usually) "val", in the order written.
    camera: "static" or "moving", as `camera_measure` decided; None (with `camera_measure`
        and `plate`) for shards prepared before ganmotion measured the camera.
    plate: the background plate, for a static camera; None for a moving one.
    """

    manifest_version: int
    keypoint_schema: str
    image_size: int
    source: SourceVideo
    frames: FrameCounts
    crop_policy: dict
    body: dict | None
    splits: dict[str, SplitEntry]
    jpeg_quality: int = ranged(95, 1, 100)
    camera: Literal["static", "moving"] | None = None
    camera_measure: CameraMeasure | None = None
    plate: PlateEntry | None = None

    def __post_init__(self):
        if not 16 <= self.image_size <= 4096:
            raise GanmotionError(f"image_size must be in [16, 4096], got {self.image_size}")

    def to_json(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_json(cls, data: object, where: str) -> Manifest:
        """A manifest from parsed JSON; anything missing or mistyped is a one-line error
        that names `where` and the key."""
        if not isinstance(data, dict):
            raise GanmotionError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if data.get("manifest_version") != MANIFEST_VERSION:
            raise GanmotionError(
                f"{where}: manifest version {data.get('manifest_version')!r} is not "
                f"{MANIFEST_VERSION}; prepare the shards again with this ganmotion"
            )
        try:
            manifest = from_dict(cls, data, where)
        except GanmotionError as error:
            if ": missing key " not in str(error):
                raise
            raise GanmotionError(f"{error}; prepare the shards again with this ganmotion") from None
        if not manifest.splits.get("train") or not manifest.splits["train"].shards:
            raise GanmotionError(f"{where}: no train split with shards")
        for name, split in manifest.splits.items():
            listed = sum(shard.samples for shard in split.shards)
            if listed != split.samples:
                raise GanmotionError(
                    f"{where}: splits.{name}.samples is {split.samples}, but its shards "
                    f"list {listed}"
                )
        return manifest

    @property
    def has_masks(self) -> bool:
        """Whether the samples carry `mask.png` (all but `frames.kept_without_mask`)."""
        return self.source.masks is not None

    @property
    def validation_split(self) -> str:
        """The held-out split: "val", or "train" for shards prepared without one."""
        return "val" if "val" in self.splits and self.splits["val"].shards else "train"


def _is_url(root: str) -> bool:
    return root.startswith(("http://", "https://"))


def load_manifest(root: str | os.PathLike) -> Manifest:
    """Read `manifest.json` of a shard root (directory or URL)."""
    root = str(root)
    location = f"{root.rstrip('/')}/{MANIFEST_NAME}"
    try:
        if _is_url(root):
            with urllib.request.urlopen(location, timeout=30) as response:
                text = response.read().decode()
        else:
            text = Path(location).read_text()
    except FileNotFoundError:
        raise GanmotionError(
            f"{location}: no such file (is {root} a prepared shard directory?)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise GanmotionError(f"{location}: cannot read ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise GanmotionError(f"{location}: not valid JSON ({error})") from None
    return Manifest.from_json(data, location)


def shard_urls(root: str | os.PathLike, split: str = "train") -> list[str]:
    """URLs (or paths) of the shards of one split, in order."""
    splits = load_manifest(root).splits
    if split not in splits or not splits[split].shards:
        raise GanmotionError(
            f"{root}: has no '{split}' split (splits: {', '.join(splits) or 'none'})"
        )
    base = str(root).rstrip("/")
    urls = [f"{base}/{shard.name}" for shard in splits[split].shards]
    if not _is_url(base):  # a resampled stream would retry a missing shard forever
        for url in urls:
            if not Path(url).is_file():
                raise GanmotionError(f"{url}: listed in {MANIFEST_NAME} but does not exist")
    return urls
