"""Retargeting: move a source person's poses onto the target person's size and place.

The generator was trained on the target's crops, where the target stands at one height and
one place. A source video's poses are mapped there with one scale and one translation for
the whole video (body statistics are medians over frames), so the source's own movement
across the room and up and down is kept, at the target's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganmotion.errors import GanmotionError
from ganmotion.pose.render import MIN_VISIBILITY
from ganmotion.pose.schema import JOINT

_NOSE = JOINT["nose"]
_SHOULDERS = [JOINT["left_shoulder"], JOINT["right_shoulder"]]
_HIPS = [JOINT["left_hip"], JOINT["right_hip"]]
_LEGS = [  # (hip, knee, ankle) of each side
    (JOINT[f"{side}_hip"], JOINT[f"{side}_knee"], JOINT[f"{side}_ankle"])
    for side in ("left", "right")
]
_FEET = [
    JOINT[f"{side}_{part}"]
    for side in ("left", "right")
    for part in ("ankle", "heel", "foot_index")
]


@dataclass(frozen=True)
class BodyStats:
    """Size and place of a person over a video, in the pixels of its keypoints.

    height: nose-to-ankle length along the body, the sum of the median lengths of four
        segments: nose to shoulder midpoint, shoulder midpoint to hip midpoint, hip to knee,
        knee to ankle. Unlike the nose-to-ankle distance it does not shrink when the person
        crouches or bends the knees (tai chi stances), because a segment only looks shorter
        when it turns towards the camera.
    feet: (x, y) where the person meets the ground: x between the feet, y the lowest
        visible foot point (the standing foot when the other is raised).
    frames: how many frames the medians are over.
    """

    height: float
    feet: tuple[float, float]
    frames: int

    def to_json(self) -> dict:
        return {"height": self.height, "feet": list(self.feet), "frames": self.frames}

    @classmethod
    def from_json(cls, data: dict) -> BodyStats:
        x, y = data["feet"]
        return cls(float(data["height"]), (float(x), float(y)), int(data["frames"]))


def body_stats(
    keypoints: np.ndarray, min_visibility: float = 0.5, where: str = "keypoints"
) -> BodyStats:
    """Body statistics of keypoints (N, 33, 3), over the frames that show a whole body: nose,
    shoulders, hips and at least one leg down to the ankle, visible (>= `min_visibility`).

    `where` names the keypoints' origin in the error raised when no frame shows a body.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, len(JOINT), 3)
    seen = np.isfinite(keypoints).all(axis=-1) & (keypoints[..., 2] >= min_visibility)
    points = keypoints[..., :2]
    legs = np.stack([seen[:, leg].all(axis=1) for leg in _LEGS], axis=1)  # (N, 2)
    usable = seen[:, [_NOSE, *_SHOULDERS, *_HIPS]].all(axis=1) & legs.any(axis=1)
    if not usable.any():
        raise GanmotionError(
            f"{where}: no frame shows a whole body (nose, shoulders, hips and a leg down to "
            f"the ankle with visibility >= {min_visibility}) in {len(keypoints)} frames"
        )
    points, seen, legs = points[usable], seen[usable], legs[usable]

    shoulders, hips = points[:, _SHOULDERS].mean(axis=1), points[:, _HIPS].mean(axis=1)
    head = np.linalg.norm(points[:, _NOSE] - shoulders, axis=1)
    torso = np.linalg.norm(shoulders - hips, axis=1)
    thighs, shins = [], []  # both sides pooled: the two legs are the same length
    for side, (hip, knee, ankle) in enumerate(_LEGS):
        on = legs[:, side]
        thighs.append(np.linalg.norm(points[on, hip] - points[on, knee], axis=1))
        shins.append(np.linalg.norm(points[on, knee] - points[on, ankle], axis=1))
    segments = [head, torso, np.concatenate(thighs), np.concatenate(shins)]
    height = float(sum(np.median(segment) for segment in segments))

    feet = np.where(seen[:, _FEET, None], points[:, _FEET], np.nan)  # (M, 6, 2)
    feet_x = np.nanmedian(np.nanmean(feet[..., 0], axis=1))
    feet_y = np.nanmedian(np.nanmax(feet[..., 1], axis=1))
    if not height > 0:
        raise GanmotionError(f"{where}: the body has no size (all its joints coincide)")
    return BodyStats(height, (float(feet_x), float(feet_y)), int(usable.sum()))


class PoseMapping:
    """A uniform scale and translation of keypoints: (x, y) -> ((x, y) - origin) * scale + anchor.

    Call it on (33, 3) or (N, 33, 3) keypoints; visibility is kept and NaN stays NaN.
    """

    def __init__(self, scale: float, origin: tuple[float, float], anchor: tuple[float, float]):
        self.scale = float(scale)
        self.origin = np.asarray(origin, dtype=np.float64)
        self.anchor = np.asarray(anchor, dtype=np.float64)

    def __call__(self, keypoints: np.ndarray) -> np.ndarray:
        mapped = keypoints.copy()
        xy = (keypoints[..., :2] - self.origin) * self.scale + self.anchor
        mapped[..., :2] = xy.astype(keypoints.dtype)
        return mapped


class Retargeter(PoseMapping):
    """Source poses at the target's height, the source's median feet on the target's."""

    def __init__(self, source: BodyStats, target: BodyStats):
        super().__init__(target.height / source.height, source.feet, target.feet)
        self.source, self.target = source, target


def fixed_crop(stats: BodyStats, size: int, margin: float = 0.15) -> PoseMapping:
    """Retargeting off: source pixels into a size x size square around the source body.

    The square is height * (1 + 2 * margin) source pixels on a side, centred on the feet's
    x, with the feet `margin * height` above its bottom edge (so the head, above the nose,
    has the same margin at the top); proportions are unchanged.
    """
    scale = size / (stats.height * (1 + 2 * margin))
    return PoseMapping(scale, stats.feet, (size / 2, size - margin * stats.height * scale))


MOTIONS = ("keep", "center")


class InFrame:
    """Keeps a body, already mapped into the size x size output, inside it, frame by frame.

    A mapping has one scale and one translation for the whole video (`Retargeter`), so a
    source person who steps sideways across the room walks out of the square, limbs cut at
    its edge. Here, after the mapping:

    - motion "keep": the body moves as the source's did, shifted back only as far as needed
      to keep every drawn joint `margin * size` inside the edges (a body larger than the
      square is centred on it);
    - motion "center": the hips are held at `anchor_x` (where the target stands in its
      crops), so only the source's up and down moves remain; then kept inside as above.

    The keypoints come smoothed (the runner's One-Euro filter), so the shifts are smooth too.
    """

    def __init__(
        self,
        size: int,
        motion: str = "keep",
        anchor_x: float | None = None,
        margin: float = 0.04,
        min_visibility: float = MIN_VISIBILITY,
    ):
        if motion not in MOTIONS:
            raise GanmotionError(f"motion must be one of {', '.join(MOTIONS)}, got {motion!r}")
        self.size, self.motion, self.margin = size, motion, margin
        self.anchor_x = size / 2 if anchor_x is None else float(anchor_x)
        self.min_visibility = min_visibility  # the joints the style draws (`SkeletonStyle`)

    def __call__(self, keypoints: np.ndarray) -> np.ndarray:
        """(33, 3) output pixels -> the same, translated; joints it would not draw move along."""
        drawn = np.isfinite(keypoints).all(axis=1) & (keypoints[:, 2] >= self.min_visibility)
        if not drawn.any():
            return keypoints
        moved = keypoints.copy()
        if self.motion == "center":
            hips = keypoints[_HIPS, 0]
            x = hips.mean() if np.isfinite(hips).all() else keypoints[drawn, 0].mean()
            moved[:, 0] += self.anchor_x - x
        low, high = self.margin * self.size, (1 - self.margin) * (self.size - 1)
        for axis in (0, 1):
            first, last = moved[drawn, axis].min(), moved[drawn, axis].max()
            if last - first > high - low:  # larger than the square: centred on it
                shift = (low + high - first - last) / 2
            else:
                shift = max(low - first, 0.0) + min(high - last, 0.0)
            moved[:, axis] += shift
        return moved


def target_body(body: dict | None, where: str) -> BodyStats:
    """The target's body statistics that `prepare` recorded in a shard manifest (its `body`
    entry; `where` names the manifest in errors)."""
    if body is None:
        raise GanmotionError(
            f"{where}: the training video shows no whole body (legs down to the ankles), so "
            "poses cannot be retargeted onto it; run with retargeting off"
        )
    try:
        return BodyStats.from_json(body)
    except (KeyError, TypeError, ValueError) as error:
        raise GanmotionError(f"{where}: malformed 'body' entry in the manifest ({error})") from None
