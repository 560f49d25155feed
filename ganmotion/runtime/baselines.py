"""The seed's baselines behind the `Backend` interface: they draw from keypoints alone.

    backend = load_backend("runs/mlp_tiny/checkpoints/step-000200")   # a model=mlp checkpoint
    backend = load_backend("nearest", shards="data/shards")          # nearest neighbour
    backend = load_backend("mean", shards="data/shards")             # the mean training crop
    images = backend(skeletons, keypoints)   # keypoints (N, 33, 3) in pixels -> (N, 3, S, S)

All have `needs_keypoints = True`: the skeleton images that the video pipeline passes along
are checked for shape and otherwise unused. None has alpha (`has_alpha = False`): they draw
whole frames, not a person to compose. They still have a skeleton style, for the runner's
side-by-side view and for the checks: the MLP's from its checkpoint (what its training stream
drew), the others' the defaults for the shards' image size. None is exported to ONNX: the
MLP runs from its checkpoint, nearest neighbour is a lookup in its training set, and the
mean image (the floor of every table: a constant answer) is computed from the shards.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganmotion.data.manifest import load_manifest, shard_urls
from ganmotion.data.stream import decoded_samples
from ganmotion.errors import GanmotionError
from ganmotion.images import to_unit_range
from ganmotion.models.baselines import (
    MeanImageGenerator,
    MLPGenerator,
    NearestNeighbourGenerator,
)
from ganmotion.models.generator import as_keypoints
from ganmotion.pose.render import SkeletonStyle
from ganmotion.runtime.contract import check_batch, no_alpha
from ganmotion.training.checkpoint import load_generator, saved_skeleton

NAMES = ("mlp", "nearest", "mean")
KEYWORDS = ("nearest", "mean")  # baselines named in place of a model file: built from shards


class KeypointBackend:
    """A model with `generate(keypoints) -> images` (`MLPGenerator`, `NearestNeighbourGenerator`)
    as a Backend: keypoints (N, 33, 3) in pixels of the size x size image -> images
    (N, 3, size, size) float32 in [-1, 1] on `device`. `skeleton` defaults to the style for
    `model.size`.
    """

    needs_keypoints = True
    has_alpha = False
    background = None

    def __init__(
        self,
        model: nn.Module,
        name: str,
        device: str | torch.device | None = None,
        skeleton: SkeletonStyle | None = None,
    ):
        if name not in NAMES:
            raise GanmotionError(f"unknown baseline {name!r}: choose one of {', '.join(NAMES)}")
        self.name = name
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.eval().to(self.device)
        self.size = int(model.size)
        self.skeleton = skeleton or SkeletonStyle.for_size(self.size)
        self.skeleton.check_size(self.size, f"the {name} baseline")

    @classmethod
    def load(
        cls, checkpoint: Path, device: str | torch.device | None = None, ema: bool = True
    ) -> KeypointBackend:
        """The MLP baseline of a checkpoint folder (trained with model: mlp)."""
        generator = load_generator(Path(checkpoint), ema=ema)
        if not isinstance(generator, MLPGenerator):
            raise GanmotionError(
                f"{checkpoint}: holds a {type(generator).__name__}, not the MLP baseline "
                "(the torch backend runs it)"
            )
        return cls(generator, "mlp", device, saved_skeleton(Path(checkpoint)))

    def __call__(
        self, skeleton: torch.Tensor | None, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor:
        if keypoints is None:
            raise GanmotionError(
                f"the {self.name} baseline draws from keypoints: pass the batch's keypoints "
                "(N, 33, 3) with the skeletons"
            )
        keypoints = as_keypoints(keypoints)
        if skeleton is not None:
            check_batch(skeleton, self.size)
            if len(skeleton) != len(keypoints):
                raise GanmotionError(
                    f"{len(skeleton)} skeletons but {len(keypoints)} sets of keypoints"
                )
        if len(keypoints) == 0:
            return torch.zeros(0, 3, self.size, self.size, device=self.device)
        with torch.inference_mode():
            images = self.model.generate(keypoints.to(self.device))
        return images.float().contiguous()  # nearest's lookup table may be channels-last

    def with_alpha(
        self, skeleton: torch.Tensor | None, keypoints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise no_alpha(f"the {self.name} baseline")


def load_nearest(
    shards: str,
    split: str = "train",
    device: str | torch.device | None = None,
    max_frames: int | None = None,
) -> KeypointBackend:
    """Nearest neighbour over the `split` samples of a shard root (folder or URL).

    The lookup table keeps the images as uint8 (M, 3, S, S), S the shards' image size:
    3 * S * S bytes a frame (768 KiB at 512 px). With `max_frames`, every k-th sample is kept,
    so that at most `max_frames` frames still span the whole split.
    """
    if max_frames is not None and max_frames < 1:
        raise GanmotionError(f"max_frames must be >= 1, got {max_frames}")
    manifest = load_manifest(shards)
    urls = shard_urls(shards, split)
    size = manifest.image_size
    total = manifest.splits[split].samples
    stride = 1 if max_frames is None else max(1, math.ceil(total / max_frames))
    images, poses = [], []
    expected = min(total, max_frames or total)
    counts = [shard.samples for shard in manifest.splits[split].shards]
    samples = decoded_samples(shards, split, urls, size, counts)
    for index, (_, image, keypoints, _) in enumerate(tqdm(samples, total=total, disable=None)):
        if index % stride:
            continue
        images.append(np.ascontiguousarray(image.transpose(2, 0, 1)))  # (3, S, S) uint8
        poses.append(keypoints)
        if len(images) == expected:
            break
    if not images:
        raise GanmotionError(f"{shards}: no samples in the {split} shards")
    model = NearestNeighbourGenerator(np.stack(poses), torch.from_numpy(np.stack(images)))
    return KeypointBackend(model, "nearest", device)


def load_mean(
    shards: str, split: str = "train", device: str | torch.device | None = None
) -> KeypointBackend:
    """The mean of the `split` crops of a shard root as a constant image: the floor row of
    evaluation (a generator that cannot beat it has not learnt the person)."""
    manifest = load_manifest(shards)
    size, total = manifest.image_size, manifest.splits[split].samples
    summed, count = np.zeros((size, size, 3), np.float64), 0
    urls, counts = shard_urls(shards, split), [s.samples for s in manifest.splits[split].shards]
    samples = decoded_samples(shards, split, urls, size, counts)
    for sample in tqdm(samples, total=total, desc="mean image", disable=None):
        summed += sample.image
        count += 1
    if count == 0:
        raise GanmotionError(f"{shards}: no samples in the {split} shards")
    mean = np.round(summed / count).astype(np.uint8)  # the uint8 image a generator would give
    image = to_unit_range(torch.from_numpy(mean).permute(2, 0, 1))
    return KeypointBackend(MeanImageGenerator(image), "mean", device)
