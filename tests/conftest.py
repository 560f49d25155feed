"""Shared fixtures: real sample video (skipped when absent), synthetic clips and shards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ganmotion.data.prepare import PrepareConfig, prepare

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TAICHI = SHARED_DATA / "taichi2.mp4"


def pytest_addoption(parser):
    parser.addoption(
        "--gpu-device",
        default="cuda",
        help="device of the tests marked gpu (cuda); 'cpu' runs them here, to check the tests "
        "themselves on a machine without a GPU",
    )


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu skip, with the reason, where their device is absent."""
    on_cpu = config.getoption("--gpu-device") == "cpu"
    if not on_cpu and _cuda_available():
        return
    for item in items:
        if "gpu" not in item.keywords:
            continue
        if not on_cpu:
            why = "no CUDA GPU here (torch.cuda.is_available() is False)"
        elif "gpu_device" not in item.fixturenames:
            why = "--gpu-device cpu runs only the tests that take gpu_device; this one names cuda"
        else:
            continue
        item.add_marker(pytest.mark.skip(reason=why))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# A test's devices: the CPU always, and a CUDA GPU as a case marked gpu (`pytest -m gpu`),
# which skips with the reason where there is none.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu, id="cuda")]


@pytest.fixture(scope="session")
def gpu_device(request) -> str:
    """The device of a test marked gpu: "cuda", or what --gpu-device names."""
    return request.config.getoption("--gpu-device")


@pytest.fixture(scope="session")
def taichi() -> Path:
    if not TAICHI.exists():
        pytest.skip(f"sample video {TAICHI} is absent (it lives in the team's shared/ folder)")
    return TAICHI


@pytest.fixture(scope="session")
def taichi_shards(taichi, tmp_path_factory) -> Path:
    """The whole sample video prepared at 128 px with MediaPipe in 2 worker processes."""
    out = tmp_path_factory.mktemp("taichi") / "shards"
    prepare(taichi, out, PrepareConfig(size=128, workers=2, samples_per_shard=100), progress=False)
    return out


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory) -> tuple[Path, Path]:
    """(video, keypoints .npy) of a 96-frame synthetic clip at 128 px."""
    from ganmotion.data.synthetic import write_clip

    return write_clip(tmp_path_factory.mktemp("clip") / "dancer.mp4", frames=96, size=128)


@pytest.fixture(scope="session")
def synthetic_shards(synthetic_clip, tmp_path_factory) -> Path:
    """The synthetic clip prepared from its exact keypoints: 16 samples per shard, 64 px, with
    the tracking crop (what the reference loss curves were recorded on; `--crop auto` would
    pick the fixed crop for this static camera)."""
    video, keypoints = synthetic_clip
    out = tmp_path_factory.mktemp("synthetic") / "shards"
    prepare(
        video,
        out,
        PrepareConfig(size=64, samples_per_shard=16, crop_mode="track"),
        keypoints_file=keypoints,
        progress=False,
    )
    return out


@pytest.fixture(scope="session")
def deepspeed_starts() -> None:
    """Import DeepSpeed and build (or load the cached) op its CPU communication backend
    needs; skip the test with the reason when that fails."""
    probe = (
        "import deepspeed\n"
        "from deepspeed.accelerator import get_accelerator\n"
        "builder = get_accelerator().create_op_builder('ShareMemCommBuilder')\n"
        "builder is None or builder.load()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "ACCELERATE_USE_CPU": "1", "DS_ACCELERATOR": "cpu"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["(no output)"]
        pytest.skip(f"DeepSpeed cannot start on this machine: {lines[-1]}")


def free_port() -> int:
    """A TCP port nobody listens on now, for a rendezvous of launched processes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_sigint() -> None:
    """A `preexec_fn` for a command a test interrupts: SIGINT at its default. pytest run as a
    background job of a script has it ignored, and a command inheriting that never sees the
    Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def listing(directory: Path) -> list[str]:
    """Everything in a directory, hidden files included, to check nothing partial was left."""
    return sorted(p.name for p in directory.iterdir())


STEP = 7  # the step of checkpoints made by make_checkpoint


def make_checkpoint(root: Path, size: int, shards: Path | None = None) -> Path:
    """A checkpoint folder as the trainer writes it, without training: a tiny U-Net whose
    live and EMA weights differ; its config names `shards` as the training data if given."""
    import json
    from dataclasses import asdict

    import torch

    from ganmotion.models.generator import UNetGenerator
    from ganmotion.training import checkpoint as ckpt

    def generator(seed: int) -> UNetGenerator:
        torch.manual_seed(seed)
        model = UNetGenerator(size=size, base_channels=8, depth=4, max_channels=64)
        with torch.no_grad():
            model.attention.gamma.fill_(0.5)  # 0 at init, which would hide the attention
        return model.eval()

    folder = ckpt.step_dir(root, STEP)
    folder.mkdir(parents=True)
    live, ema = generator(seed=1), generator(seed=2)
    ckpt.save_weights(live, folder / "generator.safetensors")
    ckpt.save_weights(ema, folder / "generator_ema.safetensors")
    state = {
        "format": ckpt.FORMAT_VERSION,
        "trainer": "gan",
        "step": STEP,
        "image_size": size,
        "normalisation": "[-1, 1]",
        "architecture": {"generator": {"class": "UNetGenerator", **asdict(live.config)}},
        "config": {"data": {"shards": str(shards)}} if shards is not None else {},
    }
    (folder / "state.json").write_text(json.dumps(state))
    ckpt.write_checksums(folder)
    return folder


def save_onnx(graph, path: Path) -> Path:
    """A hand-built test model saved at opset 20 and its IR version 10: onnx 1.23 stamps IR 14
    by default, newer than ONNX Runtime 1.30 reads (the pair the GPU machine has)."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.save(model, str(path))
    return path
