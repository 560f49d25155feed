"""The demo's report: what was made, how training went and how fast the runner was.

    python -m ganmotion.report --run demo_out/run --infer demo_out/infer.json \\
        --eval demo_out/eval --out demo_out/report.md [--file "video=demo_out/target.mp4" ...]

Reads the run's metrics.jsonl and status.json, the runner's --summary-json and, if given,
the table of `ganmotion eval`; writes a short Markdown report (atomically) and prints it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganmotion.errors import GanmotionError, command_line
from ganmotion.files import atomic_write


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GanmotionError(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise GanmotionError(f"{path}: not valid JSON ({error})") from None


def training_lines(run: Path) -> list[str]:
    """Steps, validation L1 at the start and the end, losses and speed of the last window."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if "val/l1" in r]
    windows = [r for r in records if any(k.startswith("generator/") for k in r)]
    status = read_json(run / "status.json")
    lines = [f"- run: `{run}` ({status['state']} at step {status['step']})"]
    if val:
        first, last = val[0], val[-1]
        lines.append(
            f"- validation L1 (EMA generator, images in [-1, 1]): {first['val/l1']:.3f} at "
            f"step {first['step']} -> {last['val/l1']:.3f} at step {last['step']}"
        )
    if windows:
        last = windows[-1]
        losses = ", ".join(
            f"{k} {v:.3g}" for k, v in last.items() if k.startswith(("generator/", "critic/"))
        )
        lines.append(f"- losses at step {last['step']}: {losses}")
        speeds = [r["images_per_second"] for r in windows if "images_per_second" in r]
        if speeds:
            lines.append(f"- training speed: {sorted(speeds)[len(speeds) // 2]:.0f} images/s")
    return lines


def inference_lines(summary: dict) -> list[str]:
    stages = ", ".join(f"{k} {v:.1f}" for k, v in summary["stage_frames_per_second"].items())
    return [
        f"- output: `{summary['out']}` from `{summary['source']}` ({summary['backend']}, "
        f"batch {summary['batch_size']})",
        f"- {summary['frames']} frames in {summary['seconds']:.1f} s = "
        f"{summary['frames_per_second']:.1f} frames/s end to end; frames without pose: "
        f"{summary['frames_without_pose']}",
        f"- stage frames/s (busy time): {stages}",
    ]


def quality_lines(evaluation: Path) -> list[str]:
    """The table `ganmotion eval` wrote into `evaluation`/report.md, with its header line."""
    try:
        table = (evaluation / "report.md").read_text().strip()
    except FileNotFoundError:
        raise GanmotionError(f"{evaluation}/report.md: no such file") from None
    return [table, "", f"(contact sheet: `{evaluation / 'contact_sheet.png'}`)"]


def write_report(
    run: Path, infer: Path, out: Path, files: list[tuple[str, str]], evaluation: Path | None
) -> str:
    quality = []
    if evaluation is not None:
        quality = ["## Quality on held-out frames", *quality_lines(evaluation), ""]
    text = "\n".join(
        [
            "# ganmotion demo",
            "",
            "## Files",
            *[f"- {name}: `{path}`" for name, path in files],
            "",
            "## Training",
            *training_lines(run),
            "",
            *quality,
            "## Inference",
            *inference_lines(read_json(infer)),
            "",
        ]
    )
    with atomic_write(out) as tmp:
        tmp.write_text(text)
    return text


@command_line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the training run folder")
    parser.add_argument("--infer", type=Path, required=True, help="the runner's --summary-json")
    parser.add_argument("--eval", type=Path, help="a `ganmotion eval --out` folder to include")
    parser.add_argument("--out", type=Path, required=True, help="the report (.md) to write")
    parser.add_argument(
        "--file", action="append", default=[], metavar="NAME=PATH", help="a file to list"
    )
    args = parser.parse_args(argv)
    files = [tuple(item.split("=", 1)) for item in args.file]
    if any(len(pair) != 2 for pair in files):
        raise GanmotionError("--file takes NAME=PATH")
    if not (args.run / "metrics.jsonl").is_file():
        raise GanmotionError(f"{args.run}: not a training run (no metrics.jsonl)")
    print(write_report(args.run, args.infer, args.out, files, args.eval))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
