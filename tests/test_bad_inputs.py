"""Bad inputs to the entry points end in one line (issue 15): exit status 1, exactly one
`error: ...` line on stderr that names the file or the problem, no traceback, and nothing
left behind, hidden temporaries included.

The matrix is grouped by entry point: prepare, preview, synth, train (both trainers),
export, to_trt, infer and eval, each with what a new user gets wrong, from a missing file
to a picture given as a checkpoint's optimiser states. Every case is decided before any
heavy work (no training step, no pose detection, no export), so they call each command's
`main` in this process (where log records and Python warnings, which pytest takes aside, are
checked too); `test_as_a_user_meets_it` runs a few as the scripts a user types.

Two other contracts sit beside the matrix: shard data that cannot be read is warned about
(rate-limited) before the one error line (`test_unreadable_shards_warn_then_end_in_one_line`),
and argparse's own type checks exit 2 with its usage (`test_argparse_refuses_with_its_usage`).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import warnings
from collections.abc import Callable
from functools import cached_property
from logging import WARNING
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import free_port, make_checkpoint, save_onnx

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
TINY = CONFIGS / "gan_tiny.yaml"
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
WITHOUT_TENSORRT = pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
NOISE = bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))


def entry_point(name: str) -> Callable[[list[str]], int]:
    """The `main` of an entry point, imported when a case uses it ("vanilla": the regression
    trainer's, train/vanilla.py)."""
    if name in ("train", "vanilla"):
        from ganmotion.training.cli import main
        from ganmotion.training.config import GanConfig, VanillaConfig

        config = GanConfig if name == "train" else VanillaConfig
        return lambda argv: main(config, argv)
    module = {
        "prepare": "ganmotion.data.prepare",
        "preview": "ganmotion.data.preview",
        "synth": "ganmotion.data.synthetic",
        "export": "ganmotion.export.onnx",
        "to_trt": "ganmotion.export.tensorrt",
        "infer": "ganmotion.runtime.infer",
        "eval": "ganmotion.eval",
    }[name]
    return __import__(module, fromlist=["main"]).main


def snapshot(*roots: Path) -> set[str]:
    """Every file and folder under `roots`, hidden ones included."""
    found = set()
    for root in roots:
        for folder, folders, files in os.walk(root):
            found.update(os.path.join(folder, name) for name in folders + files)
    return found


def assert_one_line(status: int, out: str, err: str, *names: str) -> None:
    lines = err.splitlines()
    assert status == 1, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    for name in names:
        assert name in lines[0], f"{name!r} not in {lines[0]!r}"


# ----------------------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def checkpoint(synthetic_shards, tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("run") / "checkpoints", 64, synthetic_shards)


@pytest.fixture(scope="module")
def trained_checkpoint(synthetic_shards, tmp_path_factory) -> Path:
    """A checkpoint of configs/gan_tiny.yaml with every file the trainer writes (critic,
    optimiser and RNG states), saved at step 0 (no training step)."""
    from ganmotion.config import load_config
    from ganmotion.training.config import GanConfig
    from ganmotion.training.loop import Trainer

    run = tmp_path_factory.mktemp("trained") / "run"
    overrides = [f"data.shards={synthetic_shards}", f"run.out_dir={run}"]
    return Trainer(load_config(GanConfig, TINY, overrides)).save()


def write_files(folder: Path, files: dict | None) -> None:
    """Change the files of `folder`: name (or glob pattern) -> bytes or text (written), None
    (removed) or a function of the path (which changes it)."""
    for name, data in (files or {}).items():
        for path in sorted(folder.glob(name)) if "*" in name else [folder / name]:
            if data is None:
                path.unlink()
            elif callable(data):
                data(path)
            elif isinstance(data, bytes):
                path.write_bytes(data)
            else:
                path.write_text(data)


def edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def copy_shards(
    shards: Path, root: Path, edit: Callable[[dict], None] | None = None, files: dict | None = None
) -> Path:
    """A copy of `shards` at `root`, its manifest changed by `edit` and its `files` changed
    (see `write_files`)."""
    shutil.copytree(shards, root)
    if edit is not None:
        edit_json(root / "manifest.json", edit)
    write_files(root, files)
    return root


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


OBJECT_ARRAY = np.array([{"x": 1}, None], dtype=object)  # loading it would need pickle


def first_member(suffix: str, data: bytes | None, every: bool = False) -> Callable[[Path], None]:
    """A change of a shard (for `write_files`): its first member whose name ends in `suffix`
    (with `every`, each one) becomes `data` (None: left out)."""

    def change(tar: Path) -> None:
        with tarfile.open(tar) as old:
            members = [(m, old.extractfile(m).read()) for m in old.getmembers()]
        with tarfile.open(tar, "w") as new:
            done = False
            for member, content in members:
                if member.name.endswith(suffix) and not (done and not every):
                    done = True
                    if data is None:
                        continue
                    content, member.size = data, len(data)
                new.addfile(member, io.BytesIO(content))

    return change


def object_pose(shards: Path, root: Path) -> Path:
    """A copy of `shards` whose first validation sample's pose.npy is an object array."""
    files = {"val-000000.tar": first_member(".pose.npy", npy_bytes(OBJECT_ARRAY))}
    return copy_shards(shards, root, files=files)


def cut(fraction: float) -> Callable[[Path], None]:
    """A change of a file (for `write_files`): only its first `fraction` is left."""

    def change(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])

    return change


def cut_inside(suffix: str) -> Callable[[Path], None]:
    """A change of a shard (for `write_files`): cut halfway through the data of its first
    member whose name ends in `suffix`, as a copy interrupted there."""

    def change(tar: Path) -> None:
        with tarfile.open(tar) as shard:
            member = next(m for m in shard.getmembers() if m.name.endswith(suffix))
        tar.write_bytes(tar.read_bytes()[: member.offset_data + member.size // 2])

    return change


def _set(*keys, value) -> Callable[[dict], None]:
    """An edit of parsed JSON: the value at `keys` (created if absent) becomes `value`."""

    def edit(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value

    return edit


def _drop(*keys) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        del data[keys[-1]]

    return edit


def _with(array: np.ndarray, frames: slice, value) -> np.ndarray:
    changed = array.copy()
    changed[frames] = value
    return changed


def mlp_weights(folder: Path) -> None:
    """A change of a checkpoint (for `write_files` on its EMA weights): the seed's MLP
    baseline, in state.json and in the weights."""
    from dataclasses import asdict

    from ganmotion.models.baselines import MLPGenerator
    from ganmotion.training.checkpoint import save_weights

    model = MLPGenerator(64, hidden=8, layers=2, base_size=8)
    save_weights(model, folder)
    state = {"class": "MLPGenerator", **asdict(model.config)}
    edit_json(folder.parent / "state.json", _set("architecture", "generator", value=state))


def four_channel_weights(folder: Path) -> None:
    """Like `mlp_weights`: a U-Net that takes 4 input channels."""
    from dataclasses import asdict

    from ganmotion.models.generator import UNetGenerator
    from ganmotion.training.checkpoint import save_weights

    model = UNetGenerator(size=64, in_channels=4, base_channels=8, depth=4, max_channels=64)
    save_weights(model, folder)
    state = {"class": "UNetGenerator", **asdict(model.config)}
    edit_json(folder.parent / "state.json", _set("architecture", "generator", value=state))


class Inputs:
    """What the cases are made of: the session's clip, shards and checkpoints, and files in
    this test's tmp_path (made when a case asks for them)."""

    def __init__(self, request, tmp: Path, clip: tuple[Path, Path], shards: Path, ckpt: Path):
        self.request, self.tmp, self.shards, self.checkpoint = request, tmp, shards, ckpt
        self.video, self.keypoints = clip

    @cached_property
    def read_only(self) -> Path:
        return self.request.getfixturevalue("read_only")

    @cached_property
    def a_file(self) -> Path:
        path = self.tmp / "a_file"
        path.write_text("not a folder")
        return path

    def a_folder(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True)
        return path

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
        return path

    @cached_property
    def picture(self) -> Path:
        """A real PNG (60x40, grey)."""
        return self.file("picture.png", png_bytes(np.full((40, 60, 3), 90, np.uint8)))

    @cached_property
    def poses(self) -> np.ndarray:
        """The clip's keypoints (96, 33, 3)."""
        return np.load(self.keypoints)

    def npy(self, name: str, array: np.ndarray) -> Path:
        return self.file(name, npy_bytes(array))

    def keypoints_file(self, array: np.ndarray, masks: bytes | None = None) -> Path:
        """`array` as the clip's keypoints file, `<stem>.keypoints.npy` with the clip's mask
        file beside it (or `masks`), which prepare then reads instead of running MediaPipe."""
        path = self.npy("given/dancer.keypoints.npy", array)
        if masks is None:
            masks = self.keypoints.with_name("dancer.masks.npz").read_bytes()
        self.file("given/dancer.masks.npz", masks)
        return path

    @cached_property
    def cut_video(self) -> Path:
        """The clip with its index at the front, as cameras and downloads often are, cut in
        half (an interrupted copy): it still opens, and decodes to the cut."""
        import av

        whole = self.tmp / "whole.mp4"
        with (
            av.open(str(self.video)) as source,
            av.open(str(whole), "w", options={"movflags": "faststart"}) as out,
        ):
            stream = out.add_stream_from_template(source.streams.video[0])
            for packet in source.demux(source.streams.video[0]):
                if packet.dts is not None:  # not the demuxer's empty flush packet
                    packet.stream = stream
                    out.mux(packet)
        cut = self.tmp / "cut.mp4"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        whole.unlink()
        return cut

    def shards_with(
        self, edit: Callable[[dict], None] | None = None, files: dict | None = None
    ) -> Path:
        return copy_shards(self.shards, self.tmp / "shards", edit, files)

    def checkpoint_with(
        self,
        state: Callable[[dict], None] | None = None,
        files: dict | None = None,
        source: Path | None = None,
        checksums: bool = False,
    ) -> Path:
        """A copy of a checkpoint folder (`source`, default the session's) with its
        state.json changed by `state` and its `files` changed (see `write_files`); with
        `checksums`, checksums.json written again, so that resuming gets past it."""
        from ganmotion.training.checkpoint import write_checksums

        source = source or self.checkpoint
        folder = self.tmp / "checkpoints" / source.name
        shutil.copytree(source, folder)
        if state is not None:
            edit_json(folder / "state.json", state)
        write_files(folder, files)
        if checksums:
            write_checksums(folder)
        return folder

    def resumable(self, state=None, files=None) -> Path:
        """The trained checkpoint, changed as `checkpoint_with` does and checksummed again: a
        folder that passes the checksum test and is wrong only in what the case changed."""
        source = self.request.getfixturevalue("trained_checkpoint")
        return self.checkpoint_with(state, files, source, checksums=True)

    def alpha_checkpoint(self, files: dict | None = None) -> Path:
        """A checkpoint of a generator with alpha and its background.png, `files` changed."""
        from test_export import make_alpha_checkpoint

        folder = make_alpha_checkpoint(self.tmp / "alpha" / "checkpoints", 64)
        write_files(folder, files)
        return folder

    def onnx_model(
        self,
        inputs=(("skeleton", ("N", 3, 64, 64), "float"),),
        outputs=(("image", ("N", 3, 64, 64), "float"),),
        name: str = "model.onnx",
    ) -> Path:
        """An ONNX of Identity nodes from the first input to each output: the contract's
        shapes and names by default, each case breaks one."""
        from onnx import TensorProto, helper

        types = {"float": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}

        def values(specs):
            return [helper.make_tensor_value_info(n, types[t], list(s)) for n, s, t in specs]

        nodes = [helper.make_node("Identity", [inputs[0][0]], [out]) for out, _, _ in outputs]
        graph = helper.make_graph(nodes, "not_a_generator", values(inputs), values(outputs))
        return save_onnx(graph, self.tmp / name)

    # The command lines of the cases: valid, but for what a case changes.

    def prepare(self, out: Path | None = None, keypoints: Path | None = None, *more: str,
                video: Path | None = None) -> list[str]:  # fmt: skip
        out, keypoints = out or self.tmp / "prepared", keypoints or self.keypoints
        return ["--video", str(video or self.video), "--keypoints", str(keypoints),
                "--out", str(out), "--size", "32", "--quiet", *more]  # fmt: skip

    def preview(self, out: Path | None = None, *more: str, shards: Path | str | None = None):
        out = out or self.tmp / "grid.png"
        return ["--shards", str(shards or self.shards), "--out", str(out), *more]

    def synth(self, out: Path | None = None, *more: str) -> list[str]:
        return ["--out", str(out or self.tmp / "clip.mp4"), "--frames", "2", *more]

    def train(self, *overrides: str, out_dir: Path | None = None, shards: Path | None = None,
              config: Path = TINY) -> list[str]:  # fmt: skip
        out_dir, shards = out_dir or self.tmp / "run", shards or self.shards
        return ["--config", str(config), f"data.shards={shards}", f"run.out_dir={out_dir}",
                "run.steps=1", *overrides]  # fmt: skip

    def vanilla(self, *overrides: str, config: str = "vanilla_tiny.yaml") -> list[str]:
        return self.train(*overrides, config=CONFIGS / config)

    def export(self, out: Path | None = None, *more: str, checkpoint: Path | None = None):
        checkpoint = checkpoint or self.checkpoint
        return ["--checkpoint", str(checkpoint), "--out", str(out or self.tmp / "g.onnx"), *more]

    def to_trt(self, *more: str, out: Path | None = None, onnx: Path | None = None) -> list[str]:
        onnx = onnx or self.onnx_model()
        return ["--onnx", str(onnx), "--out", str(out or self.tmp / "g.plan"), *more]

    def infer(self, out: Path | None = None, *more: str, source: Path | None = None,
              model: Path | str | None = None, poses: Path | None = None) -> list[str]:  # fmt: skip
        out, poses = out or self.tmp / "out.mp4", poses or self.keypoints
        return ["--source", str(source or self.video), "--model", str(model or self.checkpoint),
                "--out", str(out), "--poses", str(poses), "--quiet", *more]  # fmt: skip

    def eval(self, out: Path | None = None, shards: Path | None = None, *more: str,
             model: Path | str | None = "mean") -> list[str]:  # fmt: skip
        out, shards = out or self.tmp / "eval", shards or self.shards
        models = ["--model", str(model)] if model is not None else []
        return [*models, "--no-floor", "--no-pose", "--shards", str(shards), "--out", str(out),
                *more]  # fmt: skip


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody may write in. Root writes in any folder whatever its mode, so for
    root it is made immutable (chattr +i); skipped where neither works."""
    folder = tmp_path / "locked"  # not "read-only": the message, not the path, must say it
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK) and shutil.which("chattr"):
        immutable = (
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        )
    if os.access(folder, os.W_OK):
        folder.chmod(0o755)
        pytest.skip("cannot make a read-only folder here (root, and chattr +i failed)")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


@pytest.fixture
def inputs(request, tmp_path, synthetic_clip, synthetic_shards, checkpoint) -> Inputs:
    return Inputs(request, tmp_path, synthetic_clip, synthetic_shards, checkpoint)


def _recount(manifest: dict) -> None:
    """The first validation shard said to hold one sample more (and the split with it)."""
    val = manifest["splits"]["val"]
    val["shards"][0]["samples"] += 1
    val["samples"] += 1


def _miscount(manifest: dict) -> None:
    manifest["splits"]["val"]["samples"] += 1  # and not its shards


MISSING = {"splits": ("splits",), "image_size": ("image_size",),
           "a shard's name": ("splits", "train", "shards", 0, "name")}  # fmt: skip


def manifest_without(entry: str, shards_argv: Callable) -> list[tuple]:
    """The cases of a manifest.json missing a key, for an entry point whose command line
    `shards_argv(inputs, shards)` gives."""
    return [
        (entry, f"manifest without {what}",
         lambda i, k=keys: shards_argv(i, i.shards_with(_drop(*k))), ("manifest.json", keys[-1]))
        for what, keys in MISSING.items()
    ]  # fmt: skip


# (entry point, case, arguments from Inputs, what the line must name[, marks])

PREPARE = [
    # where it writes
    ("prepare", "read-only folder", lambda i: i.prepare(i.read_only / "shards"), ("read-only",)),
    ("prepare", "--out is a file", lambda i: i.prepare(i.a_file), ("a_file", "not a directory")),
    ("prepare", "--out is the video", lambda i: i.prepare(i.video),
     ("dancer.mp4", "not a directory")),
    ("prepare", "--out is a folder with files in it",
     lambda i: i.prepare(i.file("full/notes.txt", "mine").parent), ("full", "--overwrite")),
    ("prepare", "--out under a file", lambda i: i.prepare(i.a_file / "shards"),
     ("a_file", "not a directory")),
    # the video
    ("prepare", "--video missing", lambda i: i.prepare(video=i.tmp / "gone.mp4"),
     ("gone.mp4", "no such file")),
    ("prepare", "--video is a folder", lambda i: i.prepare(video=i.a_folder("clips")),
     ("clips", "is a directory")),
    ("prepare", "--video is empty", lambda i: i.prepare(video=i.file("empty.mp4", b"")),
     ("empty.mp4", "empty file")),
    ("prepare", "--video is a text file",
     lambda i: i.prepare(video=i.file("notes.mp4", "not a video")),
     ("notes.mp4", "not a readable video")),
    ("prepare", "--video is noise", lambda i: i.prepare(video=i.file("noise.mp4", NOISE)),
     ("noise.mp4", "not a readable video")),
    ("prepare", "--video is the keypoints file", lambda i: i.prepare(video=i.keypoints),
     ("dancer.keypoints.npy", "not a readable video")),
    ("prepare", "a video cut short", lambda i: ["--video", str(i.cut_video), "--out",
     str(i.tmp / "o"), "--quiet"], ("cut.mp4", "of the 96 frames", "--accept-truncated")),
    # the keypoints
    ("prepare", "--keypoints missing", lambda i: i.prepare(None, i.tmp / "gone.npy"),
     ("gone.npy", "no such file")),
    ("prepare", "--keypoints is a folder", lambda i: i.prepare(i.tmp / "o", i.a_folder("kp")),
     ("kp", "is a directory")),
    ("prepare", "--keypoints is empty", lambda i: i.prepare(None, i.file("empty.npy", b"")),
     ("empty.npy", "not a plain .npy array")),
    ("prepare", "--keypoints is text", lambda i: i.prepare(None, i.file("notes.npy", "0 1 2")),
     ("notes.npy", "not a plain .npy array")),
    ("prepare", "--keypoints is the video", lambda i: i.prepare(None, i.video),
     ("dancer.mp4", "not a plain .npy array")),
    ("prepare", "--keypoints cut short",
     lambda i: i.prepare(None, i.file("cut.npy", i.keypoints.read_bytes()[:2000])),
     ("cut.npy", "not a plain .npy array")),
    ("prepare", "--keypoints an object array",
     lambda i: i.prepare(None, i.keypoints_file(OBJECT_ARRAY)),
     ("dancer.keypoints.npy", "not a plain .npy array")),
    ("prepare", "--keypoints of 17 joints", lambda i: i.prepare(None, i.keypoints_file(
     i.poses[:, :17])), ("dancer.keypoints.npy", "(frames, 33, 3), got (96, 17, 3)")),
    ("prepare", "--keypoints flattened", lambda i: i.prepare(None, i.keypoints_file(
     i.poses.reshape(96, -1))), ("got (96, 99)",)),
    ("prepare", "--keypoints as text", lambda i: i.prepare(None, i.keypoints_file(
     i.poses.astype(str))), ("dancer.keypoints.npy", "must be numbers, got <U")),
    ("prepare", "--keypoints infinite", lambda i: i.prepare(None, i.keypoints_file(
     _with(i.poses, slice(10, 12), np.inf))), ("dancer.keypoints.npy", "frame 10", "infinite")),
    ("prepare", "--keypoints all NaN", lambda i: i.prepare(None, i.keypoints_file(
     np.full_like(i.poses, np.nan))), ("dancer.mp4", "no person found")),
    ("prepare", "--keypoints of other frames", lambda i: i.prepare(None, i.keypoints_file(
     i.poses[:50])), ("dancer.masks.npz", "(96, 128, 128)", "(50, 128, 128)")),
    ("prepare", "a mask file that is not one", lambda i: i.prepare(None, i.keypoints_file(
     i.poses, masks=b"junk")), ("dancer.masks.npz", "not a mask file")),
    ("prepare", "an empty mask file", lambda i: i.prepare(None, i.keypoints_file(
     i.poses, masks=b"")), ("dancer.masks.npz", "not a mask file")),
    # numbers
    ("prepare", "--size 8", lambda i: i.prepare(None, None, "--size", "8"), ("--size 8",)),
    ("prepare", "--size 100000", lambda i: i.prepare(None, None, "--size", "100000"),
     ("--size 100000",)),
    ("prepare", "--val-fraction 1", lambda i: i.prepare(None, None, "--val-fraction", "1"),
     ("--val-fraction 1.0", "[0, 1)")),
    ("prepare", "--val-fraction nan", lambda i: i.prepare(None, None, "--val-fraction", "nan"),
     ("--val-fraction nan",)),
    ("prepare", "--samples-per-shard 0",
     lambda i: i.prepare(None, None, "--samples-per-shard", "0"), ("--samples-per-shard 0",)),
    ("prepare", "--jpeg-quality 101", lambda i: i.prepare(None, None, "--jpeg-quality", "101"),
     ("--jpeg-quality 101",)),
    ("prepare", "--workers 0", lambda i: i.prepare(None, None, "--workers", "0"),
     ("--workers 0",)),
]  # fmt: skip

PREVIEW = [
    # the shards and their manifest
    *manifest_without("preview", lambda i, shards: i.preview(shards=shards)),
    ("preview", "split total differs from its shards",
     lambda i: i.preview(shards=i.shards_with(_miscount)), ("manifest.json", "splits.val.samples")),
    ("preview", "--shards missing", lambda i: i.preview(shards=i.tmp / "gone"),
     ("gone/manifest.json", "no such file")),
    ("preview", "--shards is a file", lambda i: i.preview(shards=i.video),
     ("dancer.mp4/manifest.json", "cannot read")),
    ("preview", "--shards is an empty folder", lambda i: i.preview(shards=i.a_folder("empty")),
     ("empty/manifest.json", "no such file")),
    ("preview", "--shards at a port nobody serves",
     lambda i: i.preview(shards=f"http://127.0.0.1:{free_port()}/shards"),
     ("http://127.0.0.1:", "manifest.json", "cannot read")),
    ("preview", "manifest.json empty", lambda i: i.preview(shards=i.shards_with(
     files={"manifest.json": ""})), ("manifest.json", "not valid JSON")),
    ("preview", "manifest.json is a picture", lambda i: i.preview(shards=i.shards_with(
     files={"manifest.json": i.picture.read_bytes()})), ("manifest.json", "cannot read")),
    ("preview", "manifest.json is a list", lambda i: i.preview(shards=i.shards_with(
     files={"manifest.json": "[1, 2]"})), ("manifest.json", "expected a JSON object")),
    ("preview", "manifest of another version",
     lambda i: i.preview(shards=i.shards_with(_set("manifest_version", value=2))),
     ("manifest.json", "manifest version 2")),
    ("preview", "manifest with an unknown key",
     lambda i: i.preview(shards=i.shards_with(_set("colour", value="red"))),
     ("manifest.json", "unknown key colour")),
    ("preview", "image_size not a number",
     lambda i: i.preview(shards=i.shards_with(_set("image_size", value="big"))),
     ("image_size must be int, got 'big'",)),
    ("preview", "image_size 8", lambda i: i.preview(shards=i.shards_with(_set("image_size",
     value=8))), ("image_size must be in [16, 4096], got 8",)),
    ("preview", "a split of -1 samples", lambda i: i.preview(shards=i.shards_with(
     _set("splits", "train", "samples", value=-1))), ("splits.train.samples", "got -1")),
    ("preview", "a shard of 'ten' samples", lambda i: i.preview(shards=i.shards_with(
     _set("splits", "train", "shards", 0, "samples", value="ten"))), ("must be int, got 'ten'",)),
    ("preview", "a train split without shards", lambda i: i.preview(shards=i.shards_with(
     _set("splits", "train", "shards", value=[]))), ("no train split with shards",)),
    ("preview", "splits a list", lambda i: i.preview(shards=i.shards_with(
     _set("splits", value=[]))), ("splits must be a mapping",)),
    ("preview", "a shard's name null", lambda i: i.preview(shards=i.shards_with(
     _set("splits", "train", "shards", 0, "name", value=None))), ("name must be str",)),
    ("preview", "source.fps 0", lambda i: i.preview(shards=i.shards_with(
     _set("source", "fps", value=0))), ("source.fps must be > 0",)),
    ("preview", "a listed shard missing", lambda i: i.preview(shards=i.shards_with(
     files={"train-000000.tar": None})), ("train-000000.tar", "does not exist")),
    ("preview", "--split test", lambda i: i.preview(None, "--split", "test"),
     ("no 'test' split", "train, val")),
    # numbers
    ("preview", "--count 0", lambda i: i.preview(None, "--count", "0"), ("--count", "got 0")),
    ("preview", "--count -3", lambda i: i.preview(None, "--count", "-3"), ("--count", "got -3")),
    ("preview", "--count 100000", lambda i: i.preview(None, "--count", "100000"),
     ("--count 100000", "GiB")),
    ("preview", "--size 8", lambda i: i.preview(None, "--size", "8"), ("--size", "got 8")),
    ("preview", "--size 100000", lambda i: i.preview(None, "--size", "100000"),
     ("--size", "100000")),
    # where it writes
    ("preview", "read-only folder", lambda i: i.preview(i.read_only / "grid.png"), ("read-only",)),
    ("preview", "--out is a folder", lambda i: i.preview(i.a_folder("grid.png")),
     ("grid.png", "is a directory")),
    ("preview", "--out has no image extension", lambda i: i.preview(i.tmp / "grid.txt"),
     ("grid.txt", ".png")),
    ("preview", "--out .svg", lambda i: i.preview(i.tmp / "grid.svg"), ("grid.svg", ".png")),
    ("preview", "--out is the video", lambda i: i.preview(i.video), ("dancer.mp4", ".png")),
    ("preview", "--out in a missing folder", lambda i: i.preview(i.tmp / "missing" / "g.png"),
     ("missing", "does not exist")),
]  # fmt: skip

SYNTH = [
    ("synth", "read-only folder", lambda i: i.synth(i.read_only / "c.mp4"), ("read-only",)),
    ("synth", "--out is a folder", lambda i: i.synth(i.a_folder("c.mp4")),
     ("c.mp4", "is a directory")),
    ("synth", "--out .avi", lambda i: i.synth(i.tmp / "c.avi"), ("c.avi", ".mp4")),
    ("synth", "--out without a suffix", lambda i: i.synth(i.tmp / "clip"), ("clip", ".mp4")),
    ("synth", "--out in a missing folder", lambda i: i.synth(i.tmp / "missing" / "c.mp4"),
     ("missing", "does not exist")),
    ("synth", "--out under a file", lambda i: i.synth(i.a_file / "c.mp4"),
     ("a_file", "not a directory")),
    ("synth", "its keypoints' name is a folder",
     lambda i: i.a_folder("c.keypoints.npy") and i.synth(i.tmp / "c.mp4"),
     ("c.keypoints.npy", "is a directory")),
    ("synth", "its masks' name is a folder",
     lambda i: i.a_folder("c.masks.npz") and i.synth(i.tmp / "c.mp4"),
     ("c.masks.npz", "is a directory")),
    ("synth", "--size 0", lambda i: i.synth(None, "--size", "0"),
     ("--size 0: must be 32 to 4096 pixels",)),
    ("synth", "--size 8", lambda i: i.synth(None, "--size", "8"),
     ("--size 8: must be 32 to 4096 pixels",)),
    ("synth", "--size 4097", lambda i: i.synth(None, "--size", "4097"),
     ("--size 4097: must be 32 to 4096 pixels", "GiB")),
    ("synth", "--size 100000", lambda i: i.synth(None, "--size", "100000"),
     ("--size 100000", "GiB")),
    ("synth", "--fps 1e300", lambda i: i.synth(None, "--fps", "1e300"), ("--fps 1e+300",)),
    ("synth", "--fps 1e-300", lambda i: i.synth(None, "--fps", "1e-300"),
     ("--fps 1e-300", "1 to 1000")),
    ("synth", "--fps nan", lambda i: i.synth(None, "--fps", "nan"), ("--fps nan", "1 to 1000")),
]  # fmt: skip

TRAIN = [
    # the config file and overrides: refused as they are read
    ("train", "--config missing", lambda i: i.train(config=i.tmp / "gone.yaml"),
     ("gone.yaml", "does not exist")),
    ("train", "--config is a folder", lambda i: i.train(config=i.a_folder("configs")),
     ("configs", "does not exist")),
    ("train", "--config is a picture", lambda i: i.train(config=i.picture),
     ("picture.png", "not a readable YAML file")),
    ("train", "--config is not YAML",
     lambda i: i.train(config=i.file("c.yaml", "run: {steps: 3\n")),
     ("c.yaml", "not valid YAML at line")),
    ("train", "--config is a number", lambda i: i.train(config=i.file("c.yaml", "42\n")),
     ("c.yaml", "expected a mapping of sections")),
    ("train", "an override without =", lambda i: i.train("run.steps"),
     ("run.steps", "expected key.sub=value")),
    ("train", "an override into a value", lambda i: i.train("run.steps.x=1"),
     ("steps is not a section",)),
    ("train", "a section given a value", lambda i: i.train("data=3"), ("data must be a mapping",)),
    ("train", "--get of no key", lambda i: [*i.train(), "--get", "run.nothing"],
     ("--get run.nothing", "no such config key")),
    # unknown keys, in each section
    *(("train", f"unknown key {key}", lambda i, k=key: i.train(f"{k}=1"), (f"unknown key {key}",))
      for key in ("nonsense", "data.shard", "data.stream.sise", "generator.layers",
                  "critic.width", "loss.l2_weight", "generator_optim.momentum",
                  "critic_optim.beta1", "run.stpes")),
    # values out of range or of the wrong type, in each section
    ("train", "data.workers 65", lambda i: i.train("data.workers=65"),
     ("data.workers must be in [0, 64], got 65",)),
    ("train", "data.batches_per_epoch 0", lambda i: i.train("data.batches_per_epoch=0"),
     ("data.batches_per_epoch", "got 0")),
    ("train", "data.shards empty", lambda i: i.train("data.shards="),
     ("data.shards must be str, got None",)),
    ("train", "batch size 0", lambda i: i.train("data.stream.batch_size=0"),
     ("data.stream.batch_size", "got 0")),
    ("train", "size 100000", lambda i: i.train("data.stream.size=100000"),
     ("data.stream.size", "100000")),
    ("train", "size 63", lambda i: i.train("data.stream.size=63"),
     ("63x63", "depth-4 generator")),
    ("train", "data.stream.flip_probability 2", lambda i: i.train(
     "data.stream.flip_probability=2"), ("data.stream.flip_probability", "got 2")),
    ("train", "data.stream.augment maybe", lambda i: i.train("data.stream.augment=maybe"),
     ("data.stream.augment must be bool",)),
    ("train", "generator.size of another size", lambda i: i.train("generator.size=32"),
     ("generator.size (32) differs from data.stream.size (64)",)),
    ("train", "generator.norm layer", lambda i: i.train("generator.norm=layer"),
     ("norm='layer'",)),
    ("train", "generator.depth 11", lambda i: i.train("generator.depth=11"),
     ("generator.depth must be in [1, 10], got 11",)),
    ("train", "critic.norm batch", lambda i: i.train("critic.norm=batch"),
     ("per-sample gradients",)),
    ("train", "critic too deep for the size", lambda i: i.train("critic.depth=5"),
     ("depth-5 critic",)),
    ("train", "loss.gp_weight -1", lambda i: i.train("loss.gp_weight=-1"),
     ("loss.gp_weight must be >= 0, got -1",)),
    ("train", "loss.l1_weight inf", lambda i: i.train("loss.l1_weight=inf"),
     ("loss.l1_weight must be float, got 'inf'",)),
    ("train", "a perceptual loss without weights", lambda i: i.train("loss.perceptual_weight=1"),
     ("needs loss.vgg_weights",)),
    ("train", "loss.vgg_weights missing", lambda i: i.train("loss.perceptual_weight=1",
     f"loss.vgg_weights={i.tmp / 'vgg16.pth'}"), ("vgg16.pth", "does not exist")),
    ("train", "loss.vgg_weights is a picture", lambda i: i.train("loss.perceptual_weight=1",
     f"loss.vgg_weights={i.picture}"), ("picture.png", "not a readable state dict")),
    ("train", "a mask loss without alpha", lambda i: i.train("generator.alpha=false"),
     ("generator.alpha is false",)),
    ("train", "loss.mask_loss l2", lambda i: i.train("loss.mask_loss=l2"),
     ("loss.mask_loss must be one of l1, bce, got 'l2'",)),
    ("train", "generator_optim.lr 0", lambda i: i.train("generator_optim.lr=0"),
     ("generator_optim.lr must be in (0, 1], got 0",)),
    ("train", "generator_optim.betas of one", lambda i: i.train("generator_optim.betas=[0.5]"),
     ("generator_optim.betas must have 2 items",)),
    ("train", "critic_optim.schedule step", lambda i: i.train("critic_optim.schedule=step"),
     ("critic_optim.schedule must be one of",)),
    ("train", "critic_optim.warmup_steps 1.5", lambda i: i.train(
     "critic_optim.warmup_steps=1.5"), ("critic_optim.warmup_steps must be int",)),
    ("train", "critic_steps 0", lambda i: i.train("critic_steps=0"), ("critic_steps", "got 0")),
    ("train", "run.steps 0", lambda i: i.train("run.steps=0"), ("run.steps must be >= 1",)),
    ("train", "run.steps nan", lambda i: i.train("run.steps=.nan"), ("run.steps must be int",)),
    ("train", "run.precision fp8", lambda i: i.train("run.precision=fp8"),
     ("run.precision must be one of no, bf16, fp16",)),
    ("train", "run.best_metric fid", lambda i: i.train("run.best_metric=fid"),
     ("run.best_metric", "'fid'")),
    ("train", "run.ema_decay 1", lambda i: i.train("run.ema_decay=1"),
     ("run.ema_decay must be in [0, 1), got 1",)),
    ("train", "run.max_minutes 0", lambda i: i.train("run.max_minutes=0"),
     ("run.max_minutes must be > 0",)),
    # where it writes, and what it reads
    ("train", "read-only folder", lambda i: i.train(out_dir=i.read_only / "run"), ("read-only",)),
    ("train", "run.out_dir is a file", lambda i: i.train(out_dir=i.a_file),
     ("a_file", "not a directory")),
    ("train", "run.out_dir is under a file", lambda i: i.train(out_dir=i.a_file / "run"),
     ("a_file", "not a directory")),
    *manifest_without("train", lambda i, shards: i.train(shards=shards)),
    ("train", "data.shards missing", lambda i: i.train(shards=i.tmp / "gone"),
     ("gone/manifest.json", "no such file")),
    ("train", "every train shard unreadable",
     lambda i: i.train(shards=i.shards_with(files={"train-*.tar": NOISE})),
     ("cannot read the train shards", "train-000000.tar: invalid header (ReadError)")),
    ("train", "plate.png missing",
     lambda i: i.train(shards=i.shards_with(files={"plate.png": None})), ("plate.png",)),
    ("train", "plate.png is not an image",
     lambda i: i.train(shards=i.shards_with(files={"plate.png": "junk"})), ("plate.png",)),
    # --resume
    ("train", "--resume a missing folder", lambda i: [*i.train(), "--resume", str(i.tmp / "gone")],
     ("gone", "not a checkpoint folder")),
    ("train", "--resume a picture", lambda i: [*i.train(), "--resume", str(i.picture)],
     ("picture.png", "not a checkpoint folder")),
    ("train", "--resume latest with no checkpoint", lambda i: [*i.train(), "--resume", "latest"],
     ("checkpoints", "no complete checkpoint")),
    ("train", "--resume another architecture", lambda i: [*i.train(), "--resume",
     str(i.checkpoint)], ("step-000007", "generator architecture differs", "alpha")),
    ("train", "--resume a checkpoint of the other trainer", lambda i: [*i.train(), "--resume",
     str(i.resumable(_set("trainer", value="vanilla")))],
     ("a vanilla checkpoint, cannot resume a gan run",)),
    ("train", "state.json without step",
     lambda i: [*i.train(), "--resume", str(i.checkpoint_with(_drop("step")))],
     ("state.json", "no step")),
    ("train", "state.json not JSON", lambda i: [*i.train(), "--resume", str(i.resumable(
     files={"state.json": "{oops"}))], ("damaged checkpoint", "state.json is unreadable")),
    ("train", "a weights file cut short", lambda i: [*i.train(), "--resume", str(
     i.checkpoint_with(files={"generator.safetensors": cut(0.5)}))],
     ("damaged checkpoint", "generator.safetensors is", "bytes")),
    ("train", "checksums.json missing", lambda i: [*i.train(), "--resume", str(
     i.checkpoint_with(files={"checksums.json": None}))], ("checksums.json is missing",)),
    ("train", "optimizers.pt is a picture", lambda i: [*i.train(), "--resume", str(
     i.resumable(files={"optimizers.pt": i.picture.read_bytes()}))],
     ("optimizers.pt", "not a readable weights-only torch file", "Unsupported operand")),
    ("train", "optimizers.pt of another run", lambda i: [*i.train(), "--resume", str(
     i.resumable(files={"optimizers.pt": lambda p: __import__("torch").save({"adam": 1}, p)}))],
     ("optimizers.pt", "not the optimiser states of this run")),
    ("train", "critic.safetensors holds the generator", lambda i: [*i.train(), "--resume", str(
     i.resumable(files={"critic.safetensors": lambda p: shutil.copy(
     p.with_name("generator.safetensors"), p)}))], ("critic.safetensors", "do not fit")),
    ("train", "the RNG states are noise", lambda i: [*i.train(), "--resume", str(
     i.resumable(files={"rng-rank00000.pt": NOISE}))], ("rng-rank00000.pt", "not a readable")),
    ("train", "state.json architecture not a mapping", lambda i: [*i.train(), "--resume", str(
     i.resumable(_set("architecture", value="unet")))], ("generator architecture differs",)),
    ("train", "state.json world_size not a number", lambda i: [*i.train(), "--resume", str(
     i.resumable(_set("world_size", value="two")))], ("state.json", "world_size", "'two'")),
    # the regression trainer (train/vanilla.py)
    ("vanilla", "the MLP with a generator section",
     lambda i: i.vanilla("model=mlp", "generator.depth=4"),
     ("generator: set, but model is 'mlp'",)),
    ("vanilla", "model gan", lambda i: i.vanilla("model=gan"), ("model must be one of unet, mlp",)),
    ("vanilla", "a GAN loss key", lambda i: i.vanilla("loss.gp_weight=10"),
     ("unknown key loss.gp_weight",)),
    ("vanilla", "a critic section", lambda i: i.vanilla("critic.depth=2"), ("unknown key critic",)),
    ("vanilla", "mlp.base_size above the size",
     lambda i: i.vanilla("mlp.base_size=128", config="mlp_tiny.yaml"), ("base_size=128",)),
    ("vanilla", "the MLP with a mask loss",
     lambda i: i.vanilla("loss.mask_weight=1", config="mlp_tiny.yaml"), ("draws no alpha",)),
    ("vanilla", "--resume a GAN checkpoint",
     lambda i: [*i.vanilla(), "--resume", str(i.request.getfixturevalue("trained_checkpoint"))],
     ("a gan checkpoint, cannot resume a vanilla run",)),
]  # fmt: skip

EXPORT = [
    # the checkpoint
    ("export", "--checkpoint missing", lambda i: i.export(checkpoint=i.tmp / "gone"),
     ("gone", "no such checkpoint folder")),
    ("export", "--checkpoint is a picture", lambda i: i.export(checkpoint=i.picture),
     ("picture.png", "not a checkpoint folder")),
    ("export", "--checkpoint is an empty folder", lambda i: i.export(checkpoint=i.a_folder("e")),
     ("not a checkpoint folder (no state.json)",)),
    ("export", "a run folder without checkpoints",
     lambda i: i.export(checkpoint=i.a_folder("run/checkpoints").parent),
     ("run", "a run folder without a complete checkpoint")),
    ("export", "state.json not JSON", lambda i: i.export(checkpoint=i.checkpoint_with(
     files={"state.json": "{oops"})), ("state.json", "unreadable")),
    ("export", "state.json is binary", lambda i: i.export(checkpoint=i.checkpoint_with(
     files={"state.json": NOISE})), ("state.json", "unreadable")),
    ("export", "state.json is a list", lambda i: i.export(checkpoint=i.checkpoint_with(
     files={"state.json": "[1, 2]"})), ("state.json", "expected a JSON object, got list")),
    ("export", "state.json without architecture",
     lambda i: i.export(checkpoint=i.checkpoint_with(_drop("architecture"))),
     ("state.json", "no architecture.generator entry")),
    ("export", "architecture not a mapping",
     lambda i: i.export(checkpoint=i.checkpoint_with(_set("architecture", value="unet"))),
     ("state.json", "no architecture.generator entry")),
    ("export", "architecture.generator a list", lambda i: i.export(checkpoint=i.checkpoint_with(
     _set("architecture", "generator", value=[1, 2]))), ("no architecture.generator entry",)),
    ("export", "an unknown generator class", lambda i: i.export(checkpoint=i.checkpoint_with(
     _set("architecture", "generator", "class", value="Transformer"))),
     ("unknown generator class 'Transformer'",)),
    ("export", "an unknown generator argument", lambda i: i.export(checkpoint=i.checkpoint_with(
     _set("architecture", "generator", "heads", value=8))), ("unknown generator arguments heads",)),
    ("export", "a generator depth of 99", lambda i: i.export(checkpoint=i.checkpoint_with(
     _set("architecture", "generator", "depth", value=99))),
     ("state.json", "generator.depth must be in [1, 10], got 99")),
    ("export", "a generator width as text", lambda i: i.export(checkpoint=i.checkpoint_with(
     _set("architecture", "generator", "base_channels", value="8"))),
     ("state.json", "generator.base_channels must be int, got '8'")),
    ("export", "state.json of another architecture", lambda i: i.export(
     checkpoint=i.checkpoint_with(_set("architecture", "generator", "base_channels", value=16))),
     ("generator_ema.safetensors", "weights do not fit", "another architecture")),
    ("export", "a size the skeleton style does not fit", lambda i: i.export(
     checkpoint=i.checkpoint_with(_set("architecture", "generator", "size", value=48))),
     ("skeletons drawn at 64 px", "48 px")),
    ("export", "no image size anywhere", lambda i: i.export(checkpoint=i.checkpoint_with(
     lambda s: (s.pop("image_size"), s["architecture"]["generator"].update(size=None)))),
     ("state.json", "size is not set")),
    ("export", "a skeleton style without fields", lambda i: i.export(checkpoint=i.checkpoint_with(
     _set("skeleton", value={"size": 64, "thickness": 2}))), ("state.json: skeleton: missing",)),
    ("export", "a skeleton style as text", lambda i: i.export(checkpoint=i.checkpoint_with(
     _set("skeleton", value="thick"))), ("state.json: skeleton: expected a mapping",)),
    ("export", "EMA weights missing", lambda i: i.export(checkpoint=i.checkpoint_with(
     files={"generator_ema.safetensors": None})),
     ("generator_ema.safetensors", "weights file does not exist")),
    ("export", "EMA weights empty", lambda i: i.export(checkpoint=i.checkpoint_with(
     files={"generator_ema.safetensors": b""})),
     ("generator_ema.safetensors", "not a readable safetensors file")),
    ("export", "EMA weights are a picture", lambda i: i.export(checkpoint=i.checkpoint_with(
     files={"generator_ema.safetensors": i.picture.read_bytes()})),
     ("generator_ema.safetensors", "not a readable safetensors file")),
    ("export", "EMA weights cut short", lambda i: i.export(checkpoint=i.checkpoint_with(
     files={"generator_ema.safetensors": cut(0.5)})),
     ("generator_ema.safetensors", "not a readable safetensors file")),
    ("export", "--raw without live weights", lambda i: i.export(None, "--raw",
     checkpoint=i.checkpoint_with(files={"generator.safetensors": None})),
     ("generator.safetensors", "does not exist")),
    ("export", "--inside-blur not a number", lambda i: i.export(None, "--inside-blur", "soft"),
     ("--inside-blur soft: expected SIGMA or SIGMA@DEPTH",)),
    ("export", "--inside-blur out of range", lambda i: i.export(None, "--inside-blur", "1@-2"),
     ("--inside-blur 1@-2", "compose.inside_depth must be in [0, 256]")),
    ("export", "--inside-blur without alpha", lambda i: i.export(None, "--inside-blur", "1"),
     ("--inside-blur lays down the person an alpha outlines", "draws no alpha")),
    ("export", "the MLP baseline", lambda i: i.export(checkpoint=i.checkpoint_with(
     files={"generator_ema.safetensors": mlp_weights})), ("MLP baseline is not exported",)),
    ("export", "a generator of 4 input channels", lambda i: i.export(checkpoint=i.checkpoint_with(
     files={"generator_ema.safetensors": four_channel_weights})), ("4 input channels",)),
    ("export", "an alpha checkpoint without its background", lambda i: i.export(
     checkpoint=i.alpha_checkpoint(files={"background.png": None})),
     ("background.png", "missing or not a readable image")),
    ("export", "an alpha checkpoint's background of another size", lambda i: i.export(
     checkpoint=i.alpha_checkpoint(files={"background.png": png_bytes(np.zeros((32, 32, 3),
     np.uint8))})), ("background.png", "32x32", "64x64")),
    # the output and the opset
    ("export", "read-only folder", lambda i: i.export(i.read_only / "g.onnx"), ("read-only",)),
    ("export", "--out is a folder", lambda i: i.export(i.a_folder("g.onnx")),
     ("g.onnx", "is a directory")),
    ("export", "--out .pt", lambda i: i.export(i.tmp / "g.pt"), ("g.pt", "must end in .onnx")),
    ("export", "--out without a suffix", lambda i: i.export(i.tmp / "gonnx"),
     ("gonnx", "must end in .onnx")),
    ("export", "--out in a missing folder", lambda i: i.export(i.tmp / "missing" / "g.onnx"),
     ("missing", "does not exist")),
    ("export", "the sidecar's name is a folder",
     lambda i: i.a_folder("g.json") and i.export(i.tmp / "g.onnx"), ("g.json", "is a directory")),
    ("export", "--opset 9", lambda i: i.export(None, "--opset", "9"), ("--opset 9", "18 and 24")),
    ("export", "--opset 25", lambda i: i.export(None, "--opset", "25"), ("--opset 25",)),
]  # fmt: skip

TO_TRT = [
    # the build's settings, checked first
    ("to_trt", "--inside-blur with --onnx", lambda i: i.to_trt("--inside-blur", "1"),
     ("model.onnx", "--inside-blur applies to --checkpoint")),
    ("to_trt", "--min-batch 0", lambda i: i.to_trt("--min-batch", "0"), ("--min-batch 0",)),
    ("to_trt", "--max-batch -1", lambda i: i.to_trt("--max-batch", "-1"), ("--max-batch -1",)),
    ("to_trt", "--min-batch above --opt-batch", lambda i: i.to_trt("--min-batch", "4",
     "--opt-batch", "2"), ("batch profile 4/2/32",)),
    ("to_trt", "--opt-batch above --max-batch", lambda i: i.to_trt("--opt-batch", "64"),
     ("batch profile 1/64/32",)),
    ("to_trt", "--workspace-gb 0", lambda i: i.to_trt("--workspace-gb", "0"),
     ("--workspace-gb 0.0",)),
    ("to_trt", "--workspace-gb nan", lambda i: i.to_trt("--workspace-gb", "nan"),
     ("--workspace-gb nan",)),
    ("to_trt", "--tolerance 0", lambda i: i.to_trt("--tolerance", "0"), ("--tolerance 0.0",)),
    ("to_trt", "--tolerance nan", lambda i: i.to_trt("--tolerance", "nan"), ("--tolerance nan",)),
    ("to_trt", "--timing-cache is a folder", lambda i: i.to_trt("--timing-cache",
     str(i.a_folder("trt.cache"))), ("trt.cache", "timing cache must be a file")),
    ("to_trt", "--timing-cache in a missing folder", lambda i: i.to_trt("--timing-cache",
     str(i.tmp / "missing" / "trt.cache")), ("trt.cache", "existing directory")),
    # what it reads
    ("to_trt", "--onnx is not an .onnx", lambda i: i.to_trt(onnx=i.file("model.txt", "x")),
     ("model.txt", "expected an .onnx file")),
    ("to_trt", "--onnx missing", lambda i: i.to_trt(onnx=i.tmp / "gone.onnx"),
     ("gone.onnx", "no such file")),
    ("to_trt", "--onnx is a folder", lambda i: i.to_trt(onnx=i.a_folder("m.onnx")),
     ("m.onnx", "no such file")),
    ("to_trt", "--checkpoint missing", lambda i: ["--checkpoint", str(i.tmp / "gone"), "--out",
     str(i.tmp / "g.plan")], ("gone", "not a checkpoint folder")),
    ("to_trt", "--checkpoint is a picture", lambda i: ["--checkpoint", str(i.picture), "--out",
     str(i.tmp / "g.plan")], ("picture.png", "not a checkpoint folder")),
    ("to_trt", "--checkpoint is an empty folder", lambda i: ["--checkpoint",
     str(i.a_folder("e")), "--out", str(i.tmp / "g.plan")], ("not a checkpoint folder",)),
    ("to_trt", "no TensorRT here", lambda i: i.to_trt(), ("TensorRT is not installed",),
     WITHOUT_TENSORRT),
    # where it writes
    ("to_trt", "read-only folder", lambda i: ["--checkpoint", str(i.checkpoint), "--out",
     str(i.read_only / "g.plan")], ("read-only",)),
    ("to_trt", "--out is a folder", lambda i: ["--checkpoint", str(i.checkpoint), "--out",
     str(i.a_folder("g.plan"))], ("g.plan", "is a directory")),
    ("to_trt", "--out .onnx", lambda i: i.to_trt(out=i.tmp / "g.onnx"),
     ("g.onnx", "must end in .plan or .engine")),
    ("to_trt", "--out without a suffix", lambda i: i.to_trt(out=i.tmp / "g"),
     ("must end in .plan or .engine",)),
    ("to_trt", "--out in a missing folder", lambda i: i.to_trt(out=i.tmp / "missing" / "g.plan"),
     ("missing", "does not exist")),
    ("to_trt", "the sidecar's name is a folder",
     lambda i: i.a_folder("g.plan.json") and i.to_trt(), ("g.plan.json", "is a directory")),
]  # fmt: skip

INFER = [
    # the source video
    ("infer", "--source missing", lambda i: i.infer(source=i.tmp / "gone.mp4"),
     ("gone.mp4", "no such file")),
    ("infer", "--source is a folder", lambda i: i.infer(source=i.a_folder("clips")),
     ("clips", "is a directory")),
    ("infer", "--source is empty", lambda i: i.infer(source=i.file("empty.mp4", b"")),
     ("empty.mp4", "empty file")),
    ("infer", "--source is a text file", lambda i: i.infer(source=i.file("n.mp4", "a video")),
     ("n.mp4", "not a readable video")),
    ("infer", "--source is noise", lambda i: i.infer(source=i.file("noise.mp4", NOISE)),
     ("noise.mp4", "not a readable video")),
    ("infer", "--source is the keypoints file", lambda i: i.infer(source=i.keypoints),
     ("dancer.keypoints.npy", "not a readable video")),
    ("infer", "a source cut short", lambda i: ["--source", str(i.cut_video), "--model",
     str(i.checkpoint), "--out", str(i.tmp / "out.mp4"), "--quiet"],
     ("cut.mp4", "of the 96 frames", "--accept-truncated")),
    # the model
    ("infer", "--model missing", lambda i: i.infer(model=i.tmp / "gen.onnx"),
     ("gen.onnx", "no such file or checkpoint folder")),
    ("infer", "--model of no known kind", lambda i: i.infer(model=i.file("gen.pt", "weights")),
     ("gen.pt", "unsupported model file")),
    ("infer", "--model an empty .onnx", lambda i: i.infer(model=i.file("gen.onnx", b"")),
     ("gen.onnx", "ONNX Runtime cannot load it")),
    ("infer", "--model a picture named .onnx", lambda i: i.infer(model=i.file("gen.onnx",
     i.picture.read_bytes())), ("gen.onnx", "ONNX Runtime cannot load it")),
    ("infer", "--model a folder without state.json", lambda i: i.infer(model=i.a_folder("ck")),
     ("ck", "not a checkpoint folder")),
    ("infer", "an ONNX with another input", lambda i: i.infer(model=i.onnx_model(
     inputs=(("pose", ("N", 3, 64, 64), "float"),))), ("expected one input named 'skeleton'",)),
    ("infer", "an ONNX of a fixed batch", lambda i: i.infer(model=i.onnx_model(
     inputs=(("skeleton", (1, 3, 64, 64), "float"),))), ("with a dynamic batch N",)),
    ("infer", "an ONNX of 3-D input", lambda i: i.infer(model=i.onnx_model(
     inputs=(("skeleton", ("N", 3, 64), "float"),))), ("has shape (N, 3, 64)",)),
    ("infer", "an ONNX in float16", lambda i: i.infer(model=i.onnx_model(
     inputs=(("skeleton", ("N", 3, 64, 64), "float16"),),
     outputs=(("image", ("N", 3, 64, 64), "float16"),))), ("float16; expected float32",)),
    ("infer", "an ONNX with another output", lambda i: i.infer(model=i.onnx_model(
     outputs=(("picture", ("N", 3, 64, 64), "float"),))), ("model outputs are 'picture'",)),
    ("infer", "an ONNX with a 3-channel alpha", lambda i: i.infer(model=i.onnx_model(
     outputs=(("image", ("N", 3, 64, 64), "float"), ("alpha", ("N", 3, 64, 64), "float")))),
     ("output 'alpha' has shape (N, 3, 64, 64)",)),
    ("infer", "a sidecar that is not JSON", lambda i: i.onnx_model().with_suffix(".json")
     .write_text("{oops") and i.infer(model=i.tmp / "model.onnx"),
     ("model.json", "unreadable sidecar")),
    ("infer", "a sidecar that is a list", lambda i: i.onnx_model().with_suffix(".json")
     .write_text("[1]") and i.infer(model=i.tmp / "model.onnx"),
     ("model.json", "expected a JSON object")),
    ("infer", "a sidecar's skeleton as text", lambda i: i.onnx_model().with_suffix(".json")
     .write_text('{"skeleton": "thick"}') and i.infer(model=i.tmp / "model.onnx"),
     ("model.json: skeleton: expected a mapping",)),
    ("infer", "a sidecar's target as text", lambda i: i.onnx_model().with_suffix(".json")
     .write_text('{"target": "tall"}') and i.infer(model=i.tmp / "model.onnx"),
     ("model.json: target", "expected image_size > 0 and body")),
    ("infer", "a checkpoint whose shards are unknown", lambda i: i.infer(
     model=i.checkpoint_with(_set("config", value={}))), ("--target-shards", "--no-retarget")),
    ("infer", "nearest without --target-shards", lambda i: i.infer(model="nearest"),
     ("nearest needs --target-shards",)),
    ("infer", "--target-shards missing", lambda i: i.infer(None, "--target-shards",
     str(i.tmp / "gone")), ("gone/manifest.json", "no such file")),
    ("infer", "--backend onnxruntime for a checkpoint", lambda i: i.infer(None, "--backend",
     "onnxruntime"), ("export it with export/to_onnx.py",)),
    ("infer", "--backend tensorrt for an ONNX", lambda i: i.infer(None, "--backend", "tensorrt",
     model=i.onnx_model()), ("model.onnx", "build an engine with export/to_trt.py")),
    ("infer", "--precision for an ONNX", lambda i: i.infer(None, "--precision", "bf16",
     model=i.onnx_model()), ("model.onnx", "only apply to the torch backend")),
    ("infer", "--inside-blur for an ONNX", lambda i: i.infer(None, "--inside-blur", "1",
     model=i.onnx_model()), ("model.onnx", "compose only apply to the torch backend")),
    ("infer", "an engine without TensorRT", lambda i: i.infer(model=i.file("gen.plan", NOISE)),
     ("TensorRT is not installed",), WITHOUT_TENSORRT),
    ("infer", "--device banana", lambda i: i.infer(None, "--device", "banana"),
     ("device 'banana'",)),
    ("infer", "--device cuda:99", lambda i: i.infer(None, "--device", "cuda:99"),
     ("device cuda:99",)),
    # numbers
    ("infer", "--batch 0", lambda i: i.infer(None, "--batch", "0"), ("--batch 0: must be >= 1",)),
    ("infer", "--pose-workers 0", lambda i: i.infer(None, "--pose-workers", "0"),
     ("--pose-workers 0: must be >= 1",)),
    ("infer", "--min-cutoff 0", lambda i: i.infer(None, "--min-cutoff", "0"),
     ("--min-cutoff 0: must be > 0",)),
    ("infer", "--min-cutoff nan", lambda i: i.infer(None, "--min-cutoff", "nan"),
     ("--min-cutoff nan: must be > 0",)),
    ("infer", "--beta -1", lambda i: i.infer(None, "--beta", "-1"), ("--beta -1: must be",)),
    ("infer", "--beta inf", lambda i: i.infer(None, "--beta", "inf"),
     ("--beta inf: must be a finite number >= 0",)),
    ("infer", "--max-gap -1", lambda i: i.infer(None, "--max-gap", "-1"),
     ("--max-gap -1: must be >= 0",)),
    ("infer", "--max-gap nan", lambda i: i.infer(None, "--max-gap", "nan"),
     ("--max-gap nan: must be >= 0",)),
    # the poses
    ("infer", "--poses missing", lambda i: i.infer(poses=i.tmp / "gone.npy"),
     ("gone.npy", "no such file")),
    ("infer", "--poses is a folder", lambda i: i.infer(poses=i.a_folder("poses")),
     ("poses", "is a directory")),
    ("infer", "--poses is empty", lambda i: i.infer(poses=i.file("p.npy", b"")),
     ("p.npy", "not a plain .npy array")),
    ("infer", "--poses is text", lambda i: i.infer(poses=i.file("p.npy", "0 1 2")),
     ("p.npy", "not a plain .npy array")),
    ("infer", "--poses an object array", lambda i: i.infer(poses=i.npy("p.npy", OBJECT_ARRAY)),
     ("p.npy", "not a plain .npy array")),
    ("infer", "--poses of 17 joints", lambda i: i.infer(poses=i.npy("p.npy", i.poses[:, :17])),
     ("p.npy", "got (96, 17, 3)")),
    ("infer", "--poses as text", lambda i: i.infer(poses=i.npy("p.npy", i.poses.astype(str))),
     ("p.npy", "must be numbers, got <U")),
    ("infer", "--poses infinite", lambda i: i.infer(poses=i.npy("p.npy", _with(i.poses,
     slice(10, 12), np.inf))), ("p.npy", "frame 10", "infinite")),
    ("infer", "--poses all NaN", lambda i: i.infer(poses=i.npy("p.npy", np.full_like(i.poses,
     np.nan))), ("dancer.mp4", "no person found")),
    ("infer", "--poses of fewer frames than the video", lambda i: i.infer(
     poses=i.npy("p.npy", i.poses[:10])), ("dancer.mp4", "more frames than the 10 poses")),
    # --background
    ("infer", "--background missing", lambda i: i.infer(None, "--background",
     str(i.tmp / "gone.png")), ("gone.png", "no such background image")),
    ("infer", "--background is a folder", lambda i: i.infer(None, "--background",
     str(i.a_folder("bg.png"))), ("bg.png", "no such background image")),
    ("infer", "--background is a text file", lambda i: i.infer(None, "--background",
     str(i.file("bg.png", "a beach"))), ("bg.png", "not a readable image")),
    ("infer", "--background for a model without alpha", lambda i: i.infer(None, "--background",
     str(i.picture)), ("step-000007", "the model has no alpha output")),
    # where it writes
    ("infer", "read-only folder", lambda i: i.infer(i.read_only / "out.mp4"), ("read-only",)),
    ("infer", "--out is a folder", lambda i: i.infer(i.a_folder("out.mp4")),
     ("out.mp4", "is a directory")),
    ("infer", "--out .avi", lambda i: i.infer(i.tmp / "out.avi"), ("out.avi", ".mp4")),
    ("infer", "--out without a suffix", lambda i: i.infer(i.tmp / "out"), ("out", ".mp4")),
    ("infer", "--out in a missing folder", lambda i: i.infer(i.tmp / "missing" / "out.mp4"),
     ("missing", "does not exist")),
    ("infer", "--summary-json is a folder",
     lambda i: i.infer(None, "--summary-json", str(i.a_folder("s.json"))),
     ("s.json", "is a directory")),
    ("infer", "--summary-json in a missing folder",
     lambda i: i.infer(None, "--summary-json", str(i.tmp / "missing" / "s.json")),
     ("missing", "does not exist")),
    ("infer", "--save-poses is a folder",
     lambda i: i.infer(None, "--save-poses", str(i.a_folder("p.npy"))),
     ("p.npy", "is a directory")),
    ("infer", "--save-poses in a missing folder",
     lambda i: i.infer(None, "--save-poses", str(i.tmp / "missing" / "p.npy")),
     ("missing", "does not exist")),
]  # fmt: skip

EVAL = [
    # the shards
    *manifest_without("eval", lambda i, shards: i.eval(shards=shards)),
    ("eval", "a shard holds other than the manifest says",
     lambda i: i.eval(shards=i.shards_with(_recount)),
     ("val-000000.tar", "holds 10 samples", "manifest.json says 11")),
    ("eval", "--inside-blur for an ONNX", lambda i: i.eval(None, None, "--inside-blur", "1",
     model=i.onnx_model()), ("model.onnx", "the inside blur it was exported with")),
    ("eval", "--shards missing", lambda i: i.eval(shards=i.tmp / "gone"),
     ("gone/manifest.json", "no such file")),
    ("eval", "--shards is a file", lambda i: i.eval(shards=i.video),
     ("dancer.mp4/manifest.json", "cannot read")),
    ("eval", "no val split", lambda i: i.eval(shards=i.shards_with(_drop("splits", "val"))),
     ("has no 'val' split",)),
    ("eval", "--split test", lambda i: i.eval(None, None, "--split", "test"),
     ("has no 'test' split",)),
    ("eval", "the val shard missing", lambda i: i.eval(shards=i.shards_with(
     files={"val-000000.tar": None})), ("val-000000.tar", "does not exist")),
    ("eval", "the val shard is noise", lambda i: i.eval(shards=i.shards_with(
     files={"val-000000.tar": NOISE})),
     ("cannot read the val shards: ", "val-000000.tar: invalid header (ReadError)")),
    ("eval", "the val shard is empty", lambda i: i.eval(shards=i.shards_with(
     files={"val-000000.tar": b""})),
     ("cannot read the val shards: ", "val-000000.tar: empty file (ReadError)")),
    ("eval", "the val shard cut short", lambda i: i.eval(shards=i.shards_with(
     files={"val-000000.tar": cut(0.3)})), ("cannot read the val shards: ", "val-000000.tar: ")),
    ("eval", "the val shard cut inside a jpg", lambda i: i.eval(shards=i.shards_with(
     files={"val-000000.tar": cut_inside(".jpg")})),
     ("cannot read the val shards: ", "val-000000.tar: unexpected end of data (ReadError)")),
    ("eval", "shards of another size than the manifest's", lambda i: i.eval(
     shards=i.shards_with(_set("image_size", value=32))), ("is 64x64, the manifest says 32x32",)),
    ("eval", "a jpg that is not one", lambda i: i.eval(shards=i.shards_with(
     files={"val-000000.tar": first_member(".jpg", b"junk")})), ("'jpg' is not a decodable",)),
    ("eval", "pose.npy is an object array",
     lambda i: i.eval(shards=object_pose(i.shards, i.tmp / "shards")),
     ("val-000000.tar", "pose.npy", "not a plain .npy array")),
    ("eval", "pose.npy of 17 joints", lambda i: i.eval(shards=i.shards_with(files={
     "val-000000.tar": first_member(".pose.npy", npy_bytes(np.zeros((17, 3), np.float32)))})),
     ("pose.npy is (17, 3)",)),
    ("eval", "a sample without pose.npy", lambda i: i.eval(shards=i.shards_with(
     files={"val-000000.tar": first_member(".pose.npy", None)})), ("needs 'jpg' and 'pose.npy'",)),
    ("eval", "mask.png of another size", lambda i: i.eval(shards=i.shards_with(files={
     "val-000000.tar": first_member(".mask.png", png_bytes(np.zeros((32, 32), np.uint8)))})),
     ("mask.png is 32x32, its jpg 64x64",)),
    ("eval", "mask.png that is not an image", lambda i: i.eval(shards=i.shards_with(
     files={"val-000000.tar": first_member(".mask.png", b"junk")})), ("'mask.png' is not a",)),
    # the models
    ("eval", "nothing to evaluate", lambda i: i.eval(model=None), ("give --model or --compare",)),
    ("eval", "--model missing", lambda i: i.eval(model=i.tmp / "gone"),
     ("gone", "no such file or checkpoint folder")),
    ("eval", "--model of no known kind", lambda i: i.eval(model=i.file("m.txt", "x")),
     ("m.txt", "unsupported model file")),
    ("eval", "--model an ONNX that is noise", lambda i: i.eval(model=i.file("m.onnx", NOISE)),
     ("m.onnx", "ONNX Runtime cannot load it")),
    ("eval", "--model of another size", lambda i: i.eval(model=i.onnx_model(
     inputs=(("skeleton", ("N", 3, 32, 32), "float"),),
     outputs=(("image", ("N", 3, 32, 32), "float"),))), ("model.onnx", "generates 32 px images")),
    ("eval", "an engine without TensorRT", lambda i: i.eval(model=i.file("gen.plan", NOISE)),
     ("TensorRT is not installed",), WITHOUT_TENSORRT),
    ("eval", "two models of one label", lambda i: i.eval(None, None, "--compare", "a=mean",
     "a=nearest", model=None), ("two models with one label",)),
    ("eval", "--compare without a label", lambda i: i.eval(None, None, "--compare", "=mean",
     model=None), ("--compare '=mean'", "LABEL=MODEL")),
    ("eval", "--target-shards missing", lambda i: i.eval(None, None, "--target-shards",
     str(i.tmp / "gone"), model="nearest"), ("gone/manifest.json", "no such file")),
    # numbers and files
    ("eval", "--max-frames 1", lambda i: i.eval(None, None, "--max-frames", "1"),
     ("--max-frames must be >= 2, got 1",)),
    ("eval", "--batch 0", lambda i: i.eval(None, None, "--batch", "0"),
     ("--batch must be >= 1, got 0",)),
    ("eval", "--sheet-frames -1", lambda i: i.eval(None, None, "--sheet-frames", "-1"),
     ("--sheet-frames must be >= 1, got -1",)),
    ("eval", "--lpips-backbone missing", lambda i: i.eval(None, None, "--lpips-backbone",
     str(i.tmp / "alexnet.pth")), ("alexnet.pth", "not found")),
    ("eval", "--lpips-backbone is a picture", lambda i: i.eval(None, None, "--lpips-backbone",
     str(i.picture)), ("picture.png", "not a readable weights file")),
    ("eval", "--lpips-backbone is a noise .safetensors", lambda i: i.eval(None, None,
     "--lpips-backbone", str(i.file("alexnet.safetensors", NOISE))),
     ("alexnet.safetensors", "not a readable weights file")),
    # where it writes
    ("eval", "read-only folder", lambda i: i.eval(i.read_only / "eval"), ("read-only",)),
    ("eval", "--out is a file", lambda i: i.eval(i.a_file), ("a_file", "not a directory")),
    ("eval", "--out in a missing folder", lambda i: i.eval(i.tmp / "missing" / "eval"),
     ("missing", "does not exist")),
]  # fmt: skip

CASES = [*PREPARE, *PREVIEW, *SYNTH, *TRAIN, *EXPORT, *TO_TRT, *INFER, *EVAL]


@pytest.mark.parametrize(
    "entry, argv, names",
    [pytest.param(e, a, n, id=f"{e}: {c}", marks=m) for e, c, a, n, *m in CASES],
)
def test_bad_input_is_one_line_and_leaves_nothing(entry, argv, names, inputs, capsys, caplog):
    args = argv(inputs)  # makes the broken inputs, before the snapshot
    main = entry_point(entry)
    capsys.readouterr()
    caplog.clear()
    roots = [inputs.tmp, inputs.shards, inputs.video.parent, inputs.checkpoint.parent]
    before = snapshot(*roots)
    with warnings.catch_warnings(record=True) as shown:
        python_defaults()
        status = main(args)
    out, err = capsys.readouterr()
    assert_one_line(status, out, err, *names)
    assert snapshot(*roots) == before
    # What a user's terminal would show besides, which pytest takes aside here: log records
    # of warnings (Python prints them on stderr when nothing is configured) and warnings.
    logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= WARNING]
    assert logged + [f"{w.category.__name__}: {w.message}" for w in shown] == []


def python_defaults() -> None:
    """Warning filters as a script starts with (pytest's are stricter): each warning once
    per place, deprecations and resource warnings hidden."""
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                     ResourceWarning):  # fmt: skip
        warnings.filterwarnings("ignore", category=category)


def test_the_matrix_covers_every_entry_point():
    """At least 160 cases (issue 15), no two alike, each entry point with a dozen or more."""
    ids = [f"{entry}: {case}" for entry, case, *_ in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 160
    counts = {
        entry: sum(e == entry for e, *_ in CASES)
        for entry in ("prepare", "preview", "synth", "train", "export", "to_trt", "infer", "eval")
    }
    assert min(counts.values()) >= 12, counts


# ----------------------------------------------------------------------------- unreadable data


MEMORY_LIMIT = 4 * 2**30  # of each command's data: plenty for these cases, none for a mistake


def limit_memory() -> None:
    """In the child, before the command: allocations past MEMORY_LIMIT fail (MemoryError)
    instead of filling the machine."""
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.timeout(120)  # these looped forever before issue 15
@pytest.mark.parametrize(
    "script, argv, names",
    [
        pytest.param(["-m", "ganmotion.data.preview"], lambda i: i.preview(
                     shards=i.shards_with(files={"train-*.tar": NOISE})),
                     ("32 shards in a row could not be read", "train-0000", "invalid header"),
                     id="preview: every train shard is noise"),
        pytest.param(["-m", "ganmotion.data.preview"], lambda i: i.preview(
                     shards=i.shards_with(files={"train-*.tar": b""})),
                     ("32 shards in a row could not be read", "train-0000", "empty file"),
                     id="preview: every train shard is empty"),
        pytest.param(["-m", "ganmotion.data.preview"], lambda i: i.preview(shards=i.shards_with(
                     files={"train-*.tar": first_member(".jpg", b"junk", every=True)})),
                     ("32 samples in a row could not be read", "'jpg' is not a decodable"),
                     id="preview: every jpg is junk"),
        pytest.param(["train/gan.py"], lambda i: i.train(shards=i.shards_with(
                     files={"val-*.tar": NOISE})),
                     ("no readable validation samples", "val-000000.tar"),
                     id="train/gan.py: every val shard is noise"),
    ],
)  # fmt: skip
def test_unreadable_shards_warn_then_end_in_one_line(script, argv, names, inputs):
    """Shard data that cannot be read is skipped with a warning (the first few in full, then
    one at each power of ten), so that a run survives a bad sample; when nothing readable is
    left the command ends with one error line naming the shard and the cause, and leaves
    nothing behind. As the user's command: in pytest's process the warnings go to its log
    capture, not to stderr."""
    from ganmotion.data.stream import WARNINGS_IN_FULL

    args = argv(inputs)
    roots = [inputs.tmp, inputs.shards]
    before = snapshot(*roots)
    result = subprocess.run([sys.executable, *script, *args], cwd=REPO, capture_output=True,
                            text=True, timeout=100, preexec_fn=limit_memory)  # fmt: skip
    *warnings, last = result.stderr.splitlines() or [""]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert last.startswith("error: ") and all(n in last for n in names), result.stderr
    assert 1 <= len(warnings) <= WARNINGS_IN_FULL + 2, result.stderr  # in full, then 10, 100
    assert all(line.startswith("skipping unreadable") for line in warnings), result.stderr
    assert snapshot(*roots) == before


# ----------------------------------------------------------------------------- argparse


@pytest.mark.parametrize(
    "entry, argv, flag",
    [
        pytest.param("prepare", lambda i: i.prepare(None, None, "--size", "big"), "--size",
                     id="prepare: --size big"),
        pytest.param("prepare", lambda i: i.prepare(None, None, "--crop", "square"), "--crop",
                     id="prepare: --crop square"),
        pytest.param("preview", lambda i: i.preview(None, "--count", "many"), "--count",
                     id="preview: --count many"),
        pytest.param("synth", lambda i: i.synth(None, "--frames", "0"), "--frames",
                     id="synth: --frames 0"),
        pytest.param("synth", lambda i: i.synth(None, "--fps", "fast"), "--fps",
                     id="synth: --fps fast"),
        pytest.param("train", lambda i: [*i.train(), "--resume"], "--resume",
                     id="train: --resume without a value"),
        pytest.param("export", lambda i: i.export(None, "--opset", "twenty"), "--opset",
                     id="export: --opset twenty"),
        pytest.param("to_trt", lambda i: ["--out", str(i.tmp / "g.plan")], "--onnx",
                     id="to_trt: neither --onnx nor --checkpoint"),
        pytest.param("infer", lambda i: i.infer(None, "--batch", "8.5"), "--batch",
                     id="infer: --batch 8.5"),
        pytest.param("infer", lambda i: i.infer(None, "--backend", "tflite"), "--backend",
                     id="infer: --backend tflite"),
        pytest.param("eval", lambda i: i.eval(None, None, "--max-frames", "all"),
                     "--max-frames", id="eval: --max-frames all"),
    ],
)  # fmt: skip
def test_argparse_refuses_with_its_usage(entry, argv, flag, inputs, capsys):
    """A value of the wrong type for a flag: argparse's own contract, exit status 2, its
    usage (which may wrap) and then one `error:` line naming the flag; nothing written."""
    args = argv(inputs)
    capsys.readouterr()
    before = snapshot(inputs.tmp)
    with pytest.raises(SystemExit) as exit_:
        entry_point(entry)(args)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert exit_.value.code == 2 and out == "", err
    assert lines[0].startswith("usage: ") and "Traceback" not in err, err
    assert ": error: " in lines[-1] and flag in lines[-1], err
    assert not any(": error: " in line for line in lines[:-1]), err
    assert snapshot(inputs.tmp) == before


# ----------------------------------------------------------------------------- as a user


@pytest.mark.parametrize(
    "script, argv, names",
    [
        pytest.param(["train/gan.py"], lambda i: i.train(out_dir=i.a_file),
                     ("a_file", "not a directory"), id="train/gan.py: run.out_dir is a file"),
        # OpenCV warns natively (on descriptor 2) about the image it cannot open: only our
        # line may reach the user.
        pytest.param(["train/gan.py"],
                     lambda i: i.train(shards=i.shards_with(files={"plate.png": None})),
                     ("plate.png",), id="train/gan.py: plate.png missing"),
        pytest.param(["export/to_onnx.py"], lambda i: ["--checkpoint", str(i.checkpoint),
                     "--out", str(i.read_only / "g.onnx")], ("read-only",),
                     id="export/to_onnx.py: read-only folder"),
        pytest.param(["infer/video.py"],
                     lambda i: i.infer(None, "--summary-json", str(i.tmp / "missing" / "s.json")),
                     ("missing", "does not exist"), id="infer/video.py: --summary-json folder"),
        # FFmpeg prints "moov atom not found" natively for a file that is no video.
        pytest.param(["infer/video.py"], lambda i: i.infer(source=i.file("n.mp4", NOISE)),
                     ("n.mp4", "not a readable video"), id="infer/video.py: --source is noise"),
        # In a process of its own, under a memory limit: a preview that failed to check
        # would draw ~100 GiB of samples and take the machine with it.
        pytest.param(["-m", "ganmotion.data.preview"],
                     lambda i: i.preview(None, "--count", "64", "--size", "4096"),
                     ("--count 64", "GiB"), id="preview: a grid too large for memory"),
        pytest.param(["-m", "ganmotion.eval"],
                     lambda i: i.eval(shards=object_pose(i.shards, i.tmp / "shards")),
                     ("pose.npy",), id="ganmotion.eval: object pose.npy"),
    ],
)  # fmt: skip
def test_as_a_user_meets_it(script, argv, names, inputs):
    args = argv(inputs)
    roots = [inputs.tmp, inputs.shards, inputs.video.parent, inputs.checkpoint.parent]
    before = snapshot(*roots)
    result = subprocess.run(
        [sys.executable, *script, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
    )
    assert_one_line(result.returncode, result.stdout, result.stderr, *names)
    assert snapshot(*roots) == before
