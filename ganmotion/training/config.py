"""What a training run is made of: one dataclass per component, composed per trainer.

YAML files in `configs/` are instances of `GanConfig` (train/gan.py) or `VanillaConfig`
(train/vanilla.py); see `ganmotion.config.load_config` for how files and overrides combine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from ganmotion.config import check_ranges, ranged
from ganmotion.data.stream import StreamConfig
from ganmotion.errors import GanmotionError
from ganmotion.losses import GanLossConfig, RegressionLossConfig
from ganmotion.models.baselines import MLPConfig
from ganmotion.models.critic import CriticConfig
from ganmotion.models.generator import ComposeConfig, GeneratorConfig


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
    workers: int = ranged(0, 0, 64)
    batches_per_epoch: int = ranged(1000, 1)
    val_batches: int = ranged(2, 1)
    stream: StreamConfig = field(default_factory=StreamConfig)

    def __post_init__(self):
        check_ranges(self)


@dataclass(frozen=True)
class OptimConfig:
    """Adam and its learning-rate schedule, for one network.

    lr: peak learning rate.
    betas: Adam betas; (0.5, 0.999) as in pix2pix, (0.0, 0.9) as in the WGAN-GP paper.
    warmup_steps: linear warm-up from 0 over this many optimiser steps.
    schedule: after warm-up, "constant", or "linear"/"cosine" decay to 0 at the last step.
    """

    lr: float = ranged(1e-4, 0, 1, low_open=True)
    betas: tuple[float, float] = ranged((0.5, 0.999), 0, 1, high_open=True)
    weight_decay: float = ranged(0.0, 0)
    warmup_steps: int = ranged(0, 0)
    schedule: Literal["constant", "linear", "cosine"] = "constant"

    def __post_init__(self):
        check_ranges(self)


# The validation metrics that can choose the best checkpoint: whether higher is better.
BEST_METRICS = {"val/ssim": True, "val/psnr": True, "val/l1": False}


@dataclass(frozen=True)
class RunConfig:
    """How long, how precise, and what is kept.

    out_dir: run folder: checkpoints/, samples/, tensorboard/, metrics.jsonl, status.json.
    steps: generator optimiser steps in the whole run; the learning-rate schedules (warm-up
        aside) are keyed on it: "cosine" and "linear" reach 0 at this step.
    max_minutes: wall-clock budget of the run in minutes, or None (no limit). When it is
        spent, the run stops like at its last step (a final validation and checkpoint, then
        status.json says "finished" with "stopped": "max_minutes"). The clock starts when
        this process starts training, so a resumed run gets a fresh budget; the final
        validation and checkpoint come after it. A decaying schedule that the budget cuts off
        never reaches its end: set `steps` to what the budget fits (the budget is then a
        guard against a slower machine), or let the schedules run on time (schedule_by).
    schedule_by: what the decaying learning-rate schedules count: "steps" (they reach 0 at
        run.steps) or "time" (they reach 0 when run.max_minutes is spent, however many steps
        that was; run.steps is then only a cap), as `ganmotion train-video` runs: a budget
        in minutes is then used to its end at whatever pace the machine gives, with no step
        count to guess. The share of the budget spent is read on the slowest rank's clock
        and kept in checkpoints: a resumed run goes on from it and spreads the rest of the
        decay over its fresh budget. Runs on time are not bit-exact: the learning rate of a
        step depends on when it ran.
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
    steps: int = ranged(10_000, 1)
    max_minutes: float | None = ranged(None, 0, low_open=True)
    schedule_by: Literal["steps", "time"] = "steps"
    seed: int = ranged(0, 0)
    precision: Literal["no", "bf16", "fp16"] = "no"
    grad_accumulation: int = ranged(1, 1)
    ema_decay: float = ranged(0.999, 0, 1, high_open=True)
    checkpoint_every: int = ranged(1000, 1)
    keep_checkpoints: int = ranged(3, 1)
    log_every: int = ranged(50, 1)
    sample_every: int = ranged(500, 1)
    best_metric: str | None = "val/ssim"
    max_bad_steps: int = ranged(10, 1)
    tensorboard: bool = True

    def __post_init__(self):
        check_ranges(self)
        if self.schedule_by == "time" and self.max_minutes is None:
            raise GanmotionError(
                "run.schedule_by: time needs run.max_minutes, the budget the learning-rate "
                "schedules run over"
            )
        if self.best_metric not in (*BEST_METRICS, "none", "", None):
            raise GanmotionError(
                "run.best_metric must be val/ssim, val/psnr, val/l1 or none, "
                f"got {self.best_metric!r}"
            )

    @property
    def keeps_best(self) -> bool:
        """Whether validations pick a best checkpoint (best_metric is not "none")."""
        return self.best_metric in BEST_METRICS


def take_image_size(config: GanConfig | VanillaConfig, section: str) -> None:
    """Give a network section of a training config its image size from data.stream.size,
    where the size is declared once; a section that states another size is an error."""
    size, network = config.data.stream.size, getattr(config, section)
    if network.size is not None and network.size != size:
        raise GanmotionError(
            f"{section}.size ({network.size}) differs from data.stream.size ({size}): the "
            f"image size is declared once, in data.stream.size; remove {section}.size"
        )
    object.__setattr__(config, section, dataclasses.replace(network, size=size))


def check_alpha_settings(config: GanConfig | VanillaConfig) -> None:
    """loss.mask_weight supervises an alpha, and compose lays down the person an alpha
    outlines: each an error unless the generator draws one."""
    if config.loss.mask_weight > 0 and not config.generator.alpha:
        raise GanmotionError(
            f"loss.mask_weight={config.loss.mask_weight:g} supervises the generator's alpha, "
            "but generator.alpha is false: set generator.alpha: true or mask_weight: 0"
        )
    if config.compose.inside_blur > 0 and not config.generator.alpha:
        raise GanmotionError(
            f"compose.inside_blur={config.compose.inside_blur:g}: it blurs the person inside "
            "the alpha, but generator.alpha is false: set generator.alpha: true or "
            "compose.inside_blur: 0"
        )


@dataclass(frozen=True)
class VanillaConfig:
    """The regression baseline: generator alone, L1 (+ optional perceptual) loss.

    model: "unet" trains the U-Net (`generator`) from skeleton images; "mlp" trains the
        seed's MLP (`mlp`) from the reduced pose vector of the keypoints. The section of the
        other model must be left out.
    mlp: the MLP's constructor arguments; used when model is "mlp".
    loss: reconstruction terms only (the GAN's gp_weight and adversarial_weight are errors).
    compose: how eval, the export and the runner lay an alpha generator's person over its
        background (`ComposeConfig`); training does not use it.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: Literal["unet", "mlp"] = "unet"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    loss: RegressionLossConfig = field(default_factory=RegressionLossConfig)
    generator_optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        used, unused = ("mlp", "generator") if self.model == "mlp" else ("generator", "mlp")
        if getattr(self, unused) != type(getattr(self, unused))():
            raise GanmotionError(
                f"{unused}: set, but model is {self.model!r}, which trains `{used}`: remove "
                f"the {unused} section (or set model: {'unet' if unused == 'generator' else 'mlp'})"
            )
        take_image_size(self, used)
        if self.model == "mlp" and self.loss.mask_weight > 0:
            raise GanmotionError("loss.mask_weight: the MLP baseline draws no alpha; set it to 0")
        if self.model == "mlp" and self.compose.inside_blur > 0:
            raise GanmotionError(
                "compose.inside_blur: the MLP baseline draws no alpha; set it to 0"
            )
        if self.model == "unet":
            check_alpha_settings(self)


@dataclass(frozen=True)
class GanConfig:
    """Conditional WGAN-GP: generator and patch critic.

    critic_steps: critic optimiser steps per generator step (n_critic).
    compose: how eval, the export and the runner lay an alpha generator's person over its
        background (`ComposeConfig`); training does not use it.
    """

    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    loss: GanLossConfig = field(default_factory=GanLossConfig)
    generator_optim: OptimConfig = field(default_factory=OptimConfig)
    critic_optim: OptimConfig = field(default_factory=OptimConfig)
    critic_steps: int = ranged(5, 1, 100)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        check_ranges(self)
        take_image_size(self, "generator")
        check_alpha_settings(self)
        size, smallest = self.data.stream.size, self.critic.min_input_size()
        if size < smallest:
            raise GanmotionError(
                f"data.stream.size {size} is below the minimum {smallest} of a depth-"
                f"{self.critic.depth} critic at {self.critic.scales} scale(s): lower "
                "critic.depth or critic.scales, or raise the size"
            )
