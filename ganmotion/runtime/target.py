"""Where a model's target body comes from: the manifest of the shards it was trained on.

Retargeting maps a source body onto the target's height and foot position, measured by
`prepare` over the training crops and kept in the shards' manifest.json. A checkpoint finds
its shards through the training config in state.json; an exported model carries the same
entry in its sidecar (export copies it), so a .onnx or .plan runs without the shards.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ganmotion.data.manifest import load_manifest
from ganmotion.errors import GanmotionError
from ganmotion.pose.retarget import BodyStats, target_body
from ganmotion.runtime.sidecar import read_sidecar, sidecar_path


def target_from_shards(shards: str) -> dict:
    """The sidecar entry for a shard root: {"shards", "image_size", "body"}."""
    manifest = load_manifest(shards)
    where = f"{str(shards).rstrip('/')}/manifest.json"
    body = target_body(manifest.body, where)
    return {"shards": str(shards), "image_size": manifest.image_size, "body": body.to_json()}


def checkpoint_target(checkpoint: Path) -> dict | None:
    """The target entry of a checkpoint's training shards; None when they are gone or the
    manifest predates body measurements (the model then needs --target-shards)."""
    from ganmotion.training.checkpoint import read_state

    config = read_state(Path(checkpoint)).get("config")
    data = config.get("data") if isinstance(config, dict) else None
    shards = data.get("shards") if isinstance(data, dict) else None
    if not shards or not isinstance(shards, str):
        return None
    try:
        return target_from_shards(shards)
    except GanmotionError:
        return None


def checked_target(entry: object, where: str) -> dict:
    """`entry` if it is a target entry (an int image_size > 0 and a body), else an error
    naming `where`."""
    try:
        if isinstance(entry["image_size"], bool) or not entry["image_size"] > 0:
            raise ValueError(f"image_size {entry['image_size']!r}")
        BodyStats.from_json(entry["body"])
    except (KeyError, TypeError, ValueError) as error:
        raise GanmotionError(
            f"{where}: expected image_size > 0 and body (height, feet, frames), "
            f"{type(error).__name__}: {error}"
        ) from None
    return entry


def body_at_size(entry: dict, size: int) -> BodyStats:
    """The target body of a sidecar/target entry, in pixels of a size x size image."""
    body = BodyStats.from_json(entry["body"])
    factor = size / entry["image_size"]
    return dataclasses.replace(
        body, height=body.height * factor, feet=tuple(v * factor for v in body.feet)
    )


def target_entry(model: str | Path, target_shards: str | None) -> dict:
    """The target entry ({"shards", "image_size", "body"}) for running `model`: from
    --target-shards when given, else from the checkpoint's training shards or the exported
    model's sidecar."""
    if target_shards is not None:
        return target_from_shards(target_shards)
    path = Path(model)
    entry = None
    if path.is_dir():
        from ganmotion.training.checkpoint import checkpoint_folder

        entry = checkpoint_target(checkpoint_folder(path))
    elif path.is_file():
        entry = (read_sidecar(path) or {}).get("target")
        if entry is not None:
            checked_target(entry, f"{sidecar_path(path)}: target")
    if entry is None:
        raise GanmotionError(
            f"{model}: cannot find the target's body measurements (its training shards are "
            "not reachable and no sidecar carries them): pass --target-shards DIR, or "
            "--no-retarget"
        )
    return entry


def resolve_target(model: str | Path, target_shards: str | None, size: int) -> BodyStats:
    """The target body for running `model` at `size` (see `target_entry`)."""
    return body_at_size(target_entry(model, target_shards), size)
