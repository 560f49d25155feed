"""What a training run is made of: one dataclass per component, composed per trainer.

YAML files in `configs/` are instances of `GanConfig` (train/gan.py) or `VanillaConfig`
(train/vanilla.py); see `ganmotion.config.load_config` for how files and overrides combine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ganmotion.data.stream import StreamConfig
from ganmotion.errors import GanmotionError
from ganmotion.losses import LossConfig
from ganmotion.models.baselines import MLPConfig
from ganmotion.models.critic import CriticConfig
from ganmotion.models.generator import GeneratorConfig


@dataclass(frozen=True)
class DataConfig:
    """Where training batches come from.

    shards: folder or http(s):// URL holding `manifest.json` and the shards from `prepare`.
    workers: loader worker processes per rank (0 = decode in the training process).
    batches_per_epoch: batches each rank draws per stream epoch (the epoch enters the seeds).
    val_batches: batches of the validation split kept for validation and the sample grid.
    stream: decoding, augmentation and batch size (per rank), see `StreamConfig`.
    """

    shards: str = "data/shards"
    workers: int = 0
    batches_per_epoch: int = 1000
    val_batches: int = 2
    stream: StreamConfig = field(default_factory=StreamConfig)

    def __post_init__(self):
        if self.val_batches < 1 or self.batches_per_epoch < 1 or self.workers < 0:
            raise GanmotionError(
                "data: val_batches and batches_per_epoch must be >= 1, workers >= 0"
            )


@dataclass(frozen=True)
class OptimConfig:
    """Adam and its learning-rate schedule, for one network.

    lr: peak learning rate.
    betas: Adam betas; (0.5, 0.999) as in pix2pix, (0.0, 0.9) as in the WGAN-GP paper.
    warmup_steps: linear warm-up from 0 over this many optimiser steps.
    schedule: after warm-up, "constant", or "linear"/"cosine" decay to 0 at the last step.
    """

    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: Literal["constant", "linear", "cosine"] = "constant"

    def __post_init__(self):
        if self.lr <= 0 or self.warmup_steps < 0:
            raise GanmotionError(f"optimiser: lr must be > 0 and warmup_steps >= 0, got {self}")


# The validation metrics that can choose the best checkpoint: whether higher is better.
BEST_METRICS = {"val/ssim": True, "val/psnr": True, "val/l1": False}


@dataclass(frozen=True)
class RunConfig:
    """How long, how precise, and what is kept.

    out_dir: run folder: checkpoints/, samples/, tensorboard/, metrics.jsonl, status.json.
    steps: generator optimiser steps in the whole run.
    seed: seeds model init (same on every rank) and per-rank noise (seed + rank).
    precision: "no" (fp32), "bf16", or "fp16" (GPU only: Accelerate ignores it on CPU).
    grad_accumulation: micro-batches per optimiser step, for both networks.
    ema_decay: decay of the generator's exponential moving average (used for samples, export).
    checkpoint_every: steps between checkpoints (one is always written at the end).
    keep_checkpoints: newest checkpoints kept; older ones are deleted.
    log_every: steps between loss lines in TensorBoard and metrics.jsonl.
    sample_every: steps between validations (L1, PSNR, SSIM of the EMA generator) and
        sample grids.
    best_metric: validation metric whose best value so far is kept as `<out_dir>/best` (a
        link to that step's checkpoint, never pruned) and `best.json`: "val/ssim" or
        "val/psnr" (higher is better), "val/l1" (lower is better), or "none" (also "" or
        null) to keep no best checkpoint.
    max_bad_steps: non-finite losses this many steps in a row stop the run.
    tensorboard: write TensorBoard event files.
    """

    out_dir: str = "runs/gan"
    steps: int = 10_000
    seed: int = 0
    precision: Literal["no", "bf16", "fp16"] = "no"
    grad_accumulation: int = 1
    ema_decay: float = 0.999
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    sample_every: int = 500
    best_metric: str | None = "val/ssim"
    max_bad_steps: int = 10
    tensorboard: bool = True

    def __post_init__(self):
        for name in ("steps", "grad_accumulation", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise GanmotionError(f"run.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise GanmotionError(f"run.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.best_metric not in (*BEST_METRICS, "none", "", None):
            raise GanmotionError(
                "run.best_metric must be val/ssim, val/psnr, val/l1 or none, "
                f"got {self.best_metric!r}"
            )

    @property
    def keeps_best(self) -> bool:
        """Whether validations pick a best checkpoint (best_metric is not "none")."""
        return self.best_metric in BEST_METRICS


@dataclass(frozen=True)
class VanillaConfig:
    """The regression baseline: generator alone, L1 (+ optional perceptual) loss.

    model: "unet" trains the U-Net (`generator`) from skeleton images; "mlp" trains the
        seed's MLP (`mlp`) from the reduced pose vector of the keypoints.
    mlp: the MLP's constructor arguments; used when model is "mlp".
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: Literal["unet", "mlp"] = "unet"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    generator_optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass(frozen=True)
class GanConfig:
    """Conditional WGAN-GP: generator and patch critic.

    critic_steps: critic optimiser steps per generator step (n_critic).
    """

    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    generator_optim: OptimConfig = field(default_factory=OptimConfig)
    critic_optim: OptimConfig = field(default_factory=OptimConfig)
    critic_steps: int = 5
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        if self.critic_steps < 1:
            raise GanmotionError(f"critic_steps must be >= 1, got {self.critic_steps}")
