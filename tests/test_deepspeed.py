"""DeepSpeed ZeRO-2 through the real `accelerate launch` of train/gan.py with 2 CPU processes.

Skipped, with DeepSpeed's own error, where DeepSpeed cannot be imported or cannot build the
shared-memory communication op it compiles on first use on CPU (needs a C++ compiler).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import free_port
from safetensors.torch import load_file

from ganmotion.training import checkpoint as ckpt

ROOT = Path(__file__).resolve().parent.parent
ACCELERATE = Path(sys.executable).with_name("accelerate")
CPU = {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"}
NETWORKS = ("generator", "generator_ema", "critic")

pytestmark = pytest.mark.slow


def train(accelerate_config: str, shards: Path, out: Path, *args: str) -> str:
    """train/gan.py (tiny config) through `accelerate launch` on 2 CPU processes; its output."""
    command = [
        str(ACCELERATE), "launch",
        "--config_file", str(ROOT / "configs" / "accelerate" / accelerate_config),
        "--num_processes", "2", "--main_process_port", str(free_port()),
        str(ROOT / "train" / "gan.py"), "--config", str(ROOT / "configs" / "gan_tiny.yaml"),
        f"data.shards={shards}", f"run.out_dir={out}", "run.tensorboard=false",
        "run.checkpoint_every=2", "run.keep_checkpoints=5", *args,
    ]  # fmt: skip
    result = subprocess.run(
        command,
        env={**os.environ, **CPU},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def state(run: Path, step: int) -> dict:
    return json.loads((ckpt.step_dir(run / "checkpoints", step) / "state.json").read_text())


def same_weights(a: Path, b: Path) -> None:
    for name in NETWORKS:
        mine, theirs = (load_file(str(c / f"{name}.safetensors")) for c in (a, b))
        for key, tensor in mine.items():
            assert torch.equal(tensor, theirs[key]), f"{name}.{key} differs"


@pytest.fixture(scope="module")
def zero2_run(deepspeed_starts, synthetic_shards, tmp_path_factory) -> Path:
    """4 ZeRO-2 steps, checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("zero2")
    train("deepspeed_zero2.yaml", synthetic_shards, out, "run.steps=4")
    return out


def test_zero2_trains_one_model_on_two_processes(zero2_run):
    saved = state(zero2_run, 4)
    assert saved["world_size"] == 2
    first, second = saved["replica_checksums"]
    assert first == second  # the ranks hold the same weights after partitioned updates
    files = {p.name for p in ckpt.step_dir(zero2_run / "checkpoints", 4).iterdir()}
    assert files == {
        "state.json", "optimizers.pt", "generator.safetensors", "generator_ema.safetensors",
        "critic.safetensors", "rng-rank00000.pt", "rng-rank00001.pt",
        "zero-rank00000.pt", "zero-rank00001.pt",  # each rank's optimiser partitions
        "background.png",  # the config composes: what its generator composes over
        "checksums.json",  # of every other file, written last
    }  # fmt: skip
    assert not list((zero2_run / "checkpoints").glob("*.partial"))
    assert json.loads((zero2_run / "status.json").read_text())["state"] == "finished"


def test_zero2_resume_is_exact(zero2_run, synthetic_shards, tmp_path):
    """Steps 3-4 again from the step-2 checkpoint (partitioned Adam states read back with
    weights_only=True): the same weights, bit for bit."""
    step2 = ckpt.step_dir(zero2_run / "checkpoints", 2)
    out = train("deepspeed_zero2.yaml", synthetic_shards, tmp_path, "run.steps=4", "--resume",
                str(step2))  # fmt: skip
    assert f"resumed from {step2} at step 2" in out
    same_weights(
        ckpt.step_dir(zero2_run / "checkpoints", 4), ckpt.step_dir(tmp_path / "checkpoints", 4)
    )


def test_zero2_trains_the_same_model_as_ddp(zero2_run, synthetic_shards, tmp_path):
    """fp32, no accumulation: ZeRO-2's averaged, partitioned update is DDP's update."""
    train("ddp.yaml", synthetic_shards, tmp_path, "run.steps=4")
    zero, ddp = (
        state(zero2_run, 4)["replica_checksums"][0],
        state(tmp_path, 4)["replica_checksums"][0],
    )
    assert zero == pytest.approx(ddp, rel=1e-6)
