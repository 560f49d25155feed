"""Optimisers: Adam and its learning-rate schedule, per network."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ganmotion.training.config import OptimConfig


class TimeSpent:
    """The share of the run's time budget spent so far, in [0, 1]: where schedules that run on
    time (run.schedule_by: time) stand. The run loop moves it after every step, from the
    slowest rank's clock so that every rank's schedule agrees; the schedules read it when
    they next step."""

    def __init__(self):
        self.share = 0.0
        self.before = 0.0  # the share that earlier runs of this one spent (from a checkpoint)

    def resume(self, share: float) -> None:
        """Go on from the share a checkpoint saved."""
        self.share = self.before = share

    def spent(self, fraction: float) -> None:
        """This run has spent `fraction` of its own budget: the rest of the decay is spread
        over it."""
        self.share = self.before + (1 - self.before) * min(1.0, fraction)


@dataclass
class Network:
    """A network to train with its optimiser settings and the number of optimiser steps in
    the whole run (for the learning-rate schedule), or the time spent, for a schedule that
    runs on time instead of steps."""

    module: nn.Module
    optim: OptimConfig
    total_steps: int
    time_spent: TimeSpent | None = None


def lr_schedule(config: OptimConfig, total_steps: int, time_spent: TimeSpent | None = None):
    """Multiplier of the peak learning rate after `step` optimiser steps: warm-up over steps,
    then the decay over the rest of the steps, or over the time budget with `time_spent`."""

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        if time_spent is not None:
            progress = min(1.0, time_spent.share)
        else:
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
    schedule = lr_schedule(config, network.total_steps, network.time_spent)
    return adam, torch.optim.lr_scheduler.LambdaLR(adam, schedule)
