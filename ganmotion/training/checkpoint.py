"""Checkpoints: one directory per step, written atomically, never unpickled on load.

    <run>/checkpoints/step-000500/
        state.json                 step, resolved config, architecture, image size, normalisation,
                                   skeleton style (how the generator's inputs were drawn)
        generator.safetensors      live generator weights
        generator_ema.safetensors  EMA generator (samples, export)
        critic.safetensors         (GAN runs)
        background.png             what an alpha generator composes over at inference (its
                                   image size, RGB): the plate cut by the clip's typical box,
                                   or for a moving camera the mean room around the person
        optimizers.pt              optimiser, scheduler and grad-scaler states (tensors and
                                   numbers only: read with torch.load(weights_only=True))
        rng-rank00000.pt ...       each rank's RNG states, same format
        checksums.json             size and SHA-256 of every other file, written last

Every rank writes its RNG file into `step-000500.partial/`; the main process writes the
rest and renames the folder once everyone is done, so a folder without `.partial` is always
complete. `latest_checkpoint` ignores partial folders. A complete folder can still be
damaged later (a disk error, a copy cut short): resuming checks its files against
checksums.json and falls back to the newest intact checkpoint (`newest_intact`). Partial
folders that a killed run left are removed when the next run starts (`remove_partials`).

The best checkpoint by a validation metric (run.best_metric) is recorded beside them:

    <run>/best.json    {"metric": "val/ssim", "value": 0.83, "step": 500,
                        "checkpoint": "checkpoints/step-000500"}   (relative to <run>)
    <run>/best         symlink -> checkpoints/step-000500: usable wherever a checkpoint
                       folder is

Pruning never deletes the folder that best.json names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ganmotion.config import from_dict
from ganmotion.errors import GanmotionError, one_line
from ganmotion.files import atomic_write, commit_folder, read_json_object
from ganmotion.images import to_unit_range
from ganmotion.models.baselines import MLPConfig, MLPGenerator
from ganmotion.models.generator import (
    ComposeConfig,
    ComposedGenerator,
    GeneratorConfig,
    UNetGenerator,
)
from ganmotion.pose.render import SkeletonStyle

log = logging.getLogger(__name__)

_STEP_DIR = re.compile(r"^step-(\d{6,})$")
FORMAT_VERSION = 2  # 2: checksums.json
CHECKSUMS_FILE = "checksums.json"
# state.json's architecture.generator.class -> the class and its config (constructor arguments)
GENERATORS = {
    "UNetGenerator": (UNetGenerator, GeneratorConfig),
    "MLPGenerator": (MLPGenerator, MLPConfig),
}


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:06d}"


def partial_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:06d}.partial"


def complete_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint folders under `root`, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(root: Path) -> Path | None:
    found = complete_checkpoints(root)
    return found[-1] if found else None


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def write_checksums(folder: Path) -> None:
    """checksums.json: the size and SHA-256 of every file in `folder`. Written last, by the
    main process, once every rank has written its files."""
    sums = {
        p.name: {"bytes": p.stat().st_size, "sha256": _digest(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != CHECKSUMS_FILE
    }
    (folder / CHECKSUMS_FILE).write_text(json.dumps(sums, indent=2))


def damage(folder: Path) -> str | None:
    """What is wrong with a complete checkpoint folder's files (one line), or None when they
    match its checksums.json. Checkpoints of format 1 have no checksums: not checked."""
    try:
        state = json.loads((folder / "state.json").read_text())
        step = int(state["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return "state.json is unreadable or has no step"
    if state.get("format", 1) < 2:
        return None
    try:
        sums = json.loads((folder / CHECKSUMS_FILE).read_text())
    except (OSError, ValueError):
        return f"{CHECKSUMS_FILE} is missing or unreadable"
    for name, expected in sums.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} is {path.stat().st_size} bytes, {expected['bytes']} were written"
        if _digest(path) != expected["sha256"]:
            return f"{name} does not match its checksum"
    if _STEP_DIR.match(folder.name) and int(_STEP_DIR.match(folder.name).group(1)) != step:
        return f"state.json says step {step}"
    return None


def newest_intact(root: Path) -> Path | None:
    """The newest complete checkpoint under `root` whose files match their checksums; each
    damaged newer one is skipped with a warning naming it and what is wrong."""
    for folder in reversed(complete_checkpoints(root)):
        problem = damage(folder)
        if problem is None:
            return folder
        log.warning("skipping damaged checkpoint %s: %s", folder, problem)
    return None


def remove_partials(root: Path) -> list[Path]:
    """Delete the `step-N.partial` folders under `root` that an interrupted save left (call
    before a run saves: they are never complete, and nothing reads them)."""
    if not root.is_dir():
        return []
    partials = [p for p in root.iterdir() if p.name.endswith(".partial") and p.is_dir()]
    for folder in partials:
        shutil.rmtree(folder, ignore_errors=True)
    return partials


def checkpoint_folder(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (out_dir) standing for its newest complete
    checkpoint; anything else comes back as it is, for the caller's own error."""
    path = Path(path)
    if not (path / "state.json").is_file() and (path / "checkpoints").is_dir():
        found = latest_checkpoint(path / "checkpoints")
        if found is None:
            raise GanmotionError(f"{path}: a run folder without a complete checkpoint")
        return found
    return path


def resolve_resume(resume: str, root: Path) -> Path | None:
    """`latest` (the newest intact checkpoint under `root`: damaged newer ones are skipped
    with a warning), `auto` (the same, or None for a fresh start when there is no checkpoint
    yet: what a requeued or resubmitted job wants) or a checkpoint folder (which must be
    intact)."""
    if resume in ("auto", "latest"):
        found = newest_intact(root)
        if found is None and complete_checkpoints(root):
            raise GanmotionError(
                f"{root}: --resume {resume}, but every checkpoint is damaged (see the warnings)"
            )
        if found is None and resume == "latest":
            raise GanmotionError(f"{root}: --resume latest, but there is no complete checkpoint")
        return found
    path = Path(resume)
    if not (path / "state.json").is_file():
        raise GanmotionError(f"{path}: not a checkpoint folder (no state.json)")
    problem = damage(path)
    if problem is not None:
        raise GanmotionError(f"{path}: damaged checkpoint: {problem}")
    return path


def save_weights(module: nn.Module, path: Path) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    save_file(state, str(path))


def load_weights(module: nn.Module, path: Path, partial: bool = False) -> None:
    """Load safetensors weights; keys or shapes that do not fit are an error naming them."""
    if not path.is_file():
        raise GanmotionError(f"{path}: weights file does not exist")
    try:
        state = load_file(str(path))
    except Exception as error:
        raise GanmotionError(f"{path}: not a readable safetensors file ({error})") from None
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if (missing or unexpected or wrong) and not partial:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)):
            if keys:
                shown = ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
                problems.append(f"{label}: {shown}")
        raise GanmotionError(
            f"{path}: weights do not fit this {type(module).__name__} ({'; '.join(problems)});"
            " was it saved from another architecture?"
        )
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    module.load_state_dict(fitting, strict=False)


def read_state(checkpoint: Path) -> dict:
    """A checkpoint's state.json; unreadable (also not text, not JSON) or not a JSON object
    is an error naming it."""
    return read_json_object(checkpoint / "state.json")


def rng_state() -> dict:
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(_tuples(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_tensors(obj: dict, path: Path) -> None:
    torch.save(obj, path)


def load_tensors(path: Path) -> dict:
    """Read a torch file that holds only tensors, numbers and strings: never unpickles code."""
    if not path.is_file():
        raise GanmotionError(f"{path}: file does not exist (incomplete checkpoint?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise GanmotionError(
            f"{path}: not a readable weights-only torch file ({one_line(error)})"
        ) from None


def fresh_folder(folder: Path) -> None:
    """An empty folder at `folder` (what an interrupted save left there is removed)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def check_resumable(checkpoint: Path, state: dict, trainer: str, architecture: dict) -> None:
    """Raise unless a checkpoint's state.json was written by the same kind of trainer with
    the same architecture (each differing argument named)."""
    if state.get("trainer") != trainer:
        raise GanmotionError(
            f"{checkpoint}: a {state.get('trainer')} checkpoint, cannot resume a {trainer} run"
        )
    world_size = state.get("world_size", 1)
    if not isinstance(world_size, int) or isinstance(world_size, bool) or world_size < 1:
        raise GanmotionError(
            f"{checkpoint / 'state.json'}: world_size must be an integer >= 1, got {world_size!r}"
        )
    for name, ours in architecture.items():
        saved = _section(state.get("architecture"), name)
        different = sorted(k for k in ours if saved.get(k) != ours[k])
        if different:
            shown = ", ".join(f"{k} {saved.get(k)!r} vs {ours[k]!r}" for k in different)
            raise GanmotionError(
                f"{checkpoint}: {name} architecture differs from this config ({shown})"
            )


def _section(entry: object, name: str) -> dict:
    """`entry[name]` of a state.json's mapping (a copy), or {} where either is not a mapping."""
    section = entry.get(name) if isinstance(entry, dict) else None
    return dict(section) if isinstance(section, dict) else {}


def finish(root: Path, step: int) -> Path:
    """Rename the partial folder of `step` to its final name: the checkpoint is complete."""
    final = step_dir(root, step)
    # Replaces the same step saved before (e.g. preempted right after a save) only once the
    # new folder is in place: there is never a moment without a complete checkpoint.
    commit_folder(partial_dir(root, step), final, replace=True)
    return final


def prune(root: Path, keep: int, protect: int | None = None) -> None:
    """Delete complete checkpoints but the newest `keep` and the one of step `protect`."""
    protected = None if protect is None else step_dir(root, protect)
    for old in complete_checkpoints(root)[:-keep]:
        if old != protected:
            shutil.rmtree(old, ignore_errors=True)


def read_best(run_dir: Path) -> dict | None:
    """The run's best.json ({"metric", "value", "step", "checkpoint"}), None if it has none."""
    path = Path(run_dir) / "best.json"
    if not path.exists():
        return None
    try:
        best = json.loads(path.read_text())
        return {
            "metric": str(best["metric"]),
            "value": float(best["value"]),
            "step": int(best["step"]),
            "checkpoint": str(best["checkpoint"]),
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GanmotionError(
            f"{path}: unreadable ({error}); delete it to start keeping the best afresh"
        ) from None


def write_best(run_dir: Path, checkpoint: Path, metric: str, value: float) -> dict:
    """Record a complete checkpoint folder of the run as its best: best.json, then the
    `best` symlink, each replaced atomically (a reader sees the old or the new, never none)."""
    run_dir = Path(run_dir)
    target = os.path.relpath(checkpoint, run_dir)  # relative: the run folder can move
    step = int(read_state(checkpoint)["step"])
    best = {"metric": metric, "value": value, "step": step, "checkpoint": target}
    with atomic_write(run_dir / "best.json") as tmp:
        tmp.write_text(json.dumps(best, indent=2))
    link = run_dir / ".best.partial"
    link.unlink(missing_ok=True)  # left by an interrupted write
    os.symlink(target, link)
    os.replace(link, run_dir / "best")
    return best


def generator_class(checkpoint: Path) -> str:
    """The generator class that a checkpoint folder's state.json names; "UNetGenerator" when
    it names none or cannot be read (`load_generator` then says what is wrong)."""
    try:
        state = json.loads((Path(checkpoint) / "state.json").read_text())
        return str(state["architecture"]["generator"].get("class", "UNetGenerator"))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "UNetGenerator"


def saved_skeleton(checkpoint: Path, state: dict | None = None) -> SkeletonStyle:
    """How the generator of a checkpoint was fed skeletons: state.json's `skeleton` entry.

    A checkpoint written before there was one gets what its training stream drew: the saved
    config's data.stream line_thickness and joint_radius (unset: the defaults) at its image
    size. `state` is the checkpoint's state.json if already read.
    """
    checkpoint = Path(checkpoint)
    where = f"{checkpoint / 'state.json'}: skeleton"
    state = read_state(checkpoint) if state is None else state
    size = state.get("image_size", _section(state.get("architecture"), "generator").get("size"))
    if not isinstance(size, int):
        raise GanmotionError(f"{checkpoint / 'state.json'}: no image_size")
    if "skeleton" in state:
        style = SkeletonStyle.from_dict(state["skeleton"], where)
        style.check_size(size, where)
        return style
    stream = _section(_section(state, "config").get("data"), "stream")
    log.debug("%s has no skeleton entry: drawing as its training config did", checkpoint)
    try:
        return SkeletonStyle.for_size(
            size, stream.get("line_thickness"), stream.get("joint_radius")
        )
    except GanmotionError as error:
        raise GanmotionError(f"{checkpoint / 'state.json'}: config.data.stream: {error}") from None


BACKGROUND_FILE = "background.png"


def save_background(background: np.ndarray, path: Path) -> None:
    """Write a checkpoint's inference background (S, S, 3) uint8 RGB (lossless PNG)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(background, cv2.COLOR_RGB2BGR)):
        raise GanmotionError(f"{path}: cannot write the background")


def load_background(path: Path, size: int) -> torch.Tensor:
    """A checkpoint's background.png as (3, size, size) float32 in [-1, 1]; an error naming
    the file when it is missing, unreadable or of another size."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise GanmotionError(
            f"{path}: missing or not a readable image (an alpha generator's checkpoint "
            "holds the background it composes over)"
        )
    if image.shape[:2] != (size, size):
        raise GanmotionError(
            f"{path}: the background is {image.shape[1]}x{image.shape[0]}, the generator "
            f"draws {size}x{size}"
        )
    rgb = torch.from_numpy(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
    return to_unit_range(rgb)


def saved_compose(checkpoint: Path, state: dict) -> ComposeConfig:
    """The `compose` section of the config in a checkpoint's state.json, type- and
    range-checked as a config file's; the default (as drawn) when it has none."""
    section = _section(state.get("config"), "compose")
    return from_dict(ComposeConfig, section, str(checkpoint / "state.json"), "compose.")


def load_generator(
    checkpoint: Path, ema: bool = True, compose: ComposeConfig | None = None
) -> UNetGenerator | ComposedGenerator | MLPGenerator:
    """The generator of a checkpoint folder, in eval mode on the CPU: the EMA weights
    (`generator_ema.safetensors`, what samples and exports use) or, with ema=False, the live
    ones. The architecture (U-Net, or the MLP baseline) comes from state.json, so no training
    config is needed; a U-Net's `skeleton` is the style it was trained on (`saved_skeleton`).
    A U-Net with alpha comes composed over the checkpoint's background.png
    (`ComposedGenerator`): skeleton -> image like any other, laid down as the training
    config's `compose` says (its state.json copy; as drawn when a checkpoint has none), or
    as `compose` says when given (an error for a generator without alpha).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise GanmotionError(f"{checkpoint}: no such checkpoint folder")
    if not (checkpoint / "state.json").is_file():
        raise GanmotionError(f"{checkpoint}: not a checkpoint folder (no state.json)")
    state = read_state(checkpoint)
    architecture = _section(state.get("architecture"), "generator")
    if not architecture:
        raise GanmotionError(f"{checkpoint / 'state.json'}: no architecture.generator entry")
    kind = architecture.pop("class", "UNetGenerator")
    if kind not in GENERATORS:
        raise GanmotionError(f"{checkpoint / 'state.json'}: unknown generator class {kind!r}")
    generator_class, config_class = GENERATORS[kind]
    known = set(config_class.__dataclass_fields__)
    unknown = sorted(set(architecture) - known)
    if unknown:
        raise GanmotionError(
            f"{checkpoint / 'state.json'}: unknown generator arguments {', '.join(unknown)}"
        )
    # Typed and range-checked as a config file is: a value of the wrong type is one line too.
    config = from_dict(config_class, architecture, str(checkpoint / "state.json"), "generator.")
    try:
        generator = generator_class.from_config(config)
    except GanmotionError as error:  # no size: an architecture as a training config holds it
        raise GanmotionError(f"{checkpoint / 'state.json'}: {error}") from None
    if isinstance(generator, UNetGenerator):  # the MLP draws from keypoints, not skeletons
        generator.skeleton = saved_skeleton(checkpoint, state)
    name = "generator_ema.safetensors" if ema else "generator.safetensors"
    load_weights(generator, checkpoint / name)
    if isinstance(generator, UNetGenerator) and generator.config.alpha:
        background = load_background(checkpoint / BACKGROUND_FILE, generator.size)
        compose = compose or saved_compose(checkpoint, state)
        generator = ComposedGenerator(generator, background, compose)
    elif compose is not None:
        raise GanmotionError(
            f"{checkpoint}: --inside-blur lays down the person an alpha outlines; this "
            "generator draws no alpha"
        )
    return generator.eval()
