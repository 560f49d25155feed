"""The sbatch scripts in slurm/, run by a real slurmctld + slurmd on this machine (CPU mode).

The cluster is started once for the module (tests/slurm_cluster.py); every job runs the real
scripts from the repository root, as a user would submit them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_checkpoint
from slurm_cluster import LocalSlurm, unavailable

from ganmotion.training import checkpoint as ckpt
from ganmotion.video import VideoWriter, read_frames

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def submit(slurm: LocalSlurm, script: str, *args, log: Path, options=(), env=None) -> str:
    """Submit slurm/`script` from the repository root with this test's interpreter."""
    return slurm.sbatch(
        f"--output={log}", *options, f"slurm/{script}", *map(str, args),
        env={"PYTHON": sys.executable, **(env or {})}, cwd=ROOT,
    )  # fmt: skip


def finished(slurm: LocalSlurm, job: str, timeout: float = 300) -> dict[str, str]:
    [record] = slurm.wait(job, timeout)
    return record


def tiny_run(shards: Path, run_dir: Path, *overrides: str) -> list[str]:
    return [
        "configs/gan_tiny.yaml", f"data.shards={shards}", f"run.out_dir={run_dir}",
        "run.tensorboard=false", "run.log_every=1", *overrides,
    ]  # fmt: skip


# ------------------------------------------------------------------------------- training


def test_two_machines_train_to_the_end(slurm, synthetic_shards, tmp_path):
    log = tmp_path / "train.log"
    job = submit(
        slurm, "train.sbatch", *tiny_run(synthetic_shards, tmp_path / "run", "run.steps=4"),
        log=log, options=["--ntasks-per-node=2", "--cpus-per-task=1"],
    )  # fmt: skip
    record = finished(slurm, job)
    text = log.read_text()
    assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", text
    assert "2 machines x 1 per machine (cpu), main 127.0.0.1:" in text  # the NodeAddr
    assert "machine rank 0 of 2" in text and "machine rank 1 of 2" in text
    assert "world size 2 (cpu)" in text
    assert record["Restarts"] == "0" and "requeue" not in text  # a finished run stays finished
    state = json.loads(
        (ckpt.step_dir(tmp_path / "run" / "checkpoints", 4) / "state.json").read_text()
    )
    assert state["world_size"] == 2 and len(set(state["replica_checksums"])) == 1


def test_preempted_job_checkpoints_requeues_and_finishes(slurm, synthetic_shards, tmp_path):
    run_dir, log, steps = tmp_path / "run", tmp_path / "train.log", 40
    job = submit(
        slurm, "train.sbatch",
        *tiny_run(synthetic_shards, run_dir, f"run.steps={steps}", "run.checkpoint_every=1000"),
        log=log, options=["--ntasks-per-node=2", "--cpus-per-task=1"],
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not any(m.get("step", 0) >= 3 for m in metrics(run_dir)):  # training is under way
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.2)
    slurm.run("scancel", "--signal=USR1", job)
    record = finished(slurm, job)
    text = log.read_text()
    assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", text
    assert record["Restarts"] == "1", text
    preempted_at = int(text.split("preempted at step ")[1].split(":")[0])
    assert 3 <= preempted_at < steps, text
    assert f"resumed from {ckpt.step_dir(run_dir / 'checkpoints', preempted_at)}" in text
    assert f"at step {preempted_at}" in text
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == steps
    # every step trained once: up to the checkpoint before the requeue, the rest after it
    assert [m["step"] for m in metrics(run_dir) if "generator/l1" in m] == list(range(1, steps + 1))


def metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_deepspeed_zero2_through_the_accelerate_config(
    slurm, deepspeed_starts, synthetic_shards, tmp_path
):
    log, run_dir = tmp_path / "train.log", tmp_path / "run"
    job = submit(
        slurm, "train.sbatch", *tiny_run(synthetic_shards, run_dir, "run.steps=2"),
        log=log, options=["--ntasks-per-node=2", "--cpus-per-task=1"],
        env={"DS_ACCELERATOR": "cpu",
             "ACCELERATE_CONFIG": "configs/accelerate/deepspeed_zero2.yaml"},
    )  # fmt: skip
    record = finished(slurm, job)
    assert record["JobState"] == "COMPLETED", log.read_text()
    checkpoint = ckpt.step_dir(run_dir / "checkpoints", 2)
    assert json.loads((checkpoint / "state.json").read_text())["world_size"] == 2
    # one ZeRO optimiser partition per rank: DeepSpeed ran, not DDP
    assert sorted(p.name for p in checkpoint.glob("zero-rank*")) == [
        "zero-rank00000.pt",
        "zero-rank00001.pt",
    ]


def test_a_missing_config_fails_fast_with_the_reason(slurm, tmp_path):
    log = tmp_path / "train.log"
    job = submit(slurm, "train.sbatch", tmp_path / "nope.yaml", log=log)
    record = finished(slurm, job, timeout=60)
    assert record["JobState"] == "FAILED"
    assert f"error: config {tmp_path / 'nope.yaml'} does not exist" in log.read_text()


def test_an_unknown_config_key_fails_before_training(slurm, synthetic_shards, tmp_path):
    log = tmp_path / "train.log"
    args = tiny_run(synthetic_shards, tmp_path / "run", "run.stepz=4")
    record = finished(slurm, submit(slurm, "train.sbatch", *args, log=log), timeout=60)
    assert record["JobState"] == "FAILED"
    assert "stepz" in log.read_text() and not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------ job arrays


@pytest.fixture(scope="module")
def clips(taichi, tmp_path_factory) -> list[Path]:
    """Three 10-frame clips of the sample video at 240x180 (MediaPipe finds the person)."""
    import cv2

    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for index, start in enumerate((0, 300, 600)):
        path = folder / f"clip{index}.mp4"
        with VideoWriter(path, fps=30) as writer:
            for i, frame in enumerate(read_frames(taichi)):
                if i >= start + 10:
                    break
                if i >= start:
                    writer.write(cv2.resize(frame, (240, 180), interpolation=cv2.INTER_AREA))
        paths.append(path)
    return paths


def array(slurm, script: str, entries: list[Path], *args, tmp_path: Path, name: str) -> list:
    listing = tmp_path / f"{name}.txt"
    listing.write_text("# videos\n" + "".join(f"{p}\n\n" for p in entries))
    job = submit(slurm, script, listing, *args, log=tmp_path / f"{name}-%a.log",
                 options=[f"--array=1-{len(entries)}"])  # fmt: skip
    return slurm.wait(job, timeout=300)


def test_inference_array_writes_one_video_per_source_and_skips_them_when_resubmitted(
    slurm, clips, tmp_path
):
    model = make_checkpoint(tmp_path / "checkpoints", size=64)
    out = tmp_path / "outputs"
    records = array(slurm, "infer_array.sbatch", clips, model, out, "--no-retarget",
                    tmp_path=tmp_path, name="first")  # fmt: skip
    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("first-*.log")))
    assert [r["JobState"] for r in records] == ["COMPLETED"] * 3, logs
    for clip in clips:
        summary = json.loads((out / f"{clip.stem}.json").read_text())
        assert summary["frames"] == 10
        assert sum(1 for _ in read_frames(out / f"{clip.stem}.mp4")) == 10
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    records = array(slurm, "infer_array.sbatch", clips, model, out, "--no-retarget",
                    tmp_path=tmp_path, name="again")  # fmt: skip
    assert [r["JobState"] for r in records] == ["COMPLETED"] * 3
    for index in range(1, len(clips) + 1):
        assert "exists: skipping" in (tmp_path / f"again-{index}.log").read_text()
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == written


def test_prepare_array_writes_shards_per_video(slurm, clips, tmp_path):
    records = array(slurm, "prepare_array.sbatch", clips[:2], tmp_path / "shards", "--size", "64",
                    "--val-fraction", "0.2", tmp_path=tmp_path, name="prepare")  # fmt: skip
    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("prepare-*.log")))
    assert [r["JobState"] for r in records] == ["COMPLETED"] * 2, logs
    for clip in clips[:2]:
        manifest = json.loads((tmp_path / "shards" / clip.stem / "manifest.json").read_text())
        assert manifest["image_size"] == 64
        assert np.load(tmp_path / "shards" / clip.stem / "keypoints.npy").shape == (10, 33, 3)


def test_a_missing_video_list_fails_fast_with_the_reason(slurm, tmp_path):
    log = tmp_path / "infer.log"
    job = submit(slurm, "infer_array.sbatch", tmp_path / "none.txt", "gen.onnx", tmp_path / "o",
                 log=log, options=["--array=1"])  # fmt: skip
    record = finished(slurm, job, timeout=60)
    assert record["JobState"] == "FAILED"
    assert f"error: list {tmp_path / 'none.txt'} does not exist" in log.read_text()


# ------------------------------------------------- the list helper, without a cluster


def list_entry(tmp_path: Path, lines: list[str], task: int) -> subprocess.CompletedProcess:
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    return subprocess.run(
        ["bash", "-c", f'source slurm/common.sh; list_entry "{listing}"; echo "$ENTRY|$NAME"'],
        cwd=ROOT, env={**os.environ, "SLURM_ARRAY_TASK_ID": str(task)},
        capture_output=True, text=True,
    )  # fmt: skip


def test_list_entries_skip_comments_and_blank_lines(tmp_path):
    (tmp_path / "v1.0").mkdir()
    videos = [tmp_path / "a.mp4", tmp_path / "v1.0" / "b.mov"]
    for video in videos:
        video.touch()
    lines = ["# sources", str(videos[0]), "", "  ", str(videos[1])]
    assert list_entry(tmp_path, lines, 2).stdout == f"{videos[1]}|b\n"
    beyond = list_entry(tmp_path, lines, 3)
    assert beyond.returncode == 1
    assert "array task 3, but" in beyond.stderr and "--array=1-2" in beyond.stderr


def test_list_entries_with_one_output_name_are_refused(tmp_path):
    (tmp_path / "x").mkdir()
    for video in (tmp_path / "a.mp4", tmp_path / "x" / "a.mkv"):
        video.touch()
    result = list_entry(tmp_path, [str(tmp_path / "a.mp4"), str(tmp_path / "x" / "a.mkv")], 1)
    assert result.returncode == 1 and "2 entries named a" in result.stderr


def test_a_listed_file_that_is_missing_is_named(tmp_path):
    result = list_entry(tmp_path, [str(tmp_path / "gone.mp4")], 1)
    assert result.returncode == 1 and f"{tmp_path / 'gone.mp4'} (line of" in result.stderr
