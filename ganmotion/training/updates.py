"""Backward and optimiser steps: one interface, two engines.

An objective (objectives.py) computes losses; `Updates` turns them into weight updates:

    updates = make_updates(accelerator, {"generator": Network(g, g_optim)}, batch_size, run)
    with updates.accumulate():                      # one micro-batch
        loss = ...(updates.module("generator")(x))
        applied = updates.backward_and_step("generator", loss)

`DdpUpdates` goes through Accelerate (DDP across processes, or one process); `ZeroUpdates`
(deepspeed.py) through one DeepSpeed ZeRO engine per network. What differs between them
lives here, not in the maths:

- gradient accumulation: Accelerate's `accumulate` context vs the engines' own counting;
- a loss term whose gradients must not be reduced yet (the gradient penalty's own backward,
  `backward_partial` inside `unreduced`): DDP backwards it at once with no reduction, a
  ZeRO engine cannot hold gradients back, so it adds the term to the next full loss;
- a step whose gradients are not finite is dropped, on every rank alike.

Finite checks cost no collective: DDP's backward all-reduces the gradients, and a NaN or
inf on any rank makes the reduced gradient non-finite on every rank, so each rank reaches
the same decision from its own copy (one host sync per optimiser step, to branch on it).
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

import torch
from accelerate import Accelerator
from torch import nn

from ganmotion.errors import GanmotionError
from ganmotion.training import deepspeed as zero
from ganmotion.training.config import RunConfig
from ganmotion.training.optim import Network, optimiser


def make_accelerator(run: RunConfig) -> Accelerator:
    """The run's Accelerator: Accelerate's own (DDP, gradient accumulation), or a plain one
    when `accelerate launch` asked for DeepSpeed (the engines then accumulate)."""
    if zero.requested():
        return zero.plain_accelerator(run.precision)
    return Accelerator(
        mixed_precision=run.precision, gradient_accumulation_steps=run.grad_accumulation
    )


def gradients_finite(module: nn.Module) -> bool:
    """Whether every gradient of `module` is finite (the largest |g| is: NaN or inf in any
    element makes it non-finite, and it cannot overflow as a sum of squares can)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return True
    return bool(torch.nn.utils.get_total_norm(grads, norm_type=math.inf, foreach=True).isfinite())


class Updates(Protocol):
    """What an objective needs to train its networks, whatever the engine."""

    accelerator: Accelerator

    def module(self, name: str) -> nn.Module:
        """The network to run forwards through whose backward `backward_and_step` reduces."""

    def raw(self, name: str) -> nn.Module:
        """The bare network (no DDP wrapper or engine): weights, EMA, frozen use."""

    def accumulate(self) -> AbstractContextManager:
        """Around each micro-batch."""

    def unreduced(self, name: str) -> AbstractContextManager:
        """Around a forward whose loss goes to `backward_partial`."""

    def backward_partial(self, name: str, loss: torch.Tensor) -> None:
        """Gradients of a loss term without reducing them or stepping: they join the next
        `backward_and_step` of the same network."""

    def backward_and_step(self, name: str, loss: torch.Tensor) -> bool | None:
        """Backward, and at the end of an accumulation group the optimiser step (dropped on
        every rank when a gradient is not finite). Returns whether a step was applied, or
        None between group boundaries."""

    def loss_scale(self) -> float:
        """The fp16 gradient scaler's current scale, 1 without one."""

    def learning_rates(self) -> dict[str, float]:
        """{"lr/<network>": current learning rate}."""

    def state_dict(self) -> dict:
        """Optimiser, schedule and scaler states, for optimizers.pt."""

    def load_state_dict(self, state: dict) -> None: ...

    def save_partitions(self, folder: Path, rank: int) -> None:
        """Per-rank optimiser state (ZeRO partitions); nothing under DDP."""

    def load_partitions(self, folder: Path, rank: int, world_size: int, saved: int) -> None: ...


class DdpUpdates:
    """Accelerate's prepare, backward and step: DDP across processes, or one process."""

    def __init__(self, accelerator: Accelerator, networks: dict[str, Network]):
        self.accelerator = accelerator
        names = list(networks)
        optimisers = [optimiser(networks[name]) for name in names]
        prepared = accelerator.prepare(
            *(networks[name].module for name in names), *(adam for adam, _ in optimisers)
        )
        self.modules = dict(zip(names, prepared[: len(names)]))
        # Unwrapped once: Accelerate's unwrap_model costs ~2 ms a call (a package-metadata
        # lookup), several times a step.
        self.bare = {name: accelerator.unwrap_model(m) for name, m in self.modules.items()}
        self.optimizers = dict(zip(names, prepared[len(names) :]))
        self.schedules = {name: schedule for name, (_, schedule) in zip(names, optimisers)}

    def module(self, name: str) -> nn.Module:
        return self.modules[name]

    def raw(self, name: str) -> nn.Module:
        return self.bare[name]

    def accumulate(self) -> AbstractContextManager:
        return self.accelerator.accumulate(*self.modules.values())

    def unreduced(self, name: str) -> AbstractContextManager:
        # DDP prepares no reduction for a forward inside no_sync: the backward's gradients
        # stay local in .grad until the next reducing backward adds to them and reduces.
        return self.accelerator.no_sync(self.modules[name])

    def backward_partial(self, name: str, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def backward_and_step(self, name: str, loss: torch.Tensor) -> bool | None:
        self.accelerator.backward(loss)
        if not self.accelerator.sync_gradients:
            return None
        optimizer = self.optimizers[name]
        if self.accelerator.scaler is not None and self.accelerator.scaler.is_enabled():
            optimizer.step()  # the scaler skips a step with inf gradients and lowers its scale
            applied = not optimizer.step_was_skipped
        else:
            applied = gradients_finite(self.raw(name))
            if applied:
                optimizer.step()
        if applied:
            self.schedules[name].step()
        optimizer.zero_grad(set_to_none=True)
        return applied

    def loss_scale(self) -> float:
        scaler = self.accelerator.scaler
        return scaler.get_scale() if scaler is not None and scaler.is_enabled() else 1.0

    def learning_rates(self) -> dict[str, float]:
        return {f"lr/{name}": s.get_last_lr()[0] for name, s in self.schedules.items()}

    def state_dict(self) -> dict:
        state = {}
        for name in self.modules:
            state[name] = self.optimizers[name].state_dict()
            state[f"{name}_schedule"] = self.schedules[name].state_dict()
        scaler = self.accelerator.scaler
        state["scaler"] = scaler.state_dict() if scaler is not None else {}
        return state

    def load_state_dict(self, state: dict) -> None:
        for name in self.modules:
            self.optimizers[name].load_state_dict(state[name])
            self.schedules[name].load_state_dict(state[f"{name}_schedule"])
        if self.accelerator.scaler is not None and state.get("scaler"):
            self.accelerator.scaler.load_state_dict(state["scaler"])

    def save_partitions(self, folder: Path, rank: int) -> None:
        pass  # every rank holds the whole optimiser state: the main process saves it

    def load_partitions(self, folder: Path, rank: int, world_size: int, saved: int) -> None:
        if zero.has_partitions(folder):
            raise GanmotionError(
                f"{folder}: saved under DeepSpeed ZeRO (optimiser states partitioned per "
                "rank): resume with the DeepSpeed accelerate config it was trained with"
            )


def make_updates(
    accelerator: Accelerator, networks: dict[str, Network], batch_size: int, run: RunConfig
) -> Updates:
    """DeepSpeed ZeRO engines when `accelerate launch` asked for them, else Accelerate/DDP."""
    if zero.requested():
        return zero.ZeroUpdates(accelerator, networks, batch_size, run.grad_accumulation)
    return DdpUpdates(accelerator, networks)
