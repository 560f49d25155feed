"""Procedural synthetic clips: a drawn figure moved by a smooth motion, with exact keypoints
and person masks.

A 2-D skeleton driven by sums of sinusoids (forward kinematics from the pelvis) gives all 33
MediaPipe Pose landmarks of `ganmotion.pose.schema` for every frame; the figure is then drawn
at exactly those keypoints with OpenCV over a static, textured background. The clips are the
demo's default data and give tests ground-truth keypoints and masks without running
MediaPipe.

Conventions, as in the schema: keypoints are float32 (33, 3) per frame -- x, y in pixels of
the square frame (pixel centres at integer coordinates) and visibility in [0, 1], here always
1. The figure faces the viewer, so the person's left side is on the image right (larger x),
as MediaPipe reports it. Everything is a pure function of the seeds: the same seeds give
bit-identical frames, keypoints and masks.

    python -m ganmotion.data.synthetic --out clip.mp4 --frames 300 --size 256
"""

from __future__ import annotations

import argparse
import colorsys
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ganmotion.data.masks import MaskWriter
from ganmotion.errors import GanmotionError, command_line
from ganmotion.files import atomic_write, check_writable
from ganmotion.pose.schema import JOINT, NUM_JOINTS, has_person
from ganmotion.video import VideoWriter

__all__ = [
    "Appearance",
    "Motion",
    "Wave",
    "keypoints_path_for",
    "main",
    "make_clip",
    "masks_path_for",
    "person_mask",
    "pose_at",
    "render_background",
    "render_person",
    "write_clip",
]

MIN_SIZE = 32  # below this the figure's head is a few pixels and the drawing degenerates
MAX_SIZE = 4096  # drawing the background then takes about 5 GiB at its peak
# An H.264 stream's rate is a fraction of C integers: 1e300 fps overflows it, and 1e-300 fps
# came out as a 24 fps video whose poses were drawn at times near 1e300 s.
MIN_FPS, MAX_FPS = 1.0, 1000.0
# Peak memory of drawing the background (supersampled 2x in float32), per pixel of the frame:
# 300 and 275 bytes measured at 512 and 1024 px.
BACKGROUND_BYTES_PER_PIXEL = 300

# Layout of the frame, as fractions of its side.
FIGURE_HEIGHT = 0.72  # standing height, sole to top of the head
FLOOR_Y = 0.94  # where the soles touch the floor
WALL_BASE_Y = 0.80  # where the wall meets the floor in the background
_FIT_MARGIN = 0.025  # keypoints (and the top of the head) keep this far from the frame's edges

# Body proportions in units of standing height (after Drillis & Contini's segment table).
TORSO = 0.288  # hip centre to shoulder centre
SHOULDER_HALF_WIDTH = 0.10
HIP_HALF_WIDTH = 0.06
NECK_TO_HEAD = 0.117  # shoulder centre to head centre
HEAD_RADIUS = 0.065
UPPER_ARM = 0.186
FOREARM = 0.146
THIGH = 0.245
SHIN = 0.246
SHOE_RADIUS = 0.015  # half the drawn shoe's thickness: the sole is this far below the foot line

# Drawn widths, same units.
_UPPER_ARM_W = 0.055
_FOREARM_W = 0.045
_THIGH_W = 0.080
_SHIN_W = 0.062
_NECK_W = 0.050
_HAND_W = 0.040

# Face landmarks on the head sphere: (azimuth, elevation) in radians and radius in head radii.
# Positive azimuth is the person's left, which faces the image right.
_FACE: dict[str, tuple[float, float, float]] = {
    "nose": (0.0, -0.22, 1.08),
    "left_eye_inner": (0.18, 0.02, 1.0),
    "left_eye": (0.33, 0.03, 1.0),
    "left_eye_outer": (0.48, 0.02, 1.0),
    "right_eye_inner": (-0.18, 0.02, 1.0),
    "right_eye": (-0.33, 0.03, 1.0),
    "right_eye_outer": (-0.48, 0.02, 1.0),
    "left_ear": (1.45, -0.05, 1.0),
    "right_ear": (-1.45, -0.05, 1.0),
    "mouth_left": (0.28, -0.5, 1.0),
    "mouth_right": (-0.28, -0.5, 1.0),
}
# Hand landmarks (MediaPipe's knuckles) from the wrist: (angle off the forearm toward the thumb
# side in degrees, distance in standing heights).
_HAND = {"index": (8.0, 0.050), "pinky": (-14.0, 0.044), "thumb": (40.0, 0.030)}

_MOTION_SALT = 0x6D6F74  # keeps motion and appearance streams apart for equal seeds
_APPEARANCE_SALT = 0x617070
_BACKGROUND_SALT = 0x626B67


# --------------------------------------------------------------------------------------------
# Motion


@dataclass(frozen=True)
class Wave:
    """A smooth signal: `mean + sum(amp * sin(2 pi freq t + phase))`, t in seconds.

    `terms` holds (amp, freq in Hz, phase in radians) triples; amp is in the channel's units.
    """

    mean: float
    terms: tuple[tuple[float, float, float], ...] = ()

    def __call__(self, t: float) -> float:
        value = self.mean
        for amp, freq, phase in self.terms:
            value += amp * math.sin(2.0 * math.pi * freq * t + phase)
        return value


@dataclass(frozen=True)
class Motion:
    """A smooth parametric motion: every channel is a `Wave` of time.

    Angles are in degrees. Arm abduction is 0 hanging down, 90 straight out sideways, ~170
    above the head, negative across the body; elbow and knee flexion are >= 0. `sway` is the
    pelvis's horizontal offset as a fraction of the frame side. `step` drives the left knee
    and the right knee in anti-phase (mean minus the same swing); `squat` bends both.
    Build one with `Motion.from_seed`; different seeds give clearly different motions.
    """

    seed: int
    sway: Wave
    lean: Wave
    yaw: Wave
    head_tilt: Wave
    head_yaw: Wave
    left_arm: Wave
    right_arm: Wave
    left_elbow: Wave
    right_elbow: Wave
    left_leg: Wave
    right_leg: Wave
    step: Wave
    squat: Wave

    @classmethod
    def from_seed(cls, seed: int) -> Motion:
        """Draw a motion from a non-negative integer seed (deterministic)."""
        rng = _rng(seed, _MOTION_SALT)
        u = rng.uniform
        tempo = u(0.12, 0.24)  # Hz: the motion's base pace

        def wave(mean: float, *amps_and_freqs: tuple[float, float]) -> Wave:
            terms = tuple(
                (float(a), float(f), float(u(0.0, 2.0 * math.pi))) for a, f in amps_and_freqs
            )
            return Wave(float(mean), terms)

        def arm() -> Wave:  # abduction: a slow wide swing plus a faster small one
            return wave(
                u(35, 65), (u(70, 100), tempo * u(0.7, 1.2)), (u(15, 30), tempo * u(1.4, 2.0))
            )

        left_arm = arm()
        style = rng.integers(3)  # 0: arms independent, 1: mirrored, 2: alternating
        if style == 0:
            right_arm = arm()
        else:
            shift = 0.0 if style == 1 else math.pi
            right_arm = Wave(
                float(left_arm.mean + u(-10, 10)),
                tuple((a, f, p + shift + float(u(-0.3, 0.3))) for a, f, p in left_arm.terms),
            )
        step = float(u(0.0, 45.0))
        return cls(
            seed=seed,
            sway=wave(0.0, (u(0.02, 0.05), tempo * u(0.4, 0.8)), (u(0.0, 0.015), tempo * u(1, 2))),
            lean=wave(u(-3, 3), (u(2, 7), tempo * u(0.5, 1.2))),
            yaw=wave(u(-10, 10), (u(5, 20), tempo * u(0.3, 0.8))),
            head_tilt=wave(0.0, (u(3, 10), tempo * u(0.6, 1.4))),
            head_yaw=wave(0.0, (u(5, 20), tempo * u(0.4, 1.0))),
            left_arm=left_arm,
            right_arm=right_arm,
            left_elbow=wave(u(30, 70), (u(20, 50), tempo * u(0.8, 1.6))),
            right_elbow=wave(u(30, 70), (u(20, 50), tempo * u(0.8, 1.6))),
            left_leg=wave(u(3, 12), (u(3, 12), tempo * u(0.5, 1.2))),
            right_leg=wave(u(3, 12), (u(3, 12), tempo * u(0.5, 1.2))),
            step=wave(step / 2, (step / 2, tempo * u(1.0, 2.0))),
            squat=wave(u(0, 10), (u(0, 15), tempo * u(0.3, 0.7))),
        )


def _rng(seed: int, salt: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GanmotionError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), salt])


def _softplus(z: float, width: float) -> float:
    x = z / width
    return z if x > 30.0 else width * math.log1p(math.exp(x))


def _soft_clip(x: float, lo: float, hi: float, width: float) -> float:
    """Smoothly clip x into [lo, hi]: about x well inside, saturating over `width` at the ends."""
    x = lo + _softplus(x - lo, width)
    return hi - _softplus(hi - x, width)


def _dir(theta: float) -> tuple[float, float]:
    """Unit vector at angle theta (radians) from straight down, turning toward the image right."""
    return math.sin(theta), math.cos(theta)


def _check_size(size: int, name: str = "size") -> None:
    """`name`: what the caller's user set the size as (synth's clips: its flag, --size)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise GanmotionError(f"{name} {size!r}: must be a whole number of pixels")
    if not MIN_SIZE <= size <= MAX_SIZE:
        why = ""
        if size > MAX_SIZE:
            needed = size * size * BACKGROUND_BYTES_PER_PIXEL / 2**30
            why = f" (drawing a frame that size would need about {needed:.0f} GiB of memory)"
        raise GanmotionError(f"{name} {size}: must be {MIN_SIZE} to {MAX_SIZE} pixels{why}")


def pose_at(motion: Motion, t: float, size: int) -> np.ndarray:
    """Keypoints (33, 3) float32 of `motion` at time `t` seconds in a square frame `size` px.

    x, y are pixels (the figure stands on the floor line, its height about 72% of the frame);
    visibility is 1 for every joint, and every joint lies inside [0, size) on both axes.
    """
    _check_size(size)
    s = FIGURE_HEIGHT * size  # pixels per standing height
    rad = math.radians
    lean = rad(_soft_clip(motion.lean(t), -12.0, 12.0, 3.0))  # > 0 tips the top to image right
    yaw = rad(_soft_clip(motion.yaw(t), -35.0, 35.0, 5.0))
    tilt = rad(_soft_clip(motion.head_tilt(t), -20.0, 20.0, 4.0))
    head_yaw = yaw + rad(_soft_clip(motion.head_yaw(t), -30.0, 30.0, 5.0))
    narrow = math.cos(yaw)  # turning the body foreshortens its widths

    p = np.zeros((NUM_JOINTS, 2), dtype=np.float64)

    def put(name: str, x: float, y: float) -> None:
        p[JOINT[name]] = (x, y)

    # Trunk, from the pelvis centre at the origin.
    up = (math.sin(lean), -math.cos(lean))
    across = (math.cos(lean), math.sin(lean))  # toward the image right (the person's left)
    hip_across = (math.cos(0.4 * lean), math.sin(0.4 * lean))
    hw = HIP_HALF_WIDTH * narrow * s
    put("left_hip", hip_across[0] * hw, hip_across[1] * hw)
    put("right_hip", -hip_across[0] * hw, -hip_across[1] * hw)
    sc = (up[0] * TORSO * s, up[1] * TORSO * s)  # shoulder centre
    sw = SHOULDER_HALF_WIDTH * narrow * s
    put("left_shoulder", sc[0] + across[0] * sw, sc[1] + across[1] * sw)
    put("right_shoulder", sc[0] - across[0] * sw, sc[1] - across[1] * sw)

    # Head: a sphere on the neck, facing the viewer, turned by head_yaw and tilted.
    neck = lean + 0.4 * tilt
    hc = (
        sc[0] + math.sin(neck) * NECK_TO_HEAD * s,
        sc[1] - math.cos(neck) * NECK_TO_HEAD * s,
    )
    angle = lean + tilt
    h_up = (math.sin(angle), -math.cos(angle))
    h_across = (math.cos(angle), math.sin(angle))
    r = HEAD_RADIUS * s
    for name, (azimuth, elevation, radius) in _FACE.items():
        x = radius * r * math.cos(elevation) * math.sin(azimuth + head_yaw)
        y = radius * r * math.sin(elevation)
        put(name, hc[0] + x * h_across[0] + y * h_up[0], hc[1] + x * h_across[1] + y * h_up[1])

    # Arms: abduction relative to the trunk; the elbow folds toward the body while the arm is
    # below horizontal and toward the head above it, straightening as it passes through.
    arms = ((1, "left", motion.left_arm, motion.left_elbow),)
    arms += ((-1, "right", motion.right_arm, motion.right_elbow),)
    for side, prefix, abduction_wave, flex_wave in arms:
        abduction = _soft_clip(abduction_wave(t), -50.0, 172.0, 8.0)
        flex = _soft_clip(flex_wave(t), 0.0, 125.0, 6.0)
        bend = flex * math.tanh((abduction - 80.0) / 60.0)
        upper = -lean + side * rad(abduction)
        fore = upper + side * rad(bend)
        sx, sy = p[JOINT[f"{prefix}_shoulder"]]
        du, df = _dir(upper), _dir(fore)
        ex, ey = sx + du[0] * UPPER_ARM * s, sy + du[1] * UPPER_ARM * s
        wx, wy = ex + df[0] * FOREARM * s, ey + df[1] * FOREARM * s
        put(f"{prefix}_elbow", ex, ey)
        put(f"{prefix}_wrist", wx, wy)
        for part, (offset, length) in _HAND.items():
            d = _dir(fore + side * rad(offset))  # palm to the viewer: thumb on the outer side
            put(f"{prefix}_{part}", wx + d[0] * length * s, wy + d[1] * length * s)

    # Legs: a bent knee shows as the knee moving outward and both segments foreshortening.
    swing = motion.step(t)
    squat = motion.squat(t)
    knees = (swing + squat, 2.0 * motion.step.mean - swing + squat)
    legs = ((1, "left", motion.left_leg, knees[0]), (-1, "right", motion.right_leg, knees[1]))
    for side, prefix, abduction_wave, knee in legs:
        abduction = rad(_soft_clip(abduction_wave(t), -6.0, 30.0, 3.0))
        knee = rad(_soft_clip(knee, 0.0, 85.0, 4.0))
        shorten = 1.0 - 0.25 * (1.0 - math.cos(knee))
        hx, hy = p[JOINT[f"{prefix}_hip"]]
        dt, ds = _dir(side * (abduction + 0.35 * knee)), _dir(side * (abduction - 0.35 * knee))
        kx, ky = hx + dt[0] * THIGH * shorten * s, hy + dt[1] * THIGH * shorten * s
        ax, ay = kx + ds[0] * SHIN * shorten * s, ky + ds[1] * SHIN * shorten * s
        put(f"{prefix}_knee", kx, ky)
        put(f"{prefix}_ankle", ax, ay)
        # Feet point at the viewer: the heel projects just below the ankle, the toes lower
        # and a little outward.
        put(f"{prefix}_heel", ax - side * 0.005 * s, ay + 0.020 * s)
        put(f"{prefix}_foot_index", ax + side * 0.025 * s, ay + 0.026 * s)

    # Stand the lower foot on the floor and sway the pelvis sideways.
    floor = FLOOR_Y * size
    feet = [JOINT[n] for n in ("left_heel", "right_heel", "left_foot_index", "right_foot_index")]
    pivot = np.array([size / 2 + motion.sway(t) * size, floor])
    shift = np.array([pivot[0], floor - SHOE_RADIUS * s - p[feet, 1].max()])
    p += shift

    # Safety net: shrink about the feet if an extreme pose would leave the frame. The scale is
    # a continuous function of the pose, so the motion stays smooth where it applies.
    head_top = np.array(hc) + shift + np.array(h_up) * 1.1 * r  # the top of the hair
    extent = np.vstack([p, head_top])
    margin = _FIT_MARGIN * size
    lo, hi = margin, size - 1 - margin
    scale = 1.0
    for axis in (0, 1):
        below, above = extent[:, axis].min(), extent[:, axis].max()
        centre = pivot[axis]
        if below < lo and centre - below > 0:
            scale = min(scale, (centre - lo) / (centre - below))
        if above > hi and above - centre > 0:
            scale = min(scale, (hi - centre) / (above - centre))
    if scale < 1.0:
        p = pivot + scale * (p - pivot)
    np.clip(p, 0.0, size - 1.0, out=p)  # never binds after the fit; guards rounding only

    out = np.ones((NUM_JOINTS, 3), dtype=np.float32)
    out[:, :2] = p
    return out


# --------------------------------------------------------------------------------------------
# Appearance and drawing


_SKIN_TONES = (
    (255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 140, 100),
    (160, 105, 70), (120, 80, 55), (90, 60, 42),
)  # fmt: skip
_HAIR_COLOURS = (
    (25, 20, 18), (60, 40, 25), (105, 70, 40), (160, 120, 70),
    (215, 180, 110), (140, 60, 30), (170, 170, 170),
)  # fmt: skip


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return round(255 * r), round(255 * g), round(255 * b)


@dataclass(frozen=True)
class Appearance:
    """What the person looks like: RGB colours (0-255) and the seed of the background."""

    skin: tuple[int, int, int]
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    hair: tuple[int, int, int]
    background_seed: int

    @classmethod
    def from_seed(cls, seed: int) -> Appearance:
        """Draw an appearance from a non-negative integer seed (deterministic)."""
        rng = _rng(seed, _APPEARANCE_SALT)
        shirt_hue = float(rng.random())
        # Trousers: a different hue from the shirt, darker and less saturated.
        trousers_hue = shirt_hue + float(rng.uniform(0.25, 0.75))
        return cls(
            skin=_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))],
            shirt=_hsv(shirt_hue, float(rng.uniform(0.55, 0.9)), float(rng.uniform(0.65, 0.95))),
            trousers=_hsv(
                trousers_hue, float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.25, 0.5))
            ),
            hair=_HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))],
            background_seed=int(rng.integers(2**31)),
        )


@lru_cache(maxsize=16)
def _background(seed: int, size: int) -> np.ndarray:
    """The static background (size, size, 3) uint8, read-only and cached: copy before drawing."""
    rng = _rng(seed, _BACKGROUND_SALT)
    u = rng.uniform
    n = 2 * size  # supersampled, then averaged down: anti-aliased pattern edges
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n

    def noise(cells: int, amplitude: float) -> np.ndarray:
        grid = rng.standard_normal((cells, cells)).astype(np.float32)
        return cv2.resize(grid, (n, n), interpolation=cv2.INTER_CUBIC)[..., None] * amplitude

    # Wall: a two-colour gradient, low-frequency blotches and one of three patterns.
    hue, sat, val = float(rng.random()), float(u(0.10, 0.40)), float(u(0.70, 0.92))
    top = np.array(_hsv(hue, sat, val), np.float32)
    bottom = np.array(_hsv(hue + u(-0.08, 0.08), sat * u(0.8, 1.2), val * u(0.7, 0.85)), np.float32)
    g = np.clip(yy / WALL_BASE_Y + (xx - 0.5) * u(-0.4, 0.4), 0.0, 1.0)[..., None]
    wall = top * (1 - g) + bottom * g + noise(5, 10.0)
    pattern = int(rng.integers(3))
    if pattern == 0:  # tiles with darker grout
        cells = int(rng.integers(5, 10))
        ox, oy = float(rng.random()), float(rng.random())
        grout = 0.06
        line = ((xx * cells + ox) % 1.0 < grout) | ((yy * cells + oy) % 1.0 < grout)
        wall = wall * np.where(line[..., None], 0.82, 1.0)
    elif pattern == 1:  # wallpaper stripes
        stripes = np.sin(2 * np.pi * (xx * int(rng.integers(6, 14)) + rng.random()))
        wall = wall * (1.0 + 0.06 * np.sign(stripes)[..., None])
    else:  # stronger blotches
        wall = wall + noise(9, 12.0)
    for _ in range(int(rng.integers(0, 3))):  # picture frames on the wall
        w, h = u(0.10, 0.22), u(0.08, 0.18)
        x0, y0 = u(0.02, 0.98 - w), u(0.05, WALL_BASE_Y - 0.1 - h)
        x0i, x1i, y0i, y1i = (int(v * n) for v in (x0, x0 + w, y0, y0 + h))
        border = max(2, n // 120)
        frame_colour = np.array(_hsv(float(rng.random()), u(0.2, 0.6), u(0.2, 0.5)), np.float32)
        wall[y0i:y1i, x0i:x1i] = frame_colour
        inner = np.array(_hsv(float(rng.random()), u(0.3, 0.8), u(0.5, 0.95)), np.float32)
        wall[y0i + border : y1i - border, x0i + border : x1i - border] = inner

    # Floor: a perspective checkerboard seen from about chest height.
    horizon = 0.45
    depth = 1.0 / np.maximum(yy - horizon, 1e-3)
    checks = (np.floor((xx - 0.5) * depth / u(0.2, 0.35)) + np.floor(depth / u(0.2, 0.3))) % 2
    floor_colour = np.array(_hsv(float(rng.random()), u(0.1, 0.5), u(0.35, 0.65)), np.float32)
    floor = floor_colour * (1.0 + (checks[..., None] - 0.5) * u(0.1, 0.25)) + noise(7, 6.0)
    floor = floor * (1.0 - 0.25 * (yy[..., None] - WALL_BASE_Y))
    image = np.where((yy < WALL_BASE_Y)[..., None], wall, floor)
    skirting = (yy >= WALL_BASE_Y - 0.015) & (yy < WALL_BASE_Y)
    image[skirting] = image[skirting] * 0.7

    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    image.flags.writeable = False
    return image


def render_background(appearance: Appearance, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB: the background alone, identical in every frame of a clip."""
    _check_size(size)
    return _background(appearance.background_seed, size).copy()


_SHIFT = 4  # cv2's fixed-point bits: sub-pixel positions, so slow motion does not jitter
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


def _fx(point: np.ndarray) -> tuple[int, int]:
    return int(round(float(point[0]) * _ONE)), int(round(float(point[1]) * _ONE))


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """Darker (factor < 1) or lighter (factor > 1, toward white) version of an RGB colour."""
    if factor <= 1.0:
        r, g, b = (int(c * factor) for c in colour)
    else:
        r, g, b = (int(c + (255 - c) * (factor - 1.0)) for c in colour)
    return r, g, b


def _unit(v: np.ndarray, fallback: tuple[float, float]) -> np.ndarray:
    norm = float(np.hypot(v[0], v[1]))
    return v / norm if norm > 1e-6 else np.array(fallback, dtype=np.float64)


def _limb(image: np.ndarray, points: list[np.ndarray], widths: list[float], colour) -> None:
    """A chain of capsules: dark outlines first, then fills, then a lit stripe on each.

    Outlining the whole chain before filling keeps its joints seamless.
    """
    dark, light = _shade(colour, 0.55), _shade(colour, 1.35)
    segments = list(zip(points[:-1], points[1:], widths, strict=True))
    for a, b, w in segments:
        cv2.line(image, _fx(a), _fx(b), dark, max(1, round(w)), _AA, _SHIFT)
    for a, b, w in segments:
        edge = max(1, round(0.12 * w))
        cv2.line(image, _fx(a), _fx(b), colour, max(1, round(w) - 2 * edge), _AA, _SHIFT)
    for a, b, w in segments:
        if w < 6:
            continue
        normal = _unit(np.array([a[1] - b[1], b[0] - a[0]]), (0.0, -1.0))
        if normal[0] + normal[1] > 0:  # light from the upper left
            normal = -normal
        off = normal * 0.18 * w
        cv2.line(image, _fx(a + off), _fx(b + off), light, max(1, round(0.22 * w)), _AA, _SHIFT)


def _polygon(image: np.ndarray, points: list[np.ndarray], colour, edge: int) -> None:
    pts = np.array([_fx(q) for q in points], dtype=np.int32)
    cv2.fillPoly(image, [pts], colour, _AA, _SHIFT)
    if edge:
        cv2.polylines(image, [pts], True, _shade(colour, 0.55), edge, _AA, _SHIFT)


def _disc(image: np.ndarray, centre: np.ndarray, radius: float, colour, edge: int = 0) -> None:
    c, rr = _fx(centre), max(_ONE // 2, int(round(radius * _ONE)))
    cv2.circle(image, c, rr, colour, -1, _AA, _SHIFT)
    if edge:
        cv2.circle(image, c, rr, _shade(colour, 0.55), edge, _AA, _SHIFT)


def _shadow(image: np.ndarray, centre: np.ndarray, half_width: float, half_height: float) -> None:
    """Darken a soft ellipse on the floor (a contact shadow)."""
    size = image.shape[0]
    pad = 2
    x0 = max(0, int(centre[0] - half_width) - pad)
    x1 = min(size, int(centre[0] + half_width) + pad + 1)
    y0 = max(0, int(centre[1] - half_height) - pad)
    y1 = min(size, int(centre[1] + half_height) + pad + 1)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    local = centre - (x0, y0)
    axes = (max(1, round(half_width * _ONE)), max(1, round(half_height * _ONE)))
    cv2.ellipse(mask, _fx(local), axes, 0, 0, 360, 255, -1, _AA, _SHIFT)
    mask = cv2.GaussianBlur(mask, (5, 5), 0)
    roi = image[y0:y1, x0:x1]
    roi[:] = (roi * (1.0 - 0.35 / 255.0 * mask[..., None])).astype(np.uint8)


def render_person(keypoints: np.ndarray, appearance: Appearance, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB frame: the background with the figure drawn at `keypoints`.

    `keypoints` is (33, 3) in the schema, such as one row of `pose_at`; scale comes from the
    torso's length. A frame without a person (NaN keypoints) is the background alone. The
    person's right limbs are drawn first and a little darker (the far side), then the left.
    """
    points = _figure_points(keypoints, size)
    image = _background(appearance.background_seed, size).copy()
    if points is not None:
        _draw_figure(image, points, appearance, shadow=True)
    return image


def person_mask(keypoints: np.ndarray, appearance: Appearance, size: int) -> np.ndarray:
    """(size, size) uint8 0/255: the pixels `render_person` paints the figure on, at least
    half covered (its drawing is anti-aliased); all 0 without a person.

    The contact shadow is not the person: it only darkens the floor, which is background
    (a plate of the room shows it there too, and the person can be put on another floor).
    """
    points = _figure_points(keypoints, size)
    mask = np.zeros((size, size), np.uint8)
    if points is None:
        return mask
    # Anti-aliased drawing blends each pixel: out = coverage * figure + (1 - coverage) *
    # canvas. Drawn over black and over white, the two results differ by (1 - coverage) *
    # 255, which gives the coverage exactly, up to the rounding of each blend.
    black = np.zeros((size, size, 3), np.uint8)
    white = np.full((size, size, 3), 255, np.uint8)
    for canvas in (black, white):
        _draw_figure(canvas, points, appearance, shadow=False)
    uncovered = (white.astype(np.int16) - black).mean(axis=2)
    mask[uncovered <= 127.5] = 255
    return mask


def _figure_points(keypoints: np.ndarray, size: int) -> np.ndarray | None:
    """The (33, 2) float64 joint positions to draw, or None for a frame without a person."""
    _check_size(size)
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape != (NUM_JOINTS, 3):
        raise GanmotionError(f"keypoints must be ({NUM_JOINTS}, 3), got {kp.shape}")
    if not has_person(kp):
        return None
    if not np.isfinite(kp[:, :2]).all():
        raise GanmotionError("keypoints contain NaN or inf for some joints but not all")
    return kp[:, :2]


def _draw_figure(image: np.ndarray, p: np.ndarray, appearance: Appearance, shadow: bool) -> None:
    """Draw the figure at joints `p` (33, 2) into `image` (size, size, 3) uint8, in place;
    with `shadow`, first its contact shadow on the floor."""

    def j(name: str) -> np.ndarray:
        return p[JOINT[name]]

    mid_sh = (j("left_shoulder") + j("right_shoulder")) / 2
    mid_hip = (j("left_hip") + j("right_hip")) / 2
    s = max(float(np.hypot(*(mid_sh - mid_hip))) / TORSO, 1.0)  # pixels per standing height
    up = _unit(mid_sh - mid_hip, (0.0, -1.0))
    across = np.array([-up[1], up[0]])  # image right for an upright torso
    hip_across = _unit(j("left_hip") - j("right_hip"), (across[0], across[1]))
    edge = max(1, round(0.006 * s))
    skin, shirt, trousers = appearance.skin, appearance.shirt, appearance.trousers
    shoe = _shade(trousers, 0.45)

    if shadow:  # under the feet
        feet = np.array(
            [j(f"{side}_{part}") for side in ("left", "right") for part in ("heel", "foot_index")]
        )
        _shadow(
            image,
            np.array([feet[:, 0].mean(), feet[:, 1].max() + SHOE_RADIUS * s]),
            (feet[:, 0].max() - feet[:, 0].min()) / 2 + 0.05 * s,
            0.018 * s,
        )

    for side, far in (("right", 0.85), ("left", 1.0)):
        colour = _shade(trousers, far)
        _limb(
            image,
            [j(f"{side}_hip"), j(f"{side}_knee"), j(f"{side}_ankle")],
            [_THIGH_W * s, _SHIN_W * s],
            colour,
        )
        _limb(image, [j(f"{side}_heel"), j(f"{side}_foot_index")], [2 * SHOE_RADIUS * s], shoe)

    head_centre = (j("left_ear") + j("right_ear")) / 2
    _limb(image, [mid_sh, head_centre], [_NECK_W * s], _shade(skin, 0.9))

    # Shirt: shoulders, waist and hips, with a neckline dip.
    arm_r = _UPPER_ARM_W * s / 2
    hip_half = float(np.hypot(*(j("left_hip") - mid_hip)))
    waist = mid_hip + up * 0.08 * s
    torso = [
        j("left_shoulder") + up * 0.8 * arm_r,
        j("left_shoulder") + across * 0.9 * arm_r,
        waist + hip_across * (hip_half + 0.025 * s),
        j("left_hip") + hip_across * 0.04 * s - up * 0.02 * s,
        j("right_hip") - hip_across * 0.04 * s - up * 0.02 * s,
        waist - hip_across * (hip_half + 0.025 * s),
        j("right_shoulder") - across * 0.9 * arm_r,
        j("right_shoulder") + up * 0.8 * arm_r,
        mid_sh - across * 0.03 * s + up * 0.02 * s,
        mid_sh - up * 0.015 * s,
        mid_sh + across * 0.03 * s + up * 0.02 * s,
    ]
    _polygon(image, torso, shirt, edge)

    # Trousers' seat over the bottom of the shirt, running into the tops of the thighs so that
    # legs and seat read as one garment; a belt line on top.
    band = mid_hip + up * 0.05 * s
    band_l = band + hip_across * (hip_half + 0.03 * s)
    band_r = band - hip_across * (hip_half + 0.03 * s)
    pelvis = [band_l]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        hip = j(f"{side}_hip")
        down = _unit(j(f"{side}_knee") - hip, (-up[0], -up[1]))
        out = np.array([down[1], -down[0]])  # normal to the thigh, turned outward
        if float(np.dot(out, hip_across)) * sign < 0:
            out = -out
        half = 0.45 * _THIGH_W * s
        leg = [hip + out * half, hip + down * 0.06 * s + out * half]
        leg += [hip + down * 0.06 * s - out * half, mid_hip - up * 0.07 * s]
        pelvis += leg if sign > 0 else leg[::-1][1:]
    pelvis.append(band_r)
    _polygon(image, pelvis, trousers, 0)
    outline = _shade(trousers, 0.55)  # outline all but the seams across the thighs
    for part in (pelvis[:3], pelvis[3:6], pelvis[6:] + pelvis[:1]):
        pts = np.array([_fx(q) for q in part], dtype=np.int32)
        cv2.polylines(image, [pts], False, outline, edge, _AA, _SHIFT)
    cv2.line(image, _fx(band_l), _fx(band_r), shoe, max(1, round(0.01 * s)), _AA, _SHIFT)

    # Arms: sleeves in shirt colour, mitten hands with a thumb in skin colour.
    for side, far in (("right", 0.85), ("left", 1.0)):
        wrist = j(f"{side}_wrist")
        _limb(
            image,
            [j(f"{side}_shoulder"), j(f"{side}_elbow"), wrist],
            [_UPPER_ARM_W * s, _FOREARM_W * s],
            _shade(shirt, far),
        )
        hand_skin = _shade(skin, far)
        knuckles = (j(f"{side}_index") + j(f"{side}_pinky")) / 2
        fingers = knuckles + _unit(knuckles - wrist, (0.0, 1.0)) * 0.02 * s
        _limb(image, [wrist, j(f"{side}_thumb")], [0.45 * _HAND_W * s], hand_skin)
        _limb(image, [wrist, knuckles, fingers], [_HAND_W * s, 0.85 * _HAND_W * s], hand_skin)

    # Head: ears, face, hair on top, eyes and mouth.
    r = HEAD_RADIUS * s
    head_up = _unit(
        (j("left_eye") + j("right_eye")) / 2 - (j("mouth_left") + j("mouth_right")) / 2,
        (up[0], up[1]),
    )
    for side in ("right", "left"):
        _disc(image, j(f"{side}_ear"), 0.22 * r, _shade(skin, 0.92), edge)
    _disc(image, head_centre, r, skin, edge)
    # Hair: the top of an ellipse above the eyes, turned with the head (cv2 angles are
    # degrees clockwise on screen, which is how a head leaning to the image right turns).
    turn = math.degrees(math.atan2(head_up[0], -head_up[1]))
    hair_axes = (max(1, round(1.07 * r * _ONE)), max(1, round(0.8 * r * _ONE)))
    hair = _fx(head_centre + head_up * 0.36 * r)
    cv2.ellipse(image, hair, hair_axes, turn, 170, 370, appearance.hair, -1, _AA, _SHIFT)
    eye_colour = (35, 28, 28)
    for side in ("right", "left"):
        _disc(image, j(f"{side}_eye"), max(0.6, 0.12 * r), eye_colour)
    lips = _shade(skin, 0.6)
    cv2.line(
        image,
        _fx(j("mouth_right")),
        _fx(j("mouth_left")),
        lips,
        max(1, round(0.08 * r)),
        _AA,
        _SHIFT,
    )
    _disc(image, j("nose"), max(0.5, 0.08 * r), _shade(skin, 0.8))


# --------------------------------------------------------------------------------------------
# Clips


def _check_clip(frames: int, size: int, fps: float) -> None:
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise GanmotionError(f"frames must be a positive integer, got {frames!r}")
    # Named as synth's flags, which is how a user sets them; pose_at, which export calls
    # with a model's size, says "size".
    _check_size(size, "--size")
    if not (isinstance(fps, (int, float, np.number)) and MIN_FPS <= fps <= MAX_FPS):
        raise GanmotionError(f"--fps {fps}: must be {MIN_FPS:g} to {MAX_FPS:g} frames per second")


def _clip_keypoints(frames: int, size: int, fps: float, motion_seed: int) -> np.ndarray:
    motion = Motion.from_seed(motion_seed)
    return np.stack([pose_at(motion, i / fps, size) for i in range(frames)])


def _iter_frames(keypoints: np.ndarray, appearance: Appearance, size: int) -> Iterator[np.ndarray]:
    for row in keypoints:
        yield render_person(row, appearance, size)


def make_clip(
    frames: int,
    size: int = 256,
    fps: float = 30.0,
    motion_seed: int = 0,
    appearance_seed: int = 0,
) -> tuple[list[np.ndarray], np.ndarray]:
    """A clip in memory: `frames` RGB uint8 images (size, size, 3) and float32 keypoints
    (frames, 33, 3); frame i shows the motion at t = i / fps seconds."""
    _check_clip(frames, size, fps)
    keypoints = _clip_keypoints(frames, size, fps, motion_seed)
    appearance = Appearance.from_seed(appearance_seed)
    return list(_iter_frames(keypoints, appearance, size)), keypoints


def keypoints_path_for(video_path: str | os.PathLike) -> Path:
    """Where a clip's keypoints live: `<stem>.keypoints.npy` next to the video."""
    video_path = Path(video_path)
    return video_path.with_name(f"{video_path.stem}.keypoints.npy")


def masks_path_for(video_path: str | os.PathLike) -> Path:
    """Where a clip's person masks live: `<stem>.masks.npz` next to the video, each frame's
    `person_mask` (a mask file of `ganmotion.data.masks`)."""
    video_path = Path(video_path)
    return video_path.with_name(f"{video_path.stem}.masks.npz")


def write_clip(
    path: str | os.PathLike,
    frames: int,
    size: int = 256,
    fps: float = 30.0,
    motion_seed: int = 0,
    appearance_seed: int = 0,
) -> tuple[Path, Path]:
    """Write a clip as an H.264 mp4 at `path`, its keypoints (frames, 33, 3) float32 and its
    person masks (size, size) uint8 0/255 per frame next to it (see `keypoints_path_for`,
    `masks_path_for`); returns (video_path, keypoints_path).

    Frames and masks are rendered one at a time, so long clips do not sit in memory. All
    three files are written under temporary names and renamed into place, the masks and then
    the keypoints right after the video; on error none is left behind and existing files of
    those names are untouched.
    """
    _check_clip(frames, size, fps)
    video_path = Path(path)
    if video_path.suffix.lower() != ".mp4":
        raise GanmotionError(f"{video_path}: the output must be an .mp4 file")
    # The three files beside each other: a folder in the way of one is refused now, not
    # after the video has been renamed into place.
    for target in (video_path, keypoints_path_for(video_path), masks_path_for(video_path)):
        check_writable(target)
    keypoints = _clip_keypoints(frames, size, fps, motion_seed)
    appearance = Appearance.from_seed(appearance_seed)
    kp_path = keypoints_path_for(video_path)
    try:
        # Renamed into place in reverse order of opening: video, masks, keypoints.
        with atomic_write(kp_path) as kp_tmp, atomic_write(masks_path_for(video_path)) as m_tmp:
            with open(kp_tmp, "wb") as f:
                np.save(f, keypoints, allow_pickle=False)
            with MaskWriter(m_tmp) as masks, VideoWriter(video_path, fps) as writer:
                for index, frame in enumerate(_iter_frames(keypoints, appearance, size)):
                    writer.write(frame)
                    masks.write(person_mask(keypoints[index], appearance, size))
    except OSError as e:
        raise GanmotionError(f"{video_path}: cannot write the clip: {e}") from e
    return video_path, kp_path


# --------------------------------------------------------------------------------------------
# Command line


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ganmotion.data.synthetic",
        description=(
            "Write a synthetic clip: a procedurally drawn figure moving smoothly over a static "
            "background, as an H.264 mp4 plus its exact MediaPipe-33 keypoints in "
            "<stem>.keypoints.npy (float32, frames x 33 x 3: x, y in pixels, visibility) and "
            "its exact person masks in <stem>.masks.npz (one size x size uint8 0/255 array "
            "per frame)."
        ),
        epilog="example: python -m ganmotion.data.synthetic --out data/clip.mp4 --frames 300",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="output video (.mp4); keypoints and masks go next to it as <stem>.keypoints.npy "
        "and <stem>.masks.npz",
    )
    parser.add_argument(
        "--frames", type=_positive_int, default=300, metavar="N", help="number of frames"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=256,
        metavar="PX",
        help=f"side of the square frame in pixels ({MIN_SIZE} to {MAX_SIZE})",
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=30.0,
        metavar="RATE",
        help=f"frames per second ({MIN_FPS:g} to {MAX_FPS:g})",
    )
    parser.add_argument(
        "--motion-seed",
        type=_seed,
        default=0,
        metavar="SEED",
        help="seed of the motion: how the person moves",
    )
    parser.add_argument(
        "--appearance-seed",
        type=_seed,
        default=0,
        metavar="SEED",
        help="seed of the appearance: skin, clothes, hair and background",
    )
    return parser


@command_line
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 on success, 1 on an error)."""
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    video_path, kp_path = write_clip(
        args.out,
        frames=args.frames,
        size=args.size,
        fps=args.fps,
        motion_seed=args.motion_seed,
        appearance_seed=args.appearance_seed,
    )
    elapsed = time.perf_counter() - start
    print(
        f"wrote {video_path} ({args.frames} frames, {args.size}x{args.size}, "
        f"{args.frames / args.fps:.2f} s at {args.fps:g} fps), {kp_path.name} and "
        f"{masks_path_for(video_path).name} in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
