"""The seed's baselines end to end: the MLP trained by the vanilla trainer and run from its
checkpoint, nearest neighbour run from the shards, both behind the Backend interface."""

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ganmotion.config import load_config
from ganmotion.data.synthetic import Motion, pose_at
from ganmotion.errors import GanmotionError
from ganmotion.export.onnx import export_checkpoint
from ganmotion.models.baselines import MLPGenerator
from ganmotion.models.generator import render_skeletons
from ganmotion.pose.render import SkeletonStyle
from ganmotion.runtime.backends import Backend, load_backend
from ganmotion.runtime.baselines import KeypointBackend, load_nearest
from ganmotion.training import checkpoint as ckpt
from ganmotion.training.config import GanConfig, VanillaConfig
from ganmotion.training.loop import Trainer
from ganmotion.training.tracking import read_metrics

ROOT = Path(__file__).resolve().parent.parent
STEPS = 20


def mlp_tiny(shards, out, *overrides) -> VanillaConfig:
    return load_config(
        VanillaConfig,
        ROOT / "configs" / "mlp_tiny.yaml",
        [f"data.shards={shards}", f"run.out_dir={out}", "run.tensorboard=false", *overrides],
    )


@pytest.fixture(scope="module")
def mlp_run(synthetic_shards, tmp_path_factory) -> Path:
    """A run folder of the MLP baseline trained for STEPS steps on the synthetic shards."""
    out = tmp_path_factory.mktemp("mlp") / "run"
    config = mlp_tiny(
        synthetic_shards, out, f"run.steps={STEPS}", f"run.sample_every={STEPS}", "run.log_every=5"
    )
    assert Trainer(config).run() == 0
    return out


@pytest.fixture(scope="module")
def mlp_checkpoint(mlp_run) -> Path:
    return ckpt.latest_checkpoint(mlp_run / "checkpoints")


def poses(count: int, size: int = 64) -> torch.Tensor:
    """Keypoints (count, 33, 3) in pixels of a size x size image, from synthetic motions."""
    return torch.from_numpy(
        np.stack([pose_at(Motion.from_seed(i), 0.7 * i, size) for i in range(count)])
    )


# ----------------------------------------------------------------- MLP


def test_the_mlp_baseline_trains_through_the_vanilla_trainer(mlp_run, mlp_checkpoint):
    l1 = {m["step"]: m["val/l1"] for m in read_metrics(mlp_run) if "val/l1" in m}
    assert l1[STEPS] < 0.8 * l1[0], l1
    state = json.loads((mlp_checkpoint / "state.json").read_text())
    assert state["trainer"] == "vanilla" and state["step"] == STEPS
    assert state["architecture"] == {
        "generator": {
            "class": "MLPGenerator",
            "size": 64,
            "hidden": 256,
            "layers": 3,
            "base_size": 32,
        }
    }
    assert not (mlp_checkpoint / "critic.safetensors").exists()
    assert isinstance(ckpt.load_generator(mlp_checkpoint), MLPGenerator)


def test_an_mlp_run_resumes(mlp_run, synthetic_shards):
    trainer = Trainer(mlp_tiny(synthetic_shards, mlp_run, f"run.steps={STEPS}"), "latest")
    assert trainer.step == STEPS


def test_an_mlp_checkpoint_runs_as_a_keypoint_backend(mlp_checkpoint):
    backend = load_backend(mlp_checkpoint, device="cpu")
    assert isinstance(backend, KeypointBackend) and isinstance(backend, Backend)
    assert (backend.name, backend.size, backend.needs_keypoints) == ("mlp", 64, True)
    state = json.loads((mlp_checkpoint / "state.json").read_text())
    assert backend.skeleton.to_dict() == state["skeleton"]  # what its training stream drew
    keypoints = poses(4)
    images = backend(render_skeletons(keypoints, backend.skeleton), keypoints)
    assert images.shape == (4, 3, 64, 64) and images.dtype == torch.float32
    assert images.device == torch.device("cpu")
    direct = ckpt.load_generator(mlp_checkpoint).generate(keypoints)
    assert torch.equal(images, direct)
    assert backend(None, keypoints[:0]).shape == (0, 3, 64, 64)


def test_an_mlp_checkpoint_is_a_torch_model_not_an_onnx_one(mlp_checkpoint):
    with pytest.raises(GanmotionError, match="the onnxruntime backend cannot run this file"):
        load_backend(mlp_checkpoint, backend="onnxruntime")


def test_exporting_an_mlp_checkpoint_is_a_one_line_error(mlp_checkpoint, tmp_path):
    message = f"{mlp_checkpoint}: the MLP baseline is not exported; run it from the checkpoint"
    with pytest.raises(GanmotionError) as error:
        export_checkpoint(mlp_checkpoint, tmp_path / "gen.onnx")
    assert str(error.value) == message
    result = subprocess.run(
        [sys.executable, str(ROOT / "export" / "to_onnx.py"), "--checkpoint", str(mlp_checkpoint),
         "--out", str(tmp_path / "gen.onnx")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == f"error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_mlp_size_must_match_the_stream(synthetic_shards, tmp_path):
    with pytest.raises(GanmotionError, match=r"mlp.size \(64\) differs from data.stream.size"):
        mlp_tiny(synthetic_shards, tmp_path, "data.stream.size=128", "mlp.size=64")


def test_the_gan_config_has_no_model_choice():
    with pytest.raises(GanmotionError, match="unknown key model"):
        load_config(GanConfig, None, ["model=mlp"])


def test_an_unknown_generator_class_is_still_refused(mlp_checkpoint, tmp_path):
    copy = tmp_path / "step"
    shutil.copytree(mlp_checkpoint, copy)
    state = json.loads((copy / "state.json").read_text())
    state["architecture"]["generator"]["class"] = "Transformer"
    (copy / "state.json").write_text(json.dumps(state))
    with pytest.raises(GanmotionError, match="unknown generator class 'Transformer'"):
        ckpt.load_generator(copy)


# ----------------------------------------------------------------- nearest neighbour


def training_samples(shards: Path, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` (keypoints (count, 33, 3), images (count, 3, S, S) uint8) of the
    first training shard, read straight from the tar."""
    members: dict[str, dict[str, bytes]] = {}
    with tarfile.open(shards / "train-000000.tar") as tar:
        for member in tar:
            key, _, extension = member.name.partition(".")
            members.setdefault(key, {})[extension] = tar.extractfile(member).read()
    keypoints, images = [], []
    for sample in list(members.values())[:count]:
        keypoints.append(np.load(io.BytesIO(sample["pose.npy"]), allow_pickle=False))
        bgr = cv2.imdecode(np.frombuffer(sample["jpg"], np.uint8), cv2.IMREAD_COLOR)
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(keypoints)), torch.from_numpy(np.stack(images))


def test_nearest_returns_the_training_image_of_a_training_pose(synthetic_shards):
    backend = load_backend("nearest", shards=str(synthetic_shards), device="cpu")
    assert (backend.name, backend.size, backend.needs_keypoints) == ("nearest", 64, True)
    assert backend.skeleton == SkeletonStyle.for_size(64)  # the shards' image size
    assert backend.model.images.dtype == torch.uint8
    keypoints, images = training_samples(synthetic_shards, 5)
    out = backend(render_skeletons(keypoints, backend.skeleton), keypoints)
    assert out.dtype == torch.float32 and out.is_contiguous()
    assert torch.equal(out, images.float() / 127.5 - 1)


def test_nearest_with_max_frames_spans_the_split(synthetic_shards):
    manifest = json.loads((synthetic_shards / "manifest.json").read_text())
    total = manifest["splits"]["train"]["samples"]
    backend = load_nearest(str(synthetic_shards), device="cpu", max_frames=10)
    kept = len(backend.model.images)
    assert 5 <= kept <= 10 and kept < total


# ----------------------------------------------------------------- bad input


def test_nearest_without_shards_is_an_error():
    with pytest.raises(GanmotionError, match="^nearest needs --target-shards DIR$"):
        load_backend("nearest")


def test_nearest_on_a_folder_without_shards_names_it(tmp_path):
    with pytest.raises(GanmotionError, match="manifest.json: no such file"):
        load_backend("nearest", shards=str(tmp_path))


def test_keypoint_backends_need_keypoints(mlp_checkpoint):
    backend = load_backend(mlp_checkpoint, device="cpu")
    skeletons = render_skeletons(poses(2), backend.skeleton)
    with pytest.raises(GanmotionError, match="the mlp baseline draws from keypoints"):
        backend(skeletons)
    with pytest.raises(GanmotionError, match=r"keypoints must be \(N, 33, 3\), got \(2, 13, 3\)"):
        backend(skeletons, torch.zeros(2, 13, 3))
    with pytest.raises(GanmotionError, match="2 skeletons but 3 sets of keypoints"):
        backend(skeletons, poses(3))
    with pytest.raises(GanmotionError, match=r"skeleton batch must be \(N, 3, 64, 64\)"):
        backend(torch.zeros(2, 3, 32, 32), poses(2))


def test_baselines_have_no_alpha(mlp_checkpoint, synthetic_shards):
    for backend in (
        load_backend(mlp_checkpoint, device="cpu"),
        load_backend("nearest", device="cpu", shards=str(synthetic_shards)),
    ):
        assert backend.has_alpha is False and backend.background is None
        with pytest.raises(GanmotionError, match=f"the {backend.name} baseline: the model has no"):
            backend.with_alpha(None, poses(1))


def test_the_mean_floor_is_the_mean_training_crop_for_every_pose(synthetic_shards):
    from ganmotion.data.manifest import shard_urls
    from ganmotion.data.stream import decoded_samples
    from ganmotion.images import to_uint8_images

    shards = str(synthetic_shards)
    backend = load_backend("mean", shards=shards)
    assert (backend.name, backend.size, backend.needs_keypoints) == ("mean", 64, True)
    samples = decoded_samples(shards, "train", shard_urls(shards, "train"), 64)
    crops = [s.image for s in samples]
    expected = np.round(np.mean(crops, axis=0)).astype(np.uint8)
    keypoints = torch.from_numpy(np.random.default_rng(0).uniform(0, 64, (3, 33, 3))).float()
    images = to_uint8_images(backend(None, keypoints))
    assert all(np.array_equal(image, expected) for image in images)


def test_the_mean_floor_needs_shards():
    with pytest.raises(GanmotionError, match="mean needs --target-shards"):
        load_backend("mean")
