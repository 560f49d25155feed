"""What only a CUDA GPU can show: `pytest -m gpu` (skipped, with the reason, without one).

The per-option parity of the torch backend on CUDA (channels_last, bf16, fp16) is in
test_backends.py, whose cuda cases are marked gpu too. `pytest -m gpu --gpu-device cpu` runs
the tests here on the CPU instead, to check the tests themselves on a machine without a GPU;
the cases only a GPU has (fp16 training, NCCL) skip there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import free_port, make_checkpoint
from test_backends import BF16_TOLERANCE, FP32_TOLERANCE
from test_training import run_args, tiny, weights

from ganmotion.errors import GanmotionError
from ganmotion.export.onnx import parity_batches, relative_error
from ganmotion.pose.render import SkeletonStyle
from ganmotion.runtime import TorchBackend
from ganmotion.runtime.infer import main as infer_main
from ganmotion.training import checkpoint as ckpt
from ganmotion.training.loop import Trainer
from ganmotion.training.tracking import read_metrics

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parent.parent
SIZE = 64


def only_on_a_gpu(device: str, what: str) -> None:
    if device != "cuda":
        pytest.skip(f"{what} needs a CUDA GPU")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, synthetic_shards) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("gpu") / "checkpoints", SIZE, synthetic_shards)


@pytest.mark.parametrize(
    ("options", "tolerance"),
    [({}, FP32_TOLERANCE), ({"precision": "bf16", "channels_last": True}, BF16_TOLERANCE)],
    ids=["fp32", "bf16-channels_last"],
)
def test_the_compiled_generator_stays_close_to_eager(checkpoint, gpu_device, options, tolerance):
    batches = parity_batches(TorchBackend.load(checkpoint, "cpu").skeleton)
    eager = TorchBackend.load(checkpoint, gpu_device)
    try:
        compiled = TorchBackend.load(checkpoint, gpu_device, compile=True, **options)
    except GanmotionError as error:  # a CPU without a C++ compiler
        pytest.skip(str(error))
    for _, batch in batches:
        expected = eager(batch).cpu().numpy()
        images = compiled(batch)
        assert images.device.type == gpu_device and images.dtype == torch.float32
        assert relative_error(images.cpu().numpy(), expected) <= tolerance


def test_cuda_graph_outputs_survive_the_next_call(checkpoint, gpu_device):
    """reduce-overhead replays a CUDA graph into the same output memory each call: the images
    of one batch must still be its own after the next batch has run (the runner keeps two
    batches in flight)."""
    first, second = (batch for _, batch in parity_batches(SkeletonStyle.for_size(SIZE))[:2])
    eager = TorchBackend.load(checkpoint, gpu_device)
    try:
        graphed = TorchBackend.load(checkpoint, gpu_device, compile="reduce-overhead")
    except GanmotionError as error:  # a CPU without a C++ compiler
        pytest.skip(str(error))
    assert graphed.cuda_graphs == (gpu_device == "cuda")
    kept = graphed(first)
    graphed(second[: len(first)])  # the same shape: the same graph, replayed
    assert relative_error(kept.cpu().numpy(), eager(first).cpu().numpy()) <= FP32_TOLERANCE


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_gan_step_in_mixed_precision(synthetic_shards, tmp_path, gpu_device, precision):
    """`python train/gan.py` on the device (a fresh process: Accelerate's precision is fixed
    once set in one): finite losses, the penalty's double backward included; in fp16 through
    the GradScaler, which scales the penalty's inner gradient too."""
    if precision == "fp16":
        only_on_a_gpu(gpu_device, "fp16 training (Accelerate's GradScaler)")
    overrides = [f"run.precision={precision}", "run.steps=3", "run.log_every=1"]
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train" / "gan.py"),
            *run_args(synthetic_shards, tmp_path, *overrides),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"world size 1 ({gpu_device})" in result.stdout
    logged = [m for m in read_metrics(tmp_path) if "critic/gradient_penalty" in m]
    assert len(logged) == 3
    assert all(np.isfinite(v) for m in logged for k, v in m.items() if "/" in k), logged
    saved = ckpt.load_tensors(ckpt.step_dir(tmp_path / "checkpoints", 3) / "optimizers.pt")
    if precision == "fp16":
        assert float(saved["scaler"]["scale"]) > 1  # a live scaler, not the disabled one
    else:
        assert not saved["scaler"]


def test_the_rng_state_round_trips_on_the_device(gpu_device):
    state = ckpt.rng_state()
    first = torch.rand(4, device=gpu_device)
    ckpt.set_rng_state(state)
    assert torch.equal(torch.rand(4, device=gpu_device), first)


def largest_difference(a: Path, b: Path) -> float:
    worst = 0.0
    for name in ("generator", "generator_ema", "critic"):
        theirs = weights(b, name)
        for key, tensor in weights(a, name).items():
            worst = max(worst, (tensor.double() - theirs[key].double()).abs().max().item())
    return worst


def test_a_resumed_run_matches_a_straight_one_as_closely_as_two_straight_runs(
    synthetic_shards, tmp_path, gpu_device
):
    """6 steps straight (twice) against 3 steps, stop, resume, 3 more. Bit for bit where the
    device's kernels are deterministic (the CPU); on a GPU whose kernels are not (atomic adds
    in some backward passes), no further from the straight run than a second straight run is.
    A lost RNG state (the critic's interpolation, the noise) would be far further."""
    options = ["run.checkpoint_every=100"]
    for run in ("a", "a2"):
        assert Trainer(tiny(synthetic_shards, tmp_path / run, "run.steps=6", *options)).run() == 0
    assert Trainer(tiny(synthetic_shards, tmp_path / "b", "run.steps=3", *options)).run() == 0
    resumed = Trainer(tiny(synthetic_shards, tmp_path / "b", "run.steps=6", *options), "latest")
    assert resumed.accelerator.device.type == gpu_device
    assert resumed.run() == 0
    a, a2, b = (ckpt.step_dir(tmp_path / run / "checkpoints", 6) for run in ("a", "a2", "b"))
    run_to_run = largest_difference(a, a2)
    assert largest_difference(a, b) <= 2 * run_to_run, (run_to_run, largest_difference(a, b))


def test_a_distributed_run_of_one_rank(synthetic_shards, tmp_path, gpu_device):
    """`torchrun` with one process: Accelerate takes the distributed path (NCCL on a GPU)."""
    only_on_a_gpu(gpu_device, "NCCL")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
        "--master_port", str(free_port()), str(ROOT / "train" / "gan.py"),
        "--config", str(ROOT / "configs" / "gan_tiny.yaml"), f"data.shards={synthetic_shards}",
        f"run.out_dir={tmp_path / 'run'}", "run.steps=4", "run.tensorboard=false",
        "run.precision=bf16",
    ]  # fmt: skip
    probe = (
        "import torch, torch.distributed as dist\n"
        "from accelerate import PartialState\n"
        "state = PartialState()\n"
        "t = torch.ones(1, device=state.device)\n"
        "dist.all_reduce(t)\n"
        "print(state.distributed_type, dist.get_backend(), t.item())\n"
    )
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]  # keep what is there (carried wheels)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 4
    (tmp_path / "probe.py").write_text(probe)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1"]
    result = subprocess.run(
        [*launch, "--master_port", str(free_port()), str(tmp_path / "probe.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["DistributedType.MULTI_GPU", "nccl", "1.0"]


def test_the_runner_on_the_device_with_given_poses(
    checkpoint, synthetic_clip, tmp_path, gpu_device
):
    video, keypoints = synthetic_clip
    summary_json = tmp_path / "summary.json"
    args = ["--source", str(video), "--poses", str(keypoints), "--model", str(checkpoint)]
    args += ["--out", str(tmp_path / "out.mp4"), "--device", gpu_device, "--batch", "8"]
    args += ["--precision", "bf16", "--summary-json", str(summary_json), "--quiet"]
    assert infer_main(args) == 0
    summary = json.loads(summary_json.read_text())
    assert summary["frames"] == len(np.load(keypoints)) and summary["batch_size"] == 8
    assert summary["frames_without_pose"] == 0
    assert (tmp_path / "out.mp4").stat().st_size > 0
