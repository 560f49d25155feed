"""Optimisers: Adam and its learning-rate schedule, per network."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ganmotion.training.config import OptimConfig


@dataclass
class Network:
    """A network to train with its optimiser settings and the number of optimiser steps in
    the whole run (for the learning-rate schedule)."""

    module: nn.Module
    optim: OptimConfig
    total_steps: int


def lr_schedule(config: OptimConfig, total_steps: int):
    """Multiplier of the peak learning rate after `step` optimiser steps."""

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        progress = min(
            1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        )
        if config.schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def optimiser(network: Network) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam and its learning-rate schedule for one network."""
    config = network.optim
    adam = torch.optim.Adam(
        network.module.parameters(),
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
    )
    return adam, torch.optim.lr_scheduler.LambdaLR(adam, lr_schedule(config, network.total_steps))
