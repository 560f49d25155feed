"""The trainer on CPU with tiny configs: in-process for the loop's logic, and real 2-process
`accelerate launch` runs for what only distributed runs can show."""

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import free_port
from safetensors.torch import load_file

from ganmotion import metrics, precision
from ganmotion.config import load_config
from ganmotion.data.manifest import shard_urls
from ganmotion.data.prepare import PrepareConfig, prepare
from ganmotion.data.stream import validation_batches
from ganmotion.errors import GanmotionError
from ganmotion.inside import deep_inside
from ganmotion.losses import head_boxes
from ganmotion.models.generator import ComposedGenerator, UNetGenerator
from ganmotion.training import checkpoint as ckpt
from ganmotion.training import loop, objectives
from ganmotion.training.config import GanConfig, VanillaConfig
from ganmotion.training.loop import Diverged, Trainer
from ganmotion.training.preemption import REQUEUE_EXIT_CODE
from ganmotion.training.tracking import read_metrics

ROOT = Path(__file__).resolve().parent.parent
ACCELERATE = Path(sys.executable).with_name("accelerate")


def tiny(shards, out, *overrides, kind=GanConfig):
    name = "gan_tiny.yaml" if kind is GanConfig else "vanilla_tiny.yaml"
    return load_config(
        kind,
        ROOT / "configs" / name,
        [f"data.shards={shards}", f"run.out_dir={out}", "run.tensorboard=false", *overrides],
    )


def weights(checkpoint: Path, name: str = "generator") -> dict:
    return load_file(str(checkpoint / f"{name}.safetensors"))


def val_l1(run_dir: Path) -> dict[int, float]:
    return {m["step"]: m["val/l1"] for m in read_metrics(run_dir) if "val/l1" in m}


def test_the_gan_learns_on_a_synthetic_clip(synthetic_shards, tmp_path):
    config = tiny(synthetic_shards, tmp_path / "run", "run.steps=40", "run.sample_every=40")
    assert Trainer(config).run() == 0
    l1 = val_l1(tmp_path / "run")
    assert l1[40] < 0.6 * l1[0], l1
    assert (tmp_path / "run" / "samples" / "val-000040.png").is_file()


def test_the_vanilla_trainer_learns_too(synthetic_shards, tmp_path):
    config = tiny(
        synthetic_shards,
        tmp_path / "run",
        "run.steps=30",
        "run.sample_every=30",
        kind=VanillaConfig,
    )
    assert Trainer(config).run() == 0
    l1 = val_l1(tmp_path / "run")
    assert l1[30] < 0.6 * l1[0], l1
    assert not (
        ckpt.latest_checkpoint(tmp_path / "run" / "checkpoints") / "critic.safetensors"
    ).exists()


@pytest.mark.parametrize(
    "accumulation, gp_every",
    [(1, 1), (2, 1), (1, 4)],  # gp_every 4: the penalised updates 0, 4, 8 span the resume
)
def test_resume_is_exact(synthetic_shards, tmp_path, accumulation, gp_every):
    """6 steps straight == 3 steps, stop, resume, 3 more: bit for bit."""
    options = [
        f"run.grad_accumulation={accumulation}",
        f"loss.gp_every={gp_every}",
        "run.checkpoint_every=100",
    ]
    straight = tiny(synthetic_shards, tmp_path / "a", "run.steps=6", *options)
    assert Trainer(straight).run() == 0
    assert Trainer(tiny(synthetic_shards, tmp_path / "b", "run.steps=3", *options)).run() == 0
    resumed = Trainer(tiny(synthetic_shards, tmp_path / "b", "run.steps=6", *options), "latest")
    assert resumed.step == 3
    assert resumed.run() == 0
    a, b = (ckpt.step_dir(tmp_path / run / "checkpoints", 6) for run in "ab")
    for name in ("generator", "generator_ema", "critic"):
        for key, tensor in weights(a, name).items():
            assert torch.equal(tensor, weights(b, name)[key]), f"{name}.{key} differs"


def test_a_lazy_penalty_weighs_k_fold_on_every_kth_critic_update(
    synthetic_shards, tmp_path, monkeypatch
):
    """loss.gp_every=3 with 2 critic updates a step: of updates 0-5 (steps 1-3) only 0 and
    3 are penalised, each at 3 * gp_weight, and the log's penalty is their mean."""
    config = tiny(synthetic_shards, tmp_path, "loss.gp_every=3", "run.steps=3", "run.log_every=3")
    trainer = Trainer(config)
    penalties, partial_losses = [], []

    gradient_penalty = objectives.gradient_penalty

    def recorded_penalty(*args, **kwargs):
        penalties.append(gradient_penalty(*args, **kwargs))
        return penalties[-1]

    monkeypatch.setattr(objectives, "gradient_penalty", recorded_penalty)
    updates = trainer.objective.updates
    backward_partial = updates.backward_partial

    def recorded_partial(name, loss):
        partial_losses.append(loss.detach())
        return backward_partial(name, loss)

    monkeypatch.setattr(updates, "backward_partial", recorded_partial)
    assert trainer.run() == 0
    assert len(penalties) == 2
    for penalty, loss in zip(penalties, partial_losses, strict=True):
        assert loss.item() == pytest.approx(3 * config.loss.gp_weight * penalty.item())
    (logged,) = [m for m in read_metrics(tmp_path) if "critic/gradient_penalty" in m]
    mean = sum(p.item() for p in penalties) / 2  # not over the 3 steps of the window
    assert logged["critic/gradient_penalty"] == pytest.approx(mean, rel=1e-6)


def test_checkpoints_are_complete_and_only_the_newest_are_kept(synthetic_shards, tmp_path):
    config = tiny(
        synthetic_shards,
        tmp_path,
        "run.steps=5",
        "run.checkpoint_every=2",
        "run.keep_checkpoints=2",
    )
    Trainer(config).run()
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["step-000004", "step-000005"]
    state = json.loads((root / "step-000005" / "state.json").read_text())
    assert state["step"] == 5 and state["world_size"] == 1 and state["image_size"] == 64
    assert state["normalisation"] == "[-1, 1]"
    assert state["architecture"]["generator"]["base_channels"] == 8
    assert state["config"]["run"]["steps"] == 5
    expected = {"generator", "generator_ema", "critic", "optimizers", "rng-rank00000", "state"}
    expected.add("background")  # gan_tiny composes: what its generator composes over
    expected.add("checksums")  # written last: resuming checks the files against it
    assert {p.stem for p in (root / "step-000005").iterdir()} == expected
    status = json.loads((tmp_path / "status.json").read_text())
    assert status == {
        "state": "finished",
        "step": 5,
        "requeue": False,
        "checkpoint": str(root / "step-000005"),
    }


def two_checkpoints(synthetic_shards, tmp_path) -> Path:
    config = tiny(synthetic_shards, tmp_path, "run.steps=2", "run.checkpoint_every=1")
    assert Trainer(config).run() == 0
    return tmp_path / "checkpoints"


def damage_file(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("resume", ["latest", "auto"])
def test_resume_skips_a_damaged_newest_checkpoint(synthetic_shards, tmp_path, resume, caplog):
    root = two_checkpoints(synthetic_shards, tmp_path)
    damage_file(root / "step-000002" / "generator.safetensors")
    assert ckpt.damage(root / "step-000002") == "generator.safetensors does not match its checksum"
    with caplog.at_level("WARNING", logger="ganmotion.training.checkpoint"):
        trainer = Trainer(tiny(synthetic_shards, tmp_path, "run.steps=3"), resume)
    assert trainer.step == 1
    (warning,) = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert warning == (
        f"skipping damaged checkpoint {root / 'step-000002'}: generator.safetensors does not "
        "match its checksum"
    )


def test_a_damaged_checkpoint_is_named_and_never_resumed(synthetic_shards, tmp_path):
    root = two_checkpoints(synthetic_shards, tmp_path)
    (root / "step-000001" / "optimizers.pt").write_bytes(b"cut short")
    damage_file(root / "step-000002" / "critic.safetensors")
    config = tiny(synthetic_shards, tmp_path, "run.steps=3")
    with pytest.raises(GanmotionError, match="optimizers.pt is 9 bytes, .* were written"):
        Trainer(config, str(root / "step-000001"))
    for resume in ("latest", "auto"):  # auto must not start afresh over damaged checkpoints
        with pytest.raises(GanmotionError, match="every checkpoint is damaged"):
            Trainer(config, resume)


def test_a_killed_saves_partial_folder_is_removed_at_the_next_start(synthetic_shards, tmp_path):
    left = tmp_path / "checkpoints" / "step-000007.partial"
    left.mkdir(parents=True)
    (left / "generator.safetensors").write_bytes(b"half")
    assert Trainer(tiny(synthetic_shards, tmp_path, "run.steps=1")).run() == 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000001"]


def test_bf16_on_a_cpu_without_native_kernels_is_warned_of(synthetic_shards, tmp_path):
    # In a process of its own: Accelerate's state keeps the first mixed precision it is given.
    script = (
        "import sys; from ganmotion import precision\n"
        "precision.cpu_runs_natively = lambda kind: False\n"
        "from ganmotion.training.cli import main; from ganmotion.training.config import GanConfig\n"
        "sys.exit(main(GanConfig, sys.argv[1:]))"
    )
    overrides = [f"data.shards={synthetic_shards}", f"run.out_dir={tmp_path}", "run.steps=1"]
    result = subprocess.run(
        [sys.executable, "-c", script, "--config", str(ROOT / "configs" / "gan_tiny.yaml"),
         *overrides, "run.tensorboard=false", "run.precision=bf16"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "run.precision=bf16 on the CPU: this CPU has no native bf16 kernels (AVX-512 or AMX): a "
        "convolution runs 100x or more slower than in fp32; run.precision=no is faster here"
    ) in result.stderr.splitlines()


def test_fp32_on_a_cpu_without_native_kernels_is_not_warned_of(
    synthetic_shards, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(precision, "cpu_runs_natively", lambda kind: False)
    assert Trainer(tiny(synthetic_shards, tmp_path, "run.steps=1")).run() == 0
    assert not [r for r in caplog.records if "run.precision" in r.getMessage()]


def test_metrics_hold_one_row_per_step_after_a_resume(synthetic_shards, tmp_path):
    options = ["run.log_every=1", "run.sample_every=100", "run.checkpoint_every=2"]
    assert Trainer(tiny(synthetic_shards, tmp_path, "run.steps=3", *options)).run() == 0
    with open(tmp_path / "metrics.jsonl", "a") as metrics:
        metrics.write('{"step": 4, "generator/l')  # a crash in mid-line
    # As after a preemption that came after step 3 was logged, but before its checkpoint.
    step_2 = str(tmp_path / "checkpoints" / "step-000002")
    resumed = Trainer(tiny(synthetic_shards, tmp_path, "run.steps=4", *options), step_2)
    assert resumed.step == 2 and resumed.run() == 0  # steps 3 and 4 again
    steps = [m["step"] for m in read_metrics(tmp_path) if "generator/loss" in m]
    assert steps == [1, 2, 3, 4]
    # A fresh run in the same folder starts its metrics afresh.
    assert Trainer(tiny(synthetic_shards, tmp_path, "run.steps=1", *options)).run() == 0
    assert [m["step"] for m in read_metrics(tmp_path) if "generator/loss" in m] == [1]


# ----------------------------------------------------------------- validation, the best checkpoint


def validations(run_dir: Path, metric: str) -> dict[int, float]:
    return {m["step"]: m[metric] for m in read_metrics(run_dir) if metric in m}


def best_step(values: dict[int, float], higher_is_better: bool) -> int:
    """The first step after step 0 that reached the best value."""
    sign = 1 if higher_is_better else -1
    return max((s for s in values if s > 0), key=lambda s: (sign * values[s], -s))


def assert_best_is(run_dir: Path, metric: str, step: int, value: float) -> None:
    folder = ckpt.step_dir(run_dir / "checkpoints", step)
    assert os.readlink(run_dir / "best") == f"checkpoints/{folder.name}"
    assert (run_dir / "best").resolve() == folder.resolve()
    assert (folder / "state.json").is_file()  # not pruned
    assert json.loads((run_dir / "best.json").read_text()) == {
        "metric": metric,
        "value": value,
        "step": step,
        "checkpoint": f"checkpoints/{folder.name}",
    }


def test_validation_logs_psnr_and_ssim(synthetic_shards, tmp_path):
    Trainer(tiny(synthetic_shards, tmp_path, "run.steps=2", "run.sample_every=1")).run()
    logged = [m for m in read_metrics(tmp_path) if "val/l1" in m]
    assert [m["step"] for m in logged] == [0, 1, 2]
    for m in logged:
        assert isinstance(m["val/psnr"], float) and 0 < m["val/psnr"] < 100, m  # finite
        assert isinstance(m["val/ssim"], float) and -1 < m["val/ssim"] <= 1, m


def test_the_best_checkpoint_survives_pruning(synthetic_shards, tmp_path, monkeypatch):
    # SSIM scripted per step, peaking mid-run, so that pruning to one checkpoint would delete it.
    script = {0: 0.9, 1: 0.2, 2: 0.5, 3: 0.4, 4: 0.5}
    config = tiny(
        synthetic_shards,
        tmp_path,
        "run.steps=4",
        "run.sample_every=1",
        "run.checkpoint_every=100",
        "run.keep_checkpoints=1",
    )
    trainer = Trainer(config)
    monkeypatch.setattr(metrics, "ssim", lambda g, r: np.full(len(g), script[trainer.step]))
    assert trainer.run() == 0
    ssim = validations(tmp_path, "val/ssim")
    best = best_step(ssim, higher_is_better=True)
    assert best == 2  # not step 0 (untrained), nor 4 (only as good as step 2)
    assert_best_is(tmp_path, "val/ssim", best, ssim[best])
    assert ckpt.complete_checkpoints(tmp_path / "checkpoints") == [
        ckpt.step_dir(tmp_path / "checkpoints", step) for step in (2, 4)
    ]
    assert ckpt.load_generator(tmp_path / "best") is not None  # usable as a checkpoint folder
    assert ckpt.resolve_resume(str(tmp_path / "best"), tmp_path / "checkpoints") is not None


def test_best_by_val_l1_is_its_minimum(synthetic_shards, tmp_path):
    overrides = ["run.steps=3", "run.sample_every=1", "run.best_metric=val/l1"]
    Trainer(tiny(synthetic_shards, tmp_path, *overrides, kind=VanillaConfig)).run()
    l1 = validations(tmp_path, "val/l1")
    best = best_step(l1, higher_is_better=False)
    assert_best_is(tmp_path, "val/l1", best, l1[best])


def test_an_unknown_best_metric_is_refused(synthetic_shards, tmp_path):
    with pytest.raises(GanmotionError, match="run.best_metric must be val/ssim, val/psnr, val/l1"):
        tiny(synthetic_shards, tmp_path, "run.best_metric=val/fid")


def test_best_metric_none_keeps_no_best(synthetic_shards, tmp_path):
    overrides = ["run.steps=2", "run.sample_every=1", "run.best_metric=none"]
    Trainer(tiny(synthetic_shards, tmp_path, *overrides, kind=VanillaConfig)).run()
    assert not (tmp_path / "best.json").exists() and not (tmp_path / "best").is_symlink()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-000002"]


def test_a_resumed_run_must_beat_the_recorded_best(synthetic_shards, tmp_path):
    options = ["run.sample_every=1", "run.keep_checkpoints=1"]
    Trainer(tiny(synthetic_shards, tmp_path, "run.steps=2", *options, kind=VanillaConfig)).run()
    recorded = json.loads((tmp_path / "best.json").read_text())
    # An unbeatable best: without it restored, the resumed run's validations would replace it.
    (tmp_path / "best.json").write_text(json.dumps({**recorded, "value": 1.0}))
    more = tiny(synthetic_shards, tmp_path, "run.steps=4", *options, kind=VanillaConfig)
    assert Trainer(more, "latest").run() == 0
    assert_best_is(tmp_path, "val/ssim", recorded["step"], 1.0)
    assert max(validations(tmp_path, "val/ssim").values()) < 1.0


def test_non_finite_losses_are_skipped_then_stop_the_run(synthetic_shards, tmp_path, monkeypatch):
    Trainer(tiny(synthetic_shards, tmp_path, "run.steps=2")).run()
    good = ckpt.latest_checkpoint(tmp_path / "checkpoints")
    before = weights(good)
    monkeypatch.setattr(objectives, "generator_adversarial_loss", lambda s: s.mean() * float("nan"))
    trainer = Trainer(
        tiny(synthetic_shards, tmp_path, "run.steps=50", "run.max_bad_steps=3"), "latest"
    )
    with pytest.raises(Diverged, match="3 steps in a row with non-finite gradients") as error:
        trainer.run()
    assert str(good) in str(error.value)
    # Nothing was applied: the generator is still the checkpoint's, and so is the checkpoint.
    live = trainer.objective.networks()["generator"].state_dict()
    assert all(torch.equal(live[k], v) for k, v in before.items())
    assert ckpt.latest_checkpoint(tmp_path / "checkpoints") == good
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "diverged"


def test_a_preemption_signal_saves_and_returns_the_requeue_status(
    synthetic_shards, tmp_path, monkeypatch
):
    config = tiny(synthetic_shards, tmp_path, "run.steps=100", "run.checkpoint_every=100")
    trainer = Trainer(config)
    train_step = trainer.objective.train_step

    def signalled_during_step_3(data, step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGUSR1)
        return train_step(data, step)

    monkeypatch.setattr(trainer.objective, "train_step", signalled_during_step_3)
    assert trainer.run() == REQUEUE_EXIT_CODE
    assert ckpt.latest_checkpoint(tmp_path / "checkpoints").name == "step-000003"
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # handlers restored


class Clock:
    """A monotonic clock that advances a second each time it is read."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


def on_fake_clock(monkeypatch) -> None:
    """The run loop's monotonic clock becomes a fresh `Clock`."""
    clock = SimpleNamespace(monotonic=Clock().monotonic, perf_counter=time.perf_counter)
    monkeypatch.setattr(loop, "time", clock)


def test_a_time_budget_stops_the_run_like_its_last_step(
    synthetic_shards, tmp_path, monkeypatch, capsys
):
    # Read once when training starts (deadline 1 + 3 s), then once after each step.
    on_fake_clock(monkeypatch)
    config = tiny(
        synthetic_shards,
        tmp_path,
        "run.steps=100000",
        "run.max_minutes=0.05",
        "run.checkpoint_every=100000",
        "run.sample_every=100000",
        "run.log_every=100000",
    )
    assert Trainer(config).run() == 0
    saved = ckpt.step_dir(tmp_path / "checkpoints", 3)
    assert json.loads((tmp_path / "status.json").read_text()) == {
        "state": "finished",
        "step": 3,
        "requeue": False,
        "checkpoint": str(saved),
        "stopped": "max_minutes",
    }
    assert sorted(val_l1(tmp_path)) == [0, 3]  # a final validation
    assert "generator/l1" in read_metrics(tmp_path)[-2]  # and the last losses, logged
    out = capsys.readouterr().out
    assert "budget of 0.05 minutes reached at step 3 of 100000: checkpoint saved" in out


def cosine(share: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * share))


# A 6-second budget with cosine schedules on it, a log line every step, no extra saves
ON_TIME = ("run.max_minutes=0.1", "run.schedule_by=time", "run.log_every=1",
           "run.checkpoint_every=100000", "run.sample_every=100000",
           "generator_optim.schedule=cosine", "critic_optim.schedule=cosine")  # fmt: skip


def test_a_schedule_on_time_decays_over_the_budget_not_the_steps(
    synthetic_shards, tmp_path, monkeypatch
):
    # A 6-second budget on a clock that advances 1 s a read (once at the start, once after
    # each step): the run stops at step 6, whatever run.steps says, and the cosine follows
    # the share of the budget spent, 1/6 a step. A schedule steps inside its step, before the
    # step's clock reading, so the rate logged at step k is that of the share after k - 1.
    on_fake_clock(monkeypatch)
    assert Trainer(tiny(synthetic_shards, tmp_path, "run.steps=100000", *ON_TIME)).run() == 0
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["step"], status["stopped"]) == (6, "max_minutes")
    rates = [m["lr/generator"] / 5e-4 for m in read_metrics(tmp_path) if "lr/generator" in m]
    assert rates == pytest.approx([cosine((k - 1) / 6) for k in range(1, 7)])
    state = json.loads((ckpt.step_dir(tmp_path / "checkpoints", 6) / "state.json").read_text())
    assert state["time_spent"] == pytest.approx(1.0)


def test_a_schedule_on_time_resumes_from_the_share_spent(synthetic_shards, tmp_path, monkeypatch):
    # Stopped by run.steps at half its budget; resumed with a fresh budget, the decay goes on
    # from half way (0.5 of the peak) and spreads the other half over the new budget.
    for steps in (3, 100000):
        on_fake_clock(monkeypatch)
        config = tiny(synthetic_shards, tmp_path, f"run.steps={steps}", *ON_TIME)
        assert Trainer(config, resume=None if steps == 3 else "latest").run() == 0
        if steps == 3:
            state = json.loads(
                (ckpt.step_dir(tmp_path / "checkpoints", 3) / "state.json").read_text()
            )
            assert state["time_spent"] == pytest.approx(0.5)
    assert json.loads((tmp_path / "status.json").read_text())["step"] == 3 + 6
    rates = {
        m["step"]: m["lr/generator"] / 5e-4 for m in read_metrics(tmp_path) if "lr/generator" in m
    }
    assert rates[4] == pytest.approx(cosine(0.5))
    assert rates[5] == pytest.approx(cosine(0.5 + 0.5 / 6))
    assert rates[9] == pytest.approx(cosine(0.5 + 0.5 * 5 / 6))


def test_resuming_a_spent_time_schedule_warns_that_it_stays_at_0(
    synthetic_shards, tmp_path, monkeypatch, caplog
):
    on_fake_clock(monkeypatch)
    overrides = ("run.steps=100000", "run.max_minutes=0.05", "run.schedule_by=time",
                 "run.checkpoint_every=100000", "run.sample_every=100000")  # fmt: skip
    assert Trainer(tiny(synthetic_shards, tmp_path, *overrides)).run() == 0
    with caplog.at_level("WARNING", logger="ganmotion.training.loop"):
        Trainer(tiny(synthetic_shards, tmp_path, *overrides), resume="latest")
    (warning,) = [r.getMessage() for r in caplog.records if "time budget" in r.getMessage()]
    assert warning == (
        f"{ckpt.step_dir(tmp_path / 'checkpoints', 3)} spent its whole time budget: decaying "
        "learning rates stay at 0 in this run; to train on, resume with run.schedule_by=steps "
        "and a larger run.steps"
    )


def test_tensorboard_gets_losses_and_images(synthetic_shards, tmp_path):
    config = tiny(
        synthetic_shards, tmp_path, "run.steps=2", "run.log_every=1", "run.tensorboard=true"
    )
    Trainer(config).run()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    logged = read_metrics(tmp_path)
    assert {"critic/gap", "critic/gradient_penalty", "generator/l1", "images_per_second"} <= set(
        logged[1]
    )


# ----------------------------------------------------------------- bad input


def test_a_time_budget_must_be_positive(synthetic_shards, tmp_path):
    with pytest.raises(GanmotionError, match="run.max_minutes must be > 0, got 0"):
        tiny(synthetic_shards, tmp_path, "run.max_minutes=0")
    assert tiny(synthetic_shards, tmp_path, "run.max_minutes=null").run.max_minutes is None


def test_a_schedule_on_time_needs_a_budget(synthetic_shards, tmp_path):
    with pytest.raises(GanmotionError, match="run.schedule_by: time needs run.max_minutes"):
        tiny(synthetic_shards, tmp_path, "run.schedule_by=time")
    with pytest.raises(GanmotionError, match="schedule_by"):
        tiny(synthetic_shards, tmp_path, "run.schedule_by=minutes", "run.max_minutes=1")


def test_missing_shards_are_named(tmp_path):
    with pytest.raises(GanmotionError, match="nowhere/manifest.json: no such file"):
        Trainer(tiny(tmp_path / "nowhere", tmp_path / "run"))


def test_a_shard_missing_from_its_directory_is_named(synthetic_shards, tmp_path):
    copy = tmp_path / "shards"
    copy.mkdir()
    for path in synthetic_shards.iterdir():
        if path.name != "train-000002.tar":
            (copy / path.name).write_bytes(path.read_bytes())
    with pytest.raises(GanmotionError, match="train-000002.tar: listed in manifest.json but does"):
        Trainer(tiny(copy, tmp_path / "run"))


def test_the_generator_takes_the_stream_size(synthetic_shards, tmp_path):
    trainer = Trainer(tiny(synthetic_shards, tmp_path, "data.stream.size=128", "run.steps=1"))
    assert trainer.run() == 0
    state = json.loads((ckpt.step_dir(tmp_path / "checkpoints", 1) / "state.json").read_text())
    assert state["image_size"] == state["architecture"]["generator"]["size"] == 128


def test_resuming_with_another_architecture_is_refused(synthetic_shards, tmp_path):
    Trainer(tiny(synthetic_shards, tmp_path, "run.steps=1")).run()
    other = tiny(synthetic_shards, tmp_path, "generator.base_channels=4")
    with pytest.raises(
        GanmotionError, match="generator architecture differs .*base_channels 8 vs 4"
    ):
        Trainer(other, "latest")


def test_weights_of_another_architecture_name_the_keys(synthetic_shards, tmp_path):
    Trainer(tiny(synthetic_shards, tmp_path, "run.steps=1")).run()
    path = ckpt.latest_checkpoint(tmp_path / "checkpoints") / "generator.safetensors"
    other = UNetGenerator(base_channels=4, depth=4, max_channels=64, size=64)
    with pytest.raises(GanmotionError, match=r"weights do not fit this UNetGenerator \(shape: "):
        ckpt.load_weights(other, path)
    ckpt.load_weights(other, path, partial=True)  # asked for: loads what fits


def test_resume_latest_without_checkpoints_is_an_error(synthetic_shards, tmp_path):
    with pytest.raises(GanmotionError, match="there is no complete checkpoint"):
        Trainer(tiny(synthetic_shards, tmp_path), "latest")


def test_resume_auto_starts_fresh_then_continues_from_the_newest(synthetic_shards, tmp_path):
    config = tiny(synthetic_shards, tmp_path, "run.steps=2", "run.checkpoint_every=1")
    first = Trainer(config, "auto")
    assert first.step == 0 and first.run() == 0
    assert Trainer(config, "auto").step == 2


def copy_of(shards: Path, tmp_path) -> Path:
    shutil.copytree(shards, tmp_path / "shards")
    return tmp_path / "shards"


def ruin_train_shards(root: Path) -> None:
    """Every train shard garbage (val stays readable)."""
    for url in shard_urls(root, "train"):
        Path(url).write_bytes(os.urandom(Path(url).stat().st_size))


@pytest.mark.timeout(120)  # it looped forever before issue 15
def test_unreadable_train_shards_fail_the_run_with_its_reason(synthetic_shards, tmp_path):
    shards = copy_of(synthetic_shards, tmp_path)
    trainer = Trainer(tiny(shards, tmp_path / "run", "run.steps=5"))
    ruin_train_shards(shards)  # after start-up, which reads some (a server that went away)
    with pytest.raises(GanmotionError, match="shards in a row could not be read"):
        trainer.run()
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "failed" and status["step"] == 0
    assert status["reason"].startswith("32 shards in a row could not be read")


def test_a_crash_is_recorded_in_the_status(synthetic_shards, tmp_path, monkeypatch):
    trainer = Trainer(tiny(synthetic_shards, tmp_path / "run", "run.steps=5"))

    def crash(data, step):
        raise RuntimeError("out of memory\nat line 2")

    monkeypatch.setattr(trainer.objective, "train_step", crash)
    with pytest.raises(RuntimeError):
        trainer.run()
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "failed" and status["reason"] == "RuntimeError: out of memory"


@pytest.mark.timeout(120)  # it looped forever before issue 15
def test_the_training_script_ends_unreadable_shards_with_one_line(synthetic_shards, tmp_path):
    shards = copy_of(synthetic_shards, tmp_path)
    ruin_train_shards(shards)
    started = time.monotonic()
    # vanilla: the GAN's start-up reads train shards for its background and stops there, with
    # one line and before status.json exists; this run gets to the loop.
    result = subprocess.run(
        [sys.executable, str(ROOT / "train" / "vanilla.py"), "--config",
         str(ROOT / "configs" / "vanilla_tiny.yaml"), f"data.shards={shards}",
         f"run.out_dir={tmp_path / 'run'}", "run.tensorboard=false"],
        capture_output=True, text=True, timeout=100,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "shards in a row could not be read" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "failed"


def test_training_script_errors_are_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "train" / "gan.py"), "--config", str(tmp_path / "x.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == f"error: {tmp_path / 'x.yaml'}: config file does not exist\n"


def test_a_preemption_signal_during_start_up_exits_to_requeue(synthetic_shards, tmp_path):
    command = [sys.executable, str(ROOT / "train" / "vanilla.py"), "--config",
               str(ROOT / "configs" / "vanilla_tiny.yaml"), f"data.shards={synthetic_shards}",
               f"run.out_dir={tmp_path}", "run.tensorboard=false"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)  # importing torch and the library takes seconds: still starting up
    assert not (tmp_path / "status.json").exists()
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == REQUEUE_EXIT_CODE, out[-2000:]
    assert "preempted before step 1: exit to requeue" in out
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "preempted" and status["requeue"] and status["step"] == 0


def test_dry_run_prints_the_resolved_config():
    result = subprocess.run(
        [sys.executable, str(ROOT / "train" / "gan.py"), "--dry-run", "run.steps=3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "steps: 3" in result.stdout and "critic_steps: 5" in result.stdout


def test_get_prints_one_resolved_value_for_job_scripts(tmp_path):
    def get(*args):
        script = ROOT / "train" / "gan.py"
        command = [sys.executable, str(script), "--config", str(ROOT / "configs" / "gan_tiny.yaml")]
        return subprocess.run([*command, *args], capture_output=True, text=True)

    assert get(f"run.out_dir={tmp_path}", "--get", "run.out_dir").stdout == f"{tmp_path}\n"
    assert get("--get", "generator_optim.betas").stdout == "[0.5, 0.999]\n"
    missing = get("--get", "run.nope")
    assert missing.returncode == 1 and "run.nope: no such config key" in missing.stderr
    unknown = get("run.stepz=1", "--get", "run.out_dir")  # the whole config is validated
    assert unknown.returncode == 1 and "unknown key run.stepz" in unknown.stderr


# ----------------------------------------------------------------- real 2-process runs


def launch(script: str, *args: str, **popen) -> subprocess.Popen:
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": "1",
        "PET_SIGNALS_TO_HANDLE": "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
    }
    command = [
        str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2",
        "--main_process_port", str(free_port()), str(ROOT / "train" / script), *args,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, text=True, **popen)


def run_args(shards, out, *overrides):
    return (
        "--config", str(ROOT / "configs" / "gan_tiny.yaml"), f"data.shards={shards}",
        f"run.out_dir={out}", "run.tensorboard=false", *overrides,
    )  # fmt: skip


def test_two_processes_train_one_model(synthetic_shards, tmp_path):
    # With a lazy penalty (critic updates 0, 3 and 6 of 8 penalised): critic updates with
    # and without the penalty's unreduced backward, both all-reduced.
    args = run_args(synthetic_shards, tmp_path, "run.steps=4", "loss.gp_every=3")
    process = launch("gan.py", *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = process.communicate(timeout=240)
    assert process.returncode == 0, out[-3000:]
    state = json.loads((ckpt.step_dir(tmp_path / "checkpoints", 4) / "state.json").read_text())
    assert state["world_size"] == 2
    first, second = state["replica_checksums"]
    assert first == second  # gradients were all-reduced: the replicas never drifted apart
    assert {p.name for p in ckpt.step_dir(tmp_path / "checkpoints", 4).glob("rng-*")} == {
        "rng-rank00000.pt",
        "rng-rank00001.pt",
    }


def test_sigusr1_checkpoints_and_asks_for_requeue(synthetic_shards, tmp_path):
    args = run_args(synthetic_shards, tmp_path, "run.steps=100000", "run.checkpoint_every=100000",
                    "run.log_every=1")  # fmt: skip
    log = open(tmp_path / "launch.log", "w")  # noqa: SIM115
    process = launch("gan.py", *args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while not any(m.get("step", 0) >= 2 for m in read_metrics(tmp_path)):  # training is under way
        assert process.poll() is None and time.monotonic() < deadline, (
            tmp_path / "launch.log"
        ).read_text()
        time.sleep(0.2)
    process.send_signal(signal.SIGUSR1)
    process.wait(timeout=120)
    log.close()
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "preempted" and status["requeue"] is True, status
    # torchrun's agent re-raises the signal and exits 1 whatever the workers returned
    # (REQUEUE_EXIT_CODE): status.json is what a requeue script reads.
    assert process.returncode != 0
    assert f"preempted at step {status['step']}" in (tmp_path / "launch.log").read_text()
    saved = Path(status["checkpoint"])
    assert saved.name == f"step-{status['step']:06d}" and (saved / "state.json").is_file()
    assert not list((tmp_path / "checkpoints").glob("*.partial"))

    more = f"run.steps={status['step'] + 2}"
    resumed = launch("gan.py", *run_args(synthetic_shards, tmp_path, more), "--resume", "latest",
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    out, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out[-3000:]
    assert f"resumed from {saved} at step {status['step']}" in out
    assert json.loads((tmp_path / "status.json").read_text())["step"] == status["step"] + 2


def test_two_processes_stop_together_when_the_budget_is_spent(synthetic_shards, tmp_path):
    # With the schedules on time: each rank's clock differs, and the replicas stay equal
    # only if both take the learning rate from the same (the slowest) clock.
    args = run_args(synthetic_shards, tmp_path, "run.steps=100000", "run.max_minutes=0.02",
                    "run.schedule_by=time", "generator_optim.schedule=cosine",
                    "critic_optim.schedule=cosine", "run.checkpoint_every=100000",
                    "run.sample_every=100000")  # fmt: skip
    process = launch("gan.py", *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = process.communicate(timeout=240)
    assert process.returncode == 0, out[-3000:]  # neither rank waited on the other
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "finished" and status["stopped"] == "max_minutes", status
    step = status["step"]
    assert 0 < step < 100000
    assert f"budget of 0.02 minutes reached at step {step}: checkpoint saved" in out
    saved = ckpt.step_dir(tmp_path / "checkpoints", step)
    assert status["checkpoint"] == str(saved)
    state = json.loads((saved / "state.json").read_text())
    first, second = state["replica_checksums"]
    assert state["world_size"] == 2 and first == second
    assert step in val_l1(tmp_path)


def test_bf16_mixed_precision_trains_on_cpu(synthetic_shards, tmp_path):
    """bf16 autocast, including the penalty's double backward (in a fresh process: the
    precision of Accelerate's process-wide state is fixed once set)."""
    args = run_args(
        synthetic_shards, tmp_path, "run.steps=3", "run.precision=bf16", "run.log_every=1"
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "train" / "gan.py"), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [m for m in read_metrics(tmp_path) if "critic/gradient_penalty" in m]
    assert len(logged) == 3
    assert all(isinstance(m["critic/gradient_penalty"], float) for m in logged)  # finite


def test_feature_matching_can_leave_out_the_inside_of_the_person(synthetic_shards, tmp_path):
    """loss.feature_matching_inside_weight: the feature matching's weights are that weight
    deeper than feature_matching_depth px inside the person's mask and 1 elsewhere, and a
    run with them trains."""
    config = tiny(
        synthetic_shards,
        tmp_path / "run",
        "loss.feature_matching_inside_weight=0.25",
        "loss.feature_matching_depth=2",
        "run.steps=2",
    )
    trainer = Trainer(config)
    batch = trainer.val[0]
    weight = trainer.objective.matching_weight(batch)
    deep = deep_inside(batch.mask, 2).bool()
    assert deep.any() and (~deep).any()
    assert torch.all(weight[deep] == 0.25) and torch.all(weight[~deep] == 1)
    assert trainer.run() == 0
    logged = set().union(*read_metrics(tmp_path / "run"))
    assert "generator/feature_matching" in logged


def test_a_composing_gan_learns_where_the_person_is(synthetic_clip, tmp_path):
    """generator.alpha: the person is composed over the plate; the alpha learns the mask, the
    checkpoint keeps the background, and it loads as a skeleton -> image generator."""
    video, keypoints = synthetic_clip
    shards = tmp_path / "shards"  # the fixed crop: every crop has the same room
    prepare(video, shards, PrepareConfig(size=64, crop_mode="fixed"), keypoints, progress=False)
    config = tiny(
        shards,
        tmp_path / "run",
        "generator.alpha=true",
        "loss.mask_weight=10",
        "loss.feature_matching_weight=10",
        "loss.person_weight=3",
        "run.steps=30",
        "run.sample_every=30",
    )
    trainer = Trainer(config)
    assert trainer.run() == 0
    metrics = read_metrics(tmp_path / "run")
    assert {"generator/mask", "generator/feature_matching"} <= set(metrics[-2])
    l1 = val_l1(tmp_path / "run")
    assert l1[30] < 0.6 * l1[0], l1

    checkpoint = ckpt.latest_checkpoint(tmp_path / "run" / "checkpoints")
    generator = ckpt.load_generator(checkpoint)
    assert isinstance(generator, ComposedGenerator)
    # The background is the plate cut by the clip's box: the room of every crop.
    batch = trainer.val[0]
    room = (batch.mask < 0.01) & (batch.inside > 0.99)
    background = generator.background.expand_as(batch.image)
    assert (background - batch.image).abs().mean(1, keepdim=True)[room].mean() < 0.1
    with torch.no_grad():
        image, alpha = generator.with_alpha(batch.skeleton)
    # Both start at sigmoid(-2) = 0.12: after 30 steps the person stands out (0.41 vs 0.12).
    assert alpha[batch.mask > 0.99].mean() > alpha[room].mean() + 0.2
    assert torch.allclose(image, generator(batch.skeleton))


def test_a_mask_loss_without_alpha_is_refused(synthetic_shards, tmp_path):
    with pytest.raises(GanmotionError, match="generator.alpha"):
        tiny(synthetic_shards, tmp_path / "run", "generator.alpha=false", "loss.mask_weight=1")


def test_a_batch_that_is_its_own_background_is_scored_on_the_person_layer(synthetic_shards):
    """A moving camera has no plate: each crop is composed over itself, where an alpha of 0
    would copy the real image. The L1 must then score the person layer over the person, or
    the generator learns to draw nothing (on taichi2 it did: alpha IoU 0)."""
    config = tiny(synthetic_shards, "unused", "loss.person_weight=1")
    (batch,) = validation_batches(shard_urls(synthetic_shards, "val"), config.data.stream, 1)
    nothing = objectives.Drawn(
        image=batch.background,  # alpha 0 everywhere: the composed image is the real one
        alpha=torch.zeros_like(batch.mask),
        person=torch.zeros_like(batch.image),
    )
    scorer = SimpleNamespace(config=config, perceptual=None, own_background=True)
    terms = objectives.Objective.reconstruction_terms(scorer, nothing, batch)
    assert terms["l1"] > 0.1 * config.loss.l1_weight  # grey against the person's colours
    scorer.own_background = False  # over a plate the composed image is what is scored
    terms = objectives.Objective.reconstruction_terms(scorer, nothing, batch)
    assert terms["l1"] == 0


def test_head_weight_counts_the_head_box_more_in_the_l1(synthetic_shards):
    """loss.head_weight: an error in the head's box weighs head_weight times as much as the
    same error elsewhere on the person, over a plate and over the batch's own background."""
    config = tiny(synthetic_shards, "unused", "loss.person_weight=1")
    (batch,) = validation_batches(shard_urls(synthetic_shards, "val"), config.data.stream, 1)
    batch = type(batch)(*(field[:1] for field in batch))  # the L1 normalises per sample
    head = head_boxes(batch.keypoints, *batch.image.shape[-2:])
    assert head.sum() > 0
    person = (batch.mask > 0.99).float()
    for own_background in (False, True):
        losses = []
        for head_weight in (1, 5):
            scorer = SimpleNamespace(
                config=dataclasses.replace(
                    config, loss=dataclasses.replace(config.loss, head_weight=head_weight)
                ),
                perceptual=None,
                own_background=own_background,
            )
            for region in (head * person, (1 - head) * person):
                wrong = batch.image + region  # the same error of 1 per pixel, in one region
                drawn = objectives.Drawn(wrong, torch.ones_like(batch.mask), wrong)
                losses.append(objectives.Objective.reconstruction_terms(scorer, drawn, batch)["l1"])
        on_head, off_head, on_head_5, off_head_5 = (loss.item() for loss in losses)
        # The L1 is normalised by the weights' sum: the head's share of it grows five-fold.
        assert on_head_5 / off_head_5 == pytest.approx(5 * on_head / off_head, rel=1e-4)


def test_mask_person_weight_counts_a_miss_on_the_person_more_in_the_mask_loss(synthetic_shards):
    """loss.mask_person_weight: an alpha of 0 on the person (the room showing through the
    body) weighs mask_person_weight times as much as an alpha of 1 on as much of the room."""
    config = tiny(synthetic_shards, "unused", "loss.mask_weight=1")
    (batch,) = validation_batches(shard_urls(synthetic_shards, "val"), config.data.stream, 1)
    batch = type(batch)(*(field[:1] for field in batch))  # the L1 normalises per sample
    batch = batch._replace(mask=(batch.mask > 0.5).float(), inside=torch.ones_like(batch.mask))
    person, room = batch.mask, 1 - batch.mask
    assert 0 < person.sum() < room.sum()
    room_as_much = room * (torch.rand_like(room) < person.sum() / room.sum()).float()
    ratios = []
    for mask_person_weight in (1, 3):
        loss = dataclasses.replace(config.loss, mask_person_weight=mask_person_weight)
        scorer = SimpleNamespace(
            config=dataclasses.replace(config, loss=loss), perceptual=None, own_background=True
        )
        missed = []
        for alpha in (batch.mask - person, batch.mask + room_as_much):  # a miss, a spill
            drawn = objectives.Drawn(batch.image, alpha, batch.image)
            missed.append(objectives.Objective.reconstruction_terms(scorer, drawn, batch)["mask"])
        ratios.append((missed[0] / missed[1]).item())
    spilled = room_as_much.sum() / person.sum()  # as much, up to the draw's noise
    assert ratios[0] == pytest.approx(1 / spilled.item(), rel=1e-4)
    assert ratios[1] == pytest.approx(3 * ratios[0], rel=1e-4)


def test_over_its_own_background_the_alpha_learns_from_the_mask_alone():
    """The composed image must not pull the alpha: over the real frame, alpha 0 copies it."""
    output = torch.rand(1, 4, 8, 8, requires_grad=True)
    batch = SimpleNamespace(background=torch.rand(1, 3, 8, 8))
    drawer = SimpleNamespace(alpha=True, own_background=True, output=lambda g, b: output)
    drawn = objectives.Objective.drawn(drawer, None, batch)
    drawn.image.sum().backward()
    assert output.grad[:, :3].abs().sum() > 0 and output.grad[:, 3].abs().sum() == 0
    output.grad = None
    drawer.own_background = False  # over a plate the composition teaches the alpha too
    objectives.Objective.drawn(drawer, None, batch).image.sum().backward()
    assert output.grad[:, 3].abs().sum() > 0


def test_validation_over_its_own_background_scores_the_person_not_the_copy(synthetic_shards):
    """Validation must not reward an alpha of 0 over the real frame (a perfect copy): there it
    scores the person layer within the mask. Over a plate it scores the composed image."""
    config = tiny(synthetic_shards, "unused")
    (batch,) = validation_batches(shard_urls(synthetic_shards, "val"), config.data.stream, 1)
    batch = batch._replace(background=batch.image)  # a moving camera: the crop is its own
    grey_nobody = torch.cat([torch.zeros_like(batch.image), torch.zeros_like(batch.mask)], 1)
    scorer = SimpleNamespace(alpha=True, own_background=True, output=lambda g, b: grey_nobody)
    scorer.drawn = lambda g, b: objectives.Objective.drawn(scorer, g, b)
    shown = objectives.Objective.validation_image(scorer, None, batch)
    person = batch.mask > 0.5
    assert person.any()
    assert torch.equal(shown.expand_as(batch.image)[~person.expand_as(batch.image)],
                       batch.image[~person.expand_as(batch.image)])  # fmt: skip
    assert (shown - batch.image).abs()[person.expand_as(batch.image)].mean() > 0.1  # grey
    scorer.own_background = False
    assert torch.equal(objectives.Objective.validation_image(scorer, None, batch), batch.image)


def test_the_inference_background_is_taken_from_the_whole_clip(synthetic_shards, monkeypatch):
    """A moving camera shows another room as the clip goes on: the background a run composes
    over at inference averages samples spread over all of the training split, not its
    start; a static camera's plate is cut by the median box of the same samples."""
    from ganmotion.data.background import Backdrop
    from ganmotion.data.crop import crop_window
    from ganmotion.data.manifest import load_manifest

    manifest = load_manifest(synthetic_shards)
    taken = []
    monkeypatch.setattr(loop, "BACKGROUND_SAMPLES", 4)
    monkeypatch.setattr(
        Backdrop, "typical_plate", lambda self, boxes, size: taken.append(("plate", boxes))
    )
    monkeypatch.setattr(
        Backdrop,
        "mean_room",
        lambda self, samples, size: taken.append(("room", [box for _, _, box in samples])),
    )
    stream = SimpleNamespace(size=manifest.image_size)
    config = SimpleNamespace(data=SimpleNamespace(shards=str(synthetic_shards), stream=stream))
    train = manifest.splits["train"].samples
    backdrop = Backdrop.of_shards(synthetic_shards, manifest)
    assert backdrop.plate is not None  # the synthetic camera is static
    urls = shard_urls(synthetic_shards, "train")
    loop.typical_background(backdrop, urls, train, config)
    backdrop.plate = None  # as a moving camera
    loop.typical_background(backdrop, urls, train, config)
    stride = -(-train // 4)
    crops = np.load(synthetic_shards / "crops.npy")  # every frame of this clip has a person
    expected = [crop_window(crops[frame]) for frame in range(0, train, stride)]
    assert len(set(expected)) == 4  # the tracking crop moved: four boxes from four times
    boxes = [(kind, [tuple(int(v) for v in box) for box in boxes]) for kind, boxes in taken]
    assert boxes == [("plate", expected), ("room", expected)]
