import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import default_sigint

from ganmotion.cli import COMMANDS, main

GANMOTION = Path(sys.executable).with_name("ganmotion")
ROOT = Path(__file__).resolve().parent.parent

# Imported at start-up from PYTHONPATH: a Ctrl-C arrives as torch starts to load.
CTRL_C_IN_IMPORT = """
import os, signal, sys

class CtrlCOnTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlCOnTorch())
"""


def test_usage_lists_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("prepare", "preview", "synth", "export", "infer"))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_commands_help_says_what_it_does_in_whole_sentences(command, capsys):
    """The description under `usage:` once stopped mid-sentence ("... generator within a"):
    it took the docstring's first line, not its first paragraph."""
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    assert exit.value.code == 0
    help_text = capsys.readouterr().out
    description = help_text.split("\n\n")[1]  # after the usage lines
    assert description.rstrip().endswith((".", ")")), description


def test_infer_through_the_console_script_says_what_is_wrong(tmp_path):
    result = subprocess.run(
        [str(GANMOTION), "infer", "--source", str(tmp_path / "nope.mp4"), "--model", "nearest",
         "--out", str(tmp_path / "out.mp4")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1  # the source is checked first: it is cheap
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.mp4'}: no such file"


def test_unknown_command_is_an_error(capsys):
    assert main(["train-everything"]) == 2
    assert "unknown command 'train-everything'" in capsys.readouterr().err


def test_console_script_prints_one_line_and_exits_non_zero(tmp_path):
    result = subprocess.run(
        [
            str(GANMOTION),
            "prepare",
            "--video",
            str(tmp_path / "gone.mp4"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'gone.mp4'}: no such file"
    assert result.stdout == ""


def test_synth_then_prepare_then_preview_through_the_console_script(tmp_path):
    def run(*args):
        subprocess.run([str(GANMOTION), *args], check=True, capture_output=True, timeout=300)

    run("synth", "--out", str(tmp_path / "clip.mp4"), "--frames", "40", "--size", "96")
    run(
        "prepare",
        "--video",
        str(tmp_path / "clip.mp4"),
        "--keypoints",
        str(tmp_path / "clip.keypoints.npy"),
        "--out",
        str(tmp_path / "shards"),
        "--size",
        "64",
        "--quiet",
    )
    run(
        "preview",
        "--shards",
        str(tmp_path / "shards"),
        "--out",
        str(tmp_path / "grid.png"),
        "--count",
        "4",
    )
    assert (tmp_path / "grid.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "command",
    [
        ["infer/video.py", "--help"],
        ["export/to_onnx.py", "--help"],
        ["export/to_trt.py", "--help"],
        ["train/gan.py", "--help"],
        ["train/vanilla.py", "--help"],
        ["-m", "ganmotion.cli", "infer", "--help"],
    ],
)
def test_a_ctrl_c_while_torch_loads_is_one_line(command, tmp_path):
    """torch takes seconds to import: a Ctrl-C then printed a page of traceback into torch."""
    (tmp_path / "sitecustomize.py").write_text(CTRL_C_IN_IMPORT)
    result = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        preexec_fn=default_sigint,
    )
    assert (result.returncode, result.stderr) == (130, "interrupted\n")
