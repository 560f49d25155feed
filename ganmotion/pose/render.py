"""Drawing keypoints as a skeleton image: the generator's input.

    style = SkeletonStyle.for_size(512, thickness=3)   # or SkeletonStyle.from_dict(saved)
    skeleton = style.render(keypoints)                 # (33, 3) pixels -> (512, 512, 3) uint8

Limbs are lines in per-limb colours, joints are dots, on black. Drawing is OpenCV integer
rasterisation (no anti-aliasing) so the same keypoints give the same pixels on every machine.
A model only knows skeletons drawn one way, so the way (`SkeletonStyle`) is one value: the
training stream makes it from its config, every checkpoint and exported model saves it, and
whatever runs the model draws with the one it was saved with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from ganmotion.errors import GanmotionError
from ganmotion.pose.schema import COLOURS_VERSION, JOINT_COLOURS, LIMB_COLOURS, LIMBS, NUM_JOINTS

# Sub-pixel precision for cv2 drawing: coordinates are passed as fixed point with 4
# fractional bits, so a keypoint moving by a fraction of a pixel still moves the line.
_SHIFT = 4
_ONE = 1 << _SHIFT
# Below this visibility the detector calls a joint hidden: left out, or drawn dim (`occluded`).
MIN_VISIBILITY = 0.5


def default_thickness(size: int) -> int:
    """Limb width for an image whose shorter side is `size` px: 4 px at 512, at least 1."""
    return max(1, round(size / 128))


def default_joint_radius(thickness: int) -> int:
    """Joint dot radius for limbs `thickness` px wide: a dot shows where two limbs meet."""
    return thickness + 1


def _style_problem(values: dict) -> str | None:
    """What is wrong with a style's field values, in words; None when nothing is."""
    for name, low in (("size", 1), ("thickness", 1), ("joint_radius", 0)):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"{name} must be an integer >= {low}, got {value!r}"
    occluded = values.get("occluded", 0.0)
    number = isinstance(occluded, (int, float)) and not isinstance(occluded, bool)
    if not number or not 0 <= occluded <= 1:
        return f"occluded must be a number from 0 to 1, got {occluded!r}"
    if values["colours"] != COLOURS_VERSION or isinstance(values["colours"], bool):
        return (
            f"colours version {values['colours']!r} is not this ganmotion's "
            f"({COLOURS_VERSION}): the model was trained on skeletons of another palette"
        )
    return None


@dataclass(frozen=True)
class SkeletonStyle:
    """How one model's skeleton images are drawn: what the generator learned to read.

    size: side of the square skeleton image in pixels: the model's image size.
    thickness: limb width in pixels.
    joint_radius: radius of the joint dots in pixels.
    colours: version of the limb and joint palettes (`schema.COLOURS_VERSION`).
    occluded: brightness (0 to 1) of the joints the detector marks hidden (visibility below
        0.5) and of their limbs, drawn under the visible ones; 0 leaves them out. Saved only
        when not 0, so a style saved before this field existed reads as 0.
    """

    size: int
    thickness: int
    joint_radius: int
    colours: int = COLOURS_VERSION
    occluded: float = 0.0

    def __post_init__(self) -> None:
        problem = _style_problem(asdict(self))
        if problem:
            raise GanmotionError(f"skeleton style: {problem}")

    @classmethod
    def for_size(
        cls,
        size: int,
        thickness: int | None = None,
        joint_radius: int | None = None,
        occluded: float = 0.0,
    ) -> SkeletonStyle:
        """The style for `size` px images; limb width and joint radius default by size."""
        thickness = default_thickness(size) if thickness is None else thickness
        radius = default_joint_radius(thickness) if joint_radius is None else joint_radius
        return cls(size, thickness, radius, occluded=occluded)

    def to_dict(self) -> dict:
        """{"size", "thickness", "joint_radius", "colours"[, "occluded"]}: the entry saved
        with a model ("occluded" only when not 0)."""
        entry = asdict(self)
        if not self.occluded:
            del entry["occluded"]
        return entry

    @classmethod
    def from_dict(cls, entry: object, where: str = "skeleton") -> SkeletonStyle:
        """The style of a saved `to_dict` entry; a GanmotionError that starts with `where`
        (the file and key it came from) when the entry is not one."""
        names = [f.name for f in fields(cls)]
        if not isinstance(entry, dict):
            raise GanmotionError(f"{where}: expected a mapping of {', '.join(names)}")
        missing = [n for n in names if n not in entry and n != "occluded"]
        unknown = sorted(str(k) for k in entry if k not in names)
        if missing or unknown:
            problems = [f"missing {', '.join(missing)}"] * bool(missing)
            problems += [f"unknown {', '.join(unknown)}"] * bool(unknown)
            raise GanmotionError(f"{where}: {'; '.join(problems)}")
        problem = _style_problem(entry)
        if problem:
            raise GanmotionError(f"{where}: {problem}")
        return cls(**entry)

    @property
    def min_visibility(self) -> float:
        """The least visibility of a joint this style draws: every joint with a position when
        hidden ones are drawn dim, so whatever keeps the drawing in the frame keeps them too."""
        return 0.0 if self.occluded else MIN_VISIBILITY

    def check_size(self, size: int, where: str) -> None:
        """A GanmotionError unless this style draws `size` px images, the model's size."""
        if self.size != size:
            raise GanmotionError(
                f"{where}: skeletons drawn at {self.size} px for a model of {size} px images"
            )

    def render(self, keypoints: np.ndarray | None) -> np.ndarray:
        """One frame's keypoints (33, 3) in pixels -> its skeleton (size, size, 3) uint8 RGB."""
        return render_skeleton(
            keypoints,
            self.size,
            thickness=self.thickness,
            joint_radius=self.joint_radius,
            occluded=self.occluded,
        )


def render_skeleton(
    keypoints: np.ndarray | None,
    height: int,
    width: int | None = None,
    *,
    thickness: int | None = None,
    joint_radius: int | None = None,
    min_visibility: float = MIN_VISIBILITY,
    occluded: float = 0.0,
) -> np.ndarray:
    """Draw one frame's keypoints (33, 3) — pixels of the output image — as (H, W, 3) uint8 RGB.

    A model's inputs are drawn with its `SkeletonStyle.render`; this is the drawing under it.
    Joints with visibility below `min_visibility` are left out with their limbs, or with
    `occluded` > 0 drawn at that fraction of their colour, beneath the visible ones (a limb is
    visible when both its joints are). NaN joints are always left out. `None` or an all-NaN
    array (no person) gives a black image.
    """
    width = height if width is None else width
    image = np.zeros((height, width, 3), dtype=np.uint8)
    if keypoints is None:
        return image
    if keypoints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"keypoints must be ({NUM_JOINTS}, 3), got {keypoints.shape}")
    thickness = default_thickness(min(height, width)) if thickness is None else thickness
    joint_radius = default_joint_radius(thickness) if joint_radius is None else joint_radius

    finite = np.isfinite(keypoints).all(axis=1)
    visible = finite & (keypoints[:, 2] >= min_visibility)
    drawn = finite if occluded > 0 else visible
    # Far-off points overflow cv2's fixed-point maths; clipping keeps line directions for
    # anything within a few image sizes of the frame.
    limit = 4 * max(height, width)
    points = np.round(np.clip(np.nan_to_num(keypoints[:, :2]), -limit, limit) * _ONE)
    points = points.astype(np.int64)

    def shade(colour: tuple[int, int, int], seen: bool) -> tuple[int, ...]:
        return colour if seen else tuple(round(c * occluded) for c in colour)

    # Stable sorts put the occluded first (under the visible) and keep the palette's order
    # otherwise: with nothing occluded drawn, the pixels are those of before the option.
    limbs = [(a, b, c) for (a, b), c in zip(LIMBS, LIMB_COLOURS) if drawn[a] and drawn[b]]
    for a, b, colour in sorted(limbs, key=lambda limb: visible[limb[0]] and visible[limb[1]]):
        seen = visible[a] and visible[b]
        cv2.line(
            image,
            tuple(points[a]),
            tuple(points[b]),
            shade(colour, seen),
            thickness,
            cv2.LINE_8,
            _SHIFT,
        )
    for joint in sorted(np.flatnonzero(drawn), key=lambda j: visible[j]):
        cv2.circle(
            image,
            tuple(points[joint]),
            joint_radius * _ONE,
            shade(JOINT_COLOURS[joint], visible[joint]),
            -1,
            cv2.LINE_8,
            _SHIFT,
        )
    return image
