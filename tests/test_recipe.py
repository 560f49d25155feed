"""`ganmotion train-video`: input errors before anything is written, the stages in order with
the training's schedules on the budget's clock (commands stubbed, a fake clock), a failing
stage named with its log, and (slow) the real thing on a tiny synthetic clip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ganmotion import recipe
from ganmotion.recipe import Options, Recipe

ROOT = Path(__file__).resolve().parents[1]
GANMOTION = Path(sys.executable).with_name("ganmotion")
STAGES = ["prepare", "train", "export", "eval"]


def exit_status(argv: list[str]) -> int:
    try:
        return recipe.main(argv)
    except SystemExit as stop:  # argparse's usage errors
        return stop.code


@pytest.fixture
def video(tmp_path) -> Path:
    path = tmp_path / "me.mp4"
    path.write_bytes(b"not looked at before prepare")
    return path


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--minutes", "60"], "error: the following arguments are required: --video"),
        (["--video", "{tmp}/gone.mp4", "--minutes", "60"], "error: --video {tmp}/gone.mp4: no"),
        (["--video", "{video}", "--minutes", "0"], "error: --minutes must be > 0, got 0"),
        (["--video", "{video}", "--minutes", "-5"], "error: --minutes must be > 0, got -5"),
        (["--video", "{video}", "--minutes", "nan"], "error: --minutes must be > 0, got nan"),
        (["--video", "{video}", "--minutes", "x"], "error: argument --minutes: invalid float"),
        (["--video", "{video}", "--minutes", "1", "--processes", "0"], "--processes must be"),
        (["--video", "{video}", "--minutes", "1", "--size", "100"], "does not fit a depth-6"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    arguments, message, video, tmp_path, capsys
):
    out = tmp_path / "out"
    filled = [a.format(tmp=tmp_path, video=video) for a in arguments]
    assert exit_status([*filled, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message.format(tmp=tmp_path) in err
    assert not out.exists()


def test_the_console_script_knows_train_video(tmp_path):
    result = subprocess.run(
        [str(GANMOTION), "train-video", "--video", str(tmp_path / "x.mp4"), "--minutes", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == f"error: --video {tmp_path / 'x.mp4'}: no such file\n"


class Machine:
    """The stages' commands, stubbed: each records its command, takes `seconds[stage]` of a
    fake clock, and prepare leaves the manifest that the ETA reads."""

    def __init__(self, out: Path, seconds: dict[str, float]):
        self.out, self.seconds, self.now = out, seconds, 0.0
        self.commands: dict[str, list[str]] = {}

    def clock(self) -> float:
        return self.now

    def run(self, command: list[str], log: Path, env: dict[str, str]) -> int:
        stage = log.stem
        assert env["ACCELERATE_USE_CPU"] == "1" and env["OMP_NUM_THREADS"] == "1"
        self.commands[stage] = command
        self.now += self.seconds[stage]
        if stage == "prepare":
            shards = self.out / "shards"
            shards.mkdir(parents=True)
            manifest = {"splits": {"val": {"samples": 40}}}
            (shards / "manifest.json").write_text(json.dumps(manifest))
        return 0


def test_stages_run_in_order_and_training_fills_the_budget(video, tmp_path, capsys):
    out = tmp_path / "out"
    seconds = {"prepare": 10, "train": 600, "export": 20, "eval": 40}
    machine = Machine(out, seconds)
    Recipe(Options(video, out, minutes=10), machine.run, machine.clock)()
    assert list(machine.commands) == STAGES
    assert all(f"{name}.log" in line for name, line in zip(STAGES, stage_lines(capsys)))
    train = machine.commands["train"]
    assert train[train.index("--num_processes") + 1] == "2" and "--multi_gpu" in train
    assert f"run.out_dir={out / 'run'}" in train and "data.stream.size=256" in train
    # The whole budget, the learning rates decaying over its minutes, run.steps only a cap.
    assert train[-3:] == ["run.schedule_by=time", "run.max_minutes=10", "run.steps=1000000000"]
    assert "--resume" not in train
    assert machine.commands["export"][-4:] == ["--checkpoint", str(out / "run"), "--out",
                                               str(out / "gen.onnx")]  # fmt: skip
    assert machine.commands["eval"][-9:] == [
        "--compare", "nearest", f"gan={out / 'gen.onnx'}", "--shards", str(out / "shards"),
        "--out", str(out / "eval"), "--max-frames", "100",
    ]  # fmt: skip


def stage_lines(capsys) -> list[str]:
    return [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("train-video [")
    ]


def test_each_stage_line_says_the_time_so_far_and_to_go(video, tmp_path, capsys):
    out = tmp_path / "out"
    seconds = {"prepare": 10, "train": 620, "export": 20, "eval": 40}
    machine = Machine(out, seconds)
    Recipe(Options(video, out, minutes=10), machine.run, machine.clock)()
    # ETA after prepare: the budget, export (30 s) and eval (60 s + 4 s x 40 held-out frames);
    # after training (20 s of start-up over the budget), export and eval.
    assert [line.split("]")[0] for line in stage_lines(capsys)] == [
        "train-video [0:00:00",
        "train-video [0:00:10, 0:14:10 to go",
        "train-video [0:10:30, 0:04:10 to go",
        "train-video [0:10:50, 0:03:40 to go",
    ]


def test_a_failing_stage_names_itself_and_its_log(video, tmp_path, capsys):
    out = tmp_path / "out"
    assert exit_status(["--video", str(video), "--minutes", "1", "--out", str(out)]) == 1
    log = out / "logs" / "prepare.log"
    err = capsys.readouterr().err
    assert err == f"train-video: stage 'prepare' failed (exit 1); its log: {log}\n"
    assert str(video) in log.read_text()  # prepare's own error, kept
    assert not (out / "logs" / "train.log").exists()


@pytest.mark.slow
def test_train_video_on_a_tiny_clip_leaves_a_model_and_its_evaluation(tmp_path):
    from ganmotion.data.synthetic import write_clip

    clip, keypoints = write_clip(tmp_path / "me.mp4", frames=96, size=128)
    out = tmp_path / "out"
    result = subprocess.run(
        [str(GANMOTION), "train-video", "--video", str(clip), "--keypoints", str(keypoints),
         "--minutes", "0.5", "--size", "64", "--config", str(ROOT / "configs" / "gan_tiny.yaml"),
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "gen.onnx").is_file() and (out / "eval" / "report.md").is_file()
    status = json.loads((out / "run" / "status.json").read_text())
    assert status["state"] == "finished"
    assert [s for s in STAGES if (out / "logs" / f"{s}.log").is_file()] == STAGES
    assert status["stopped"] == "max_minutes" and status["step"] > 1, status
    assert "train-video: done in" in result.stdout
