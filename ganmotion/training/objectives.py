"""Training objectives: what one step of the generator is, for each kind of run.

    WganGpStep      conditional WGAN-GP (GanConfig): per step `critic_steps` critic updates,
                    with the gradient penalty on every `loss.gp_every`-th, then one
                    generator update, then EMA
    RegressionStep  the regression baseline (VanillaConfig): L1 (+ perceptual) of the U-Net
                    from skeletons, or of the seed's MLP from keypoints, then EMA

Each owns its networks, hands backward-and-step to `Updates` (DDP or DeepSpeed ZeRO, see
updates.py), and returns its losses as tensors: nothing here waits for the host, except the
one decision per optimiser step of whether its gradients were finite. The run loop (loop.py)
sees only the `Objective` interface.

With n = critic_steps and A = run.grad_accumulation, a GAN step reads n * A micro-batches:
the critic trains on every one (stepping every A), the generator on the last A, both inside
one `accumulate` block per micro-batch so that gradient sync lines up for both networks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from accelerate import Accelerator
from torch import nn

from ganmotion.data.stream import TrainingBatch
from ganmotion.inside import deep_inside
from ganmotion.losses import (
    PerceptualLoss,
    counted_more,
    critic_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    gradient_penalty,
    head_boxes,
    vgg16_features,
    weighted_bce,
    weighted_l1,
)
from ganmotion.models.baselines import MLPGenerator, reduced_pose_vector
from ganmotion.models.critic import PatchCritic
from ganmotion.models.generator import UNetGenerator, compose
from ganmotion.training.config import GanConfig, VanillaConfig
from ganmotion.training.ema import EMA
from ganmotion.training.optim import Network, TimeSpent
from ganmotion.training.updates import Updates, make_updates

Losses = dict[str, torch.Tensor]  # "critic/gap": 0-dim float32 tensor on the device


class Drawn(NamedTuple):
    """What a generator drew for a batch: the image (B, 3, S, S) in [-1, 1] (composed over
    the batch's background when the generator has alpha), its alpha (B, 1, S, S) and the
    person layer (B, 3, S, S) before composition, or None for both without alpha."""

    image: torch.Tensor
    alpha: torch.Tensor | None = None
    person: torch.Tensor | None = None


class LossSums:
    """Sums of named loss terms over a step's micro-batches, kept on the device."""

    def __init__(self) -> None:
        self.sums: Losses = {}
        self.counts: dict[str, int] = {}

    def add(self, network: str, terms: Losses) -> None:
        for name, value in terms.items():
            key = f"{network}/{name}"
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> Losses:
        return {key: total / self.counts[key] for key, total in self.sums.items()}


class Objective:
    """What the run loop drives. Subclasses build `networks` and `updates` and implement
    `train_step`; `generator` and `ema` are the trained generator and its average."""

    name: str  # state.json's "trainer"
    micro_batches: int  # micro-batches one step reads (for resume and images/s)
    updates: Updates
    ema: EMA

    def __init__(self, config: GanConfig | VanillaConfig, accelerator: Accelerator):
        self.config = config
        self.accelerator = accelerator
        mlp = isinstance(config, VanillaConfig) and config.model == "mlp"
        self.alpha = not mlp and config.generator.alpha
        # Whether each batch is its own background (no plate: a moving camera); the
        # trainer sets it from the shards.
        self.own_background = False
        # Where schedules that run on time stand; the run loop moves it.
        self.time_spent = TimeSpent() if config.run.schedule_by == "time" else None

    def train_step(self, data: Iterator[TrainingBatch], step: int) -> tuple[Losses, bool]:
        """Step `step` (0 for a run's first) of the generator's optimiser; returns the mean
        losses (tensors) and whether every optimiser step in it was applied (gradients
        finite on every rank)."""
        raise NotImplementedError

    def output(self, generator: nn.Module, batch: TrainingBatch) -> torch.Tensor:
        """What `generator` outputs for a batch (with alpha: image channels, then alpha)."""
        raise NotImplementedError

    def drawn(self, generator: nn.Module, batch: TrainingBatch) -> Drawn:
        """The image `generator` draws for a batch, composed over the batch's background
        when it has alpha."""
        output = self.output(generator, batch)
        if not self.alpha:
            return Drawn(output)
        person, alpha = output[:, :-1], output[:, -1:]
        if self.own_background:
            # Over the real frame an alpha of 0 copies the real image: every term but the
            # mask loss would pull the alpha to 0 (on taichi2 the critic did: IoU 0). So the
            # composed image takes the alpha as given, and the mask alone teaches it.
            image = compose(torch.cat([person, alpha.detach()], dim=1), batch.background)[0]
            return Drawn(image, alpha, person)
        return Drawn(*compose(output, batch.background), person)

    def draw(self, generator: nn.Module, batch: TrainingBatch) -> torch.Tensor:
        """Images (B, 3, S, S) in [-1, 1] that `generator` draws for a batch."""
        return self.drawn(generator, batch).image

    def validation_image(self, generator: nn.Module, batch: TrainingBatch) -> torch.Tensor:
        """What validation scores (B, 3, S, S): the drawn image; over its own background (a
        moving camera), the person layer laid over the real image within the person's mask.
        Composed over the real image, an alpha of 0 copies it: on taichi2 val/ssim fell from
        0.99 at step 200 to 0.85 at step 1933 while the person got drawn, and RUN/best was
        the step with the least person."""
        drawn = self.drawn(generator, batch)
        if self.alpha and self.own_background:
            return batch.mask * drawn.person + (1 - batch.mask) * batch.image
        return drawn.image

    def generate(self, batch: TrainingBatch) -> Drawn:
        """The live generator's drawing of a batch, through its DDP wrapper."""
        return self.drawn(self.updates.module("generator"), batch)

    def networks(self) -> dict[str, nn.Module]:
        """The bare trained networks by weight-file name (generator, critic, ...)."""
        raise NotImplementedError

    def architecture(self) -> dict:
        """state.json's architecture: each network's class and constructor arguments."""
        raise NotImplementedError

    def update_ema(self) -> None:
        self.ema.update(self.updates.raw("generator"))

    def autocast(self, module: nn.Module) -> Callable[..., torch.Tensor]:
        """`module` as a function whose forward runs under the run's autocast."""

        def forward(*inputs: torch.Tensor) -> torch.Tensor:
            with self.accelerator.autocast():
                return module(*inputs)

        return forward

    def reconstruction_terms(self, fake: Drawn, batch: TrainingBatch) -> Losses:
        """Weighted L1 (and perceptual) distance of generated to real images over the pixels
        inside the frame, the person counting `person_weight` times and the head's box
        `head_weight` times more; the alpha's L1 (or cross entropy: `mask_loss`) to the
        person mask, the person counting `mask_person_weight` times more (under autocast)."""
        loss = self.config.loss
        weight = batch.inside
        if loss.head_weight != 1:
            height, width = batch.image.shape[-2:]
            head = head_boxes(batch.keypoints, height, width)
            weight = counted_more(weight, head, loss.head_weight)
        if fake.person is not None and self.own_background:
            # The batch is its own background (a moving camera): the image composed over it
            # is right wherever alpha is 0, so an L1 of that image would reward an alpha of 0
            # everywhere (on taichi2 it did: IoU 0). The person layer is compared instead,
            # over the person.
            person = weighted_l1(fake.person, batch.image, weight * batch.mask)
            terms = {"l1": person * loss.l1_weight}
        else:
            weight = counted_more(weight, batch.mask, loss.person_weight)
            terms = {"l1": weighted_l1(fake.image, batch.image, weight) * loss.l1_weight}
        if fake.alpha is not None and loss.mask_weight > 0:
            person_first = counted_more(batch.inside, batch.mask, loss.mask_person_weight)
            mask_loss = weighted_bce if loss.mask_loss == "bce" else weighted_l1
            mask = mask_loss(fake.alpha, batch.mask, person_first)
            terms["mask"] = mask * loss.mask_weight
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(fake.image, batch.image) * loss.perceptual_weight
        return terms

    def _perceptual(self) -> PerceptualLoss | None:
        loss = self.config.loss
        if loss.perceptual_weight <= 0:
            return None
        return PerceptualLoss(vgg16_features(loss.vgg_weights)).to(self.accelerator.device)


class WganGpStep(Objective):
    """Conditional WGAN-GP with L1 (+ perceptual): a U-Net generator and a patch critic.

    critic phase      loss_C = E[C(s, fake)] - E[C(s, real)] + gp_weight * penalty,
                      penalty = E[(||grad_x C(s, x)||_2 - 1)^2] at interpolates x,
                      C(s, x) a sample's mean patch score (see losses.penalty_at);
                      with loss.gp_every = k > 1, the penalty only on every k-th update,
                      weighed k * gp_weight there
    generator phase   loss_G = -adversarial_weight * E[C(s, G(s))] + L1 (+ mask)
                               (+ feature matching) (+ perceptual)
    EMA               after each applied generator step

    With generator.alpha, G(s) is the person composed over the batch's background, and
    the critic judges that composed image.
    """

    name = "gan"

    def __init__(self, config: GanConfig, accelerator: Accelerator):
        super().__init__(config, accelerator)
        run = config.run
        self.micro_batches = config.critic_steps * run.grad_accumulation
        generator = UNetGenerator.from_config(config.generator)
        critic = PatchCritic.from_config(config.critic)
        self.perceptual = self._perceptual()
        networks = {
            "generator": Network(generator, config.generator_optim, run.steps, self.time_spent),
            "critic": Network(
                critic, config.critic_optim, run.steps * config.critic_steps, self.time_spent
            ),
        }
        self.updates = make_updates(accelerator, networks, config.data.stream.batch_size, run)
        self.ema = EMA(self.updates.raw("generator"), run.ema_decay)

    def output(self, generator: nn.Module, batch: TrainingBatch) -> torch.Tensor:
        return generator(batch.skeleton)

    def train_step(self, data: Iterator[TrainingBatch], step: int) -> tuple[Losses, bool]:
        sums, applied = LossSums(), []
        accumulation = self.config.run.grad_accumulation
        generator_from = self.micro_batches - accumulation
        for micro in range(self.micro_batches):
            batch = next(data)
            # Counted over the run, so that a resumed run penalises the same updates.
            critic_update = step * self.config.critic_steps + micro // accumulation
            penalise = critic_update % self.config.loss.gp_every == 0
            with self.updates.accumulate():
                fake = None
                if micro >= generator_from:
                    with self.accelerator.autocast():
                        fake = self.generate(batch)
                applied.append(self.critic_phase(batch, fake, sums, penalise))
                if fake is not None:
                    applied.append(self.generator_phase(batch, fake, sums))
        if applied[-1]:
            self.update_ema()
        return sums.means(), all(a for a in applied if a is not None)

    def critic_phase(
        self, batch: TrainingBatch, drawn: Drawn | None, sums: LossSums, penalise: bool
    ) -> bool | None:
        if drawn is None:  # a critic-only micro-batch: the generator is not trained on it
            with torch.no_grad(), self.accelerator.autocast():
                drawn = self.generate(batch)
        fake = drawn.image.detach().to(batch.image.dtype)
        critic = self.updates.module("critic")
        terms: Losses = {}
        penalty_term = 0.0

        if penalise:
            # Lazily (loss.gp_every = k), the penalty weighs k-fold on the updates that have
            # it, so that its mean pull on the critic stays gp_weight's.
            gp_weight = self.config.loss.gp_weight * self.config.loss.gp_every
            # The penalty in a critic forward of its own: its double backward then runs
            # through N samples, not all 3N of one forward over [real, fake, interpolates];
            # its gradients are not reduced until the Wasserstein backward below (one
            # reduction in all).
            with self.updates.unreduced("critic"):
                penalty = gradient_penalty(
                    self.autocast(critic),
                    batch.skeleton,
                    batch.image,
                    fake,
                    self.updates.loss_scale(),
                )
                penalty_term = gp_weight * penalty
                self.updates.backward_partial("critic", penalty_term)
            terms["gradient_penalty"] = penalty

        with self.accelerator.autocast():
            scores = critic(batch.skeleton.repeat(2, 1, 1, 1), torch.cat([batch.image, fake]))
        real_scores, fake_scores = scores.chunk(2)
        wasserstein = critic_loss(real_scores, fake_scores)
        applied = self.updates.backward_and_step("critic", wasserstein)
        sums.add("critic", {"loss": wasserstein + penalty_term, "gap": -wasserstein, **terms})
        return applied

    def generator_phase(self, batch: TrainingBatch, fake: Drawn, sums: LossSums) -> bool:
        # The bare critic, frozen: its DDP wrapper would expect gradients for its parameters
        # in this backward (and a DeepSpeed engine would reduce them).
        critic = self.updates.raw("critic").requires_grad_(False)
        loss = self.config.loss
        with self.accelerator.autocast():
            terms = self.reconstruction_terms(fake, batch)
            if loss.feature_matching_weight > 0:
                features = critic.features(batch.skeleton, fake.image)
                with torch.no_grad():
                    real = critic.features(batch.skeleton, batch.image)
                matching = feature_matching_loss(features, real, self.matching_weight(batch))
                terms["feature_matching"] = matching * loss.feature_matching_weight
                scores = features[-1]
            else:
                scores = critic(batch.skeleton, fake.image)
            terms["adversarial"] = generator_adversarial_loss(scores) * loss.adversarial_weight
        total = sum(terms.values())
        applied = self.updates.backward_and_step("generator", total)
        critic.requires_grad_(True)
        sums.add("generator", {"loss": total, **terms})
        return applied

    def matching_weight(self, batch: TrainingBatch) -> torch.Tensor | None:
        """Feature matching's per-pixel weights: feature_matching_inside_weight deeper than
        feature_matching_depth px inside the person, 1 elsewhere; None when all are 1."""
        loss = self.config.loss
        if loss.feature_matching_inside_weight == 1:
            return None
        deep = deep_inside(batch.mask, loss.feature_matching_depth)
        return counted_more(torch.ones_like(deep), deep, loss.feature_matching_inside_weight)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.updates.raw("generator"), "critic": self.updates.raw("critic")}

    def architecture(self) -> dict:
        config = self.config
        return {
            "generator": {"class": "UNetGenerator", **dataclasses.asdict(config.generator)},
            "critic": {"class": "PatchCritic", **dataclasses.asdict(config.critic)},
        }


class RegressionStep(Objective):
    """The regression baseline: loss = L1 (+ perceptual) of generated to real, then EMA.
    model "unet" draws from skeleton images, "mlp" (the seed's) from keypoints alone."""

    name = "vanilla"

    def __init__(self, config: VanillaConfig, accelerator: Accelerator):
        super().__init__(config, accelerator)
        run = config.run
        self.micro_batches = run.grad_accumulation
        self.mlp = config.model == "mlp"
        if self.mlp:
            generator = MLPGenerator.from_config(config.mlp)
        else:
            generator = UNetGenerator.from_config(config.generator)
        self.perceptual = self._perceptual()
        networks = {
            "generator": Network(generator, config.generator_optim, run.steps, self.time_spent)
        }
        self.updates = make_updates(accelerator, networks, config.data.stream.batch_size, run)
        self.ema = EMA(self.updates.raw("generator"), run.ema_decay)

    def output(self, generator: nn.Module, batch: TrainingBatch) -> torch.Tensor:
        if self.mlp:
            return generator(reduced_pose_vector(batch.keypoints, self.config.mlp.size))
        return generator(batch.skeleton)

    def train_step(self, data: Iterator[TrainingBatch], step: int) -> tuple[Losses, bool]:
        sums, applied = LossSums(), None
        for _ in range(self.micro_batches):
            batch = next(data)
            with self.updates.accumulate():
                with self.accelerator.autocast():
                    terms = self.reconstruction_terms(self.generate(batch), batch)
                loss = sum(terms.values())
                applied = self.updates.backward_and_step("generator", loss)
                sums.add("generator", {"loss": loss, **terms})
        if applied:
            self.update_ema()
        return sums.means(), bool(applied)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.updates.raw("generator")}

    def architecture(self) -> dict:
        if self.mlp:
            kind, arguments = "MLPGenerator", self.config.mlp
        else:
            kind, arguments = "UNetGenerator", self.config.generator
        return {"generator": {"class": kind, **dataclasses.asdict(arguments)}}


def make_objective(config: GanConfig | VanillaConfig, accelerator: Accelerator) -> Objective:
    """The objective a config describes (its networks are built from the current RNG state)."""
    if isinstance(config, GanConfig):
        return WganGpStep(config, accelerator)
    return RegressionStep(config, accelerator)
