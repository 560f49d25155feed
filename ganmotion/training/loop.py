"""The run loop: steps, logging, validation, checkpoints, preemption and status, for any
training objective (objectives.py), in one or many processes through Accelerate.

    trainer = Trainer(config, resume="auto")
    status = trainer.run()       # 0 finished, REQUEUE_EXIT_CODE preempted (checkpoint saved)

Each step: the objective's step (its optimiser updates and EMA); every `run.log_every` steps
the mean losses (the only host read of them); every `run.sample_every` a validation of the
EMA generator (and a sample grid); a checkpoint when due, when the validation is the best so
far by `run.best_metric`, at the end, and when a preemption signal arrived on any rank. The
end is `run.steps`, or the step at which `run.max_minutes` ran out on any rank.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from tqdm import tqdm

from ganmotion import metrics
from ganmotion.config import config_to_dict
from ganmotion.data.background import Backdrop
from ganmotion.data.manifest import load_manifest, shard_urls
from ganmotion.data.preview import tile_rows
from ganmotion.data.stream import (
    TrainingBatch,
    TrainingStream,
    decode_box,
    decode_sample,
    ordered_samples,
    validation_batches,
)
from ganmotion.errors import GanmotionError, disk_full, one_line
from ganmotion.files import atomic_write
from ganmotion.images import to_uint8_images
from ganmotion.precision import emulated_on_cpu
from ganmotion.training import checkpoint as ckpt
from ganmotion.training.config import BEST_METRICS, GanConfig, VanillaConfig
from ganmotion.training.objectives import Losses, make_objective
from ganmotion.training.preemption import REQUEUE_EXIT_CODE, PreemptionFlag
from ganmotion.training.tracking import Tracker
from ganmotion.training.updates import make_accelerator

log = logging.getLogger(__name__)

SAMPLE_GRID_SIZE = 4


class Diverged(GanmotionError):
    """Non-finite gradients for `max_bad_steps` steps in a row."""


class LossWindow:
    """Per-step mean losses summed over a logging window, on the device until read. A
    loss that not every step has (a lazy gradient penalty) is the mean over those that do."""

    def __init__(self) -> None:
        self.sums: Losses = {}
        self.counts: dict[str, int] = {}  # finite steps that had each loss
        self.steps = 0  # steps in the window, applied or not (for images/s)
        self.started = time.perf_counter()

    def add(self, losses: Losses, finite: bool) -> None:
        self.steps += 1
        if not finite:
            return
        for name, value in losses.items():
            value = value.double()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict[str, float]:
        """The window's mean losses: one host read of them all."""
        if not self.sums:
            return {}
        counts = torch.tensor([self.counts[name] for name in self.sums], dtype=torch.float64)
        values = (torch.stack(list(self.sums.values())).cpu() / counts).tolist()
        return dict(zip(self.sums, values))


class Trainer:
    """Builds everything a run needs from its config, then `run()` trains to the last step.

    `resume` is None (fresh run), "latest" (newest complete checkpoint of this run), "auto"
    (the newest if there is one, else a fresh run) or a checkpoint folder. `run()` returns
    the process exit status: 0 when finished, REQUEUE_EXIT_CODE when stopped by a
    preemption signal after saving a checkpoint.
    """

    def __init__(self, config: GanConfig | VanillaConfig, resume: str | None = None):
        self.config = config
        run = config.run
        self.run_dir = Path(run.out_dir)
        self.checkpoints = self.run_dir / "checkpoints"
        self.accelerator = acc = make_accelerator(run)
        # The critic's last conv weight is (1, C, 4, 4); the gradient that the penalty's
        # double backward gives it has another (meaningless) stride on that size-1 dim than
        # DDP's bucket view, and DDP warns on every run. The copy into the bucket is correct.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")

        manifest = load_manifest(config.data.shards)
        train_urls = shard_urls(config.data.shards, "train")
        val_urls = shard_urls(config.data.shards, manifest.validation_split)

        set_seed(run.seed)  # identical initial weights on every rank
        self.objective = make_objective(config, acc)

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
        data = config.data
        backdrop = Backdrop.of_shards(data.shards, manifest)
        self.objective.own_background = backdrop.plate is None
        self.stream = TrainingStream(
            train_urls,
            data.stream,
            data.batches_per_epoch,
            data.workers,
            device=acc.device,
            backdrop=backdrop,
        )
        self.val, self.background = [], None
        if acc.is_main_process:
            self.val = [
                TrainingBatch(*(t.to(acc.device) for t in batch))
                for batch in validation_batches(val_urls, data.stream, data.val_batches, backdrop)
            ]
            if self.objective.alpha:
                train = manifest.splits["train"].samples
                self.background = typical_background(backdrop, train_urls, train, config)

    # ----------------------------------------------------------------- the loop

    def run(self, preemption: PreemptionFlag | None = None) -> int:
        """Train to the end, a preemption or the time budget; the exit status. `preemption`:
        a flag installed earlier (start-up takes seconds), else one installed now."""
        acc, run = self.accelerator, self.config.run
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for folder in ckpt.remove_partials(self.checkpoints):  # a killed run's
                log.info("removed %s: an interrupted save", folder)
            with atomic_write(self.run_dir / "config.json") as tmp:
                tmp.write_text(json.dumps(config_to_dict(self.config), indent=2))
        acc.wait_for_everyone()
        resumed_at = self.step if self.step > 0 else None  # no checkpoint is of step 0
        tracker = Tracker(self.run_dir, acc.is_main_process, run.tensorboard, resumed_at)
        preemption = preemption or PreemptionFlag()
        self.write_status("running")
        length = f"{run.max_minutes:g} minutes" if self.on_time else f"{run.steps} steps"
        # (fp16 needs no word: Accelerate runs it as fp32 on a CPU.)
        on_cpu_bf16 = run.precision == "bf16" and acc.device.type == "cpu"
        slow = emulated_on_cpu("bf16") if on_cpu_bf16 and acc.is_main_process else None
        if slow:
            log.warning("run.precision=bf16 on the CPU: %s; run.precision=no is faster here", slow)
        acc.print(
            f"{self.objective.name} training in {self.run_dir}: world size "
            f"{acc.num_processes} ({acc.device.type}), step {self.step}, for {length}"
        )
        try:
            state, requeue, stopped = self.train(tracker, preemption)
            self.write_status(state, requeue, stopped)
            return REQUEUE_EXIT_CODE if state == "preempted" else 0
        except BaseException as error:  # a crash or Ctrl-C: not "running" forever
            state = "diverged" if isinstance(error, Diverged) else "failed"
            with contextlib.suppress(Exception):  # a full disk may refuse this too
                self.write_status(state, reason=failure_reason(error))
            raise
        finally:
            # (The process group outlives the Trainer: see shutdown.py for how it ends.)
            preemption.restore()
            tracker.close()

    def train(self, tracker: Tracker, preemption: PreemptionFlag) -> tuple[str, bool, str | None]:
        """Steps to the end, to a preemption or to the end of the time budget; the final
        (state, requeue, why it stopped before run.steps or None) for status.json."""
        run = self.config.run
        # The budget counts from here, in this process: a resumed run gets a fresh one.
        started = time.monotonic()
        if self.stop_requested(preemption, None) == "preempted":  # a signal during start-up:
            # nothing was trained since the newest checkpoint, so there is nothing to save
            self.accelerator.print(f"preempted before step {self.step + 1}: exit to requeue")
            return "preempted", True, None
        if self.step == 0:
            self.validate(tracker)
        data = self.batches(self.step * self.objective.micro_batches)
        bar = tqdm(
            total=None if self.on_time else run.steps,  # on time, steps are only a cap
            initial=self.step,
            disable=not self.accelerator.is_main_process,
            unit="step",
        )
        window, bad_in_a_row, stop = LossWindow(), 0, None
        with bar:  # closed (its line ended) on an error too: the error line comes after it
            while self.step < run.steps and stop is None:
                losses, finite = self.objective.train_step(data, self.step)
                self.step += 1
                bar.update()
                window.add(losses, finite)
                bad_in_a_row = 0 if finite else bad_in_a_row + 1
                if not finite:
                    self.skipped(bad_in_a_row)
                stop = self.stop_requested(preemption, started)
                last = self.step == run.steps or stop == "max_minutes"
                if self.step % run.log_every == 0 or last:
                    logged = self.log(tracker, window)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in logged.items()})
                    window = LossWindow()
                saved = self.validate_and_save(tracker, last)
                if stop == "preempted" and not saved:
                    self.save()
        if stop == "preempted":
            self.accelerator.print(
                f"preempted at step {self.step}: checkpoint saved, exit to requeue"
            )
            return "preempted", True, None
        if stop == "max_minutes":
            self.accelerator.print(
                f"budget of {run.max_minutes:g} minutes reached at step {self.step}"
                f"{'' if self.on_time else f' of {run.steps}'}: checkpoint saved"
            )
            return "finished", False, "max_minutes"
        return "finished", False, None

    @property
    def on_time(self) -> bool:
        """Whether the learning-rate schedules run on the time budget (run.schedule_by)."""
        return self.objective.time_spent is not None

    def stop_requested(self, preemption: PreemptionFlag, started: float | None) -> str | None:
        """Why every rank stops after this step: "preempted" (a signal arrived on any rank),
        "max_minutes" (the budget, counted from `started`, ran out on any rank's clock), or
        None. Moves the schedules that run on time to the slowest clock's share. Collective.

        One gather for all: the preemption flag already costs a host sync every step (a
        signal must stop all ranks at the same step), and reading the clock rides on it
        instead of adding a sync of its own; the run then stops within a step of its budget.
        """
        minutes = self.config.run.max_minutes
        spent = 0.0
        if started is not None and minutes is not None:
            spent = (time.monotonic() - started) / (60 * minutes)
        flags = torch.tensor([preemption.requested, spent], device=self.accelerator.device)
        preempted, spent = self.accelerator.gather(flags.float()).view(-1, 2).amax(0).tolist()
        if self.on_time:
            self.objective.time_spent.spent(spent)
        if preempted:  # before the budget: the run is requeued and continues
            return "preempted"
        return "max_minutes" if spent >= 1 else None

    def skipped(self, bad_in_a_row: int) -> None:
        """A step whose gradients were not finite was dropped; too many in a row stop the run."""
        log.warning("step %d: non-finite gradients, update skipped", self.step)
        if bad_in_a_row >= self.config.run.max_bad_steps:
            raise Diverged(
                f"{self.run_dir}: {bad_in_a_row} steps in a row with non-finite gradients "
                f"(step {self.step}); stopped. Last good checkpoint: "
                f"{ckpt.latest_checkpoint(self.checkpoints) or 'none'}"
            )

    def validate_and_save(self, tracker: Tracker, last: bool) -> bool:
        """Validate when due, then save when due or when that validation is the best so far;
        at the `last` step of the run, both. Whether a checkpoint was saved. Every rank calls
        this (saving is collective)."""
        run = self.config.run
        new_best = False
        if self.step % run.sample_every == 0 or last:
            new_best = self.is_new_best(self.validate(tracker))
        saved = new_best or self.step % run.checkpoint_every == 0 or last
        if saved:
            self.save(best=new_best)
        return saved

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

    def all_ranks(self, value: bool) -> bool:
        flag = torch.tensor([1.0 if value else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.gather(flag).min() > 0)

    def any_rank(self, value: bool) -> bool:
        return not self.all_ranks(not value)

    @torch.no_grad()
    def validate(self, tracker: Tracker) -> dict[str, float]:
        """Validation L1 (on [-1, 1]), PSNR (dB) and SSIM of the EMA generator, logged and
        returned, and a (skeleton, real, generated) grid. Main process only: {} elsewhere."""
        if not self.accelerator.is_main_process:
            return {}
        model, draw = self.objective.ema.model, self.objective.validation_image
        l1, psnr, ssim = [], [], []
        for batch in self.val:
            generated = draw(model, batch)
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
        grid = tile_rows(shown.skeleton, shown.image, draw(model, shown))
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

    def log(self, tracker: Tracker, window: LossWindow) -> dict[str, float]:
        """Log a window's mean losses, learning rates and images/s; returns the losses."""
        acc, config = self.accelerator, self.config
        seconds = time.perf_counter() - window.started
        losses = window.means()
        images = (
            window.steps
            * self.objective.micro_batches
            * config.data.stream.batch_size
            * acc.num_processes
        )
        values = {
            **losses,
            **self.objective.updates.learning_rates(),
            "images_per_second": images / max(seconds, 1e-9),
        }
        tracker.scalars(self.step, values)
        return losses

    def write_status(
        self,
        state: str,
        requeue: bool = False,
        stopped: str | None = None,
        reason: str | None = None,
    ) -> None:
        """status.json; `stopped` names why a finished run ended before run.steps
        ("max_minutes"), and is then written as "stopped"; `reason` is the one line of why a
        run "failed" or "diverged"."""
        if not self.accelerator.is_main_process:
            return
        latest = ckpt.latest_checkpoint(self.checkpoints)
        status = {
            "state": state,
            "step": self.step,
            "requeue": requeue,
            "checkpoint": str(latest) if latest else None,
        }
        if stopped is not None:
            status["stopped"] = stopped
        if reason is not None:
            status["reason"] = reason
        with atomic_write(self.run_dir / "status.json") as tmp:
            tmp.write_text(json.dumps(status, indent=2))

    # ------------------------------------------------------------- checkpoints

    def save(self, best: bool = False) -> Path:
        """A checkpoint of this step (collective: every rank calls it); with `best`, also
        recorded as the run's best (best.json and the `best` link) at `best_value`."""
        acc, root = self.accelerator, self.checkpoints
        partial = ckpt.partial_dir(root, self.step)
        if acc.is_main_process:
            ckpt.fresh_folder(partial)
        acc.wait_for_everyone()
        ckpt.save_tensors(ckpt.rng_state(), partial / f"rng-rank{acc.process_index:05d}.pt")
        self.objective.updates.save_partitions(partial, acc.process_index)
        replicas = acc.gather(self.weight_checksum()).tolist()
        final = ckpt.step_dir(root, self.step)
        if acc.is_main_process:
            try:
                self.write_checkpoint_files(partial, replicas)
            except Exception as error:  # a full disk, mostly: one line, and its space back
                shutil.rmtree(partial, ignore_errors=True)
                why = disk_full(error) or failure_reason(error)
                raise GanmotionError(f"{final}: cannot write the checkpoint: {why}") from None
        acc.wait_for_everyone()
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

    def write_checkpoint_files(self, folder: Path, replicas: list[float]) -> None:
        """What the main process writes into a checkpoint folder: weights, optimiser states
        and state.json (with the skeleton style the stream drew, which inference draws too)."""
        objective, acc = self.objective, self.accelerator
        for name, module in objective.networks().items():
            ckpt.save_weights(module, folder / f"{name}.safetensors")
        ckpt.save_weights(objective.ema.model, folder / "generator_ema.safetensors")
        if self.background is not None:
            ckpt.save_background(self.background, folder / ckpt.BACKGROUND_FILE)
        ckpt.save_tensors(objective.updates.state_dict(), folder / "optimizers.pt")
        state = {
            "format": ckpt.FORMAT_VERSION,
            "trainer": objective.name,
            "step": self.step,
            "micro_batches": self.step * objective.micro_batches,
            "world_size": acc.num_processes,
            # One number per rank: equal when the replicas hold the same weights (DDP).
            "replica_checksums": replicas,
            "image_size": self.config.data.stream.size,
            "normalisation": "[-1, 1]",
            "skeleton": self.config.data.stream.skeleton.to_dict(),
            "architecture": objective.architecture(),
            "config": config_to_dict(self.config),
        }
        if self.on_time:
            state["time_spent"] = self.objective.time_spent.share
        (folder / "state.json").write_text(json.dumps(state, indent=2))
        ckpt.write_checksums(folder)  # last: of every rank's files (they were gathered before)

    def weight_checksum(self) -> torch.Tensor:
        """A float64 sum of all weights this rank trains, shape (1,)."""
        networks = self.objective.networks().values()
        total = sum(p.detach().double().sum() for m in networks for p in m.parameters())
        return total.reshape(1).to(self.accelerator.device)

    def load(self, checkpoint: Path) -> None:
        acc, objective = self.accelerator, self.objective
        acc.wait_for_everyone()
        state = ckpt.read_state(checkpoint)
        ckpt.check_resumable(checkpoint, state, objective.name, objective.architecture())
        for name, module in objective.networks().items():
            ckpt.load_weights(module, checkpoint / f"{name}.safetensors")
        ckpt.load_weights(objective.ema.model, checkpoint / "generator_ema.safetensors")
        optimizers = checkpoint / "optimizers.pt"
        try:
            objective.updates.load_state_dict(ckpt.load_tensors(optimizers))
        except (KeyError, TypeError, ValueError) as error:  # readable, but not this run's
            raise GanmotionError(
                f"{optimizers}: not the optimiser states of this run ({one_line(error)})"
            ) from None
        # After the weights: ZeRO's fp32 master copies are refreshed from them.
        saved_world_size = int(state.get("world_size", 1))
        objective.updates.load_partitions(
            checkpoint, acc.process_index, acc.num_processes, saved_world_size
        )
        rng = checkpoint / f"rng-rank{acc.process_index:05d}.pt"
        if not rng.is_file():  # resumed on more ranks than saved: fresh noise for the new ones
            torch.manual_seed(self.config.run.seed + 1 + acc.process_index)
        else:
            ckpt.set_rng_state(ckpt.load_tensors(rng))
        self.step = int(state["step"])
        if self.on_time:  # (a run on steps before has spent none of a time schedule)
            self.objective.time_spent.resume(float(state.get("time_spent", 0.0)))
            if self.objective.time_spent.share >= 1:
                log.warning(
                    "%s spent its whole time budget: decaying learning rates stay at 0 in this "
                    "run; to train on, resume with run.schedule_by=steps and a larger run.steps",
                    checkpoint,
                )
        acc.print(f"resumed from {checkpoint} at step {self.step}")


BACKGROUND_SAMPLES = 256  # training samples the inference background is taken from


def failure_reason(error: BaseException) -> str:
    """One line for status.json: a `GanmotionError`'s message, else the exception's type and
    the line that says what went wrong (`errors.one_line`; the traceback goes to the log)."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, GanmotionError):
        return str(error)
    return one_line(error)


def typical_background(
    backdrop: Backdrop, urls: list[str], samples: int, config: GanConfig | VanillaConfig
) -> np.ndarray:
    """The background an alpha generator of this run composes over at inference (saved in
    every checkpoint), from BACKGROUND_SAMPLES of the `samples` training samples spread
    evenly over the clip: the plate cut by their median box for a static camera (only
    their boxes are read), else `Backdrop.mean_room` of them. A moving camera shows another
    part of the room as the clip goes on: the first samples alone (what this once took) are
    the room of the clip's start, which scored 18.2 dB on taichi2's held-out room against
    19.9 dB for samples from all of it (benchmarks/RESULTS.md)."""
    stride = max(1, math.ceil(samples / BACKGROUND_SAMPLES))
    size = config.data.stream.size

    def spread():
        ordered = ordered_samples(config.data.shards, "train", urls)
        return (sample for index, sample in enumerate(ordered) if index % stride == 0)

    if backdrop.plate is not None:
        boxes = [decode_box(sample) for sample in spread()]
        if boxes and all(box is not None for box in boxes):  # else shards from before boxes
            return backdrop.typical_plate(boxes, size)
    rooms = (
        (image, mask, decode_box(sample))
        for sample in spread()
        for image, _, mask in [decode_sample(sample)]
    )
    return backdrop.mean_room(rooms, size)
