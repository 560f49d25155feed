"""The training stream: WebDataset shards in, batches of (skeleton, image, keypoints, mask,
background, inside) out.

    config = StreamConfig(size=512, batch_size=8)
    backdrop = Backdrop.of_shards("data/shards", load_manifest("data/shards"))
    stream = TrainingStream(shard_urls("data/shards", "train"), config, batches_per_epoch=1000,
                            backdrop=backdrop)
    for batch in stream:    # TrainingBatch: skeleton, image (B, 3, size, size) float32 in
        ...                 # [-1, 1], keypoints (B, 33, 3) in output pixels, mask (B, 1, size,
                            # size) float32 in [0, 1], background like image, inside like mask

Shards are resampled with replacement from this rank's and this loader worker's share of
the URLs, so every rank reads different shards and never runs dry; the epoch is a fixed
number of batches per rank, which keeps DDP ranks in step. Skeletons are drawn from the
(augmented) keypoints here, so their size and line width are choices of training, not of
`prepare`: `StreamConfig.skeleton`, which the trainer saves with every checkpoint. Samples
are decoded explicitly (JPEG, PNG and .npy without pickle), never by WebDataset's automatic
decoders. The person mask, the background (the plate cut like the crop, see
`Backdrop`) and the map of pixels inside the source frame go through exactly the image's
warp, so augmentation moves them all alike and draws no extra random numbers. Past the
crop's edge the warp reflects the image and the background and leaves the maps 0; with a
plate, the image shows the plate wherever it is outside the frame (`transform_sample`).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch
import webdataset as wds

from ganmotion.config import check_ranges, ranged
from ganmotion.data.background import Backdrop
from ganmotion.data.manifest import MANIFEST_NAME
from ganmotion.errors import GanmotionError
from ganmotion.images import to_unit_range
from ganmotion.pose.render import SkeletonStyle
from ganmotion.pose.schema import FLIP_PERMUTATION, NUM_JOINTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamConfig:
    """How shards become batches.

    size: side of the square images in the batches (crops are resized if they differ).
    batch_size: samples per batch, per rank.
    shuffle_buffer: samples held in the shuffle buffer (per loader worker).
    augment: apply the random scale/shift/flip below.
    max_scale: zoom uniformly in [1 - max_scale, 1 + max_scale].
    max_shift: shift uniformly up to this fraction of `size` along each axis.
    flip_probability: chance of a horizontal mirror (left and right joints swap).
    line_thickness: skeleton limb width in pixels; None picks one for `size`.
    joint_radius: skeleton joint dot radius in pixels; None picks one for the limb width.
    occluded: skeleton brightness (0 to 1) of the joints the detector marks hidden (visibility
        below 0.5) and their limbs, drawn under the visible ones; 0 leaves them out.
    seed: base of every random choice; with the epoch, rank and worker it fixes the stream.
    """

    size: int = ranged(512, 16, 4096)
    batch_size: int = ranged(8, 1, 4096)
    shuffle_buffer: int = ranged(256, 1)
    augment: bool = True
    max_scale: float = ranged(0.1, 0, 1, high_open=True)
    max_shift: float = ranged(0.05, 0, 1)
    flip_probability: float = ranged(0.5, 0, 1)
    line_thickness: int | None = ranged(None, 1, 64)
    joint_radius: int | None = ranged(None, 0, 64)
    occluded: float = ranged(0.0, 0, 1)
    seed: int = ranged(0, 0)

    def __post_init__(self):
        check_ranges(self)

    @property
    def skeleton(self) -> SkeletonStyle:
        """How this stream draws skeletons: what a model trained on it must be given."""
        return SkeletonStyle.for_size(
            self.size, self.line_thickness, self.joint_radius, self.occluded
        )


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def _worker_info() -> tuple[int, int, int, int]:
    """(rank, world size, loader worker, loader workers) of the calling process."""
    return wds.utils.pytorch_worker_info()


def shards_for(urls: list[str], rank: int, world_size: int, worker: int, workers: int) -> list[str]:
    """The shards one rank's loader worker reads: split by rank, then by worker.

    With fewer shards than readers, readers share shards rather than sit idle.
    """
    mine = urls[rank::world_size] if len(urls) >= world_size else urls
    return mine[worker::workers] if len(mine) >= workers else mine


class ResampledRankShards(torch.utils.data.IterableDataset):
    """An endless stream of `dict(url=...)` drawn with replacement from this reader's shards."""

    def __init__(self, urls: list[str], seed: int, epoch: int):
        super().__init__()
        self.urls, self.seed, self.epoch = urls, seed, epoch
        self.opened: list[str] = []  # in-process record, for tests and debugging

    def __iter__(self) -> Iterator[dict]:
        rank, world_size, worker, workers = _worker_info()
        mine = shards_for(self.urls, rank, world_size, worker, workers)
        if len(self.urls) < world_size * workers and worker == 0 and rank == 0:
            log.warning(
                "%d shards for %d ranks x %d workers: readers share shards; prepare with a "
                "smaller --samples-per-shard for more",
                len(self.urls),
                world_size,
                workers,
            )
        rng = random.Random(_seed(self.seed, self.epoch, rank, worker))
        while True:
            url = rng.choice(mine)
            self.opened.append(url)
            yield {"url": url}


# When unreadable data stops the stream instead of being skipped: a reader that loops over
# dead shards (all corrupt, HTTP 404, a server gone) would otherwise never end a step, print
# warnings by the million and never see a preemption signal (issue 15).
MAX_FAILURES_IN_A_ROW = 32  # per reader: shards opened, or samples decoded, with no success
MAX_FAILED_SHARE = 0.5  # of the samples read, once MIN_READ_FOR_SHARE have been tried
MIN_READ_FOR_SHARE = 200
WARNINGS_IN_FULL = 3  # then one warning at each power of ten


class SkippedData:
    """A WebDataset error handler: warn about unreadable data, count it, carry on; until too
    much of it is unreadable (`MAX_FAILURES_IN_A_ROW` in a row, or more than `max_share` of
    what was read), which raises a `GanmotionError` naming the last failure. `succeeded()`
    counts a good read (and ends a row of failures).

    `what` names the unit in messages: "shard" where whole shards fail to open or read (a
    good read is a sample, so no share applies), "sample" where one sample fails to decode.
    """

    def __init__(self, what: str = "shard", max_share: float | None = None) -> None:
        self.what, self.max_share = what, max_share
        self.count = 0  # failures so far
        self.good = 0
        self.in_a_row = 0

    def succeeded(self) -> None:
        self.good += 1
        self.in_a_row = 0

    def __call__(self, error: Exception) -> bool:
        self.count += 1
        self.in_a_row += 1
        seen = self.count + self.good
        why = describe(error)
        if self.in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise GanmotionError(
                f"{self.in_a_row} {self.what}s in a row could not be read; the last: {why}"
            ) from None
        share = self.max_share
        if share is not None and seen >= MIN_READ_FOR_SHARE and self.count > share * seen:
            raise GanmotionError(
                f"{self.count} of {seen} {self.what}s could not be read (more than "
                f"{share:.0%}); the last: {why}"
            ) from None
        if self.count <= WARNINGS_IN_FULL or math.log10(self.count).is_integer():
            log.warning("skipping unreadable %s data (%d so far in this reader): %s",
                        self.what, self.count, why)  # fmt: skip
        return True


def describe(error: Exception) -> str:
    """One line for an error of reading shard data. WebDataset appends the stream and the
    shard's URL to a tar error's arguments ("invalid header", <stream>, url), and " @ <stream>"
    to the cause of one inside a member: say url: cause, without the stream's repr."""
    args = error.args
    if isinstance(error, GanmotionError):
        return str(error)
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[-1], str):
        cause = args[0].split(" @ <", 1)[0]
        return f"{args[-1]}: {cause} ({type(error).__name__})"
    return f"{type(error).__name__}: {error}"


def _read_ok(handler: SkippedData):
    """Pipeline stage: count every sample that the tar reader yields as a good read."""

    def stage(samples: Iterator[dict]) -> Iterator[dict]:
        for sample in samples:
            handler.succeeded()
            yield sample

    return stage


def load_npy(sample: dict, name: str) -> np.ndarray:
    """A sample's .npy entry `name` as a plain array; an object array (which would need
    pickle) or a damaged file is an error naming the sample and the entry."""
    try:
        return np.load(io.BytesIO(sample[name]), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        key = sample.get("__key__", "?")
        raise GanmotionError(f"sample {key}: {name} is not a plain .npy array ({error})") from None


def decode_box(sample: dict) -> np.ndarray | None:
    """A sample's `box.npy` ((3,) x0, y0, side of its square in source pixels), or None for
    samples prepared before boxes."""
    if "box.npy" not in sample:
        return None
    box = load_npy(sample, "box.npy")
    if box.shape != (3,):
        key = sample.get("__key__", "?")
        raise GanmotionError(f"sample {key}: box.npy is {box.shape}, not (3,)")
    return box


def decode_sample(sample: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(RGB uint8 image (H, W, 3), keypoints (33, 3) float32 in its pixels, person mask
    (H, W) uint8 0/255 or None when the sample has no `mask.png`) of one sample."""
    key = sample.get("__key__", "?")
    if "jpg" not in sample or "pose.npy" not in sample:
        raise GanmotionError(f"sample {key}: needs 'jpg' and 'pose.npy', has {sorted(sample)}")
    image = cv2.imdecode(np.frombuffer(sample["jpg"], np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise GanmotionError(f"sample {key}: 'jpg' is not a decodable image")
    keypoints = load_npy(sample, "pose.npy")
    if keypoints.shape != (NUM_JOINTS, 3) or keypoints.dtype.kind not in "fiu":
        raise GanmotionError(
            f"sample {key}: pose.npy is {keypoints.shape} {keypoints.dtype}, not "
            f"({NUM_JOINTS}, 3) numbers"
        )
    mask = None
    if "mask.png" in sample:
        mask = cv2.imdecode(np.frombuffer(sample["mask.png"], np.uint8), cv2.IMREAD_UNCHANGED)
        if mask is None or mask.ndim != 2 or mask.dtype != np.uint8:
            raise GanmotionError(f"sample {key}: 'mask.png' is not a decodable 8-bit grey image")
        if mask.shape != image.shape[:2]:
            raise GanmotionError(
                f"sample {key}: mask.png is {mask.shape[1]}x{mask.shape[0]}, "
                f"its jpg {image.shape[1]}x{image.shape[0]}"
            )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), keypoints.astype(np.float32), mask


def augmentation_matrix(
    source_size: int, config: StreamConfig, rng: np.random.Generator | None
) -> tuple[np.ndarray, bool]:
    """The 2x3 affine map from source to output pixels, and whether it mirrors.

    Resizes from `source_size` to `config.size`, then (with `rng`) zooms about the centre,
    shifts and maybe mirrors. Pixel centres are integers on both sides, as in OpenCV.
    """
    scale = config.size / source_size
    zoom, shift, flip = 1.0, np.zeros(2), False
    if rng is not None:
        zoom = rng.uniform(1 - config.max_scale, 1 + config.max_scale)
        shift = rng.uniform(-config.max_shift, config.max_shift, 2) * config.size
        flip = bool(rng.random() < config.flip_probability)
    centre = (config.size - 1) / 2
    # resize: out = (in + 0.5) * scale - 0.5; then zoom about the centre; then shift.
    a = scale * zoom
    offset = ((0.5 * scale - 0.5) - centre) * zoom + centre + shift
    matrix = np.array([[a, 0.0, offset[0]], [0.0, a, offset[1]]])
    if flip:
        matrix = np.array([[-1.0, 0.0, config.size - 1], [0.0, 1.0, 0.0]]) @ np.vstack(
            [matrix, [0, 0, 1]]
        )
    return matrix, flip


# Past the crop's edge, images continue as their reflection (a black border would be one
# more thing a critic tells real crops by) and maps are 0: no person, not the frame.
IMAGE_BORDER = cv2.BORDER_REFLECT_101
MAP_BORDER = cv2.BORDER_CONSTANT


def _warp(image: np.ndarray, matrix: np.ndarray, size: int, border: int = MAP_BORDER) -> np.ndarray:
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0
    )


def _overreach(matrix: np.ndarray, shape: tuple[int, ...], size: int) -> int:
    """How many pixels past the edges of an image of `shape` (H, W, ...) the warp `matrix`
    to size x size reads, with a margin for the bilinear taps."""
    corners = np.array([[0, size - 1, 0, size - 1], [0, 0, size - 1, size - 1], [1, 1, 1, 1]])
    x, y = cv2.invertAffineTransform(matrix) @ corners  # where the output's corners come from
    height, width = shape[:2]
    past = max(-x.min(), -y.min(), x.max() - (width - 1), y.max() - (height - 1), 0)
    return math.ceil(past) + 2


def _warp_pair(
    image: np.ndarray, a_map: np.ndarray, matrix: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Warp an image (H, W, 3) and a map (H, W) alike, each with its own border: the image
    reflected past its edge, the map 0 there.

    One 4-channel warp: a warp costs about the same for 1 to 4 channels. Each part is padded
    with its border beforehand, as far as the warp reads, which gives the pixels of warping
    it alone with that border, bit for bit, and is faster than OpenCV's reflection pixel by
    pixel inside the warp (at 512 px, `transform_sample` with a plate took about 4 ms
    this way, 6.5 as two warps reflecting inside and one of both maps).
    """
    pad = _overreach(matrix, image.shape, size)
    if pad > max(image.shape[:2]):  # zoomed far out: padding would cost more than it saves
        return _warp(image, matrix, size, IMAGE_BORDER), _warp(a_map, matrix, size)
    padded = cv2.merge(
        [
            *cv2.split(cv2.copyMakeBorder(image, pad, pad, pad, pad, IMAGE_BORDER)),
            cv2.copyMakeBorder(a_map, pad, pad, pad, pad, MAP_BORDER, value=0),
        ]
    )
    shifted = matrix.copy()  # the source moved by (pad, pad)
    shifted[:, 2] -= matrix[:, :2] @ (pad, pad)
    both = _warp(padded, shifted, size)
    # Contiguous parts: OpenCV splits them off in microseconds, numpy's strided copy (in the
    # batch's np.stack) took longer than the warp.
    return cv2.cvtColor(both, cv2.COLOR_RGBA2RGB), cv2.extractChannel(both, 3)


class Warped(NamedTuple):
    """One sample after `transform_sample`: images (size, size, 3) uint8 RGB, maps (size,
    size) uint8 0-255 (soft along edges where the warp interpolates), keypoints in its
    pixels."""

    image: np.ndarray
    keypoints: np.ndarray  # (33, 3) float32
    mask: np.ndarray
    background: np.ndarray
    inside: np.ndarray


def transform_sample(
    image: np.ndarray,
    keypoints: np.ndarray,
    mask: np.ndarray,
    config: StreamConfig,
    rng: np.random.Generator | None,
    background: np.ndarray | None = None,
    inside: np.ndarray | None = None,
) -> Warped:
    """Resize (and with `rng`, augment) an image (H, W, 3), its keypoints (33, 3), its
    person mask (H, W) uint8, its background (H, W, 3) (default: the image itself) and the
    map of its pixels inside the source frame (H, W) uint8 (default: all) together. Where
    the warp reaches past them, image and background are reflected, mask and inside 0.

    With a background that is not the image (a static camera's plate), the image's pixels
    outside the frame (inside 0) are the background's: a composed image shows the plate
    there, and the real one would otherwise show the frame reflected, which can mirror the
    person (feet near the bottom edge); a critic would tell them apart by the padding.

    Image and mask are warped as one 4-channel image, background and inside as another
    (`_warp_pair`), so none can drift from the others. A sample that is its own background
    costs one 1-channel warp more, not a 4-channel one.
    """
    matrix, flip = augmentation_matrix(image.shape[0], config, rng)
    size = config.size
    if inside is None:
        inside = np.full(image.shape[:2], 255, np.uint8)
    moved = keypoints.copy()
    moved[:, :2] = keypoints[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    if flip:
        moved = moved[FLIP_PERMUTATION]
    warped_image, warped_mask = _warp_pair(image, mask, matrix, size)
    if background is None or background is image:
        warped_background, warped_inside = warped_image, _warp(inside, matrix, size)
    else:
        warped_background, warped_inside = _warp_pair(background, inside, matrix, size)
        # cv2.copyTo: 0.05 ms at 512 px, where np.copyto(..., where=) took 4.
        outside = (warped_inside == 0).view(np.uint8)
        warped_image = cv2.copyTo(warped_background, outside, warped_image)
    return Warped(warped_image, moved, warped_mask, warped_background, warped_inside)


class _Shuffle:
    """Pipeline stage: a shuffle buffer seeded per rank and worker when iteration starts (in
    the worker process, which a seed fixed when the pipeline was built would not know)."""

    def __init__(self, buffer: int, seed: int, epoch: int):
        self.buffer, self.seed, self.epoch = buffer, seed, epoch

    def __call__(self, samples: Iterator[dict]) -> Iterator[dict]:
        rank, _, worker, _ = _worker_info()
        rng = random.Random(_seed(self.seed, self.epoch, rank, worker, 2))
        held: list[dict] = []
        for sample in samples:
            held.append(sample)
            if len(held) >= self.buffer:
                index = rng.randrange(len(held))
                held[index], held[-1] = held[-1], held[index]
                yield held.pop()
        rng.shuffle(held)
        yield from held


_warned_no_mask = False  # see _Samples.unknown_mask


class _Samples:
    """Pipeline stage: raw samples -> (skeleton, image, keypoints, mask, background, inside):
    uint8 (size, size, 3) x2, float32 (33, 3) in output pixels, uint8 (size, size) 0-255,
    uint8 (size, size, 3), uint8 (size, size) 0-255."""

    def __init__(
        self, config: StreamConfig, epoch: int, handler: SkippedData, backdrop: Backdrop | None
    ):
        self.config, self.epoch, self.handler = config, epoch, handler
        self.skeleton = config.skeleton
        self.backdrop = backdrop or Backdrop(None, None)

    def __call__(self, samples: Iterator[dict]) -> Iterator[tuple[np.ndarray, ...]]:
        rank, _, worker, _ = _worker_info()
        rng = np.random.default_rng(_seed(self.config.seed, self.epoch, rank, worker, 1))
        for sample in samples:
            try:
                image, keypoints, mask = decode_sample(sample)
                background, inside = self.backdrop(decode_box(sample), image)
            except Exception as error:  # a bad sample must not end the stream (but see
                where = sample.get("__url__", "?")  # SkippedData: many bad ones do)
                self.handler(GanmotionError(f"{where}: {describe(error)}"))
                continue
            self.handler.succeeded()
            if mask is None:
                mask = self.unknown_mask(image, sample)
            warped = transform_sample(
                image,
                keypoints,
                mask,
                self.config,
                rng if self.config.augment else None,
                background,
                inside,
            )
            yield self.skeleton.render(warped.keypoints), *warped

    @staticmethod
    def unknown_mask(image: np.ndarray, sample: dict) -> np.ndarray:
        """The mask of a sample without one: the whole crop. Shards prepared before masks
        have none (and so do frames where given keypoints show a person MediaPipe missed).

        They still train, as they did before masks: with a mask of all ones a loss over
        the person is the loss over the whole image, and an alpha supervised by it asks the
        generator to draw every pixel itself, which is what it did without composition.
        Refusing them would make people prepare again only to keep what they had.
        """
        global _warned_no_mask
        if not _warned_no_mask:  # once per process: every epoch builds a new pipeline
            _warned_no_mask = True
            log.warning(
                "sample %s (%s) has no mask.png, so its mask is the whole crop; shards "
                "prepared before person masks have none: prepare again to get them",
                sample.get("__key__", "?"),
                sample.get("__url__", "?"),
            )
        return np.full(image.shape[:2], 255, np.uint8)


def _collate(samples: list[tuple[np.ndarray, ...]]) -> tuple[torch.Tensor, ...]:
    """Stack (H, W, 3) uint8 images into (B, 3, H, W) uint8 tensors, keypoints into (B, 33,
    3), maps (H, W) uint8 into (B, 1, H, W), in `TrainingBatch`'s order.

    Batches stay uint8 until they leave the loader: a float32 batch is 4x the bytes to pass
    from worker processes (and to a GPU), and that copy, not decoding, was the bottleneck.
    """
    skeletons, images, keypoints, masks, backgrounds, insides = zip(*samples)
    return (
        torch.from_numpy(np.stack(skeletons)).permute(0, 3, 1, 2),
        torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2),
        torch.from_numpy(np.stack(keypoints)),
        torch.from_numpy(np.stack(masks)).unsqueeze(1),
        torch.from_numpy(np.stack(backgrounds)).permute(0, 3, 1, 2),
        torch.from_numpy(np.stack(insides)).unsqueeze(1),
    )


class TrainingBatch(NamedTuple):
    """One batch: what the generator sees, what it should draw, the pose behind both, where
    the person is in the image, what lies behind the person, and which pixels are real."""

    skeleton: torch.Tensor  # (B, 3, H, W) float32 in [-1, 1]
    image: torch.Tensor  # (B, 3, H, W) float32 in [-1, 1]
    keypoints: torch.Tensor  # (B, 33, 3) float32: x, y in pixels of the batch images, visibility
    mask: torch.Tensor  # (B, 1, H, W) float32 in [0, 1]: the person (soft at warped edges)
    # (B, 3, H, W) float32 in [-1, 1]: the room behind the person (the plate cut like the
    # image for a static camera, else the image itself)
    background: torch.Tensor
    # (B, 1, H, W) float32 in [0, 1]: 1 where the image shows the source frame, 0 on padding
    # (where the crop or the augmentation left the frame)
    inside: torch.Tensor


def _as_batch(
    skeleton: torch.Tensor,
    image: torch.Tensor,
    keypoints: torch.Tensor,
    mask: torch.Tensor,
    background: torch.Tensor,
    inside: torch.Tensor,
) -> TrainingBatch:
    """A `TrainingBatch` of `_collate`'s uint8 tensors, converted where they are."""
    return TrainingBatch(
        to_unit_range(skeleton),
        to_unit_range(image),
        keypoints,
        mask.float() / 255,
        to_unit_range(background),
        inside.float() / 255,
    )


class TrainingStream:
    """`TrainingBatch`es: (skeleton, image) (B, 3, size, size) float32 in [-1, 1], keypoints,
    mask (B, 1, size, size) float32 in [0, 1], background and inside (see `TrainingBatch`).

    `backdrop` says what lies behind the person in each crop (`Backdrop.of_shards`); without
    one every sample is its own background and all of each crop counts as inside.

    Batches are converted to float on `device` (default: where they are, the CPU), after the
    cheaper uint8 copy. One pass (`for batch in stream`) is one epoch of `batches_per_epoch`
    batches on this rank; the next pass draws differently (the epoch enters every seed),
    unless `set_epoch` is called to replay one.
    """

    def __init__(
        self,
        urls: list[str],
        config: StreamConfig | None = None,
        batches_per_epoch: int = 100,
        num_workers: int = 0,
        device: torch.device | str | None = None,
        backdrop: Backdrop | None = None,
    ):
        if not urls:
            raise GanmotionError("no shard URLs given to the training stream")
        if batches_per_epoch < 1:
            raise GanmotionError(f"batches_per_epoch must be >= 1, got {batches_per_epoch}")
        self.urls = list(urls)
        self.config = config or StreamConfig()
        self.batches_per_epoch = batches_per_epoch
        self.num_workers = num_workers
        self.device = torch.device(device) if device is not None else None
        self.backdrop = backdrop
        self.epoch = 0
        self.skipped = SkippedData("shard")
        self.bad_samples = SkippedData("sample", MAX_FAILED_SHARE)
        self.shards: ResampledRankShards | None = None

    def __len__(self) -> int:
        return self.batches_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def pipeline(self, epoch: int) -> wds.DataPipeline:
        self.shards = ResampledRankShards(self.urls, self.config.seed, epoch)
        return wds.DataPipeline(
            self.shards,
            wds.tarfile_to_samples(handler=self.skipped),
            _read_ok(self.skipped),
            _Shuffle(self.config.shuffle_buffer, self.config.seed, epoch),
            _Samples(self.config, epoch, self.bad_samples, self.backdrop),
            wds.batched(self.config.batch_size, collation_fn=_collate, partial=False),
        )

    def __iter__(self) -> Iterator[TrainingBatch]:
        loader = wds.WebLoader(
            self.pipeline(self.epoch),
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=False,
            # Its own generator: a DataLoader draws a base seed when iterated, and drawing it
            # from the global RNG would shift the training noise after a resume.
            generator=torch.Generator().manual_seed(_seed(self.config.seed, self.epoch)),
        ).with_epoch(self.batches_per_epoch)
        self.epoch += 1
        try:
            for batch in loader:
                if self.device is not None:  # move uint8, convert on the device
                    batch = [t.to(self.device, non_blocking=True) for t in batch]
                yield _as_batch(*batch)
        except GanmotionError as error:
            raise GanmotionError(worker_message(error)) from None


def worker_message(error: GanmotionError) -> str:
    """The message of a `GanmotionError` raised in a loader worker process. The DataLoader
    raises it again in this process with a message of many lines ("Caught GanmotionError in
    DataLoader worker process 0", the worker's traceback, then the message); the one line
    for the user is the last."""
    text = str(error)
    if not text.startswith("Caught "):
        return text
    last = text.rstrip().splitlines()[-1]
    return last.split(f"{GanmotionError.__name__}: ", 1)[-1]


def validation_batches(
    urls: list[str], config: StreamConfig, count: int, backdrop: Backdrop | None = None
) -> list[TrainingBatch]:
    """Up to `count` batches from the start of `urls`, in order, without augmentation: the
    same fixed samples on every rank and in every run (for validation loss and sample grids)."""
    config = dataclasses.replace(config, augment=False)
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.tarfile_to_samples(handler=SkippedData("shard")),
        _Samples(config, 0, SkippedData("sample", MAX_FAILED_SHARE), backdrop),
        wds.batched(config.batch_size, collation_fn=_collate, partial=True),
    )
    batches = [_as_batch(*batch) for batch in itertools.islice(pipeline, count)]
    if not batches:
        raise GanmotionError(f"no readable validation samples in {', '.join(urls)}")
    return batches


def ordered_samples(
    shards: str, split: str, urls: list[str], counts: list[int] | None = None
) -> Iterator[dict]:
    """The raw samples of `urls` once, in shard order (dicts of bytes keyed by extension, and
    __key__): for lookups and evaluation, where the training stream's resampling and
    shuffling would be wrong.

    With `counts` (each shard's samples as manifest.json lists them, in the order of
    `urls`), a shard that holds another number is an error naming it and both numbers,
    raised once the shard has been read.
    """
    samples = iter(wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples()))
    expected = dict(zip(urls, counts)) if counts is not None else {}
    read = dict.fromkeys(urls, 0)

    def check(url: str | None) -> None:
        if url in expected and read[url] != expected[url]:
            raise GanmotionError(
                f"{url}: holds {read[url]} samples, {MANIFEST_NAME} says {expected[url]}"
            )

    current = None
    while True:
        try:
            sample = next(samples)
        except StopIteration:
            break
        except Exception as error:  # tar, I/O and URL errors of many types: one line
            raise GanmotionError(f"cannot read the {split} shards: {describe(error)}") from None
        url = sample.get("__url__")
        if url != current:
            check(current)
            current = url
        read[url] = read.get(url, 0) + 1
        yield sample
    for url in urls:  # including shards that held no sample at all
        check(url)


class DecodedSample(NamedTuple):
    """One sample as stored: the crop, its keypoints and person mask (None without one)."""

    key: str
    image: np.ndarray  # (size, size, 3) uint8 RGB
    keypoints: np.ndarray  # (33, 3) float32 in its pixels
    mask: np.ndarray | None  # (size, size) uint8 0/255


def decoded_samples(
    shards: str, split: str, urls: list[str], size: int, counts: list[int] | None = None
) -> Iterator[DecodedSample]:
    """Each sample of `urls` in shard order, decoded; a sample that does not decode or is not
    size x size is an error naming its shard, and so is a shard that holds other than its
    entry of `counts` (see `ordered_samples`)."""
    for sample in ordered_samples(shards, split, urls, counts):
        where = sample.get("__url__", shards)
        try:
            image, keypoints, mask = decode_sample(sample)
        except GanmotionError as error:
            raise GanmotionError(f"{where}: {error}") from None
        if image.shape[:2] != (size, size):
            raise GanmotionError(
                f"{where}: sample {sample['__key__']} is {image.shape[1]}x{image.shape[0]}, "
                f"the manifest says {size}x{size}"
            )
        yield DecodedSample(sample["__key__"], image, keypoints, mask)
