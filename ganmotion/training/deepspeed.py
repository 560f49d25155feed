"""DeepSpeed ZeRO-1/2 for the trainers, switched on by the accelerate config (DDP is the default):

    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml \\
        train/gan.py --config configs/gan_512.yaml

Accelerate's DeepSpeed integration holds one engine per Accelerator, and a GAN needs two. So
when `accelerate launch` asks for DeepSpeed, the Trainer keeps a plain Accelerator for
processes, devices, collectives and autocast, and `ZeroUpdates` builds one engine per network
with `deepspeed.initialize`, from the launch's DeepSpeed config (read by Accelerate's own
`DeepSpeedPlugin`). What changes against DDP:

- Forwards run through the raw modules, then `engine.backward` / `engine.step`: the engine's
  forward hooks fire inside the penalty's `autograd.grad` and ZeRO-2 fails there. Where DDP
  backwards the penalty on its own first (unreduced), the engine gets one backward of the
  whole critic loss per micro-batch, the pattern DeepSpeed is built for: it reduces inside
  `engine.backward` (ZeRO-2 as each gradient is computed), with no way to hold one
  backward's gradients back. The generator's adversarial term uses the frozen raw critic,
  as under DDP.
- Gradient accumulation, the learning-rate schedule's step and dropping a step whose gradients
  are not finite are done by the engines.
- Mixed precision stays the run's torch autocast (run.precision "no" or "bf16"), as under
  DDP, and the engines keep fp32 weights: DeepSpeed's own bf16/fp16 modes cast the module's
  weights, and its autocast option covers only the engine's forward, which the critic skips.
- Checkpoints: weights go to safetensors as under DDP; each rank also writes its ZeRO partition
  of both optimisers to `zero-rank00000.pt`..., read back with `torch.load(weights_only=True)`
  (three plain DeepSpeed types allowed), never with DeepSpeed's own loader, which unpickles.
  Resuming needs the same world size and ZeRO stage.

`deepspeed` is imported here only when a launch asks for it: `import ganmotion` works without.
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DeepSpeedPlugin, patch_environment
from torch import nn

from ganmotion.errors import GanmotionError

ZERO_STAGES = (1, 2)


def requested() -> bool:
    """Whether `accelerate launch` was given a config with `distributed_type: DEEPSPEED`."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def plain_accelerator(mixed_precision: str) -> Accelerator:
    """An Accelerator without Accelerate's DeepSpeed plugin (one engine per Accelerator, and it
    needs `transformers`): processes, device, collectives and autocast only. Its gradient
    accumulation stays 1: the engines accumulate."""
    if mixed_precision == "fp16":
        raise GanmotionError(
            "run.precision=fp16 is not supported with DeepSpeed here (the engines keep fp32 "
            "weights and the run's autocast does mixed precision): use bf16 or no"
        )
    with patch_environment(ACCELERATE_USE_DEEPSPEED="false"):
        accelerator = Accelerator(mixed_precision=mixed_precision)
    if accelerator.device.type == "cpu":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # before deepspeed picks its device
    return accelerator


def _deepspeed():
    try:
        import deepspeed
    except ImportError as error:
        raise GanmotionError(
            f"the accelerate config asks for DeepSpeed, but it cannot be imported ({error}): "
            "pip install -e '.[deepspeed]', or launch with configs/accelerate/ddp.yaml"
        ) from None
    return deepspeed


def engine_config(batch_size: int, grad_accumulation: int, world_size: int) -> dict:
    """The launch's DeepSpeed config (a JSON file or the accelerate config's inline fields),
    its "auto" values filled from the run config; a value that contradicts the run config is
    an error naming both."""
    plugin = DeepSpeedPlugin()  # reads what `accelerate launch` put in the environment
    stage = plugin.zero_stage
    if stage not in ZERO_STAGES:
        raise GanmotionError(
            f"DeepSpeed ZeRO stage {stage} is not supported: the gradient penalty and the "
            "generator's adversarial term run the raw critic, which stage 3 partitions away; "
            "use configs/accelerate/deepspeed_zero1.yaml or deepspeed_zero2.yaml"
        )
    from_run = {
        "train_micro_batch_size_per_gpu": batch_size,
        "gradient_accumulation_steps": grad_accumulation,
        "train_batch_size": batch_size * grad_accumulation * world_size,
        "gradient_clipping": 0.0,  # none, as under DDP
        "fp16.enabled": False,
        "bf16.enabled": False,
    }
    own = sorted({"optimizer", "scheduler"} & set(plugin.deepspeed_config))
    if own:
        raise GanmotionError(
            f"the DeepSpeed config sets {' and '.join(own)}: remove it, the optimisers and "
            "their schedules come from generator_optim and critic_optim"
        )
    try:
        plugin.deepspeed_config_process(must_match=True, **from_run)
    except ValueError as error:
        lines = [line[2:] for line in str(error).splitlines() if line.startswith("- ")]
        raise GanmotionError(
            f"the DeepSpeed config disagrees with the run config ({'; '.join(lines) or error}): "
            'set those to "auto", they come from data.stream.batch_size, run.grad_accumulation '
            "and run.precision"
        ) from None
    return plugin.deepspeed_config


def _safe_types() -> list[type]:
    """The DeepSpeed classes inside a ZeRO-1/2 optimiser state dict: plain data, no code."""
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, ZeroStageEnum, fragment_address]


def partition_file(folder: Path, rank: int) -> Path:
    return folder / f"zero-rank{rank:05d}.pt"


@contextmanager
def _broadcast_scalars_as_vectors(engine_class):
    """While engines are built: their initial weight broadcast views every parameter as bytes,
    which fails on 0-dim ones (the attention gate) in DeepSpeed 0.19, so 0-dim parameters are
    shown to it as shape (1,) for the broadcast alone. ZeRO flattens them afterwards, with
    their own shape."""
    broadcast = engine_class._broadcast_model

    def scalars_as_vectors(engine):
        scalars = [p for p in engine.module.parameters() if p.dim() == 0]
        for p in scalars:
            p.data = p.data.reshape(1)
        try:
            broadcast(engine)
        finally:
            for p in scalars:
                p.data = p.data.reshape(())

    engine_class._broadcast_model = scalars_as_vectors
    try:
        yield
    finally:
        engine_class._broadcast_model = broadcast


class ZeroUpdates:
    """`Updates` (updates.py) through one DeepSpeed engine per network, e.g. {"generator": ...,
    "critic": ...}. The engines own the optimisers and step their schedules.

    Forwards run the raw modules (`module` is `raw`): the engine's hooks break the gradient
    penalty's `autograd.grad`, and ZeRO-1/2 reduce gradients in `engine.backward` whichever
    way the forward went. A partial loss is kept and added to the network's next full loss,
    since an engine cannot hold one backward's gradients back from reduction.
    """

    def __init__(
        self,
        accelerator: Accelerator,
        networks: dict,
        batch_size: int,
        grad_accumulation: int,
    ):
        from ganmotion.training.optim import optimiser

        deepspeed = _deepspeed()
        config = engine_config(batch_size, grad_accumulation, accelerator.num_processes)
        self.accelerator = accelerator
        self.zero_stage = config["zero_optimization"]["stage"]
        self.engines, self.schedules, self.modules = {}, {}, {}
        self.held: dict[str, torch.Tensor] = {}
        with _broadcast_scalars_as_vectors(deepspeed.DeepSpeedEngine):
            for name, network in networks.items():
                adam, schedule = optimiser(network)
                engine, *_ = deepspeed.initialize(
                    model=network.module,
                    optimizer=adam,
                    lr_scheduler=schedule,
                    config=copy.deepcopy(config),
                )
                self.engines[name], self.schedules[name] = engine, schedule
                self.modules[name] = network.module

    def module(self, name: str) -> nn.Module:
        return self.modules[name]

    def raw(self, name: str) -> nn.Module:
        return self.modules[name]

    def accumulate(self):
        return nullcontext()  # the engines count micro-batches themselves

    def unreduced(self, name: str):
        return nullcontext()

    def backward_partial(self, name: str, loss: torch.Tensor) -> None:
        self.held[name] = loss if name not in self.held else self.held[name] + loss

    def backward_and_step(self, name: str, loss: torch.Tensor) -> bool | None:
        engine = self.engines[name]
        held = self.held.pop(name, None)
        engine.backward(loss if held is None else loss + held)
        boundary = engine.is_gradient_accumulation_boundary()
        engine.step()  # also drops a group whose gradient norm is not finite
        return engine.was_step_applied() if boundary else None

    def loss_scale(self) -> float:
        return 1.0  # fp16 is refused under DeepSpeed here (plain_accelerator)

    def learning_rates(self) -> dict[str, float]:
        return {f"lr/{name}": s.get_last_lr()[0] for name, s in self.schedules.items()}

    def state_dict(self) -> dict:
        """The schedules (the optimiser states are per-rank partitions, `save_partitions`)."""
        state = {name: {} for name in self.engines}
        state.update({f"{n}_schedule": s.state_dict() for n, s in self.schedules.items()})
        return {**state, "scaler": {}}

    def load_state_dict(self, state: dict) -> None:
        for name, schedule in self.schedules.items():
            schedule.load_state_dict(state[f"{name}_schedule"])

    def save_partitions(self, folder: Path, rank: int) -> None:
        """This rank's optimiser partitions (every rank must call it)."""
        states = {name: engine.optimizer.state_dict() for name, engine in self.engines.items()}
        torch.save(states, partition_file(folder, rank))

    def load_partitions(self, folder: Path, rank: int, world_size: int, saved: int) -> None:
        """Restore this rank's optimiser partitions; call after loading the module weights
        (ZeRO's fp32 copies are refreshed from them)."""
        path = partition_file(folder, rank)
        if not path.is_file():
            raise GanmotionError(
                f"{folder}: no {path.name}: this checkpoint was not saved under DeepSpeed ZeRO; "
                "resume it with configs/accelerate/ddp.yaml"
            )
        if saved != world_size:
            raise GanmotionError(
                f"{folder}: saved by {saved} DeepSpeed processes, resumed on "
                f"{world_size}: ZeRO optimiser partitions need the same number"
            )
        try:
            with torch.serialization.safe_globals(_safe_types()):
                states = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise GanmotionError(f"{path}: not a readable ZeRO partition file ({error})") from None
        for name, engine in self.engines.items():
            state = states[name]
            if int(state["zero_stage"]) != self.zero_stage:
                raise GanmotionError(
                    f"{path}: saved with ZeRO stage {int(state['zero_stage'])}, "
                    f"resumed with stage {self.zero_stage}"
                )
            # DeepSpeed reads entry `rank` of a per-rank list; the other ranks' entries are
            # only read when the world size changes, which is refused above.
            per_rank = [None] * world_size
            per_rank[rank] = state
            engine.optimizer.load_state_dict(per_rank, load_from_fp32_weights=True)


def has_partitions(folder: Path) -> bool:
    """Whether a checkpoint folder holds ZeRO optimiser partitions (saved under DeepSpeed)."""
    return partition_file(folder, 0).is_file()
