"""`ganmotion <command> ...`: one entry point over the modules' own command lines."""

from __future__ import annotations

import importlib
import sys

from ganmotion.errors import interrupted_quietly

COMMANDS = {
    "prepare": (
        "ganmotion.data.prepare",
        "video -> pose-annotated person crops in WebDataset shards",
    ),
    "preview": ("ganmotion.data.preview", "a grid of training samples drawn from shards"),
    "synth": ("ganmotion.data.synthetic", "write a synthetic clip with exact keypoints"),
    "export": ("ganmotion.export.onnx", "a checkpoint's generator -> ONNX, parity-checked"),
    "infer": ("ganmotion.runtime.infer", "run a generator over a source video (batched)"),
    "eval": ("ganmotion.eval", "measure generators on held-out frames: quality, pose, flicker"),
    "train-video": (
        "ganmotion.recipe",
        "your video -> prepare, train in a time budget, export, eval (CPU)",
    ),
}


def usage() -> str:
    lines = ["usage: ganmotion <command> [options]   (ganmotion <command> --help for each)", ""]
    lines += [f"  {name:<12} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command '{argv[0]}'\n\n{usage()}", file=sys.stderr)
        return 2
    with interrupted_quietly():  # a Ctrl-C while torch loads: one line, not a traceback
        module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
