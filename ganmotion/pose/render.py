"""Drawing keypoints as a skeleton image: the generator's input.

Limbs are lines in per-limb colours, joints are dots, on black. Drawing is OpenCV integer
rasterisation (no anti-aliasing) so the same keypoints give the same pixels on every machine.
"""

from __future__ import annotations

import cv2
import numpy as np

from ganmotion.pose.schema import JOINT_COLOURS, LIMB_COLOURS, LIMBS, NUM_JOINTS

# Sub-pixel precision for cv2 drawing: coordinates are passed as fixed point with 4
# fractional bits, so a keypoint moving by a fraction of a pixel still moves the line.
_SHIFT = 4
_ONE = 1 << _SHIFT


def default_thickness(size: int) -> int:
    """Limb width for an image whose shorter side is `size` px: 4 px at 512, at least 1."""
    return max(1, round(size / 128))


def render_skeleton(
    keypoints: np.ndarray | None,
    height: int,
    width: int | None = None,
    *,
    thickness: int | None = None,
    joint_radius: int | None = None,
    min_visibility: float = 0.5,
) -> np.ndarray:
    """Draw one frame's keypoints (33, 3) — pixels of the output image — as (H, W, 3) uint8 RGB.

    Joints with visibility below `min_visibility` (or NaN) are left out, with their limbs.
    `None` or an all-NaN array (no person) gives a black image.
    """
    width = height if width is None else width
    image = np.zeros((height, width, 3), dtype=np.uint8)
    if keypoints is None:
        return image
    if keypoints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"keypoints must be ({NUM_JOINTS}, 3), got {keypoints.shape}")
    thickness = default_thickness(min(height, width)) if thickness is None else thickness
    joint_radius = thickness + 1 if joint_radius is None else joint_radius

    visible = np.isfinite(keypoints).all(axis=1) & (keypoints[:, 2] >= min_visibility)
    # Far-off points overflow cv2's fixed-point maths; clipping keeps line directions for
    # anything within a few image sizes of the frame.
    limit = 4 * max(height, width)
    points = np.round(np.clip(np.nan_to_num(keypoints[:, :2]), -limit, limit) * _ONE)
    points = points.astype(np.int64)

    for (a, b), colour in zip(LIMBS, LIMB_COLOURS):
        if visible[a] and visible[b]:
            cv2.line(
                image, tuple(points[a]), tuple(points[b]), colour, thickness, cv2.LINE_8, _SHIFT
            )
    for joint in np.flatnonzero(visible):
        cv2.circle(
            image,
            tuple(points[joint]),
            joint_radius * _ONE,
            JOINT_COLOURS[joint],
            -1,
            cv2.LINE_8,
            _SHIFT,
        )
    return image
