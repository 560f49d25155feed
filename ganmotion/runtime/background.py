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


def fit_frame(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """An RGB uint8 image scaled to cover a width x height frame and cut to its centre: the
    room of a full-frame output when the user gives one (`--background` with `--full-frame`)."""
    scale = max(width / image.shape[1], height / image.shape[0])
    cover = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, cover, interpolation=interpolation)
    top, left = (scaled.shape[0] - height) // 2, (scaled.shape[1] - width) // 2
    return np.ascontiguousarray(scaled[top : top + height, left : left + width])


class FullFrame:
    """The generated person put back into the target's whole frame (`--full-frame`).

    `room` (H, W, 3) uint8 RGB is the frame to fill: the target's plate (static camera) or a
    background the user gave; `window` (x0, y0, side) the square of frame pixels the
    generator's crop covers (`crop_window` of the target's typical crop: where its body
    stands); `plate` (3, S, S) in [-1, 1] the background the model composes over.

    The model's image is alpha * person + (1 - alpha) * plate, so its premultiplied person
    is image - (1 - alpha) * plate. That and the alpha are scaled up to the window (scaling
    premultiplied colour with its alpha is what keeps the edges clean) and laid over the
    room: frame = person + (1 - alpha) * room. Where alpha is 0 the frame is the room
    exactly, inside the window as outside it.
    """

    def __init__(self, room: np.ndarray, window: tuple[int, int, int], plate: torch.Tensor):
        self.room = room
        self.height, self.width = room.shape[:2]
        self.x0, self.y0, self.side = (int(v) for v in window)
        self.plate = ((plate.float().cpu().permute(1, 2, 0).numpy() + 1) * 127.5).astype(
            np.float32
        )  # (S, S, 3) in 0..255

    def __call__(self, image: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        """(S, S, 3) uint8 image and (S, S) float alpha in [0, 1] of one frame -> (H, W, 3)
        uint8 RGB; without alpha (a frame without a pose), the room alone."""
        if alpha is None:
            return self.room.copy()
        alpha = alpha.astype(np.float32)[..., None]
        # Premultiplied colour lies in [0, 255 * alpha]: clipping there also takes out the
        # uint8 rounding of the image where alpha is 0, which would tint the room.
        person = np.clip(image.astype(np.float32) - (1 - alpha) * self.plate, 0, 255 * alpha)
        side = (self.side, self.side)
        interpolation = cv2.INTER_LINEAR
        person = cv2.resize(person, side, interpolation=interpolation)
        alpha = cv2.resize(alpha, side, interpolation=interpolation)[..., None]
        # The part of the window inside the frame (a crop may leave it).
        left, top = max(0, self.x0), max(0, self.y0)
        right = min(self.width, self.x0 + self.side)
        bottom = min(self.height, self.y0 + self.side)
        out = self.room.copy()
        if right <= left or bottom <= top:
            return out
        inner = (slice(top - self.y0, bottom - self.y0), slice(left - self.x0, right - self.x0))
        room = out[top:bottom, left:right].astype(np.float32)
        blended = person[inner] + (1 - alpha[inner]) * room
        out[top:bottom, left:right] = np.clip(blended.round(), 0, 255).astype(np.uint8)
        return out


def full_frame_of(
    shards: str, backend: Backend, model: str, background: np.ndarray | None = None
) -> FullFrame:
    """The `FullFrame` of running `model` (a backend with alpha) for the target prepared in
    `shards`: the room is its plate, or `background` scaled to its frame (a moving camera has
    no plate, so it needs one); the window is the target's median crop over its training
    frames, the square its body stood in (for a fixed crop, the crop)."""
    from ganmotion.data.background import load_plate
    from ganmotion.data.crop import crop_window
    from ganmotion.data.manifest import load_manifest

    if not getattr(backend, "has_alpha", False) or backend.background is None:
        raise GanmotionError(
            f"{model}: --full-frame needs a model with alpha and its plate (a generator "
            "trained with generator.alpha: true, exported with its background PNG)"
        )
    manifest = load_manifest(shards)
    width, height = manifest.source.width, manifest.source.height
    if background is not None:
        room = fit_frame(background, width, height)
    elif manifest.plate is not None and Path(shards).is_dir():
        room = load_plate(shards, manifest)
    else:
        raise GanmotionError(
            f"{shards}: the target was filmed with a moving camera (or its shards are remote),"
            " so there is no plate of its room to fill the frame: give --background IMAGE"
        )
    crops_file = Path(shards) / "crops.npy"
    try:
        crops = np.load(crops_file, allow_pickle=False)
        train = slice(*manifest.splits["train"].frame_range)
        crop = np.nanmedian(crops[train], axis=0)
    except (OSError, ValueError, IndexError) as error:
        raise GanmotionError(f"{crops_file}: unreadable ({error})") from None
    if crop.shape != (3,) or not np.isfinite(crop).all():
        raise GanmotionError(f"{crops_file}: no crop of a training frame to place the person")
    return FullFrame(room, crop_window(crop), backend.background)
