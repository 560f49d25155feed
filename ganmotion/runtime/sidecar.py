"""Where an exported model's JSON sidecar lives, and reading it.

    gen.onnx -> gen.json        written by `ganmotion.export.onnx`
    gen.plan -> gen.plan.json   written by `ganmotion.export.tensorrt`

The runner reads the target body from it (`ganmotion.runtime.target`) and every backend of an
exported model its skeleton style (`sidecar_skeleton`); the engine build starts its own from
the ONNX's. A composed model (one with an `alpha` output) also has `"alpha": true` and
`"background"`, the name of a PNG beside the model that holds the plate baked into it
(gen.onnx -> gen.background.png, gen.plan -> gen.plan.background.png): the exact pixels of
the constant, which putting the person on another background subtracts
(`sidecar_background`). Sidecars from before composition have neither key.
"""

from __future__ import annotations

from pathlib import Path

from ganmotion.errors import GanmotionError
from ganmotion.files import read_json_object
from ganmotion.pose.render import SkeletonStyle


def sidecar_path(model: Path) -> Path:
    """Where a model's JSON sidecar lives: gen.onnx -> gen.json; an engine gen.plan ->
    gen.plan.json, so that it never overwrites the sidecar of the ONNX it was built from."""
    model = Path(model)
    if model.suffix == ".onnx":
        return model.with_suffix(".json")
    return model.with_name(model.name + ".json")


def background_path(model: Path) -> Path:
    """Where the plate baked into a composed model is written beside it: gen.onnx ->
    gen.background.png; an engine gen.plan -> gen.plan.background.png."""
    model = Path(model)
    stem = model.stem if model.suffix == ".onnx" else model.name
    return model.with_name(stem + ".background.png")


def read_sidecar(model: Path) -> dict | None:
    """A model's sidecar as a dict, None when there is none."""
    path = sidecar_path(model)
    if not path.is_file():
        return None
    return read_json_object(path, "sidecar")


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


def sidecar_background(model: Path, size: int):
    """The plate baked into the composed `model` of `size` px images, (3, size, size) float32
    in [-1, 1], read from the PNG its sidecar names; None when the sidecar names none (a
    model without alpha, or one exported before composition). A named file that is missing,
    unreadable or of another size is an error naming it."""
    sidecar = read_sidecar(model) or {}
    name = sidecar.get("background")
    if name is None:
        return None
    path = Path(model).parent / str(name)
    if not path.is_file():
        raise GanmotionError(
            f"{path}: missing; {sidecar_path(model).name} names it as the background baked "
            f"into {Path(model).name} (the export writes it beside the model: copy them together)"
        )
    from ganmotion.training.checkpoint import load_background

    return load_background(path, size)
