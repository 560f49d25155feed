"""The room behind the person: whether the camera is static, and for a static camera the
background plate (the room without the person) in source-frame pixels.

Camera. Every k-th frame (k = ceil(frames / `CAMERA_FRAMES`), so at most 120 frames) is
decoded, turned grey and shrunk to `CAMERA_SIDE` (160) px on its long side; the person's mask
is shrunk alike (any coverage counts) and grown by one pixel. Each pixel's temporal median
over the frames where it is background is the room as a static camera would see it. The
figure is the 90th percentile of |frame - median| over all background pixels of all sampled
frames, in grey levels (0-255), after removing each frame's median difference (so an
exposure change does not count as motion); pixels seen as background in fewer than two
frames are left out. The camera is static when the figure is at most `STATIC_THRESHOLD`
(6 grey levels). A static camera leaves codec noise (the synthetic clip: 1), a panning or
zooming one moves every edge (taichi2: about 16). A percentile, not the median: on a plain
wall a moving camera changes few pixels, and the median of the residuals stays near 0.
Memory: the sampled frames at 160 px (about 2 MB), whatever the video's size.

Plate. The per-pixel median of the background pixels of evenly spaced frames, at full
resolution: every j-th frame, j = ceil(frames / n), where n holds the frames' pixels and
masks (4 bytes a pixel) in `PLATE_MEMORY` (256 MiB), between `PLATE_MIN_FRAMES` (25) and
`PLATE_MAX_FRAMES` (120): 92 frames at 960x720, 30 at 1920x1080, 25 at 3840x2160 (which
exceeds the budget: 830 MB). The frames are collected during the shard pass, which decodes
every frame anyway. Near the person a pixel is not quite the room (a segmentation's soft
edge, hair, anti-aliasing, shadows at the feet), so each pixel's median takes only the
frames where it lies farthest from the person: at least `PLATE_MARGIN` (1%) of the frame's
long side away (`PLATE_MIN_MARGIN`, 4 px, at least) when some frames allow it. Pixels that
are never that far from the person are holes, filled by OpenCV's Telea inpainting from the
room around them (filling them with their farthest frames instead left a ghost of the
person's colours there); the manifest records the share filled.

    measure = measure_camera(video, masks, frames)          # CameraMeasure
    plate = PlateBuilder(frames, height, width)
    for index, frame in enumerate(read_frames(video)):
        if plate.wants(index):
            plate.add(frame, masks(index))
    image, filled = plate.result()                          # (H, W, 3) uint8 RGB, share

Backdrop. What the training stream composes each crop over: the plate cut by the sample's
box (static camera) or the sample itself (moving camera), and the crop pixels that lie
inside the source frame. Where a crop leaves the frame, the plate is reflected like the
frame (`crop_frame`), and the stream shows the plate's padding in the real image too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from ganmotion.data.crop import crop_frame
from ganmotion.data.manifest import CameraMeasure, Manifest
from ganmotion.data.masks import MasksOfFrames
from ganmotion.errors import GanmotionError
from ganmotion.video import read_frames

CAMERA_FRAMES = 120
CAMERA_SIDE = 160
CAMERA_PERCENTILE = 90
STATIC_THRESHOLD = 6.0
PLATE_MEMORY = 256 << 20
PLATE_MIN_FRAMES = 25
PLATE_MAX_FRAMES = 120
PLATE_MARGIN = 0.01  # plate pixels this share of the long side from the person are the room
PLATE_MIN_MARGIN = 4  # ... or at least this many pixels
PLATE_NAME = "plate.png"

_BAND_BYTES = 32 << 20  # the median sorts this much of the plate's samples at a time


def masked_median(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over axis 0 of uint8 `values` (P, ...) counting only where `valid` (P, ...) is
    true; `valid` has `values`' shape or lacks its last (channel) axis.

    Returns the median (values' shape without axis 0) uint8, the mean of the two middle
    values rounded up for an even count, and the count of valid values (valid's shape
    without axis 0); the median is 0 where the count is 0.
    """
    count = valid.sum(axis=0, dtype=np.int32)
    if valid.ndim < values.ndim:
        valid = valid[..., None]
        count_v = np.broadcast_to(count[..., None], values.shape[1:])
    else:
        count_v = count
    # Invalid samples sort after every uint8 value, so the valid ones come first.
    ordered = np.where(valid, values.astype(np.uint16), np.uint16(256))
    ordered.sort(axis=0)
    low = np.take_along_axis(ordered, np.maximum(count_v - 1, 0)[None] // 2, axis=0)[0]
    high = np.take_along_axis(ordered, (count_v // 2).clip(max=len(values) - 1)[None], axis=0)[0]
    median = (low.astype(np.uint32) + np.where(count_v > 0, high, low) + 1) // 2
    return np.where(count_v > 0, median, 0).astype(np.uint8), count


def _every(frames: int, at_most: int) -> int:
    return max(1, math.ceil(frames / at_most))


def measure_camera(
    video: str | os.PathLike, masks: MasksOfFrames, frames: int
) -> tuple[CameraMeasure, int]:
    """How much the background moves in `video` of `frames` frames (`masks(i)` is frame i's
    person mask or None; see the module docstring), and how many frames the video decoded
    to (frames past `frames` are not sampled)."""
    every = _every(frames, CAMERA_FRAMES)
    greys, people = [], []
    decoded = 0
    for index, frame in enumerate(read_frames(video)):
        decoded += 1
        if index % every or index >= frames:
            continue
        height, width = frame.shape[:2]
        scale = min(1.0, CAMERA_SIDE / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        greys.append(cv2.resize(grey, size, interpolation=cv2.INTER_AREA))
        mask = masks(index)
        if mask is None:
            people.append(np.zeros(size[::-1], bool))
        else:
            small = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
            people.append(cv2.dilate(small, np.ones((3, 3), np.uint8)) > 0)
    if not greys:
        raise GanmotionError(f"{video}: contains no frames (empty video)")
    grey, background = np.stack(greys), ~np.stack(people)
    median, count = masked_median(grey, background)
    counted = background & (count >= 2)
    residual = grey.astype(np.float32) - median
    figure = 0.0
    if counted.any():
        for i in range(len(residual)):  # each frame's exposure offset out
            if counted[i].any():
                residual[i] -= np.median(residual[i][counted[i]])
        figure = float(np.percentile(np.abs(residual[counted]), CAMERA_PERCENTILE))
    measure = CameraMeasure(
        residual=round(figure, 2),
        threshold=STATIC_THRESHOLD,
        frames=len(greys),
        side=int(max(grey.shape[1:])),
    )
    return measure, decoded


def plate_frames(height: int, width: int) -> int:
    """How many frames a plate of a height x width video is the median of (at most)."""
    fits = PLATE_MEMORY // (4 * height * width)
    return int(min(PLATE_MAX_FRAMES, max(PLATE_MIN_FRAMES, fits)))


class PlateBuilder:
    """Collects evenly spaced frames and their person masks during a pass over a video of
    `frames` frames, height x width, and makes the background plate of them."""

    def __init__(self, frames: int, height: int, width: int):
        self.height, self.width = height, width
        self.every = _every(frames, plate_frames(height, width))
        self.margin = min(255, max(PLATE_MIN_MARGIN, math.ceil(PLATE_MARGIN * max(height, width))))
        self._frames: list[np.ndarray] = []
        self._distances: list[np.ndarray] = []  # to the person, pixels, capped at the margin

    def wants(self, index: int) -> bool:
        return index % self.every == 0

    def add(self, frame: np.ndarray, mask: np.ndarray | None) -> None:
        """Take one frame (H, W, 3) uint8 RGB and its person mask (H, W) 0/255 or None."""
        distance = np.full((self.height, self.width), self.margin, np.uint8)
        if mask is not None and mask.any():
            free = (mask == 0).astype(np.uint8)
            euclid = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            distance = np.minimum(np.floor(euclid), self.margin).astype(np.uint8)
        self._frames.append(frame)
        self._distances.append(distance)

    @property
    def count(self) -> int:
        return len(self._frames)

    def result(self) -> tuple[np.ndarray, float]:
        """The plate (H, W, 3) uint8 RGB and the share of its pixels that were holes (never
        the margin away from the person) and are filled."""
        if not self._frames:
            raise GanmotionError("no frames were collected for the background plate")
        plate = np.zeros((self.height, self.width, 3), np.uint8)
        holes = np.zeros((self.height, self.width), bool)
        band = max(1, _BAND_BYTES // (2 * len(self._frames) * self.width * 3))
        for top in range(0, self.height, band):
            rows = slice(top, top + band)
            values = np.stack([frame[rows] for frame in self._frames])
            distances = np.stack([distance[rows] for distance in self._distances])
            farthest = distances.max(axis=0)
            plate[rows], _ = masked_median(values, distances >= farthest)
            holes[rows] = farthest < self.margin
        if holes.any():
            bgr = cv2.cvtColor(plate, cv2.COLOR_RGB2BGR)
            filled = cv2.inpaint(bgr, holes.astype(np.uint8), 3, cv2.INPAINT_TELEA)
            plate = cv2.cvtColor(filled, cv2.COLOR_BGR2RGB)
        return plate, float(holes.mean())


def write_plate(path: str | os.PathLike, plate: np.ndarray) -> None:
    """Write a plate (H, W, 3) uint8 RGB as a PNG (lossless)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(plate, cv2.COLOR_RGB2BGR)):
        raise GanmotionError(f"{path}: cannot write the background plate")


def load_plate(root: str | os.PathLike, manifest: Manifest) -> np.ndarray | None:
    """The background plate of a local shard directory (H, W, 3) uint8 RGB in source-frame
    pixels, or None when its camera is not static (or it was prepared before plates)."""
    if manifest.plate is None:
        return None
    path = Path(root) / manifest.plate.file
    plate = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if plate is None:
        raise GanmotionError(f"{path}: missing or not a readable image")
    if plate.shape[:2] != (manifest.source.height, manifest.source.width):
        raise GanmotionError(
            f"{path}: the plate is {plate.shape[1]}x{plate.shape[0]} but the source video is "
            f"{manifest.source.width}x{manifest.source.height}"
        )
    return cv2.cvtColor(plate, cv2.COLOR_BGR2RGB)


def crop_plate(plate: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The plate cut like the sample whose `box.npy` is `box` ((3,) int: x0, y0, side of the
    square of source pixels): (size, size, 3) uint8 RGB; where the square leaves the frame,
    reflected about its edge like the sample's jpg (which is black there in shards prepared
    before; the training stream shows the plate there in both)."""
    x0, y0, side = (int(v) for v in box)
    return crop_frame(plate, np.array([x0 + side / 2, y0 + side / 2, side], np.float64), size)


def inside_frame(box: np.ndarray, frame_size: tuple[int, int], size: int) -> np.ndarray:
    """Which pixels of a size x size crop of the square `box` ((3,) x0, y0, side in source
    pixels) show the source frame (width, height): (size, size) uint8, 255 inside, 0 on the
    padding that `crop_frame` adds where the square leaves the frame."""
    x0, y0, side = (float(v) for v in box)
    centres = (np.arange(size) + 0.5) * side / size
    width, height = frame_size
    xs, ys = x0 + centres, y0 + centres
    columns = (xs >= 0) & (xs < width)
    rows = (ys >= 0) & (ys < height)
    return (rows[:, None] & columns[None, :]).astype(np.uint8) * 255


class Backdrop:
    """What lies behind the person in each crop of a clip, and which crop pixels are real.

    For a static camera the background of a sample is the plate cut by its box; for a
    moving one (no plate) it is the sample's own image, whose room the generator then never
    has to draw (the loss over the person is what is left). `inside` marks the pixels of the
    crop that the source frame covers: the padding where the crop leaves the frame (the
    frame reflected; black in shards prepared before) is no part of the person or the room,
    and losses leave it out. With a plate, the training stream puts the plate's padding into
    the real image there (`stream.transform_sample`), as a composed image shows it.

        backdrop = Backdrop.of_shards(root, manifest)
        background, inside = backdrop(box, image)   # (S, S, 3) uint8, (S, S) uint8 0/255

    A fixed crop has one box for the whole clip: the plate cut by the last few boxes is
    kept, so that cutting (about 1 ms from a 1080p plate) is not paid per sample.
    """

    def __init__(self, plate: np.ndarray | None, frame_size: tuple[int, int] | None):
        self.plate, self.frame_size = plate, frame_size
        self._cut: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def of_shards(cls, root: str | os.PathLike, manifest: Manifest) -> Backdrop:
        """The backdrop of a shard folder: its plate (when local and static) and frame size.
        Shards read from a URL have no local plate: their samples compose over themselves."""
        local = Path(root).is_dir()
        plate = load_plate(root, manifest) if local else None
        return cls(plate, (manifest.source.width, manifest.source.height))

    def __call__(self, box: np.ndarray | None, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(background (S, S, 3) uint8 RGB, inside (S, S) uint8 0/255) of a sample's crop
        `image` (S, S, 3) cut by `box` (None for shards prepared before boxes: then all of
        the crop counts as inside and the image is its own background)."""
        size = image.shape[0]
        if box is None or self.frame_size is None:
            return image, np.full((size, size), 255, np.uint8)
        key = (*(int(v) for v in box), size)
        if key not in self._cut:
            if len(self._cut) >= 8:
                self._cut.clear()
            plate = None if self.plate is None else crop_plate(self.plate, box, size)
            self._cut[key] = plate, inside_frame(box, self.frame_size, size)
        plate, inside = self._cut[key]
        return (image if plate is None else plate), inside

    def typical_plate(self, boxes: list[np.ndarray], size: int) -> np.ndarray:
        """A static camera's one background at inference (size, size, 3) uint8 RGB: the
        plate cut by the samples' median box (for a fixed crop, the box)."""
        assert self.plate is not None and boxes
        return crop_plate(self.plate, np.median(np.stack(boxes), axis=0).round(), size)

    def mean_room(
        self, samples: Iterable[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]], size: int
    ) -> np.ndarray:
        """A moving camera's one background at inference (size, size, 3) uint8 RGB, from
        some of the clip's samples (image (S, S, 3), mask (S, S) or None, box or None): the
        mean of their room, pixel by pixel, over the samples where that pixel is neither
        person nor padding (the clip's mean colour where none is). A moving camera has no
        room to put back; this average is what the runner shows unless given another."""
        total = np.zeros((size, size, 3), np.float64)
        count = np.zeros((size, size, 1), np.float64)
        for image, mask, box in samples:
            resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            _, inside = self(box, image)
            room = inside > 0 if mask is None else (inside > 0) & (mask < 128)
            room = cv2.resize(room.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
            total += resized * room[..., None]
            count += room[..., None]
        if not count.any():
            raise GanmotionError("no samples to take a background from")
        mean = total.sum((0, 1)) / count.sum()
        room = np.where(count > 0, total / np.maximum(count, 1), mean)
        return room.round().clip(0, 255).astype(np.uint8)
