"""benchmarks/gpu_check.py: its smoke run on the CPU (so that the check cannot rot while no
GPU is around), and the time limits that keep one part from eating the others."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_smoke_run_goes_through_every_part_and_reports_each(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke"]
    result = subprocess.run(
        [*command, "--out", str(out)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    parts = report["parts"]
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(
        ["prepare", "quality", "training", "runner", "generator", "tests"], "ok"
    )
    assert parts["prepare"]["results"]["splits"]["val"] > 0
    quality = parts["quality"]["results"]
    assert quality["steps"] > 0 and quality["median_images_per_second"] > 0
    assert 0 < quality["eval"]["gan"]["ssim"] < 1 and "nearest" in quality["eval"]
    training = parts["training"]["results"]
    assert training["median_images_per_second"] > 0
    assert training["gpu_utilisation"] is None and training["gpu_utilisation_missing"]
    runner = parts["runner"]["results"]
    assert runner["frames"] == 48 and runner["bottleneck"] in runner["stage_frames_per_second"]
    generator = parts["generator"]["results"]["sizes"]["64"]
    assert generator["best"]["frames_per_s"] > 0 and generator["batch1"]["latency_ms"] > 0
    assert parts["tests"]["results"]["counts"]["skipped"] > 0  # no CUDA here
    # What the device tool brings back: at most 8 files, the model for the pose columns too.
    files = sorted(p.name for p in out.iterdir())
    assert {"gpu_check.json", "gpu_check.md", "gen.onnx", "gen.json"} <= set(files)
    assert len(files) <= 8
    text = (out / "gpu_check.md").read_text()
    for heading in ("## Generator", "## Training", "## Runner", "## Quality", "## Tests"):
        assert heading in text
    # The versions a result depends on, named in the header.
    assert f"numpy {np.__version__}, opencv {cv2.__version__}, onnx " in text


def test_a_part_over_its_limit_is_killed_with_its_children_and_the_next_part_runs(tmp_path):
    marker = tmp_path / "child-alive"
    # A command that starts a child of its own, as train/gan.py starts loader workers.
    child = f"import time, pathlib; time.sleep(4); pathlib.Path({str(marker)!r}).touch()"
    parent = (
        "import subprocess, sys, time; "
        f"subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(60)"
    )
    runner = gpu_check.Runner(tmp_path, dict(os.environ))
    slow, quick = gpu_check.Part("slow", limit_s=1.5), gpu_check.Part("quick", limit_s=30)
    started = time.perf_counter()
    runner.part_of(slow, lambda results: runner.run("sleep", sys.executable, "-c", parent))
    assert time.perf_counter() - started < 15
    assert slow.status == "timed out" and "limit of 1.5 s" in slow.reason
    assert slow.commands[0].returncode is None
    runner.part_of(
        quick, lambda results: results.update(said=runner.run("echo", "echo", "hi").tail)
    )
    assert quick.status == "ok" and quick.results == {"said": ["hi"]}
    time.sleep(5)
    assert not marker.exists()  # the child went with its parent


def test_a_failing_command_fails_its_part_with_its_last_line(tmp_path):
    runner = gpu_check.Runner(tmp_path, dict(os.environ))
    part = gpu_check.Part("broken", limit_s=30)
    failing = "import sys; print('first'); sys.exit('the reason it failed')"
    runner.part_of(part, lambda results: runner.run("fail", sys.executable, "-c", failing))
    assert part.status == "failed"
    assert part.reason == "fail exited 1: the reason it failed"
    assert part.commands[0].tail == ["first", "the reason it failed"]


def test_pytest_counts_and_notes_are_read_from_its_summary():
    lines = [
        "SKIPPED [2] tests/test_gpu.py:48: no CUDA GPU here",
        "FAILED tests/test_gpu.py::test_x - AssertionError",
        "1 failed, 3 passed, 2 skipped, 5 deselected in 4.10s",
    ]
    counts = gpu_check.pytest_counts(lines)
    assert counts["counts"] == {"failed": 1, "passed": 3, "skipped": 2, "deselected": 5}
    assert counts["notes"] == lines[:2]


def test_a_bundle_without_its_poses_is_named(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.raises(SystemExit, match="clip.keypoints.npy is missing"):
        gpu_check.bundle_clip(tmp_path)
    with pytest.raises(SystemExit, match="expected one .mp4"):
        gpu_check.bundle_clip(tmp_path / "nowhere")
