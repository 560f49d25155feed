"""Where an exported model's JSON sidecar lives, and reading it.

    gen.onnx -> gen.json        written by `ganmotion.export.onnx`
    gen.plan -> gen.plan.json   written by `ganmotion.export.tensorrt`

The runner reads the target body from it (`ganmotion.runtime.target`) and every backend of an
exported model its skeleton style (`sidecar_skeleton`); the engine build starts its own from
the ONNX's.
"""

from __future__ import annotations

import json
from pathlib import Path

from ganmotion.errors import GanmotionError
from ganmotion.pose.render import SkeletonStyle


def sidecar_path(model: Path) -> Path:
    """Where a model's JSON sidecar lives: gen.onnx -> gen.json; an engine gen.plan ->
    gen.plan.json, so that it never overwrites the sidecar of the ONNX it was built from."""
    model = Path(model)
    if model.suffix == ".onnx":
        return model.with_suffix(".json")
    return model.with_name(model.name + ".json")


def read_sidecar(model: Path) -> dict | None:
    """A model's sidecar as a dict, None when there is none."""
    path = sidecar_path(model)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise GanmotionError(f"{path}: unreadable sidecar ({error})") from None


def sidecar_skeleton(model: Path, size: int) -> SkeletonStyle:
    """How the exported `model` of `size` px images wants its skeletons drawn: its sidecar's
    `skeleton` entry. A model exported before there was one (or without a sidecar) gets the
    defaults for its size, what every runner drew before styles were saved."""
    entry = (read_sidecar(model) or {}).get("skeleton")
    if entry is None:
        return SkeletonStyle.for_size(size)
    where = f"{sidecar_path(model)}: skeleton"
    style = SkeletonStyle.from_dict(entry, where)
    style.check_size(size, where)
    return style
