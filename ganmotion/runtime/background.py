"""Putting the generated person on another background (`infer/video.py --background`).

A composed model's image is alpha * person + (1 - alpha) * plate, the plate being the room
the target was filmed in, which it was trained over (baked into an export as a constant).
Over another background B the frame is

    alpha * person + (1 - alpha) * B  =  image + (1 - alpha) * (B - plate)

so the model's two outputs and its plate (`backend.background`, exact: the export writes the
PNG the constant came from beside the model) give it without a third output for the person.

    image = read_image("beach.jpg")                               # checked before the model loads
    backend = OnBackground(load_backend("gen.onnx"), fit_background(image, 256), "gen.onnx")
    frames = backend(skeletons)                                   # the person on the beach

The new background fills the generator's whole square crop: the image is scaled to cover it
and cut to its centre square (no stretching), as the crop's own background was.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ganmotion.errors import GanmotionError
from ganmotion.images import to_unit_range
from ganmotion.runtime.contract import Backend


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), or a GanmotionError naming it."""
    path = Path(path)
    if not path.is_file():
        raise GanmotionError(f"{path}: no such background image")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise GanmotionError(f"{path}: not a readable image (PNG, JPEG, ...) for the background")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def fit_background(image: np.ndarray, size: int) -> torch.Tensor:
    """An RGB uint8 image (H, W, 3) as the background of a size x size crop, (3, size, size)
    float32 in [-1, 1]: scaled so that it covers the square, then its centre square cut out."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    square = cv2.resize(square, (size, size), interpolation=interpolation)
    return to_unit_range(torch.from_numpy(np.ascontiguousarray(square)).permute(2, 0, 1))


class OnBackground:
    """A backend with alpha whose frames show its person over `background` (3, S, S) float
    in [-1, 1] instead of the plate it was trained over; a Backend itself, so the video
    pipeline runs it like any other. `model` names the model in errors.

    image + (1 - alpha) * (background - plate): exact up to float rounding, and the same
    whatever backend runs the model.
    """

    has_alpha = True

    def __init__(self, backend: Backend, background: torch.Tensor, model: str):
        if not getattr(backend, "has_alpha", False):
            raise GanmotionError(
                f"{model}: the model has no alpha output, so its person cannot be put on "
                "another background (only a generator trained with generator.alpha: true "
                "has one)"
            )
        plate = backend.background
        if plate is None:
            raise GanmotionError(
                f"{model}: the plate baked into the model is unknown (its sidecar names no "
                "background PNG), so its person cannot be put on another background; "
                "export it again"
            )
        size = backend.size
        if tuple(background.shape) != (3, size, size):
            raise GanmotionError(
                f"the background must be (3, {size}, {size}) for {model}, "
                f"got {tuple(background.shape)}"
            )
        self.backend = backend
        self.name, self.size, self.device = backend.name, size, backend.device
        self.needs_keypoints, self.skeleton = backend.needs_keypoints, backend.skeleton
        self.background = background.float().cpu()
        # (1, 3, S, S): what each pixel gains where the person is not
        self._change = (self.background - plate.float().cpu())[None].to(self.device)

    def __call__(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.with_alpha(skeleton, keypoints)[0]

    def with_alpha(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images, alpha = self.backend.with_alpha(skeleton, keypoints)
        return images + (1 - alpha) * self._change, alpha
