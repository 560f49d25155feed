"""The conditional patch critic of the WGAN-GP: (skeleton, image) -> a grid of realness scores.

    critic = PatchCritic()
    scores = critic(skeleton, image)   # (N, 3, H, W) x2 in [-1, 1] -> (N, 1, H/8 - 2, W/8 - 2)

Each score looks at one patch (70x70 px with the defaults, as pix2pix's PatchGAN). Scores
are unbounded (no sigmoid): a Wasserstein critic, not a classifier.

With `scales=2` a second critic of the same shape judges the pair at half resolution, as
pix2pixHD's multi-scale discriminator: its patches are twice as large, so it sees how the
limbs of the whole figure fit together where the first sees texture.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
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
    scales: how many critics, each at half the resolution of the one before (pix2pixHD's
        multi-scale discriminator); each costs a quarter of the one before.
    """

    in_channels: int = ranged(6, 2)
    base_channels: int = ranged(64, 1)
    depth: int = ranged(3, 1, 8)
    max_channels: int = ranged(512, 1)
    norm: str = "instance"
    scales: int = ranged(1, 1, 3)

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
        """The smallest side that leaves a 1x1 score grid (each 4x4 stride-1 conv trims 1)
        at the coarsest scale."""
        return 3 * 2**self.depth * 2 ** (self.scales - 1)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def _layers(in_channels: int, base_channels: int, depth: int, max_channels: int, norm: str):
    """`depth` 4x4 stride-2 convs (no norm on the first), a 4x4 stride-1 conv, and a 4x4
    stride-1 conv to one channel; LeakyReLU(0.2) between."""
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
    return nn.Sequential(*layers)


def _half(x: torch.Tensor) -> torch.Tensor:
    """The next scale's input: pix2pixHD's 3x3 average, stride 2, padding not counted."""
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class PatchCritic(nn.Module):
    """Skeleton (N, a, H, W) and image (N, b, H, W), a + b = in_channels -> scores.

    One scale: the grid of patch scores (N, 1, h, w). Several: each scale's mean patch score,
    (N, scales), so that each scale weighs the same in the mean the losses take (the coarser
    grid has a quarter of the patches). Arguments are those of `CriticConfig`; the layers
    are `_layers`', the first scale's in `layers` (a one-scale checkpoint loads unchanged),
    the others' in `coarser`.
    """

    def __init__(
        self,
        in_channels: int = 6,
        base_channels: int = 64,
        depth: int = 3,
        max_channels: int = 512,
        norm: str = "instance",
        scales: int = 1,
    ):
        super().__init__()
        self.config = CriticConfig(in_channels, base_channels, depth, max_channels, norm, scales)
        shape = (in_channels, base_channels, depth, max_channels, norm)
        self.layers = _layers(*shape)
        self.coarser = nn.ModuleList(_layers(*shape) for _ in range(scales - 1))

    @classmethod
    def from_config(cls, config: CriticConfig) -> PatchCritic:
        return cls(**asdict(config))

    def min_input_size(self) -> int:
        return self.config.min_input_size()

    def forward(self, skeleton: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.features(skeleton, image)[-1]

    def features(self, skeleton: torch.Tensor, image: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each LeakyReLU, scale by scale, then the scores (the last
        item, as `forward` gives them): what pix2pixHD's feature-matching loss compares
        between real and generated images."""
        x, found, scores = self.inputs(skeleton, image), [], []
        for scale, layers in enumerate((self.layers, *self.coarser)):
            y = x = _half(x) if scale else x
            for layer in layers:
                y = layer(y)
                if isinstance(layer, nn.LeakyReLU):
                    found.append(y)
            scores.append(y)
        if not self.coarser:
            return [*found, scores[0]]
        return [*found, torch.cat([grid.flatten(1).mean(1, keepdim=True) for grid in scores], 1)]

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
                f"{self.config.depth} critic at {self.config.scales} scale(s): each side must "
                f"be at least {self.min_input_size()}"
            )
        return torch.cat([skeleton, image], dim=1)
