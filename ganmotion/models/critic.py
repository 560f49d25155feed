"""The conditional patch critic of the WGAN-GP: (skeleton, image) -> a grid of realness scores.

    critic = PatchCritic()
    scores = critic(skeleton, image)   # (N, 3, H, W) x2 in [-1, 1] -> (N, 1, H/8 - 2, W/8 - 2)

Each score looks at one patch (70x70 px with the defaults, as pix2pix's PatchGAN). Scores
are unbounded (no sigmoid): a Wasserstein critic, not a classifier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ganmotion.config import check_ranges, ranged
from ganmotion.errors import GanmotionError

NORMS = ("instance", "layer", "none")


@dataclass(frozen=True)
class CriticConfig:
    """The constructor arguments of `PatchCritic`, validated when made.

    in_channels: skeleton channels + image channels, concatenated.
    base_channels: width of the first layer; each stride-2 layer doubles it.
    depth: number of stride-2 layers; the score grid is at 1/2**depth of the input size.
    max_channels: cap on the width of any layer.
    norm: "instance", "layer" (GroupNorm with one group) or "none". Never batch norm:
        the gradient penalty needs each sample's score to depend on that sample alone.
    """

    in_channels: int = ranged(6, 2)
    base_channels: int = ranged(64, 1)
    depth: int = ranged(3, 1, 8)
    max_channels: int = ranged(512, 1)
    norm: str = "instance"

    def __post_init__(self) -> None:
        check_ranges(self, "critic.")
        if self.max_channels < self.base_channels:
            raise GanmotionError(
                f"critic max_channels={self.max_channels}: must be >= base_channels "
                f"({self.base_channels})"
            )
        if self.norm == "batch":
            raise GanmotionError(
                "critic norm='batch': WGAN-GP needs per-sample gradients, and batch norm mixes "
                "the samples of a batch; use 'instance', 'layer' or 'none'"
            )
        if self.norm not in NORMS:
            raise GanmotionError(f"critic norm={self.norm!r}: must be one of {NORMS}")

    def min_input_size(self) -> int:
        """The smallest side that leaves a 1x1 score grid (each 4x4 stride-1 conv trims 1)."""
        return 3 * 2**self.depth


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class PatchCritic(nn.Module):
    """Skeleton (N, a, H, W) and image (N, b, H, W), a + b = in_channels -> scores (N, 1, h, w).

    `depth` 4x4 stride-2 convs (no norm on the first), a 4x4 stride-1 conv, and a 4x4
    stride-1 conv to one channel; LeakyReLU(0.2) between. Arguments are those of
    `CriticConfig`.
    """

    def __init__(
        self,
        in_channels: int = 6,
        base_channels: int = 64,
        depth: int = 3,
        max_channels: int = 512,
        norm: str = "instance",
    ):
        super().__init__()
        self.config = CriticConfig(in_channels, base_channels, depth, max_channels, norm)
        widths = [min(base_channels * 2**i, max_channels) for i in range(depth + 1)]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(1, depth + 1):
            stride = 2 if i < depth else 1
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=norm == "none"),
                _norm(norm, widths[i]),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.layers = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, config: CriticConfig) -> PatchCritic:
        return cls(**asdict(config))

    def min_input_size(self) -> int:
        return self.config.min_input_size()

    def forward(self, skeleton: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.layers(self.inputs(skeleton, image))  # (N, 1, H/2**d - 2, W/2**d - 2)

    def features(self, skeleton: torch.Tensor, image: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each LeakyReLU, then the scores (the last item): what
        pix2pixHD's feature-matching loss compares between real and generated images."""
        x, found = self.inputs(skeleton, image), []
        for layer in self.layers:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                found.append(x)
        return [*found, x]

    def inputs(self, skeleton: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Skeleton and image concatenated, or a GanmotionError saying what does not fit."""
        if skeleton.ndim != 4 or image.ndim != 4 or skeleton.shape[2:] != image.shape[2:]:
            raise GanmotionError(
                f"critic inputs must be (N, C, H, W) of one size, "
                f"got {tuple(skeleton.shape)} and {tuple(image.shape)}"
            )
        channels = skeleton.shape[1] + image.shape[1]
        if channels != self.config.in_channels:
            raise GanmotionError(
                f"critic expects {self.config.in_channels} channels in all, got "
                f"{skeleton.shape[1]} + {image.shape[1]}"
            )
        if min(image.shape[2:]) < self.min_input_size():
            raise GanmotionError(
                f"image size {image.shape[2]}x{image.shape[3]} is too small for a depth-"
                f"{self.config.depth} critic: each side must be at least {self.min_input_size()}"
            )
        return torch.cat([skeleton, image], dim=1)
