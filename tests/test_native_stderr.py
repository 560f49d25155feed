"""Library noise (FFmpeg, OpenCV, MediaPipe, TF Lite, printed natively) kept off stderr."""

import os
import subprocess
import sys

import pytest

from ganmotion.native_stderr import without_noise

NOISE_LINES = [
    b"W0000 00:00:1796101326.011806   31883 inference_feedback_manager.cc:114] Feedback manager "
    b"requires a model with a single signature inference.",
    b"I0000 00:00:1796101326.1   31883 gl_context.cc:357] GL version: 3.2",
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x563e406ad880] moov atom not found",
    b"[h264 @ 0x55fd3b956300] Invalid NAL unit size (574 > 353).",
    b"[ WARN:0@0.112] global cap.cpp:175 open VIDEOIO(CV_IMAGES): raised OpenCV exception",
]


@pytest.mark.parametrize("line", NOISE_LINES)
def test_library_noise_is_dropped(line):
    assert without_noise(line) == b""


def test_a_bar_keeps_its_part_when_noise_follows_it_in_one_read():
    bar = b"\rpose:  42%|####      | 42/100"
    assert without_noise(bar + NOISE_LINES[0]) == bar


@pytest.mark.parametrize(
    "line",
    [
        b"error: clip.mp4: not a readable video (InvalidDataError)",
        b"Traceback (most recent call last):",
        b"WARNING ganmotion.data.stream: skipping unreadable shard data",
        b"[2026-12-01 04:46:06,529] [WARNING] [real_accelerator.py:213:get_accelerator] CPU",
        b"E0000 00:00:1796101326.0   1 calculator.cc:1] an error of MediaPipe's is kept",
    ],
)
def test_everything_else_is_kept(line):
    assert without_noise(line) == line + b"\n"


NOISY_COMMAND = r"""
import multiprocessing, os, sys, time
from ganmotion.errors import GanmotionError, command_line

def child():
    os.write(2, b"W0000 00:00:1796101326.5   7 landmark_projection_calculator.cc:186] child\n")
    os.write(2, b"a child's own line\n")

@command_line
def main():
    os.write(2, b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x563e406ad880] moov atom not found\n")
    sys.stderr.write("\rbar 1/2")
    sys.stderr.flush()
    for part in (b"INFO: ", b"Created TensorFlow Lite XNNPACK delegate for CPU.", b"\n"):
        os.write(2, part)  # as TF Lite writes it: in parts
        time.sleep(0.05)
    os.write(2, b"[h264 @ 0x55fd3b956300] ")
    time.sleep(0.05)
    os.write(2, b"Invalid NAL unit size (574 > 353).\n")
    os.write(2, b"INFO: a line of ours that only starts like theirs\n")
    sys.stderr.write("\rbar 2/2\n")
    process = multiprocessing.get_context("spawn").Process(target=child)
    process.start()
    process.join()
    raise GanmotionError("clip.mp4: not a readable video")

if __name__ == "__main__":
    raise SystemExit(main())
"""


def run_noisy(tmp_path, **env_extra) -> subprocess.CompletedProcess:
    script = tmp_path / "noisy.py"
    script.write_text(NOISY_COMMAND)
    env = {k: v for k, v in os.environ.items() if k != "GANMOTION_NATIVE_LOGS"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True,
                            env={**env, **env_extra})  # fmt: skip
    result.stderr = result.stderr.decode()  # not text=True: it would turn \r into \n
    return result


def test_a_command_shows_its_own_lines_and_not_the_noise(tmp_path):
    result = run_noisy(tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "\rbar 1/2INFO: a line of ours that only starts like theirs\n\rbar 2/2\n"
        "a child's own line\nerror: clip.mp4: not a readable video\n"
    )


def test_the_noise_shows_when_asked_for(tmp_path):
    result = run_noisy(tmp_path, GANMOTION_NATIVE_LOGS="1")
    assert result.returncode == 1
    for noise in ("moov atom not found", "INFO: Created TensorFlow Lite", "] child"):
        assert noise in result.stderr


def test_ffmpegs_complaint_about_a_broken_video_is_not_shown(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(os.urandom(20000))
    result = subprocess.run(
        [sys.executable, "-m", "ganmotion.data.prepare", "--video", str(broken), "--out",
         str(tmp_path / "shards"), "--quiet"],
        capture_output=True, text=True,
        env={k: v for k, v in os.environ.items() if k != "GANMOTION_NATIVE_LOGS"},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == f"error: {broken}: not a readable video (InvalidDataError)\n"
