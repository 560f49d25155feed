"""The training loop: conditional WGAN-GP (GanConfig) or the L1 regression baseline
(VanillaConfig: the U-Net, or the seed's MLP), one or many processes through Accelerate.

One step is one generator optimiser step. With n = critic_steps and A = grad_accumulation,
a step reads n * A micro-batches: the critic trains on every one (stepping every A), the
generator on the last A, all inside one `accelerator.accumulate(generator, critic)` block per
micro-batch, so gradient sync and optimiser steps line up for both networks:

    critic phase     fake = G(skeleton); gradient penalty at interpolates (own forward and
                     backward, unreduced), then the Wasserstein loss on [real, fake], whose
                     backward reduces both: loss = fake - real + gp_weight * penalty
    generator phase  scores from the frozen raw critic; loss = adversarial + L1 (+ perceptual)
    then             EMA update, log, validation (and samples), checkpoint (also when the
                     validation is the best so far by run.best_metric), preemption check
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm import tqdm

from ganmotion import metrics
from ganmotion.config import config_to_dict
from ganmotion.data.manifest import load_manifest, shard_urls
from ganmotion.data.preview import tile_rows
from ganmotion.data.stream import (
    TrainingBatch,
    TrainingStream,
    to_uint8_images,
    validation_batches,
)
from ganmotion.errors import GanmotionError
from ganmotion.losses import (
    PerceptualLoss,
    critic_loss,
    generator_adversarial_loss,
    interpolate,
    penalty_at,
    vgg16_features,
)
from ganmotion.models.baselines import MLPGenerator, reduced_pose_vector
from ganmotion.models.critic import PatchCritic
from ganmotion.models.generator import UNetGenerator
from ganmotion.training import checkpoint as ckpt
from ganmotion.training import deepspeed as zero
from ganmotion.training.config import BEST_METRICS, GanConfig, OptimConfig, VanillaConfig
from ganmotion.training.ema import EMA
from ganmotion.training.preemption import REQUEUE_EXIT_CODE, PreemptionFlag
from ganmotion.training.tracking import Tracker

log = logging.getLogger(__name__)

SAMPLE_GRID_SIZE = 4


class Diverged(GanmotionError):
    """Non-finite losses for `max_bad_steps` steps in a row."""


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


def adam(module: torch.nn.Module, config: OptimConfig) -> torch.optim.Adam:
    return torch.optim.Adam(
        module.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )


class Trainer:
    """Builds everything a run needs from its config, then `run()` trains to the last step.

    `resume` is None (fresh run), "latest" (newest complete checkpoint of this run), "auto"
    (the newest if there is one, else a fresh run) or a checkpoint folder. `run()` returns
    the process exit status: 0 when finished, REQUEUE_EXIT_CODE when stopped by a
    preemption signal after saving a checkpoint.
    """

    def __init__(self, config: GanConfig | VanillaConfig, resume: str | None = None):
        self.config = config
        self.gan = isinstance(config, GanConfig)
        self.mlp = not self.gan and config.model == "mlp"
        run = config.run
        self.run_dir = Path(run.out_dir)
        self.checkpoints = self.run_dir / "checkpoints"
        self.engines = None  # DeepSpeed ZeRO engines, when launched with a DeepSpeed config
        if zero.requested():
            self.accelerator = zero.plain_accelerator(run.precision)
        else:
            self.accelerator = Accelerator(
                mixed_precision=run.precision, gradient_accumulation_steps=run.grad_accumulation
            )
        acc = self.accelerator
        # The critic's last conv weight is (1, C, 4, 4); the gradient that the penalty's
        # double backward gives it has another (meaningless) stride on that size-1 dim than
        # DDP's bucket view, and DDP warns on every run. The copy into the bucket is correct.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
        self.micro_per_step = (config.critic_steps if self.gan else 1) * run.grad_accumulation

        size = config.data.stream.size
        section = "mlp" if self.mlp else "generator"
        if getattr(config, section).size != size:
            raise GanmotionError(
                f"{section}.size ({getattr(config, section).size}) must equal "
                f"data.stream.size ({size})"
            )
        manifest = load_manifest(config.data.shards)
        self.train_urls = shard_urls(config.data.shards, "train")
        val_split = "val" if "val" in manifest["splits"] else "train"
        self.val_urls = shard_urls(config.data.shards, val_split)

        set_seed(run.seed)  # identical initial weights on every rank
        if self.mlp:
            generator = MLPGenerator.from_config(config.mlp)
        else:
            generator = UNetGenerator.from_config(config.generator)
            generator.check_input_size(size, size)
        critic = PatchCritic.from_config(config.critic) if self.gan else None
        if critic is not None and size < critic.min_input_size():
            raise GanmotionError(
                f"image size {size} is below the critic's minimum {critic.min_input_size()} "
                f"for depth {config.critic.depth}"
            )
        self.perceptual = None
        if config.loss.perceptual_weight > 0:
            features = vgg16_features(config.loss.vgg_weights)
            self.perceptual = PerceptualLoss(features).to(acc.device)

        g_opt = adam(generator, config.generator_optim)
        self.g_schedule = torch.optim.lr_scheduler.LambdaLR(
            g_opt, lr_schedule(config.generator_optim, run.steps)
        )
        if self.gan:
            c_opt = adam(critic, config.critic_optim)
            self.c_schedule = torch.optim.lr_scheduler.LambdaLR(
                c_opt, lr_schedule(config.critic_optim, run.steps * config.critic_steps)
            )
        if zero.requested():  # the engines own the optimisers and step the schedules
            networks = {"generator": (generator, g_opt, self.g_schedule)}
            if self.gan:
                networks["critic"] = (critic, c_opt, self.c_schedule)
            else:
                self.c_schedule = None
            self.engines = zero.ZeroEngines(
                networks, config.data.stream.batch_size, run.grad_accumulation, acc.num_processes
            )
            self.generator = self.engines["generator"]
            self.critic = self.engines["critic"] if self.gan else None
            self.g_opt = self.c_opt = None
        elif self.gan:
            self.generator, self.critic, self.g_opt, self.c_opt = acc.prepare(
                generator, critic, g_opt, c_opt
            )
        else:
            self.generator, self.g_opt = acc.prepare(generator, g_opt)
            self.critic = self.c_opt = self.c_schedule = None
        self.ema = EMA(acc.unwrap_model(self.generator), run.ema_decay)

        self.step = 0
        # The best value of run.best_metric so far: what a validation must beat to become
        # RUN/best. A resumed run takes it from best.json, unless that ranks another metric.
        self.best_value = None
        checkpoint = None if resume is None else ckpt.resolve_resume(resume, self.checkpoints)
        if checkpoint is not None:
            self.load(checkpoint)
            recorded = ckpt.read_best(self.run_dir)
            if recorded is not None and recorded["metric"] == run.best_metric:
                self.best_value = recorded["value"]
        else:
            torch.manual_seed(run.seed + 1 + acc.process_index)  # per-rank noise (interpolates)
        self.stream = TrainingStream(
            self.train_urls,
            config.data.stream,
            config.data.batches_per_epoch,
            config.data.workers,
            device=acc.device,
        )
        self.val = []
        if acc.is_main_process:
            self.val = [
                TrainingBatch(*(t.to(acc.device) for t in batch))
                for batch in validation_batches(
                    self.val_urls, config.data.stream, config.data.val_batches
                )
            ]
        self.bad_in_group = {"critic": False, "generator": False}

    # ----------------------------------------------------------------- the loop

    def run(self) -> int:
        acc, run = self.accelerator, self.config.run
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(
                json.dumps(config_to_dict(self.config), indent=2)
            )
        acc.wait_for_everyone()
        tracker = Tracker(self.run_dir, acc.is_main_process, run.tensorboard)
        preemption = PreemptionFlag()
        self.write_status("running")
        acc.print(
            f"{'gan' if self.gan else 'vanilla'} training in {self.run_dir}: world size "
            f"{acc.num_processes} ({acc.device.type}), step {self.step} of {run.steps}"
        )
        try:
            if self.step == 0:
                self.evaluate(tracker)
            data = self.batches(self.step * self.micro_per_step)
            bar = tqdm(
                total=run.steps, initial=self.step, disable=not acc.is_main_process, unit="step"
            )
            bad_in_a_row, window, started = 0, defaultdict(list), time.perf_counter()
            while self.step < run.steps:
                losses, finite = self.train_step(data)
                self.step += 1
                bar.update()
                bad_in_a_row = 0 if finite else bad_in_a_row + 1
                if not finite:
                    log.warning("step %d: non-finite loss, update skipped (%s)", self.step, losses)
                    if bad_in_a_row >= run.max_bad_steps:
                        raise Diverged(
                            f"{self.run_dir}: {bad_in_a_row} steps in a row with non-finite "
                            f"losses (step {self.step}); stopped. Last good checkpoint: "
                            f"{ckpt.latest_checkpoint(self.checkpoints) or 'none'}"
                        )
                else:
                    for name, value in losses.items():
                        window[name].append(value)
                if self.step % run.log_every == 0 or self.step == run.steps:
                    seconds = time.perf_counter() - started
                    self.log_losses(tracker, window, seconds)
                    bar.set_postfix({k: f"{sum(v) / len(v):.3g}" for k, v in window.items()})
                    window, started = defaultdict(list), time.perf_counter()
                new_best = False
                if self.step % run.sample_every == 0 or self.step == run.steps:
                    new_best = self.is_new_best(self.evaluate(tracker))
                saved = new_best or self.step % run.checkpoint_every == 0 or self.step == run.steps
                if saved:
                    self.save(best=new_best)
                if self.any_rank(preemption.requested):
                    if not saved:
                        self.save()
                    self.write_status("preempted", requeue=True)
                    acc.print(f"preempted at step {self.step}: checkpoint saved, exit to requeue")
                    return REQUEUE_EXIT_CODE
            bar.close()
            self.write_status("finished")
            return 0
        except Diverged:
            self.write_status("diverged")
            raise
        finally:
            preemption.restore()
            tracker.close()
            # Tear the process group down before interpreter exit: left to atexit, a
            # communication thread can be destroyed while joinable and abort the process
            # ("terminate called without an active exception"), seen under DeepSpeed.
            acc.end_training()

    def train_step(self, data: Iterator[TrainingBatch]) -> tuple[dict[str, float], bool]:
        """One generator optimiser step (n critic steps first); returns mean losses and
        whether every loss on every rank was finite (if not, nothing was applied)."""
        acc = self.accelerator
        accumulation = self.config.run.grad_accumulation
        sums: dict[str, float] = defaultdict(float)
        finite = True
        models = (self.generator, self.critic) if self.gan else (self.generator,)
        for micro in range(self.micro_per_step):
            batch = next(data)
            generator_turn = micro >= self.micro_per_step - accumulation
            with acc.accumulate(*models):
                fake = None
                if generator_turn:
                    with acc.autocast():
                        fake = self.generate(batch)
                if self.gan:
                    for name, value in self.critic_phase(batch, fake).items():
                        sums[name] += value
                if generator_turn:
                    for name, value in self.generator_phase(batch, fake).items():
                        sums[name] += value
            finite &= all(math.isfinite(v) for v in sums.values())
        counts = {"critic": self.micro_per_step, "generator": accumulation}
        means = {k: v / counts[k.split("/")[0]] for k, v in sums.items()}
        return means, self.all_ranks(finite)

    def generate(
        self, batch: TrainingBatch, generator: torch.nn.Module | None = None
    ) -> torch.Tensor:
        """Images (B, 3, S, S) in [-1, 1] for a batch, by `generator` (default: the live one).
        The U-Net draws from the skeleton images, the MLP from the keypoints alone."""
        generator = self.generator if generator is None else generator
        if self.mlp:
            return generator(reduced_pose_vector(batch.keypoints, self.config.mlp.size))
        return generator(batch.skeleton)

    def critic_phase(self, batch: TrainingBatch, fake: torch.Tensor | None) -> dict[str, float]:
        acc, gp_weight = self.accelerator, self.config.loss.gp_weight
        if fake is None:
            with torch.no_grad(), acc.autocast():
                fake = self.generate(batch)
        fake = fake.detach().to(batch.image.dtype)
        # Under DeepSpeed the raw module: the engine's hooks break the penalty's autograd.grad
        # (the engine still reduces and steps, in backward_and_step).
        critic = self.critic if self.engines is None else acc.unwrap_model(self.critic)

        # Gradient penalty, in a critic forward of its own: its double backward then runs
        # through N samples, not through all 3N of one forward over [real, fake, interpolate].
        # Forward and backward inside no_sync (DDP prepares no reduction for them): the
        # penalty's gradients stay local in .grad until the Wasserstein backward below.
        mixed = interpolate(batch.image, fake)
        with acc.no_sync(critic):
            with acc.autocast():
                mixed_scores = critic(batch.skeleton, mixed)
            penalty = penalty_at(mixed_scores, mixed, self.loss_scale())
            if self.engines is None:
                self.backward(gp_weight * penalty, "critic")

        # Wasserstein loss on [real, fake]. DDP's backward all-reduces the accumulated .grad,
        # the penalty's included: one reduction. A DeepSpeed engine reduces inside its own
        # backward and cannot hold gradients back, so it gets the whole loss in one backward.
        with acc.autocast():
            scores = critic(batch.skeleton.repeat(2, 1, 1, 1), torch.cat([batch.image, fake]))
        real_scores, fake_scores = scores.chunk(2)
        wasserstein = critic_loss(real_scores, fake_scores)
        loss = wasserstein + gp_weight * penalty
        last = wasserstein if self.engines is None else loss
        self.backward_and_step(last, "critic", self.c_opt, self.c_schedule)
        return {
            "critic/loss": loss.item(),
            "critic/gap": -wasserstein.item(),
            "critic/gradient_penalty": penalty.item(),
        }

    def generator_phase(self, batch: TrainingBatch, fake: torch.Tensor) -> dict[str, float]:
        acc, loss_config = self.accelerator, self.config.loss
        terms = {}
        with acc.autocast():
            terms["l1"] = F.l1_loss(fake.float(), batch.image) * loss_config.l1_weight
            if self.perceptual is not None:
                terms["perceptual"] = (
                    self.perceptual(fake, batch.image) * loss_config.perceptual_weight
                )
            if self.gan:
                # The raw critic, frozen: its DDP wrapper would expect gradients for its
                # parameters (and DeepSpeed's engine would reduce them) in this backward.
                critic = acc.unwrap_model(self.critic).requires_grad_(False)
                scores = critic(batch.skeleton, fake)
                terms["adversarial"] = (
                    generator_adversarial_loss(scores) * loss_config.adversarial_weight
                )
        loss = sum(terms.values())
        applied = self.backward_and_step(loss, "generator", self.g_opt, self.g_schedule)
        if self.gan:
            acc.unwrap_model(self.critic).requires_grad_(True)
        if applied:
            self.ema.update(acc.unwrap_model(self.generator))
        return {
            "generator/loss": loss.item(),
            **{f"generator/{k}": v.item() for k, v in terms.items()},
        }

    def backward(self, loss: torch.Tensor, name: str) -> None:
        """Backward without a step (DDP, not DeepSpeed); a non-finite loss marks this rank's
        accumulation group bad, and the step at its end is then skipped on every rank."""
        self.bad_in_group[name] |= not bool(torch.isfinite(loss))
        self.accelerator.backward(loss)

    def backward_and_step(self, loss, name: str, optimizer, schedule) -> bool:
        """Backward; at the end of an accumulation group, step unless a loss in the group
        (on any rank) was not finite, in which case the group's gradients are dropped.
        Returns whether an optimiser step was applied. (DeepSpeed's engines do the same
        themselves, dropping a group whose gradient norm is not finite.)"""
        if self.engines is not None:
            return self.engines.backward_and_step(name, loss)
        self.backward(loss, name)
        applied = False
        if self.accelerator.sync_gradients:
            # Every rank is here at the same micro-batch: one check of the whole group.
            applied = self.all_ranks(not self.bad_in_group[name])
            if applied:
                optimizer.step()
                schedule.step()
            optimizer.zero_grad(set_to_none=True)
            self.bad_in_group[name] = False
        return applied

    # ------------------------------------------------------------- pieces

    def batches(self, start: int) -> Iterator[TrainingBatch]:
        """Micro-batches from number `start` on, epoch after epoch (replayed exactly on resume:
        the stream is a function of its epoch; the batches before `start` are read and dropped)."""
        epoch, skip = divmod(start, self.stream.batches_per_epoch)
        while True:
            self.stream.set_epoch(epoch)
            for batch in self.stream:
                if skip:
                    skip -= 1
                    continue
                yield batch
            epoch += 1

    def loss_scale(self) -> float:
        scaler = self.accelerator.scaler
        return scaler.get_scale() if scaler is not None and scaler.is_enabled() else 1.0

    def all_ranks(self, value: bool) -> bool:
        flag = torch.tensor([1.0 if value else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.gather(flag).min() > 0)

    def any_rank(self, value: bool) -> bool:
        return not self.all_ranks(not value)

    @torch.no_grad()
    def evaluate(self, tracker: Tracker) -> dict[str, float]:
        """Validation L1 (on [-1, 1]), PSNR (dB) and SSIM of the EMA generator, logged and
        returned, and a (skeleton, real, generated) grid. Main process only: {} elsewhere."""
        if not self.accelerator.is_main_process:
            return {}
        model = self.ema.model
        l1, psnr, ssim = [], [], []
        for batch in self.val:
            generated = self.generate(batch, model)
            l1.append(F.l1_loss(generated, batch.image).item())
            generated, real = to_uint8_images(generated), to_uint8_images(batch.image)
            psnr.append(metrics.psnr(generated, real))
            ssim.append(metrics.ssim(generated, real))
        values = {
            "val/l1": sum(l1) / len(l1),
            "val/psnr": metrics.mean_psnr(np.concatenate(psnr)),
            "val/ssim": float(np.concatenate(ssim).mean()),
        }
        tracker.scalars(self.step, values)
        shown = TrainingBatch(*(t[:SAMPLE_GRID_SIZE] for t in self.val[0]))
        grid = tile_rows(shown.skeleton, shown.image, self.generate(shown, model))
        tracker.image(self.step, "val", grid)
        return values

    def is_new_best(self, values: dict[str, float]) -> bool:
        """Whether a validation's `values` beat the best so far of run.best_metric (then
        `best_value` takes it). Decided on the main process, the one that validates; every
        rank must call this and gets the answer, to join the checkpoint save."""
        if not self.config.run.keeps_best:
            return False
        metric = self.config.run.best_metric
        value, best = values.get(metric, math.nan), self.best_value
        higher_is_better = BEST_METRICS[metric]
        better = math.isfinite(value) and (
            best is None or (value > best if higher_is_better else value < best)
        )
        if better:
            self.best_value = value
        return self.any_rank(better)

    def log_losses(self, tracker: Tracker, window: dict[str, list[float]], seconds: float) -> None:
        acc = self.accelerator
        steps = max(len(v) for v in window.values()) if window else 0
        values = {name: sum(v) / len(v) for name, v in window.items()}
        values["lr/generator"] = self.g_schedule.get_last_lr()[0]
        if self.gan:
            values["lr/critic"] = self.c_schedule.get_last_lr()[0]
        images = (
            steps * self.micro_per_step * self.config.data.stream.batch_size * acc.num_processes
        )
        values["images_per_second"] = images / max(seconds, 1e-9)
        tracker.scalars(self.step, values)

    def write_status(self, state: str, requeue: bool = False) -> None:
        if not self.accelerator.is_main_process:
            return
        latest = ckpt.latest_checkpoint(self.checkpoints)
        status = {
            "state": state,
            "step": self.step,
            "requeue": requeue,
            "checkpoint": str(latest) if latest else None,
        }
        tmp = self.run_dir / ".status.json.partial"
        tmp.write_text(json.dumps(status, indent=2))
        tmp.rename(self.run_dir / "status.json")

    # ------------------------------------------------------------- checkpoints

    def architecture(self) -> dict:
        if self.mlp:
            arch = {"generator": {"class": "MLPGenerator", **dataclasses.asdict(self.config.mlp)}}
        else:
            generator = dataclasses.asdict(self.config.generator)
            arch = {"generator": {"class": "UNetGenerator", **generator}}
        if self.gan:
            arch["critic"] = {"class": "PatchCritic", **dataclasses.asdict(self.config.critic)}
        return arch

    def weight_checksum(self) -> torch.Tensor:
        """A float64 sum of all weights this rank trains, shape (1,)."""
        models = [self.generator, self.critic] if self.gan else [self.generator]
        total = sum(
            p.detach().double().sum()
            for m in models
            for p in self.accelerator.unwrap_model(m).parameters()
        )
        return total.reshape(1).to(self.accelerator.device)

    def save(self, best: bool = False) -> Path:
        """A checkpoint of this step (collective: every rank calls it); with `best`, also
        recorded as the run's best (best.json and the `best` link) at `best_value`."""
        acc, root = self.accelerator, self.checkpoints
        partial = ckpt.partial_dir(root, self.step)
        if acc.is_main_process:
            if partial.exists():
                import shutil

                shutil.rmtree(partial)
            partial.mkdir(parents=True)
        acc.wait_for_everyone()
        ckpt.save_tensors(ckpt.rng_state(), partial / f"rng-rank{acc.process_index:05d}.pt")
        if self.engines is not None:  # each rank's ZeRO partition of the optimiser states
            self.engines.save(partial, acc.process_index)
        replicas = acc.gather(self.weight_checksum()).tolist()
        if acc.is_main_process:
            ckpt.save_weights(acc.unwrap_model(self.generator), partial / "generator.safetensors")
            ckpt.save_weights(self.ema.model, partial / "generator_ema.safetensors")
            optimizers = {
                "generator": self.g_opt.state_dict() if self.g_opt is not None else {},
                "generator_schedule": self.g_schedule.state_dict(),
                "scaler": acc.scaler.state_dict() if acc.scaler is not None else {},
            }
            if self.gan:
                ckpt.save_weights(acc.unwrap_model(self.critic), partial / "critic.safetensors")
                optimizers["critic"] = self.c_opt.state_dict() if self.c_opt is not None else {}
                optimizers["critic_schedule"] = self.c_schedule.state_dict()
            ckpt.save_tensors(optimizers, partial / "optimizers.pt")
            state = {
                "format": ckpt.FORMAT_VERSION,
                "trainer": "gan" if self.gan else "vanilla",
                "step": self.step,
                "micro_batches": self.step * self.micro_per_step,
                "world_size": acc.num_processes,
                # One number per rank: equal when the replicas hold the same weights (DDP).
                "replica_checksums": replicas,
                "image_size": self.config.data.stream.size,
                "normalisation": "[-1, 1]",
                "architecture": self.architecture(),
                "config": config_to_dict(self.config),
            }
            (partial / "state.json").write_text(json.dumps(state, indent=2))
        acc.wait_for_everyone()
        final = ckpt.step_dir(root, self.step)
        if acc.is_main_process:
            ckpt.finish(root, self.step)
            if best:
                ckpt.write_best(self.run_dir, final, self.config.run.best_metric, self.best_value)
            # Recorded before pruning, and read back from disk: what best.json names (even
            # from an earlier run with another best_metric) is never deleted under it.
            recorded = ckpt.read_best(self.run_dir)
            protect = recorded["step"] if recorded else None
            ckpt.prune(root, self.config.run.keep_checkpoints, protect)
        acc.wait_for_everyone()
        return final

    def load(self, checkpoint: Path) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        state = ckpt.read_state(checkpoint)
        if self.engines is None and zero.has_partitions(checkpoint):
            raise GanmotionError(
                f"{checkpoint}: saved under DeepSpeed ZeRO (optimiser states partitioned per "
                "rank): resume with the DeepSpeed accelerate config it was trained with"
            )
        trainer = "gan" if self.gan else "vanilla"
        if state.get("trainer") != trainer:
            raise GanmotionError(
                f"{checkpoint}: a {state.get('trainer')} checkpoint, cannot resume a {trainer} run"
            )
        theirs, ours = state.get("architecture", {}), self.architecture()
        for name in ours:
            different = sorted(
                k for k in ours[name] if theirs.get(name, {}).get(k) != ours[name][k]
            )
            if different:
                shown = ", ".join(
                    f"{k} {theirs.get(name, {}).get(k)!r} vs {ours[name][k]!r}" for k in different
                )
                raise GanmotionError(
                    f"{checkpoint}: {name} architecture differs from this config ({shown})"
                )
        ckpt.load_weights(acc.unwrap_model(self.generator), checkpoint / "generator.safetensors")
        ckpt.load_weights(self.ema.model, checkpoint / "generator_ema.safetensors")
        optimizers = ckpt.load_tensors(checkpoint / "optimizers.pt")
        if self.g_opt is not None:
            self.g_opt.load_state_dict(optimizers["generator"])
        self.g_schedule.load_state_dict(optimizers["generator_schedule"])
        if self.gan:
            ckpt.load_weights(acc.unwrap_model(self.critic), checkpoint / "critic.safetensors")
            if self.c_opt is not None:
                self.c_opt.load_state_dict(optimizers["critic"])
            self.c_schedule.load_state_dict(optimizers["critic_schedule"])
        if self.engines is not None:  # after the weights: ZeRO's fp32 copies are its own
            self.engines.load(checkpoint, acc.process_index, acc.num_processes, state["world_size"])
        if acc.scaler is not None and optimizers["scaler"]:
            acc.scaler.load_state_dict(optimizers["scaler"])
        rng = checkpoint / f"rng-rank{acc.process_index:05d}.pt"
        if not rng.is_file():  # resumed on more ranks than saved: fresh noise for the new ones
            torch.manual_seed(self.config.run.seed + 1 + acc.process_index)
        else:
            ckpt.set_rng_state(ckpt.load_tensors(rng))
        self.step = int(state["step"])
        acc.print(f"resumed from {checkpoint} at step {self.step}")
