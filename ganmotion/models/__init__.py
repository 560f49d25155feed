"""Models: the U-Net generator, the patch critic, the seed's MLP and nearest-neighbour baselines.

Everything that turns poses into images follows `PoseToImage`, so evaluation and the video
pipeline can take any of them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ganmotion.models.baselines import (
    MLPConfig,
    MLPGenerator,
    NearestNeighbourGenerator,
    reduced_pose_vector,
)
from ganmotion.models.critic import CriticConfig, PatchCritic
from ganmotion.models.generator import (
    ComposeConfig,
    ComposedGenerator,
    GeneratorConfig,
    SelfAttention,
    UNetGenerator,
    check_size_fits_depth,
    compose,
    render_skeletons,
)


@runtime_checkable
class PoseToImage(Protocol):
    """Makes images of the person from poses.

    size: side of the square images, in pixels.
    generate: keypoints (N, 33, 3) float = x, y in pixels of a size x size image and
        visibility in [0, 1] -> images (N, 3, size, size) float in [-1, 1], on the
        model's device.
    """

    size: int

    def generate(self, keypoints: torch.Tensor) -> torch.Tensor: ...


__all__ = [
    "ComposeConfig",
    "ComposedGenerator",
    "CriticConfig",
    "GeneratorConfig",
    "MLPConfig",
    "MLPGenerator",
    "NearestNeighbourGenerator",
    "PatchCritic",
    "PoseToImage",
    "SelfAttention",
    "UNetGenerator",
    "check_size_fits_depth",
    "compose",
    "reduced_pose_vector",
    "render_skeletons",
]
