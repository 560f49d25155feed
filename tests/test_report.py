"""The demo's report reads a run folder and the runner's summary."""

import json

from ganmotion.report import main


def test_report_gives_losses_and_speed(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    records = [
        {"step": 0, "val/l1": 0.5},
        {"step": 20, "generator/l1": 9.0, "critic/loss": 0.1, "images_per_second": 30.0},
        {"step": 40, "generator/l1": 6.0, "critic/loss": 0.05, "images_per_second": 34.0},
        {"step": 40, "val/l1": 0.2},
    ]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 40}))
    summary = {
        "source": "src.mp4", "out": "out.mp4", "backend": "onnxruntime", "batch_size": 8,
        "frames": 150, "seconds": 10.0, "frames_per_second": 15.0, "frames_without_pose": 2,
        "stage_frames_per_second": {"pose": 27.0, "generate": 31.0},
    }  # fmt: skip
    (tmp_path / "infer.json").write_text(json.dumps(summary))
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "report.md").write_text("45 frames\n\n| model | SSIM |\n| gan | 0.5 |\n")
    out = tmp_path / "report.md"
    assert main(["--run", str(run), "--infer", str(tmp_path / "infer.json"), "--out", str(out),
                 "--file", "video=out.mp4", "--eval", str(evaluation)]) == 0  # fmt: skip
    text = out.read_text()
    assert "## Quality on held-out frames\n45 frames\n\n| model | SSIM |\n| gan | 0.5 |" in text
    assert "0.500 at step 0 -> 0.200 at step 40" in text
    assert "generator/l1 6" in text and "critic/loss 0.05" in text
    assert "150 frames in 10.0 s = 15.0 frames/s" in text and "frames without pose: 2" in text
    assert "- video: `out.mp4`" in text


def test_report_of_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    code = main(["--run", str(tmp_path), "--infer", str(tmp_path / "x.json"),
                 "--out", str(tmp_path / "r.md")])  # fmt: skip
    assert code == 1
    assert (
        capsys.readouterr().err.strip()
        == f"error: {tmp_path}: not a training run (no metrics.jsonl)"
    )
    assert not (tmp_path / "r.md").exists()
