"""Quality metrics of generated video and of the poses that drive it.

Each metric is a plain function over numpy arrays, documented with its unit, so evaluation
scripts and benchmarks report the same numbers.
"""

from __future__ import annotations

import numpy as np


def keypoint_jitter(keypoints: np.ndarray, min_visibility: float = 0.5) -> float:
    """Mean acceleration of keypoints (N, 33, 3), in pixels per frame squared.

    For every joint visible (visibility >= `min_visibility`, finite) in three consecutive
    frames, the length of the second difference k[t+1] - 2 k[t] + k[t-1] of its x, y; the
    mean over all such (frame, joint) triples. Smooth motion scores near 0 and detector
    noise of standard deviation s per axis about 3.1 s, so this measures jitter rather than
    movement. NaN when no joint is visible in three consecutive frames.
    """
    visible = np.isfinite(keypoints).all(axis=-1) & (keypoints[..., 2] >= min_visibility)
    points = keypoints[..., :2].astype(np.float64)
    acceleration = points[2:] - 2 * points[1:-1] + points[:-2]
    usable = visible[2:] & visible[1:-1] & visible[:-2]
    if not usable.any():
        return float("nan")
    return float(np.linalg.norm(acceleration[usable], axis=-1).mean())
