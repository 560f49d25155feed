"""How deep inside the person a pixel lies: shared by the losses and by the composition at
inference.

    deep = deep_inside(mask, 6)    # (N, 1, H, W): 1 where the person lies 6 px or more inside
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def erode(coverage: torch.Tensor, depth: int) -> torch.Tensor:
    """(N, 1, H, W) coverage in [0, 1] -> its minimum over the square of side 2 * depth + 1
    around each pixel. Beyond the image's border counts as covered: a crop cut through the
    person has no outline there."""
    # Max pooling pads with -inf, so the border never counts as the room.
    return -F.max_pool2d(-coverage, 2 * depth + 1, stride=1, padding=depth)


def deep_inside(mask: torch.Tensor, depth: int) -> torch.Tensor:
    """(N, 1, H, W) float: 1 where the person (mask >= 0.5) holds every pixel within `depth`
    px (the square of side 2 * depth + 1 around it), else 0: the person's inside, at least
    `depth` px from its outline, the image's border being none."""
    return erode((mask >= 0.5).to(mask.dtype), depth)
