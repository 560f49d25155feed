"""The one mapping between 8-bit images and the models' value range [-1, 1].

    batch = to_unit_range(uint8_nchw)      # (B, 3, H, W) uint8 -> float32 in [-1, 1]
    frames = to_uint8_images(generated)    # (B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 numpy

Training, the runner, evaluation, the baselines and the benchmarks all convert through these
two, so that a model sees at inference exactly the values it was trained on: 0 -> -1,
255 -> 1, and back by rounding to the nearest level.
"""

from __future__ import annotations

import numpy as np
import torch


def to_unit_range(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W) -> float32 in [-1, 1], on the same device (a new tensor)."""
    if batch.dtype != torch.uint8:  # a float batch would be scaled twice (and in place)
        raise TypeError(f"expected a uint8 tensor, got {batch.dtype}")
    return batch.float().div_(127.5).sub_(1.0)


def to_uint8_images(batch: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [-1, 1] on any device -> (B, H, W, 3) uint8 on the CPU; values
    outside [-1, 1] are clipped."""
    return uint8_channels_last(batch).cpu().numpy()


def uint8_channels_last(batch: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float in [-1, 1] -> (B, H, W, 3) uint8 (a view), on the same device;
    values outside [-1, 1] are clipped."""
    images = ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1)
