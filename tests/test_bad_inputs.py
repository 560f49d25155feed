"""Bad inputs to the entry points end in one line (issue 15): exit status 1, exactly one
`error: ...` line on stderr that names the file or the problem, no traceback, and nothing
left behind, hidden temporaries included.

The cases are decided before any heavy work, so most call each command's `main` in this
process; `test_as_a_user_meets_it` runs a few of them as the scripts a user types.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
from conftest import make_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "gan_tiny.yaml"


def entry_point(name: str) -> Callable[[list[str]], int]:
    """The `main` of an entry point, imported when a case uses it."""
    if name == "train":
        from ganmotion.training.cli import main
        from ganmotion.training.config import GanConfig

        return lambda argv: main(GanConfig, argv)
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


def copy_shards(shards: Path, root: Path, edit: Callable[[dict], None] | None = None) -> Path:
    """A copy of `shards` at `root`, its manifest changed by `edit`."""
    shutil.copytree(shards, root)
    if edit is not None:
        manifest = json.loads((root / "manifest.json").read_text())
        edit(manifest)
        (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def object_pose(shards: Path, root: Path) -> Path:
    """A copy of `shards` whose first validation sample's pose.npy is an object array
    (loading it would need pickle)."""
    copy_shards(shards, root)
    tar = root / "val-000000.tar"
    with tarfile.open(tar) as old:
        members = [(m, old.extractfile(m).read()) for m in old.getmembers()]
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    with tarfile.open(tar, "w") as new:
        replaced = False
        for member, data in members:
            if member.name.endswith(".pose.npy") and not replaced:
                data, replaced = buffer.getvalue(), True
                member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return root


def without_step(checkpoint: Path, root: Path) -> Path:
    folder = root / checkpoint.name
    shutil.copytree(checkpoint, folder)
    state = json.loads((folder / "state.json").read_text())
    del state["step"]
    (folder / "state.json").write_text(json.dumps(state))
    return folder


class Inputs:
    """What the cases are made of: the session's clip, shards and checkpoint, and places
    in this test's tmp_path (made when a case asks for them)."""

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
        path.mkdir()
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

    def shards_with(self, edit: Callable[[dict], None]) -> Path:
        return copy_shards(self.shards, self.tmp / "shards", edit)

    def train(self, *overrides: str, out_dir: Path | None = None, shards: Path | None = None):
        out_dir, shards = out_dir or self.tmp / "run", shards or self.shards
        return ["--config", str(TINY), f"data.shards={shards}", f"run.out_dir={out_dir}",
                "run.steps=1", *overrides]  # fmt: skip

    def prepare(self, out: Path, keypoints: Path | None = None) -> list[str]:
        keypoints = keypoints or self.keypoints
        return ["--video", str(self.video), "--keypoints", str(keypoints), "--out", str(out),
                "--size", "32", "--quiet"]  # fmt: skip

    def preview(self, out: Path | None = None, *more: str, shards: Path | None = None):
        out = out or self.tmp / "grid.png"
        return ["--shards", str(shards or self.shards), "--out", str(out), *more]

    def infer(self, out: Path | None = None, *more: str) -> list[str]:
        out = out or self.tmp / "out.mp4"
        return ["--source", str(self.video), "--model", str(self.checkpoint), "--out", str(out),
                "--poses", str(self.keypoints), "--quiet", *more]  # fmt: skip

    def eval(self, out: Path | None = None, shards: Path | None = None) -> list[str]:
        out = out or self.tmp / "eval"
        return ["--model", "mean", "--no-floor", "--no-pose", "--shards",
                str(shards or self.shards), "--out", str(out)]  # fmt: skip


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


def _drop(*keys: str) -> Callable[[dict], None]:
    def edit(manifest: dict) -> None:
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


def _recount(manifest: dict) -> None:
    """The first validation shard said to hold one sample more (and the split with it)."""
    val = manifest["splits"]["val"]
    val["shards"][0]["samples"] += 1
    val["samples"] += 1


def _miscount(manifest: dict) -> None:
    manifest["splits"]["val"]["samples"] += 1  # and not its shards


MISSING = {"splits": ("splits",), "image_size": ("image_size",),
           "a shard's name": ("splits", "train", "shards", 0, "name")}  # fmt: skip

# (entry point, case, arguments from Inputs, what the line must name)
CASES = [
    # manifest.json missing a key: one line naming the file and the key
    *(
        (entry, f"manifest without {what}", argv, ("manifest.json", keys[-1]))
        for what, keys in MISSING.items()
        for entry, argv in (
            ("preview", lambda i, k=keys: i.preview(shards=i.shards_with(_drop(*k)))),
            ("train", lambda i, k=keys: i.train(shards=i.shards_with(_drop(*k)))),
            ("eval", lambda i, k=keys: i.eval(shards=i.shards_with(_drop(*k)))),
        )
    ),
    # sample counts that do not add up, or that the tars contradict
    ("preview", "split total differs from its shards",
     lambda i: i.preview(shards=i.shards_with(_miscount)), ("manifest.json", "splits.val.samples")),
    ("eval", "a shard holds other than the manifest says",
     lambda i: i.eval(shards=i.shards_with(_recount)),
     ("val-000000.tar", "holds 10 samples", "manifest.json says 11")),
    # a read-only output folder: refused before the work
    ("prepare", "read-only folder", lambda i: i.prepare(i.read_only / "shards"), ("read-only",)),
    ("preview", "read-only folder", lambda i: i.preview(i.read_only / "grid.png"), ("read-only",)),
    ("synth", "read-only folder", lambda i: ["--out", str(i.read_only / "c.mp4"), "--frames", "2"],
     ("read-only",)),
    ("train", "read-only folder", lambda i: i.train(out_dir=i.read_only / "run"), ("read-only",)),
    ("export", "read-only folder",
     lambda i: ["--checkpoint", str(i.checkpoint), "--out", str(i.read_only / "g.onnx")],
     ("read-only",)),
    ("to_trt", "read-only folder",
     lambda i: ["--checkpoint", str(i.checkpoint), "--out", str(i.read_only / "g.plan")],
     ("read-only",)),
    ("infer", "read-only folder", lambda i: i.infer(i.read_only / "out.mp4"), ("read-only",)),
    ("eval", "read-only folder", lambda i: i.eval(i.read_only / "eval"), ("read-only",)),
    # a file where a folder is wanted, a folder where a file is wanted
    ("prepare", "--out is a file", lambda i: i.prepare(i.a_file), ("a_file", "not a directory")),
    ("train", "run.out_dir is a file", lambda i: i.train(out_dir=i.a_file),
     ("a_file", "not a directory")),
    ("train", "run.out_dir is under a file", lambda i: i.train(out_dir=i.a_file / "run"),
     ("a_file", "not a directory")),
    ("eval", "--out is a file", lambda i: i.eval(i.a_file), ("a_file", "not a directory")),
    ("preview", "--out is a folder", lambda i: i.preview(i.a_folder("grid.png")),
     ("grid.png", "is a directory")),
    ("preview", "--out has no image extension", lambda i: i.preview(i.tmp / "grid.txt"),
     ("grid.txt", ".png")),
    ("synth", "--out is a folder", lambda i: ["--out", str(i.a_folder("c.mp4")), "--frames", "2"],
     ("c.mp4", "is a directory")),
    ("export", "--out is a folder",
     lambda i: ["--checkpoint", str(i.checkpoint), "--out", str(i.a_folder("g.onnx"))],
     ("g.onnx", "is a directory")),
    ("to_trt", "--out is a folder",
     lambda i: ["--checkpoint", str(i.checkpoint), "--out", str(i.a_folder("g.plan"))],
     ("g.plan", "is a directory")),
    ("infer", "--out is a folder", lambda i: i.infer(i.a_folder("out.mp4")),
     ("out.mp4", "is a directory")),
    ("infer", "--summary-json is a folder",
     lambda i: i.infer(None, "--summary-json", str(i.a_folder("s.json"))),
     ("s.json", "is a directory")),
    ("infer", "--summary-json in a missing folder",
     lambda i: i.infer(None, "--summary-json", str(i.tmp / "missing" / "s.json")),
     ("missing", "does not exist")),
    ("infer", "--save-poses in a missing folder",
     lambda i: i.infer(None, "--save-poses", str(i.tmp / "missing" / "p.npy")),
     ("missing", "does not exist")),
    # numbers out of range, sizes that would not fit in memory
    ("train", "batch size 0", lambda i: i.train("data.stream.batch_size=0"),
     ("data.stream.batch_size", "got 0")),
    ("train", "size 100000", lambda i: i.train("data.stream.size=100000"),
     ("data.stream.size", "100000")),
    ("preview", "--count 0", lambda i: i.preview(None, "--count", "0"), ("--count", "got 0")),
    ("preview", "--size 100000", lambda i: i.preview(None, "--size", "100000"),
     ("--size", "100000")),
    ("synth", "--size 100000",
     lambda i: ["--out", str(i.tmp / "c.mp4"), "--frames", "2", "--size", "100000"],
     ("100000", "GiB")),
    # input files that are not what they should be
    ("prepare", "--keypoints is a folder", lambda i: i.prepare(i.tmp / "o", i.a_folder("kp")),
     ("kp", "is a directory")),
    ("train", "state.json without step",
     lambda i: [*i.train(), "--resume", str(without_step(i.checkpoint, i.tmp))],
     ("state.json", "no step")),
    ("prepare", "a video cut short", lambda i: ["--video", str(i.cut_video), "--out",
     str(i.tmp / "o"), "--quiet"], ("cut.mp4", "of the 96 frames", "--accept-truncated")),
    ("infer", "a source cut short", lambda i: ["--source", str(i.cut_video), "--model",
     str(i.checkpoint), "--out", str(i.tmp / "out.mp4"), "--quiet"],
     ("cut.mp4", "of the 96 frames", "--accept-truncated")),
    ("eval", "pose.npy is an object array",
     lambda i: i.eval(shards=object_pose(i.shards, i.tmp / "shards")),
     ("val-000000.tar", "pose.npy", "not a plain .npy array")),
]  # fmt: skip


@pytest.mark.parametrize(
    "entry, argv, names", [pytest.param(e, a, n, id=f"{e}: {c}") for e, c, a, n in CASES]
)
def test_bad_input_is_one_line_and_leaves_nothing(entry, argv, names, inputs, capsys):
    args = argv(inputs)  # makes the broken inputs, before the snapshot
    main = entry_point(entry)
    capsys.readouterr()
    roots = [inputs.tmp, inputs.shards, inputs.video.parent, inputs.checkpoint.parent]
    before = snapshot(*roots)
    status = main(args)
    out, err = capsys.readouterr()
    assert_one_line(status, out, err, *names)
    assert snapshot(*roots) == before


# ----------------------------------------------------------------------------- as a user

MEMORY_LIMIT = 4 * 2**30  # of each command's data: plenty for these cases, none for a mistake


def limit_memory() -> None:
    """In the child, before the command: allocations past MEMORY_LIMIT fail (MemoryError)
    instead of filling the machine."""
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize(
    "script, argv, names",
    [
        pytest.param(["train/gan.py"], lambda i: i.train(out_dir=i.a_file),
                     ("a_file", "not a directory"), id="train/gan.py: run.out_dir is a file"),
        pytest.param(["export/to_onnx.py"], lambda i: ["--checkpoint", str(i.checkpoint),
                     "--out", str(i.read_only / "g.onnx")], ("read-only",),
                     id="export/to_onnx.py: read-only folder"),
        pytest.param(["infer/video.py"],
                     lambda i: i.infer(None, "--summary-json", str(i.tmp / "missing" / "s.json")),
                     ("missing", "does not exist"), id="infer/video.py: --summary-json folder"),
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
