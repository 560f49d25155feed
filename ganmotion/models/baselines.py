"""The seed project's baselines: an MLP from the reduced pose, and nearest-neighbour lookup.

Both see only the 13 joints of `REDUCED_JOINTS`, as the seed did, and follow the same
`generate(keypoints) -> images` contract as `UNetGenerator`, so they can be compared with it
frame for frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganmotion.config import check_ranges, ranged
from ganmotion.errors import GanmotionError
from ganmotion.images import to_unit_range
from ganmotion.models.generator import as_keypoints
from ganmotion.pose.schema import REDUCED_JOINTS

POSE_VECTOR_SIZE = 3 * len(REDUCED_JOINTS)  # 39


def reduced_pose_vector(keypoints: torch.Tensor | np.ndarray, size: int) -> torch.Tensor:
    """Keypoints (N, 33, 3) in pixels of a size x size image -> (N, 39) float32, never NaN.

    Per reduced joint: x, y mapped from [0, size] to [-1, 1], and 1.0 if the joint is
    visible (visibility >= 0.5) else 0.0; a missing joint's x and y are 0, the image centre.
    """
    joints = as_keypoints(keypoints)[:, torch.from_numpy(REDUCED_JOINTS)]  # (N, 13, 3)
    visible = torch.isfinite(joints).all(dim=-1) & (joints[..., 2] >= 0.5)  # (N, 13)
    xy = torch.where(visible[..., None], joints[..., :2] * (2 / size) - 1, 0.0)  # (N, 13, 2)
    return torch.cat([xy, visible[..., None].float()], dim=-1).flatten(1)  # (N, 39)


@dataclass(frozen=True)
class MLPConfig:
    """The constructor arguments of `MLPGenerator`, validated when made.

    size: side of the square images it draws (and of the images its keypoints are in). In
        a training config it is data.stream.size (leave it out).
    hidden: width of the hidden layers.
    layers: number of linear layers, the last one included.
    base_size: side of the image the MLP makes before bilinear upsampling to `size`.
    """

    size: int | None = ranged(None, 16, 4096)
    hidden: int = ranged(1024, 1)
    layers: int = ranged(3, 1, 64)
    base_size: int = ranged(64, 1)

    def __post_init__(self) -> None:
        check_ranges(self, "mlp.")
        if self.size is not None and self.base_size > self.size:
            raise GanmotionError(
                f"MLP generator base_size={self.base_size}: must be in [1, {self.size}]"
            )


class MLPGenerator(nn.Module):
    """The seed's MLP: reduced pose vector (N, 39) -> image (N, 3, size, size) float in [-1, 1].

    `layers` linear layers (ReLU between, `hidden` wide) make a base_size x base_size image,
    which tanh bounds and bilinear interpolation scales to `size`. The last layer has
    hidden * 3 * base_size**2 weights: a full-resolution output at 512 would be 800 M
    parameters (3 GB of float32) for a blurry mean image, so the MLP stays small and is
    upsampled. Arguments are those of `MLPConfig`.
    """

    def __init__(self, size: int, hidden: int = 1024, layers: int = 3, base_size: int = 64):
        super().__init__()
        self.config = MLPConfig(size, hidden, layers, base_size)
        self.size = size
        self.base_size = base_size
        widths = [POSE_VECTOR_SIZE] + [hidden] * (layers - 1) + [3 * base_size**2]
        modules: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            modules += [nn.Linear(c_in, c_out), nn.ReLU()]
        self.mlp = nn.Sequential(*modules[:-1])  # no ReLU after the last layer: tanh follows

    @classmethod
    def from_config(cls, config: MLPConfig) -> MLPGenerator:
        if config.size is None:
            raise GanmotionError(
                f"{cls.__name__}: size is not set (a training config takes it from "
                "data.stream.size)"
            )
        return cls(**asdict(config))

    def forward(self, pose_vector: torch.Tensor) -> torch.Tensor:
        """Reduced pose vectors (N, 39), see `reduced_pose_vector` -> (N, 3, size, size)."""
        n = pose_vector.shape[0]
        image = self.mlp(pose_vector).view(n, 3, self.base_size, self.base_size).tanh()
        if self.base_size == self.size:
            return image
        # Bilinear weights are convex, so the result stays in [-1, 1].
        return F.interpolate(image, size=(self.size, self.size), mode="bilinear")

    @torch.no_grad()
    def generate(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Keypoints (N, 33, 3) in pixels of a size x size image -> (N, 3, size, size), [-1, 1]."""
        weight = self.mlp[0].weight
        pose = reduced_pose_vector(keypoints, self.size).to(weight.device, weight.dtype)
        return self(pose)


class NearestNeighbourGenerator(nn.Module):
    """Answer each pose with the training image whose pose is nearest.

    Distance between two poses: the mean, over the reduced joints visible in both, of the
    squared distance between their positions in [-1, 1] coordinates. A query sharing no
    joint with any training pose gets training image 0. An `nn.Module` only so that
    `.to(device)` moves the training set; it has nothing to learn.
    """

    def __init__(self, keypoints: torch.Tensor | np.ndarray, images: torch.Tensor | np.ndarray):
        """keypoints (M, 33, 3) in pixels of images (M, 3, S, S), uint8 or float in [-1, 1]."""
        super().__init__()
        images = torch.as_tensor(images)
        keypoints = as_keypoints(keypoints)
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise GanmotionError(f"images must be (M, 3, S, S), got {tuple(images.shape)}")
        if len(images) != len(keypoints) or len(images) == 0:
            raise GanmotionError(
                f"need one pose per image and at least one: {len(keypoints)} poses, "
                f"{len(images)} images"
            )
        self.size = images.shape[-1]
        pose = reduced_pose_vector(keypoints, self.size).unflatten(1, (-1, 3))
        # Not saved in state_dict: the lookup table is its training data, not weights.
        self.register_buffer("xy", pose[..., :2].contiguous(), persistent=False)  # (M, 13, 2)
        self.register_buffer("visible", pose[..., 2] > 0, persistent=False)  # (M, 13)
        self.register_buffer("images", images, persistent=False)  # (M, 3, S, S)

    def nearest(self, keypoints: torch.Tensor, chunk_elements: int = 2**24) -> torch.Tensor:
        """Index (N,) int64 of the nearest training pose to each query (N, 33, 3)."""
        query = reduced_pose_vector(keypoints, self.size).to(self.xy.device)
        query = query.unflatten(1, (-1, 3))  # (N, 13, 3)
        # Differences, not |a|^2 + |b|^2 - 2ab: an exact pose then scores exactly 0.
        # Queries go in chunks so the (chunk, M, 13, 2) difference stays bounded.
        per_query = self.xy.numel()
        chunk = max(1, chunk_elements // per_query)
        indices = []
        for start in range(0, len(query), chunk):
            part = query[start : start + chunk]
            squared = (part[:, None, :, :2] - self.xy).square().sum(-1)  # (n, M, 13)
            both = (part[:, None, :, 2] > 0) & self.visible  # (n, M, 13)
            count = both.sum(-1)  # (n, M)
            total = torch.where(both, squared, 0.0).sum(-1)  # (n, M)
            distance = torch.where(count > 0, total / count.clamp(min=1), torch.inf)
            indices.append(distance.argmin(dim=1))
        if not indices:
            return torch.zeros(0, dtype=torch.long, device=self.xy.device)
        return torch.cat(indices)

    @torch.no_grad()
    def generate(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Keypoints (N, 33, 3) in pixels of a size x size image -> (N, 3, size, size), [-1, 1]."""
        picked = self.images[self.nearest(keypoints)]
        if picked.dtype == torch.uint8:
            return to_unit_range(picked)
        return picked.float()


class MeanImageGenerator(nn.Module):
    """The floor every generator must beat: one constant image, the mean of the training
    crops, whatever the pose. (A generator scoring below it has learnt less than the
    average colour of each pixel.)"""

    def __init__(self, image: torch.Tensor | np.ndarray):
        """image (3, S, S) float in [-1, 1]."""
        super().__init__()
        image = torch.as_tensor(image, dtype=torch.float32)
        if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] != image.shape[2]:
            raise GanmotionError(f"the mean image must be (3, S, S), got {tuple(image.shape)}")
        self.size = image.shape[-1]
        self.register_buffer("image", image, persistent=False)

    @torch.no_grad()
    def generate(self, keypoints: torch.Tensor) -> torch.Tensor:
        """(N, 33, 3) -> (N, 3, S, S): the mean image N times."""
        return self.image.expand(len(keypoints), -1, -1, -1)
