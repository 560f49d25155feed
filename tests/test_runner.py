"""The batched video runner: same frames whatever the batch or backend, one output frame per
source frame, gaps held or marked, retargeting, side by side, and clear errors."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import listing, make_checkpoint, save_onnx

from ganmotion.config import load_config
from ganmotion.data.manifest import shard_urls
from ganmotion.data.stream import validation_batches
from ganmotion.errors import GanmotionError
from ganmotion.eval import load_frames, skeletons_of
from ganmotion.export.onnx import export_checkpoint
from ganmotion.images import to_uint8_images, to_unit_range
from ganmotion.pose.filters import OneEuroConfig, smooth_sequence
from ganmotion.pose.render import SkeletonStyle
from ganmotion.pose.retarget import body_stats
from ganmotion.pose.schema import JOINT
from ganmotion.runtime import load_backend
from ganmotion.runtime.infer import main as infer_main
from ganmotion.runtime.pipeline import RunnerConfig, VideoPipeline, no_pose_frame
from ganmotion.runtime.target import resolve_target
from ganmotion.runtime.transfer import DeviceTransfer
from ganmotion.training.checkpoint import latest_checkpoint
from ganmotion.training.config import GanConfig
from ganmotion.training.loop import Trainer
from ganmotion.video import VideoWriter, probe_video, read_frames

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64


@pytest.fixture(scope="module")
def model(synthetic_shards, tmp_path_factory) -> Path:
    """A tiny untrained checkpoint whose config points at the synthetic clip's shards."""
    return make_checkpoint(
        tmp_path_factory.mktemp("runner") / "checkpoints", SIZE, synthetic_shards
    )


@pytest.fixture(scope="module")
def onnx_model(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runner_onnx") / "gen.onnx"
    export_checkpoint(model, out)
    return out


@pytest.fixture(scope="module")
def poses(synthetic_clip) -> np.ndarray:
    return np.load(synthetic_clip[1])


def run(model, source, out, poses=None, backend=None, **options):
    backend = backend or load_backend(model)
    config = RunnerConfig(**options)
    target = resolve_target(model, None, backend.size) if config.retarget else None
    return VideoPipeline(backend, config, target).run(source, out, poses=poses, progress=False)


def frames(video: Path) -> np.ndarray:
    return np.stack(list(read_frames(video))).astype(np.int16)


def generated(model, source, poses, **options) -> np.ndarray:
    """The generated frames of a run, before encoding: (N, S, S, 3) int16."""
    backend = load_backend(model)
    config = RunnerConfig(**options)
    target = resolve_target(model, None, backend.size) if config.retarget else None
    pipeline = VideoPipeline(backend, config, target)
    return np.stack([f.generated for f in pipeline.frames(source, poses)]).astype(np.int16)


def assert_same_frames(first: np.ndarray, second: np.ndarray) -> None:
    assert first.shape == second.shape
    difference = np.abs(first - second)
    assert difference.max() <= 2 and difference.mean() < 0.01  # float noise, rounded


class Echo:
    """A backend that returns its skeletons and remembers the keypoints it was given."""

    name, size, device, needs_keypoints = "echo", SIZE, torch.device("cpu"), False
    skeleton = SkeletonStyle.for_size(SIZE)

    def __init__(self, fail_at_call: int | None = None):
        self.keypoints, self.batches, self.fail_at_call = [], [], fail_at_call

    def __call__(self, skeleton, keypoints=None):
        if self.fail_at_call is not None and len(self.batches) == self.fail_at_call:
            raise GanmotionError("echo: failing on purpose")
        self.batches.append(len(skeleton))
        self.keypoints.append(keypoints.numpy())
        return skeleton.float()


def _as_shard(path: Path, keypoints: np.ndarray) -> Path:
    """A training shard of black frames posed by `keypoints` (N, 33, 3), in their order."""
    black = cv2.imencode(".jpg", np.zeros((SIZE, SIZE, 3), np.uint8))[1].tobytes()
    with tarfile.open(path, "w") as tar:
        for index, pose in enumerate(keypoints):
            pose_file = io.BytesIO()
            np.save(pose_file, pose.astype(np.float32))
            for name, data in (("jpg", black), ("pose.npy", pose_file.getvalue())):
                member = tarfile.TarInfo(f"run_{index:06d}.{name}")
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    return path


def test_the_runner_and_eval_draw_the_skeletons_training_drew(
    synthetic_shards, synthetic_clip, poses, tmp_path
):
    """A limb width other than the default for 64 px (1) in training: the checkpoint and the
    exported model carry it, and the runner's render stage and eval (torch and onnxruntime
    backends) draw exactly the training stream's pixels for the same keypoints."""
    overrides = [
        f"data.shards={synthetic_shards}",
        f"run.out_dir={tmp_path / 'run'}",
        "run.tensorboard=false",
        "run.steps=1",
        "data.stream.line_thickness=3",
    ]
    config = load_config(GanConfig, ROOT / "configs" / "gan_tiny.yaml", overrides)
    assert Trainer(config).run() == 0
    checkpoint = latest_checkpoint(tmp_path / "run" / "checkpoints")
    trained = SkeletonStyle.for_size(SIZE, thickness=3)
    assert json.loads((checkpoint / "state.json").read_text())["skeleton"] == trained.to_dict()
    onnx = tmp_path / "gen.onnx"
    export_checkpoint(checkpoint, onnx)
    assert json.loads(onnx.with_suffix(".json").read_text())["skeleton"] == trained.to_dict()
    backends = [load_backend(checkpoint, device="cpu"), load_backend(onnx)]

    # The runner: its render stage in a real run, then the same keypoints through the stream.
    stream = config.data.stream  # validation_batches turns augmentation off
    for backend in backends:
        runner = VideoPipeline(backend, RunnerConfig(retarget=False))
        run = list(runner.frames(synthetic_clip[0], poses))
        posed = [f for f in run if f.skeleton is not None][: stream.batch_size]
        shard = _as_shard(tmp_path / f"{backend.name}.tar", np.stack([f.keypoints for f in posed]))
        (batch,) = validation_batches([str(shard)], stream, 1)
        np.testing.assert_array_equal(batch.keypoints.numpy(), [f.keypoints for f in posed])
        drawn = np.stack([f.skeleton for f in posed])
        np.testing.assert_array_equal(drawn, to_uint8_images(batch.skeleton))

    # Eval: the held-out frames, drawn for each backend, against the stream's validation batch.
    (batch,) = validation_batches(shard_urls(synthetic_shards, "val"), stream, 1)
    frames = load_frames(str(synthetic_shards), "val", max_frames=len(batch.keypoints))
    np.testing.assert_array_equal(frames.keypoints, batch.keypoints.numpy())
    expected = to_uint8_images(batch.skeleton)
    for backend in backends:
        np.testing.assert_array_equal(skeletons_of(frames, backend.skeleton), expected)
    assert not np.array_equal(skeletons_of(frames, SkeletonStyle.for_size(SIZE)), expected)


def test_batch_size_does_not_change_the_frames(model, synthetic_clip, poses):
    one = generated(model, synthetic_clip[0], poses, batch_size=1)
    many = generated(model, synthetic_clip[0], poses, batch_size=16)
    assert len(one) == len(poses) == probe_video(synthetic_clip[0]).frame_count
    assert_same_frames(one, many)


def test_torch_and_onnxruntime_give_the_same_frames(model, onnx_model, synthetic_clip, poses):
    with_torch = generated(model, synthetic_clip[0], poses, batch_size=8)
    with_onnxruntime = generated(onnx_model, synthetic_clip[0], poses, batch_size=8)
    assert_same_frames(with_torch, with_onnxruntime)


def test_two_batches_in_flight_give_the_same_frames_in_order(model, synthetic_clip, poses):
    """What a GPU runs (the next batch started before the last one's images are taken back),
    here on the CPU: the same frames, in the same order, gaps included."""
    gappy = poses.copy()
    gappy[10:40] = np.nan  # past the 0.25 s hold: frames without a pose ride along

    def frames_with(in_flight: int) -> list[np.ndarray]:
        backend = load_backend(model)
        pipeline = VideoPipeline(backend, RunnerConfig(batch_size=4, retarget=False))
        pipeline.transfer.in_flight = in_flight
        return [f.generated for f in pipeline.frames(synthetic_clip[0], gappy)]

    one, two = frames_with(1), frames_with(2)
    assert len(one) == len(two) == len(poses)
    assert any(np.array_equal(f, no_pose_frame(SIZE)) for f in one)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_the_transfer_on_a_cpu_is_the_plain_conversion():
    transfer = DeviceTransfer("cpu")
    drawn = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    expected = to_unit_range(torch.from_numpy(drawn).permute(0, 3, 1, 2))
    assert torch.equal(transfer.to_device(drawn), expected)
    images = torch.rand(2, 3, 8, 8) * 2.2 - 1.1  # beyond [-1, 1]: clipped
    np.testing.assert_array_equal(transfer.to_host(images).wait(), to_uint8_images(images))
    assert transfer.in_flight == 1


def test_the_video_has_one_frame_per_source_frame(model, synthetic_clip, poses, tmp_path):
    summary = run(model, synthetic_clip[0], tmp_path / "out.mp4", poses, batch_size=16)
    assert summary.frames == len(poses) == probe_video(tmp_path / "out.mp4").frame_count
    assert summary.backend == "torch" and summary.detected == len(poses)
    assert set(summary.stage_seconds) == {"decode", "track", "generate", "encode"}
    assert listing(tmp_path) == ["out.mp4"]  # nothing temporary left beside it


def test_batches_are_full_and_in_order(synthetic_clip, poses, model, tmp_path):
    echo = Echo()
    summary = run(model, synthetic_clip[0], tmp_path / "out.mp4", poses, backend=echo,
                  batch_size=16)  # fmt: skip
    assert echo.batches == [16] * (len(poses) // 16) + (
        [len(poses) % 16] if len(poses) % 16 else []
    )
    assert summary.frames == len(poses) and summary.detected == len(poses)
    # the echo backend writes the skeletons: frame i of the output is pose i's skeleton
    written = frames(tmp_path / "out.mp4")
    assert (written[:, :, :, :].reshape(len(written), -1).max(axis=1) > 100).all()


def test_every_frame_is_written_and_gaps_are_held_or_marked(model, synthetic_clip, poses,
                                                            tmp_path):  # fmt: skip
    gappy = poses.copy()
    gappy[10:12] = np.nan  # a short gap: the last pose is held
    gappy[40:90] = np.nan  # a long one: held for max_gap, then marked 'no pose'
    smoothing = OneEuroConfig()
    fps = probe_video(synthetic_clip[0]).fps
    _, statuses = smooth_sequence(gappy, fps, smoothing)
    summary = run(model, synthetic_clip[0], tmp_path / "out.mp4", gappy, smoothing=smoothing)
    assert summary.frames == len(poses)
    assert summary.held == statuses.count("held") >= 2
    assert summary.missing == statuses.count("missing") > 0
    assert summary.detected == len(poses) - 52
    written = frames(tmp_path / "out.mp4")
    assert len(written) == len(poses)
    marked = [i for i, s in enumerate(statuses) if s == "missing"]
    blank = no_pose_frame(SIZE).astype(np.int16)
    assert np.abs(written[marked] - blank).mean() < 3  # the marked frame, not a generated one


def test_retargeting_gives_the_source_the_targets_body(model, synthetic_clip, poses, tmp_path):
    target = resolve_target(model, None, SIZE)
    tall = poses.copy()  # the same motion by a person 1.6x as tall, elsewhere in the frame
    tall[..., :2] = tall[..., :2] * 1.6 - 30
    echo = Echo()
    run(model, synthetic_clip[0], tmp_path / "out.mp4", tall, backend=echo)
    # the source body is measured on the first calibration_frames poses: over those frames
    # the driven body is the target's (later the source may walk about, and so will it)
    calibration = RunnerConfig().calibration_frames
    driven = body_stats(np.concatenate(echo.keypoints)[:calibration])
    assert driven.height == pytest.approx(target.height, rel=0.03)
    assert np.allclose(driven.feet, target.feet, atol=0.03 * target.height)


def test_without_retargeting_the_body_keeps_its_proportions(model, synthetic_clip, poses,
                                                            tmp_path):  # fmt: skip
    echo = Echo()
    run(model, synthetic_clip[0], tmp_path / "out.mp4", poses, backend=echo, retarget=False,
        smoothing=OneEuroConfig(enabled=False))  # fmt: skip
    driven = np.concatenate(echo.keypoints)
    source = poses[: len(driven)]
    # one scale for the video, and a shift per frame map the source onto what the generator
    # saw: the framing's, moved where raised hands would leave the square (--motion keep)
    scale = np.median(np.ptp(driven[..., 1], axis=1) / np.ptp(source[..., 1], axis=1))
    shift = driven[..., :2] - source[..., :2] * scale  # (frames, 33, 2)
    assert np.abs(shift - np.median(shift, axis=1, keepdims=True)).max() < 1e-3
    moved = np.abs(shift[:, 0] - np.median(shift[:, 0], axis=0)).max(axis=1) > 1e-3
    assert 0 < moved.mean() < 0.5  # most frames are the framing's own
    # every drawn joint is inside the square
    drawn = np.isfinite(driven).all(-1) & (driven[..., 2] >= 0.5)
    assert (driven[drawn][:, :2] >= 0).all() and (driven[drawn][:, :2] <= SIZE - 1).all()


def test_side_by_side_shows_source_skeleton_and_generated(model, synthetic_clip, poses, tmp_path):
    run(model, synthetic_clip[0], tmp_path / "sbs.mp4", poses, side_by_side=True)
    info, source = probe_video(tmp_path / "sbs.mp4"), probe_video(synthetic_clip[0])
    assert (info.width, info.height) == (
        round(source.width * SIZE / source.height) + 2 * SIZE,
        SIZE,
    )
    assert info.frame_count == len(poses)


def test_a_failing_backend_stops_the_run_and_leaves_no_output(model, synthetic_clip, poses,
                                                              tmp_path):  # fmt: skip
    with pytest.raises(GanmotionError, match="failing on purpose"):
        run(model, synthetic_clip[0], tmp_path / "out.mp4", poses, backend=Echo(fail_at_call=2),
            batch_size=8)  # fmt: skip
    assert listing(tmp_path) == []


@pytest.mark.slow
def test_real_video_with_mediapipe_workers(taichi, model, tmp_path):
    """40 frames of the sample video, poses from 2 MediaPipe processes, saved for reuse."""
    clip = tmp_path / "taichi40.mp4"
    with VideoWriter(clip, 30) as writer:
        for frame in read_frames(taichi, 0, 40):
            writer.write(frame[::2, ::2])
    out, saved = tmp_path / "out.mp4", tmp_path / "poses.npy"
    code = infer_main(["--source", str(clip), "--model", str(model), "--out", str(out),
                       "--pose-workers", "2", "--save-poses", str(saved), "--quiet"])  # fmt: skip
    assert code == 0
    assert probe_video(out).frame_count == 40
    detected = np.load(saved)
    assert detected.shape == (40, 33, 3) and np.isfinite(detected).all()
    # the saved poses replace detection and give the same video
    # the saved poses replace detection and give the same frames
    pipeline_frames = generated(model, clip, detected)
    assert len(pipeline_frames) == 40


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def _blank_video(path: Path, frames: int = 20) -> Path:
    with VideoWriter(path, 30) as writer:
        for _ in range(frames):
            writer.write(np.full((128, 128, 3), 90, np.uint8))
    return path


def _wrong_shape_onnx(path: Path) -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("skeleton", TensorProto.FLOAT, ["N", 3, 64, 32])
    y = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 64, 32])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["skeleton"], ["image"])], "g", [x], [y]
    )
    return save_onnx(graph, path)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing model", "no such file"),
        ("unsupported model", "unsupported model file"),
        ("wrong input shape", "expected (N, 3, S, S)"),
        ("unreadable source", "not a readable video"),
        ("missing output directory", "does not exist"),
        ("no person in the source", "no person found"),
        ("no target body", "--target-shards"),
    ],
)
def test_bad_input_is_one_line_and_no_output(case, message, model, synthetic_clip, poses,
                                             tmp_path, capsys):  # fmt: skip
    source, out = synthetic_clip[0], tmp_path / "out" / "result.mp4"
    out.parent.mkdir()
    model_arg = str(model)
    extra = ["--poses", str(synthetic_clip[1])]
    if case == "missing model":
        model_arg = str(tmp_path / "gen.onnx")
    elif case == "unsupported model":
        model_arg = str(tmp_path / "gen.txt")
        Path(model_arg).write_text("not a model")
    elif case == "wrong input shape":
        model_arg = str(_wrong_shape_onnx(tmp_path / "bad.onnx"))
    elif case == "unreadable source":
        source = tmp_path / "source.mp4"
        source.write_text("not a video")
    elif case == "missing output directory":
        out = tmp_path / "nowhere" / "result.mp4"
    elif case == "no person in the source":
        source, extra = _blank_video(tmp_path / "empty_room.mp4"), []
    elif case == "no target body":
        model_arg = str(make_checkpoint(tmp_path / "orphan", SIZE))  # no shards in its config
    code = infer_main(["--source", str(source), "--model", model_arg, "--out", str(out),
                       "--quiet", *extra])  # fmt: skip
    assert code == 1
    line = _error_line(capsys)
    assert message in line
    if out.parent.exists():
        assert listing(out.parent) == []


def test_the_default_batch_is_one_on_a_cpu_and_sixteen_on_a_gpu(model, onnx_model):
    from ganmotion.runtime.infer import default_batch

    assert default_batch(load_backend(model, device="cpu")) == 1
    assert default_batch(load_backend(onnx_model)) == 1  # the CPU provider here
    assert default_batch(Echo()) == 1
    on_gpu = Echo()
    on_gpu.device = torch.device("cuda")
    assert default_batch(on_gpu) == 16
    ort_on_gpu = Echo()
    ort_on_gpu.provider = "CUDAExecutionProvider"
    assert default_batch(ort_on_gpu) == 16


def test_torch_options_reach_the_backend_and_are_refused_for_onnx(
    model, onnx_model, synthetic_clip, poses, tmp_path, capsys
):
    poses_file = tmp_path / "poses.npy"
    np.save(poses_file, poses)
    out = tmp_path / "out.mp4"
    common = ["--source", str(synthetic_clip[0]), "--poses", str(poses_file), "--quiet"]
    options = ["--precision", "bf16", "--channels-last", "--summary-json", str(tmp_path / "s.json")]
    assert infer_main([*common, "--model", str(model), "--out", str(out), *options]) == 0
    assert probe_video(out).frame_count == len(poses)
    assert json.loads((tmp_path / "s.json").read_text())["batch_size"] == 1  # CPU default
    refused = tmp_path / "refused.mp4"
    status = infer_main([*common, "--model", str(onnx_model), "--out", str(refused),
                         "--precision", "bf16"])  # fmt: skip
    assert status == 1 and not refused.exists()
    assert "only apply to the torch backend" in capsys.readouterr().err


# ----------------------------------------------------------------- another background


@pytest.fixture(scope="module")
def alpha_model(synthetic_shards, tmp_path_factory) -> Path:
    """A tiny untrained checkpoint with alpha, over a plate, trained on the synthetic shards."""
    from test_export import make_alpha_checkpoint

    root = tmp_path_factory.mktemp("runner_alpha")
    return make_alpha_checkpoint(root / "checkpoints", SIZE, synthetic_shards)


@pytest.fixture(scope="module")
def alpha_onnx(alpha_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runner_alpha_onnx") / "gen.onnx"
    export_checkpoint(alpha_model, out)
    return out


@pytest.fixture(scope="module")
def beach(tmp_path_factory) -> Path:
    """A smooth 90x150 RGB picture (not square: its centre square becomes the background)."""
    y, x = np.mgrid[0:90, 0:150].astype(np.float32)
    image = np.stack([x * 1.6, 60 + y * 2, 200 - x * 0.8], axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("backgrounds") / "beach.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def test_fit_background_covers_the_square_with_the_centre_of_the_image(beach):
    from ganmotion.runtime.background import fit_background, read_image

    image = read_image(beach)
    assert image.shape == (90, 150, 3)
    fitted = fit_background(image, SIZE)
    assert fitted.shape == (3, SIZE, SIZE) and fitted.dtype == torch.float32
    centre = cv2.resize(image[:, 30:120], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    assert np.array_equal(to_uint8_images(fitted[None])[0], centre)


def test_frames_are_composed_exactly_over_the_plate_or_another_background(
    alpha_model, alpha_onnx, synthetic_clip, poses, beach
):
    """Every frame is alpha * person + (1 - alpha) * the new background, the person and
    alpha being the generator's own, whether it runs from the checkpoint or the export;
    without --background, over the plate it was trained on."""
    from ganmotion.runtime.background import OnBackground, fit_background, read_image
    from ganmotion.training.checkpoint import load_generator

    composed = load_generator(alpha_model)
    unet = composed.generator  # the person and the alpha, before the plate
    plate, new = composed.background[0], fit_background(read_image(beach), SIZE)
    for model, background in [(m, b) for m in (alpha_model, alpha_onnx) for b in (plate, new)]:
        backend = load_backend(model)
        if background is new:
            backend = OnBackground(backend, new, str(model))
        pipeline = VideoPipeline(backend, RunnerConfig(retarget=False, batch_size=8))
        posed = [f for f in pipeline.frames(synthetic_clip[0], poses) if f.skeleton is not None]
        assert len(posed) == len(poses)
        skeletons = torch.from_numpy(np.stack([f.skeleton for f in posed])).permute(0, 3, 1, 2)
        with torch.no_grad():
            output = unet(to_unit_range(skeletons))
        person, alpha = output[:, :3], output[:, 3:]
        assert 0.05 < alpha.mean() < 0.95  # some of both: the test tells plate from person
        expected = to_uint8_images(alpha * person + (1 - alpha) * background).astype(np.int16)
        difference = np.abs(np.stack([f.generated for f in posed]).astype(np.int16) - expected)
        assert difference.max() <= 1 and difference.mean() < 0.01  # float rounding only


def test_a_model_that_draws_no_person_puts_out_the_new_background(
    synthetic_shards, synthetic_clip, poses, beach, tmp_path, capsys
):
    from test_export import make_alpha_checkpoint

    from ganmotion.runtime.background import OnBackground, fit_background, read_image

    nobody = make_alpha_checkpoint(tmp_path / "checkpoints", SIZE, synthetic_shards, -40.0)
    fitted = fit_background(read_image(beach), SIZE)
    new = to_uint8_images(fitted[None])[0]
    backend = OnBackground(load_backend(nobody), fitted, str(nobody))
    pipeline = VideoPipeline(backend, RunnerConfig(retarget=False, batch_size=4))
    images = [f.generated for f in pipeline.frames(synthetic_clip[0], poses)]
    assert all(np.array_equal(image, new) for image in images)  # exactly, not nearly
    # the command line: the same, through the encoder
    poses_file, out = tmp_path / "poses.npy", tmp_path / "out" / "beach.mp4"
    np.save(poses_file, poses)
    out.parent.mkdir()
    code = infer_main(["--source", str(synthetic_clip[0]), "--model", str(nobody), "--out",
                       str(out), "--poses", str(poses_file), "--background", str(beach),
                       "--quiet"])  # fmt: skip
    assert code == 0 and listing(out.parent) == ["beach.mp4"]
    written = frames(out)
    assert len(written) == len(poses)
    assert np.abs(written - new.astype(np.int16)).mean() < 2  # H.264 at crf 18
    assert capsys.readouterr().out.startswith(f"{out}: {len(poses)} frames")


@pytest.mark.parametrize(
    "case, message",
    [
        ("unreadable background", "bg.png: not a readable image"),
        ("missing background", "gone.png: no such background image"),
        ("model without alpha", "the model has no alpha output"),
        ("plate of another size", "background.png: the background is 32x32"),
        ("export without its plate", "gen.background.png: missing; gen.json names it"),
    ],
)
def test_bad_background_input_is_one_line_and_no_output(
    case, message, model, alpha_onnx, synthetic_shards, synthetic_clip, beach, tmp_path, capsys
):
    from test_export import make_alpha_checkpoint, plate

    out = tmp_path / "out" / "result.mp4"
    out.parent.mkdir()
    model_arg, background = alpha_onnx, beach
    if case == "unreadable background":
        background = tmp_path / "bg.png"
        background.write_text("not an image")
    elif case == "missing background":
        background = tmp_path / "gone.png"
    elif case == "model without alpha":
        model_arg = model
    elif case == "plate of another size":
        model_arg = make_alpha_checkpoint(tmp_path / "ckpt", SIZE, synthetic_shards,
                                          background=plate(32))  # fmt: skip
    elif case == "export without its plate":
        model_arg = tmp_path / "gen.onnx"
        shutil.copy(alpha_onnx, model_arg)
        shutil.copy(alpha_onnx.with_suffix(".json"), model_arg.with_suffix(".json"))
    code = infer_main(["--source", str(synthetic_clip[0]), "--model", str(model_arg),
                       "--out", str(out), "--poses", str(synthetic_clip[1]),
                       "--background", str(background), "--quiet"])  # fmt: skip
    assert code == 1
    line = _error_line(capsys)
    assert message in line
    if case == "model without alpha":
        assert line.startswith(f"error: {model}: ")
    assert listing(out.parent) == []


def test_a_source_accepted_cut_short_says_so_in_the_summary():
    from ganmotion.runtime.pipeline import RunSummary

    summary = RunSummary("cut.mp4", "out.mp4", "torch", 1, frames=272, frames_declared=901)
    assert (
        summary.lines()[-1]
        == "CUT SHORT: cut.mp4 gave 272 of the 901 frames its container declares"
    )
    assert summary.to_json()["frames_declared"] == 901
    summary.frames_declared = 272
    assert not any("CUT SHORT" in line for line in summary.lines())


@pytest.mark.parametrize("retarget", [True, False])
def test_a_person_crossing_the_frame_stays_whole_in_the_output(model, synthetic_clip, poses,
                                                                retarget):  # fmt: skip
    width = probe_video(synthetic_clip[0]).width
    crossing = poses.copy()  # from beyond the left edge of the source to beyond its right
    drift = np.linspace(-width, width, len(poses)) - np.nanmean(poses[..., 0])
    crossing[..., 0] += drift[:, None] + width / 2
    backend = load_backend(model)
    kept = {}
    for motion in ("keep", "center"):
        config = RunnerConfig(retarget=retarget, motion=motion)
        target = resolve_target(model, None, backend.size) if retarget else None
        frames = list(VideoPipeline(backend, config, target).frames(synthetic_clip[0], crossing))
        keypoints = np.stack([frame.keypoints for frame in frames])
        drawn = np.isfinite(keypoints).all(-1) & (keypoints[..., 2] >= 0.5)
        assert drawn.any(axis=1).all()
        xy = keypoints[drawn][:, :2]
        assert (xy >= 0).all() and (xy <= backend.size - 1).all(), motion  # every joint inside
        kept[motion] = keypoints[:, [JOINT["left_hip"], JOINT["right_hip"]], 0].mean(axis=1)
    # keep: the walk across is there (the hips travel), as far as the frame holds the body;
    # center: the hips stay put.
    assert np.ptp(kept["keep"]) > 0.3 * backend.size
    assert np.ptp(kept["center"]) < 0.02 * backend.size


# ----------------------------------------------------------------- full-frame output


def test_full_frame_lays_the_person_into_the_targets_room(
    alpha_model, synthetic_shards, synthetic_clip, poses
):
    from ganmotion.data.background import load_plate
    from ganmotion.data.manifest import load_manifest
    from ganmotion.runtime.background import full_frame_of

    manifest = load_manifest(synthetic_shards)
    room = load_plate(synthetic_shards, manifest)
    backend = load_backend(alpha_model)
    full = full_frame_of(str(synthetic_shards), backend, str(alpha_model))
    pipeline = VideoPipeline(backend, RunnerConfig(retarget=False, batch_size=4), None, full)
    frames = [f for f in pipeline.frames(synthetic_clip[0], poses) if f.alpha is not None]
    assert len(frames) == len(poses)
    x0, y0, side = full.x0, full.y0, full.side
    outside = np.ones(room.shape[:2], bool)
    outside[max(0, y0) : y0 + side, max(0, x0) : x0 + side] = False
    assert outside.any() and not outside.all()
    changed = 0
    for frame in frames[::10]:
        image = pipeline.output(frame)
        assert image.shape == (manifest.source.height, manifest.source.width, 3)
        assert np.array_equal(image[outside], room[outside])  # the room, exactly
        alpha = cv2.resize(frame.alpha, (side, side), interpolation=cv2.INTER_LINEAR)
        window = np.zeros(room.shape[:2], np.float32)
        top, left = max(0, y0), max(0, x0)
        window[top : y0 + side, left : x0 + side] = alpha[top - y0 :, left - x0 :][
            : window.shape[0] - top, : window.shape[1] - left
        ]
        empty = (window == 0) & ~outside  # inside the crop, where the person is not
        difference = np.abs(image.astype(np.int16) - room.astype(np.int16))
        assert difference[empty].max(initial=0) <= 1
        person = window > 0.2
        changed += (difference[person].mean() > 10) if person.any() else 0
    assert changed > 0  # the person is there, drawn over the room


def test_a_full_frame_without_the_person_is_the_room_exactly(
    synthetic_shards, synthetic_clip, poses, tmp_path
):
    from test_export import make_alpha_checkpoint

    from ganmotion.data.background import load_plate
    from ganmotion.data.manifest import load_manifest
    from ganmotion.runtime.background import full_frame_of

    room = load_plate(synthetic_shards, load_manifest(synthetic_shards))
    nobody = make_alpha_checkpoint(tmp_path / "checkpoints", SIZE, synthetic_shards, -40.0)
    backend = load_backend(nobody)
    full = full_frame_of(str(synthetic_shards), backend, str(nobody))
    pipeline = VideoPipeline(backend, RunnerConfig(retarget=False, batch_size=4), None, full)
    images = [pipeline.output(f) for f in pipeline.frames(synthetic_clip[0], poses)]
    assert all(np.array_equal(image, room) for image in images)  # inside the crop too


def test_full_frame_from_the_command_line(alpha_onnx, synthetic_shards, synthetic_clip,
                                          beach, tmp_path):  # fmt: skip
    from ganmotion.data.background import load_plate
    from ganmotion.data.manifest import load_manifest
    from ganmotion.runtime.background import fit_frame, read_image

    manifest = load_manifest(synthetic_shards)
    (tmp_path / "out").mkdir()
    for background in (None, beach):
        out = tmp_path / "out" / f"full-{background is None}.mp4"
        extra = [] if background is None else ["--background", str(background)]
        code = infer_main(["--source", str(synthetic_clip[0]), "--model", str(alpha_onnx),
                           "--out", str(out), "--poses", str(synthetic_clip[1]), "--full-frame",
                           "--target-shards", str(synthetic_shards), "--no-retarget", "--quiet",
                           *extra])  # fmt: skip
        assert code == 0
        written = frames(out)
        assert written.shape[1:] == (manifest.source.height, manifest.source.width, 3)
        room = (load_plate(synthetic_shards, manifest) if background is None
                else fit_frame(read_image(background), manifest.source.width,
                               manifest.source.height))  # fmt: skip
        corner = (slice(0, 8), slice(0, 8))  # the crop does not reach the frame's corner
        assert np.abs(written[:, corner[0], corner[1]] - room[corner].astype(np.int16)).mean() < 3


@pytest.mark.parametrize("case", ["model without alpha", "moving camera, no background"])
def test_full_frame_needs_alpha_and_a_room(case, model, alpha_model, synthetic_shards,
                                           synthetic_clip, tmp_path, capsys):  # fmt: skip
    shards = synthetic_shards
    if case == "moving camera, no background":
        shards = tmp_path / "shards"
        shutil.copytree(synthetic_shards, shards)
        manifest = json.loads((shards / "manifest.json").read_text())
        manifest["plate"], manifest["camera"] = None, "moving"
        (shards / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out" / "full.mp4"
    out.parent.mkdir()
    model_arg = model if case == "model without alpha" else alpha_model
    code = infer_main(["--source", str(synthetic_clip[0]), "--model", str(model_arg), "--out",
                       str(out), "--poses", str(synthetic_clip[1]), "--full-frame",
                       "--target-shards", str(shards), "--quiet"])  # fmt: skip
    assert code == 1
    line = _error_line(capsys)
    assert ("needs a model with alpha" if case == "model without alpha" else "--background") in line
    assert listing(out.parent) == []
