"""`make demo`, shortened (fewer frames and training steps), end to end: it must leave the
side-by-side video and a report that names its files, so the README's first command stays true;
each step keeps a log, and a failing step says which it was and where its log is.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import free_port

from ganmotion.video import probe_video

ROOT = Path(__file__).resolve().parents[1]
# The demo's steps without VIDEO and SOURCE, each with its log in OUT/logs/<step>.log.
STEPS = ("synthetic", "prepare", "preview", "source", "train", "export", "eval", "infer", "report")


def needs_make() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")


def test_a_failing_demo_step_names_itself_and_its_log(tmp_path):
    needs_make()
    out = tmp_path / "demo"
    result = subprocess.run(
        ["make", "-C", str(ROOT), "demo", f"OUT={out}", "VIDEO=/nonexistent.mp4"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    log = out / "logs" / "prepare.log"
    assert f"make demo: step 'prepare' failed (exit 1); its log: {log}" in result.stderr
    assert "/nonexistent.mp4" in log.read_text()  # the step's own error, kept
    assert not (out / "logs" / "train.log").exists()  # the demo stopped there


@pytest.mark.slow
def test_make_demo_leaves_the_video_and_the_report(tmp_path):
    needs_make()
    out = tmp_path / "demo"
    result = subprocess.run(
        ["make", "-C", str(ROOT), "demo", f"OUT={out}", "DEMO_STEPS=4", "DEMO_FRAMES=120",
         "DEMO_SOURCE_FRAMES=40", f"DEMO_PORT={free_port()}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    result_video = probe_video(out / "result.mp4")
    assert result_video.frame_count == probe_video(out / "source.mp4").frame_count == 40
    assert result_video.width == 3 * result_video.height  # source | skeleton | generated
    summary = json.loads((out / "infer.json").read_text())
    assert summary["frames"] == 40 and summary["frames_per_second"] > 0
    report = (out / "report.md").read_text()
    for name in ("result.mp4", "gen.onnx", "preview.png", "source.mp4", "contact_sheet.png"):
        assert name in report
    assert "## Quality on held-out frames" in report and "| nearest |" in report
    assert "| gan |" in report and (out / "eval" / "report.json").is_file()
    assert (out / "gen.onnx").is_file() and (out / "gen.json").is_file()
    for step in STEPS:
        assert (out / "logs" / f"{step}.log").stat().st_size > 0, step
