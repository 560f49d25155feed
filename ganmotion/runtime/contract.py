"""The contract every generator backend keeps (DESIGN.md, "Exported model", "Backends"):
the model's input and output names, the `Backend` interface and the checks of a batch and
of a model file's inputs and outputs. The backends (backends.py, baselines.py,
tensorrt.py) import it; it imports none of them.

A composed model (a generator with alpha, baked over the target's plate) keeps the contract
skeleton -> image and has a second output, `alpha` (N, 1, S, S) in [0, 1]: where the person
is. Its backend has `has_alpha` and the baked plate as `background`, which is what puts the
person on another background exactly (`ganmotion.runtime.background`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from ganmotion.errors import GanmotionError
from ganmotion.pose.render import SkeletonStyle

INPUT_NAME = "skeleton"
OUTPUT_NAME = "image"
ALPHA_NAME = "alpha"  # the optional second output of a composed model
ENGINE_SUFFIXES = (".plan", ".engine")


@runtime_checkable
class Backend(Protocol):
    """A generator behind one call: skeletons (N, 3, size, size) float in [-1, 1] on any
    device -> images (N, 3, size, size) float32 in [-1, 1] on `device`.

    The video pipeline always passes the batch's keypoints (N, 33, 3) in pixels of the
    size x size image too: image-conditioned generators ignore them, and the seed's
    baselines (`needs_keypoints = True`), which work from poses, use nothing else.
    `skeleton` is how the model's skeletons are drawn (skeleton.size == size).

    A model with alpha (`has_alpha`) composes its person over the plate it was trained on,
    `background` (3, size, size) float32 in [-1, 1] on the CPU (None without alpha);
    `with_alpha` returns the images and the alpha (N, 1, size, size) float32 in [0, 1], both
    on `device`, and is a GanmotionError for a model without alpha.
    """

    name: str
    size: int
    device: torch.device
    needs_keypoints: bool
    skeleton: SkeletonStyle
    has_alpha: bool
    background: torch.Tensor | None

    def __call__(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor: ...

    def with_alpha(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def no_alpha(model: str) -> GanmotionError:
    """The error of asking a model without an alpha output for one."""
    return GanmotionError(
        f"{model}: the model has no alpha output (only a generator trained with "
        "generator.alpha: true has one)"
    )


def alpha_batch_checked(
    has_alpha: bool,
    model: str,
    skeleton: torch.Tensor,
    size: int,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """What every backend's `with_alpha` checks first: an error unless the model has an
    alpha output, or the batch does not fit; for an empty batch (which instance norm cannot
    take) its answer, (images (0, 3, S, S), alpha (0, 1, S, S)); else None: run the model."""
    if not has_alpha:
        raise no_alpha(model)
    check_batch(skeleton, size)
    if len(skeleton) == 0:
        return (
            torch.zeros(0, 3, size, size, device=device),
            torch.zeros(0, 1, size, size, device=device),
        )
    return None


def check_batch(skeleton: torch.Tensor, size: int) -> None:
    """Raise a GanmotionError unless `skeleton` is a float tensor (N, 3, size, size)."""
    if not isinstance(skeleton, torch.Tensor):
        raise GanmotionError(
            f"skeleton batch must be a torch.Tensor, got {type(skeleton).__name__}"
        )
    if skeleton.ndim != 4 or tuple(skeleton.shape[1:]) != (3, size, size):
        raise GanmotionError(
            f"skeleton batch must be (N, 3, {size}, {size}), got {tuple(skeleton.shape)}"
        )
    if not skeleton.is_floating_point():
        raise GanmotionError(f"skeleton batch must be floating point, got {skeleton.dtype}")


def check_model_io(
    path: Path, inputs: list[tuple[str, list, str]], outputs: list[tuple[str, list, str]]
) -> int:
    """The image side S of a model whose inputs/outputs are (name, shape, dtype) triples, or a
    GanmotionError naming what breaks the contract. A dimension is an int, or a str/None/-1
    when dynamic; dtype is "float32" when it is one. The outputs are `image`, or `image` and
    `alpha` (N, 1, S, S) in any order (a composed model; `has_alpha_output` tells)."""
    if [name for name, _, _ in inputs] != [INPUT_NAME]:
        found = ", ".join(repr(name) for name, _, _ in inputs) or "none"
        raise GanmotionError(
            f"{path}: model inputs are {found}; expected one input named {INPUT_NAME!r}"
        )
    names = [name for name, _, _ in outputs]
    if names != [OUTPUT_NAME] and sorted(names) != sorted([OUTPUT_NAME, ALPHA_NAME]):
        found = ", ".join(repr(name) for name in names) or "none"
        raise GanmotionError(
            f"{path}: model outputs are {found}; expected one output named {OUTPUT_NAME!r} "
            f"(and {ALPHA_NAME!r} for a composed model)"
        )
    _, shape, dtype = inputs[0]
    shown = "(" + ", ".join(str(d) for d in shape) + ")"
    fixed = [isinstance(d, int) and d > 0 for d in shape]
    if len(shape) != 4 or fixed[0] or not all(fixed[1:]) or shape[1] != 3 or shape[2] != shape[3]:
        raise GanmotionError(
            f"{path}: input {INPUT_NAME!r} has shape {shown}; expected (N, 3, S, S) "
            "with a dynamic batch N"
        )
    for name, _, kind in (inputs[0], *outputs):
        if kind != "float32":
            raise GanmotionError(f"{path}: {name!r} is {kind}; expected float32")
    for name, alpha, _ in outputs:
        fixed_channels = len(alpha) == 4 and isinstance(alpha[1], int) and alpha[1] > 0
        if name == ALPHA_NAME and (len(alpha) != 4 or (fixed_channels and alpha[1] != 1)):
            shown = "(" + ", ".join(str(d) for d in alpha) + ")"
            raise GanmotionError(
                f"{path}: output {ALPHA_NAME!r} has shape {shown}; expected (N, 1, S, S)"
            )
    return int(shape[2])


def has_alpha_output(outputs: list[tuple[str, list, str]]) -> bool:
    """Whether a model's outputs (name, shape, dtype) include `alpha`."""
    return any(name == ALPHA_NAME for name, _, _ in outputs)
