"""Person-centred square crops: one that tracks the person and stays still when the person
does, or one fixed box for the whole clip.

A crop is (cx, cy, side) in source pixels. Tracking (`smooth_crops`): per frame, the body's
extent gives a raw centre and side; both are then smoothed over time (Gaussian, in seconds
so the policy does not depend on the frame rate), the side after a running maximum so an arm
flung out for a moment does not leave the crop. Fixed (`fixed_crop`): the body's extent over
the whole clip, with the same margin, kept inside the frame where it fits. Frames without a
person get no crop (NaN).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ganmotion.pose.schema import JOINT, has_person

_TORSO = [JOINT[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]

# What fills a crop where it leaves the frame, as manifests record it: the frame reflected
# about its edge ("constant-black" in shards prepared before, which still load and train).
PAD = "reflect"


@dataclass(frozen=True)
class CropPolicy:
    """How crops are chosen.

    margin: space around the body's extent on each side, as a fraction of that extent.
    centre_smoothing_s: Gaussian sigma of the crop centre over time, in seconds.
    side_smoothing_s: window of the running maximum and sigma of the smoothing of the side.
    min_visibility: joints below this visibility do not count towards the body's extent.
    """

    margin: float = 0.15
    centre_smoothing_s: float = 0.3
    side_smoothing_s: float = 1.0
    min_visibility: float = 0.5

    def to_json(self, fixed: np.ndarray | None = None) -> dict:
        """The policy for a manifest: a tracking crop's, or with `fixed` (`fixed_crop`'s
        box) the fixed crop's, which uses only the margin and the visibility threshold."""
        if fixed is None:
            return {"kind": "smoothed-square", "pad": PAD, **asdict(self)}
        return {
            "kind": "fixed-square",
            "pad": PAD,
            "box": [float(v) for v in fixed],
            "margin": self.margin,
            "min_visibility": self.min_visibility,
        }


def _visible_points(keypoints: np.ndarray, min_visibility: float) -> np.ndarray:
    visible = keypoints[:, 2] >= min_visibility
    return keypoints[visible, :2] if visible.sum() >= 2 else keypoints[:, :2]


def raw_boxes(keypoints: np.ndarray, policy: CropPolicy) -> np.ndarray:
    """Unsmoothed (N, 3) boxes (cx, cy, side) from (N, 33, 3) keypoints; NaN without a person.

    x centres on the torso rather than the box, so arms moving do not drag the crop sideways.
    """
    boxes = np.full((len(keypoints), 3), np.nan)
    for i, frame in enumerate(keypoints):
        if not has_person(frame):
            continue
        points = _visible_points(frame, policy.min_visibility)
        low, high = points.min(axis=0), points.max(axis=0)
        torso_x = frame[_TORSO, 0].mean()
        half_width = max(torso_x - low[0], high[0] - torso_x)
        extent = max(2 * half_width, high[1] - low[1], 1.0)
        boxes[i] = (torso_x, (low[1] + high[1]) / 2, extent * (1 + 2 * policy.margin))
    return boxes


def _fill_gaps(values: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN entries (edges held), so smoothing can run across gaps."""
    index = np.arange(len(values))
    known = np.isfinite(values)
    return np.interp(index, index[known], values[known])


def _gaussian(values: np.ndarray, sigma_frames: float) -> np.ndarray:
    if sigma_frames < 0.5:
        return values
    radius = int(np.ceil(3 * sigma_frames))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    padded = np.pad(values, radius, mode="edge")
    return np.convolve(padded, taps / taps.sum(), mode="valid")


def _running_max(values: np.ndarray, window: int) -> np.ndarray:
    half = max(window // 2, 0)
    padded = np.pad(values, half, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).max(axis=1)


def smooth_crops(keypoints: np.ndarray, fps: float, policy: CropPolicy | None = None) -> np.ndarray:
    """Stable (N, 3) crops (cx, cy, side) for (N, 33, 3) keypoints; NaN rows without a person.

    Every visible joint of a frame lies inside that frame's crop.
    """
    policy = policy or CropPolicy()
    boxes = raw_boxes(keypoints, policy)
    found = np.isfinite(boxes[:, 0])
    crops = np.full_like(boxes, np.nan)
    if not found.any():
        return crops
    centre_sigma = policy.centre_smoothing_s * fps
    side_window = int(round(policy.side_smoothing_s * fps))
    cx = _gaussian(_fill_gaps(boxes[:, 0]), centre_sigma)
    cy = _gaussian(_fill_gaps(boxes[:, 1]), centre_sigma)
    side = _gaussian(_running_max(_fill_gaps(boxes[:, 2]), side_window), side_window / 2)
    # Smoothing moved the centre away from the body by a little: make sure the side still
    # covers every visible joint (this changes nothing on steady footage).
    for i in np.flatnonzero(found):
        points = _visible_points(keypoints[i], policy.min_visibility)
        reach = np.abs(points - (cx[i], cy[i])).max()
        side[i] = max(side[i], 2 * reach + 2)
    crops[found] = np.stack([cx, cy, side], axis=1)[found]
    return crops


def fixed_crop(
    keypoints: np.ndarray, width: int, height: int, policy: CropPolicy | None = None
) -> np.ndarray:
    """One crop (3,) (cx, cy, side) for a whole clip of (N, 33, 3) keypoints in a
    width x height video: a square that holds every visible joint of every frame with a person.

    The square is the joints' extent over the clip plus `policy.margin` on each side, made
    whole pixels (its `crop_window` is exactly x0, y0, side). Where the frame is too small for
    the margin, the margin shrinks to what the frame's shorter side allows, and the square is
    moved inside the frame when the joints allow it: pixels past the frame's edge would only
    be padding, no part of the room. A clip without a person has no crop (NaN).
    """
    policy = policy or CropPolicy()
    people = keypoints[has_person(keypoints)]
    points = [_visible_points(frame, policy.min_visibility) for frame in people]
    if not points:
        return np.full(3, np.nan)
    points = np.concatenate(points)
    low, high = points.min(axis=0), points.max(axis=0)
    extent = max(float((high - low).max()), 1.0)
    side = extent * (1 + 2 * policy.margin)
    if extent + 2 <= min(width, height):
        side = min(side, min(width, height))
    side = int(np.ceil(side))
    corner = []
    for axis, length in enumerate((width, height)):
        centred = int(round((low[axis] + high[axis]) / 2 - side / 2))
        # Corners whose square holds the joints, and those whose square stays in the frame.
        hold = (int(np.ceil(high[axis])) + 1 - side, int(np.floor(low[axis])))
        inside = (max(hold[0], 0), min(hold[1], length - side))
        lo, hi = inside if inside[0] <= inside[1] else hold
        corner.append(min(max(centred, lo), hi))
    return np.array([corner[0] + side / 2, corner[1] + side / 2, side], np.float64)


def crop_window(crop: np.ndarray) -> tuple[int, int, int]:
    """The integer window (x0, y0, side) of source pixels that `crop` covers."""
    cx, cy, side = crop
    side_px = max(int(round(side)), 2)
    return int(round(cx - side_px / 2)), int(round(cy - side_px / 2)), side_px


def _axis_window(start: int, side: int, length: int) -> tuple[int, int, int, int]:
    """Along an axis of `length` pixels, a square's pixels start, ..., start + side - 1: how
    many lie before the axis and after it, and the part [low, high) of the axis that they
    show or reflect (BORDER_REFLECT_101 about the axis' ends: -k shows k, length - 1 + k
    shows length - 1 - k). Where the padding is wider than what the square shows of the
    axis, that part reaches past the square."""
    before, after = max(0, -start), max(0, start + side - length)
    low = max(0, min(start, length - 1 - after))
    high = min(length, max(start + side, before + 1))
    return before, after, low, high


def crop_frame(
    frame: np.ndarray, crop: np.ndarray, size: int, border: int = cv2.BORDER_REFLECT_101
) -> np.ndarray:
    """Cut the square `crop` out of an RGB frame and resize it to (size, size, 3) (a
    single-channel (H, W) image gives (size, size)).

    Parts of the square outside the frame are the frame reflected about its edge (OpenCV's
    BORDER_REFLECT_101: "dcb|abcd|cba"). Where the padding is wider than the square's part
    of the frame, it takes frame pixels beyond the square (reflecting that part again would
    repeat the person in it); only where it is wider than the frame does it reflect again
    and again. Black padding would be a border in every real crop, which a critic teaches
    the generator to draw. `border=cv2.BORDER_CONSTANT` pads with 0 instead (a person mask:
    no person there).
    """
    x0, y0, side = crop_window(crop)
    height, width = frame.shape[:2]
    left, right, x_low, x_high = _axis_window(x0, side, width)
    top, bottom, y_low, y_high = _axis_window(y0, side, height)
    window = frame[y_low:y_high, x_low:x_high]
    if left or right or top or bottom:
        window = cv2.copyMakeBorder(window, top, bottom, left, right, border, value=0)
        # The padded window starts at frame pixel (x_low - left, y_low - top).
        dx, dy = x0 - x_low + left, y0 - y_low + top
        window = window[dy : dy + side, dx : dx + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(window, (size, size), interpolation=interpolation)


def crop_mask(mask: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """Cut a person mask (H, W) uint8 0/255 of the source frame like `crop_frame` cuts the
    frame: (size, size) uint8 0/255, 0 where the square leaves the frame (whatever the
    frame's reflection shows there is padding, not the person).

    The resize averages (or interpolates) like the frame's, then the mask is thresholded
    back to 0/255 at half, so its edge stays where the frame's edge is.
    """
    cropped = crop_frame(mask, crop, size, cv2.BORDER_CONSTANT)
    return np.where(cropped >= 128, 255, 0).astype(np.uint8)


def keypoints_to_crop(keypoints: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """Map (33, 3) source-pixel keypoints into the pixels of `crop_frame`'s output."""
    x0, y0, side = crop_window(crop)
    scale = size / side
    mapped = keypoints.copy()
    # Pixel-centre convention on both sides of a resize: out = (in + 0.5) * scale - 0.5.
    mapped[:, 0] = (keypoints[:, 0] - x0 + 0.5) * scale - 0.5
    mapped[:, 1] = (keypoints[:, 1] - y0 + 0.5) * scale - 0.5
    return mapped
