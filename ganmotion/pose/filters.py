"""Temporal smoothing of detected poses: a One-Euro filter per joint, and short-gap holding.

The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a low-pass filter whose cutoff
rises with speed: still joints are smoothed hard (no jitter), fast ones hardly at all (no
lag). As in MediaPipe's landmark smoothing, speed is measured in body scales per second
rather than pixels, so the same settings work for a 256 px crop and a 4K frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ganmotion.errors import GanmotionError
from ganmotion.pose.schema import JOINT

_SHOULDERS = [JOINT["left_shoulder"], JOINT["right_shoulder"]]
_HIPS = [JOINT["left_hip"], JOINT["right_hip"]]

DETECTED, HELD, MISSING = "detected", "held", "missing"


@dataclass(frozen=True)
class OneEuroConfig:
    """How poses are smoothed over time.

    min_cutoff: cutoff frequency (Hz) of a joint at rest; lower removes more jitter.
    beta: how fast the cutoff rises with speed, in Hz per (torso length per second); higher
        follows fast motion with less lag. The lag of a fast joint tends to at most
        1 / (2 pi beta) torso lengths.
    d_cutoff: cutoff frequency (Hz) of the velocity estimate that sets the cutoff.
    max_gap_s: a frame without a person within this many seconds of the last detection
        repeats the last smoothed pose ("held"); later ones are "missing" and the filter
        starts afresh at the next detection, so an old position never smears into a new one.
    enabled: False passes poses through untouched (gaps are still held).
    """

    # Tuned on MediaPipe's poses of taichi2.mp4 (30 fps): jitter 2.5x lower over the clip
    # (3.5x over its calmer first 5 s), while the fastest tenth of joint motion trails by
    # under a frame. MediaPipe's own defaults (beta 80 per bounding-box size, about 28 per
    # torso) smooth far less: they are tuned for interactive latency.
    min_cutoff: float = 0.5
    beta: float = 6.0
    d_cutoff: float = 1.0
    max_gap_s: float = 0.25
    enabled: bool = True

    def __post_init__(self) -> None:
        # Named as infer/video.py's flags, which is how a user sets them (d_cutoff has none).
        if not self.min_cutoff > 0:
            raise GanmotionError(f"--min-cutoff {self.min_cutoff:g}: must be > 0 Hz")
        if not self.d_cutoff > 0:
            raise GanmotionError(f"smoothing d_cutoff={self.d_cutoff}: must be > 0")
        # An infinite beta times a still joint's zero speed is a NaN cutoff: the joint would vanish.
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise GanmotionError(f"--beta {self.beta:g}: must be a finite number >= 0")
        if not self.max_gap_s >= 0:
            raise GanmotionError(f"--max-gap {self.max_gap_s:g}: must be >= 0 seconds")


def body_scale(keypoints: np.ndarray) -> float:
    """Torso length of one pose (33, 3) in pixels: shoulder midpoint to hip midpoint.

    It does not change when arms or legs move, nor much when the person crouches or turns;
    NaN when the torso joints are not all there.
    """
    shoulders = keypoints[_SHOULDERS, :2].mean(axis=0)
    hips = keypoints[_HIPS, :2].mean(axis=0)
    return float(np.linalg.norm(shoulders - hips))


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray) -> np.ndarray:
    """Smoothing factor of an exponential filter with this cutoff (Hz) at step dt (s)."""
    tau = 1.0 / (2 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class PoseSmoother:
    """Streaming smoother: call it once per frame, in order, with keypoints (33, 3) or None.

    Returns (keypoints (33, 3) float32 or None, status), status one of "detected", "held",
    "missing". Frame i is at time i / fps. Each joint has its own filter state, so a joint
    that is NaN in one frame comes back NaN and leaves its state alone.
    Visibility is passed through unsmoothed: it is a per-frame confidence the renderer
    thresholds, and a lagged visibility would draw a limb after it has left the picture.
    """

    def __init__(self, config: OneEuroConfig | None, fps: float):
        if not fps > 0:
            raise GanmotionError(f"smoothing needs a positive frame rate, got fps={fps}")
        self.config = config or OneEuroConfig()
        self.fps = float(fps)
        self._frame = 0
        self._last_output: np.ndarray | None = None
        self._last_seen = -1  # frame index of the last detection
        self._scale = float("nan")
        self._reset()

    def _reset(self) -> None:
        shape = (len(JOINT), 2)
        self._raw = np.full(shape, np.nan)  # last raw x, y of each joint
        self._value = np.full(shape, np.nan)  # filtered x, y
        self._velocity = np.zeros(shape)  # filtered, in torso lengths per second
        self._time = np.full(len(JOINT), np.nan)  # when each joint was last filtered

    def __call__(self, keypoints: np.ndarray | None) -> tuple[np.ndarray | None, str]:
        frame, self._frame = self._frame, self._frame + 1
        if keypoints is None or not np.isfinite(keypoints[:, :2]).any():
            return self._gap(frame)
        self._last_seen = frame
        if not self.config.enabled:
            self._last_output = keypoints.astype(np.float32, copy=True)
            return self._last_output.copy(), DETECTED
        smoothed = keypoints.astype(np.float32, copy=True)
        smoothed[:, :2] = self._filter(keypoints, frame / self.fps)
        self._last_output = smoothed
        return smoothed.copy(), DETECTED

    def _gap(self, frame: int) -> tuple[np.ndarray | None, str]:
        held = (
            self._last_seen >= 0 and (frame - self._last_seen) / self.fps <= self.config.max_gap_s
        )
        if held:
            return self._last_output.copy(), HELD
        if self._last_output is not None:
            self._last_output, self._last_seen = None, -1
            self._reset()
        return None, MISSING

    def _filter(self, keypoints: np.ndarray, now: float) -> np.ndarray:
        """One One-Euro step of every joint found in this frame; (33, 2) float64."""
        points = keypoints[:, :2].astype(np.float64)
        found = np.isfinite(points).all(axis=1)
        scale = body_scale(keypoints)
        if np.isfinite(scale) and scale > 1.0:
            self._scale = scale
        elif not np.isfinite(self._scale):  # no torso yet: the extent of the visible body
            self._scale = max(float(np.ptp(points[found], axis=0).max()) / 3, 1.0)

        # A joint unseen for longer than max_gap_s restarts from its raw position.
        fresh = found & ~(now - self._time <= self.config.max_gap_s)
        going = found & ~fresh
        self._value[fresh] = self._raw[fresh] = points[fresh]
        self._velocity[fresh] = 0.0
        self._time[fresh] = now

        dt = now - self._time[going]
        velocity = (points[going] - self._raw[going]) / (dt[:, None] * self._scale)
        d_alpha = _alpha(self.config.d_cutoff, dt)[:, None]
        # The velocity is filtered before its length is taken: noise then averages out,
        # where the mean length of noisy velocities would not.
        self._velocity[going] += d_alpha * (velocity - self._velocity[going])
        speed = np.linalg.norm(self._velocity[going], axis=1)
        cutoff = self.config.min_cutoff + self.config.beta * speed
        alpha = _alpha(cutoff, dt)[:, None]
        # value + alpha * (x - value) rather than alpha * x + (1 - alpha) * value: a joint
        # that does not move then stays exactly where it is.
        self._value[going] += alpha * (points[going] - self._value[going])
        self._raw[going] = points[going]
        self._time[going] = now

        result = np.full_like(points, np.nan)
        result[found] = self._value[found]
        return result


def smooth_sequence(
    keypoints: np.ndarray, fps: float, config: OneEuroConfig | None = None
) -> tuple[np.ndarray, list[str]]:
    """`PoseSmoother` over a whole (N, 33, 3) array: smoothed (N, 33, 3) float32, with NaN
    rows for "missing" frames, and the status of each frame."""
    smoother = PoseSmoother(config, fps)
    smoothed = np.full(keypoints.shape, np.nan, dtype=np.float32)
    statuses = []
    for i, frame in enumerate(keypoints):
        pose, status = smoother(frame)
        if pose is not None:
            smoothed[i] = pose
        statuses.append(status)
    return smoothed, statuses
