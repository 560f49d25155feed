"""SIGKILL (the OOM killer, a lost node, `kill -9`) in the middle of a command's writing, then
the same command again: it succeeds, resumes where that applies, and nothing stale remains."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import default_sigint, listing, make_checkpoint

from ganmotion.training import checkpoint as ckpt

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent


def hidden(folder: Path) -> list[str]:
    return [name for name in listing(folder) if name.startswith(".")]


def kill_while_writing(command: list[str], folder: Path, timeout: float = 180) -> None:
    """Run `command` and SIGKILL it as soon as a hidden temporary appears in `folder`."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not hidden(folder):
        assert process.poll() is None, f"{command[1]} ended before writing anything partial"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    process.kill()
    process.wait()
    assert hidden(folder), "the killed command left nothing: the test shows nothing"


def again(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture
def checkpoint(synthetic_shards, tmp_path) -> Path:
    return make_checkpoint(tmp_path / "checkpoints", 64, synthetic_shards)


def test_prepare_killed_then_run_again(synthetic_clip, tmp_path):
    video, keypoints = synthetic_clip
    out = tmp_path / "out"
    out.mkdir()
    command = [PYTHON, "-m", "ganmotion.data.prepare", "--video", str(video), "--keypoints",
               str(keypoints), "--out", str(out / "shards"), "--size", "64", "--quiet"]  # fmt: skip
    kill_while_writing(command, out)
    again(command)
    assert listing(out) == ["shards"]
    assert not hidden(out / "shards")


def test_export_killed_then_run_again(checkpoint, tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    command = [PYTHON, str(ROOT / "export" / "to_onnx.py"), "--checkpoint", str(checkpoint),
               "--out", str(out / "gen.onnx")]  # fmt: skip
    kill_while_writing(command, out)
    again(command)
    assert not hidden(out) and "gen.onnx" in listing(out)


def test_infer_killed_then_run_again(checkpoint, synthetic_clip, tmp_path):
    video, keypoints = synthetic_clip
    out = tmp_path / "videos"
    out.mkdir()
    command = [PYTHON, str(ROOT / "infer" / "video.py"), "--source", str(video), "--poses",
               str(keypoints), "--model", str(checkpoint), "--out", str(out / "result.mp4"),
               "--quiet"]  # fmt: skip
    kill_while_writing(command, out)
    again(command)
    assert listing(out) == ["result.mp4"]


KILLED_IN_A_SAVE = """
import os, signal, sys
from ganmotion.config import load_config
from ganmotion.training import checkpoint as ckpt
from ganmotion.training.config import GanConfig
from ganmotion.training.loop import Trainer

write_checksums = ckpt.write_checksums

def killed_at_step_4(folder):  # every file of the save is written but its checksums
    if folder.name == "step-000004.partial":
        os.kill(os.getpid(), signal.SIGKILL)
    write_checksums(folder)

ckpt.write_checksums = killed_at_step_4
config = load_config(GanConfig, sys.argv[1], sys.argv[2:])
Trainer(config).run()
"""


def test_training_killed_in_a_checkpoint_save_resumes_from_the_one_before(
    synthetic_shards, tmp_path
):
    overrides = [f"data.shards={synthetic_shards}", f"run.out_dir={tmp_path}",
                 "run.tensorboard=false", "run.steps=6", "run.checkpoint_every=2"]  # fmt: skip
    config = str(ROOT / "configs" / "gan_tiny.yaml")
    killed = subprocess.run([PYTHON, "-c", KILLED_IN_A_SAVE, config, *overrides],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    root = tmp_path / "checkpoints"
    assert listing(root) == ["step-000002", "step-000004.partial"]
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "running"  # SIGKILL

    result = subprocess.run(
        [PYTHON, str(ROOT / "train" / "gan.py"), "--config", config, *overrides,
         "--resume", "latest"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resumed from {root / 'step-000002'} at step 2" in result.stdout
    assert "step-000006" in listing(root)
    assert not [name for name in listing(root) if name.endswith(".partial")]
    assert ckpt.damage(root / "step-000006") is None
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "finished"


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def spawned_workers(pid: int) -> list[int]:
    """The children of `pid` that are multiprocessing's spawned workers (not, for instance,
    the `ldconfig -p` that importing torch runs, nor the resource tracker)."""
    found = []
    for child in children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if b"spawn_main" in command:
            found.append(child)
    return found


def interrupt_group(command: list[str], after: float, cwd: Path) -> subprocess.CompletedProcess:
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group, workers included,
    `after` seconds after the first worker process started (it is importing MediaPipe)."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=cwd,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 120
    while not spawned_workers(process.pid):
        assert process.poll() is None and time.monotonic() < deadline, "no worker started"
        time.sleep(0.01)
    time.sleep(after)
    assert process.poll() is None, "finished before the Ctrl-C: the test shows nothing"
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, "", err)


@pytest.mark.parametrize("entry", ["prepare", "infer"])
def test_ctrl_c_with_pose_workers_is_one_line_and_leaves_nothing(
    entry, checkpoint, synthetic_clip, tmp_path
):
    video, _ = synthetic_clip
    out = tmp_path / "out"
    out.mkdir()
    if entry == "prepare":
        command = [PYTHON, "-m", "ganmotion.data.prepare", "--video", str(video), "--out",
                   str(out / "shards"), "--size", "64", "--workers", "2", "--quiet"]  # fmt: skip
    else:
        command = [PYTHON, str(ROOT / "infer" / "video.py"), "--source", str(video), "--model",
                   str(checkpoint), "--out", str(out / "result.mp4"), "--pose-workers", "2",
                   "--quiet"]  # fmt: skip
    result = interrupt_group(command, after=1.0, cwd=tmp_path)
    assert result.returncode == 130, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr
    assert result.stderr.splitlines()[-1] == "interrupted"
    assert listing(out) == []
