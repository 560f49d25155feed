"""The keypoint schema: MediaPipe Pose's 33 landmarks, their limbs, flip pairs and colours.

Keypoints of one frame are a float32 array (33, 3): x, y in pixels of the image they belong
to, and visibility in [0, 1]. For a whole video they are (N, 33, 3), and a frame without a
person is a row of NaN (never zeros, which would look like a person in the corner).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganmotion.errors import GanmotionError

SCHEMA_VERSION = "mediapipe-pose-33/v1"

JOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
NUM_JOINTS = len(JOINT_NAMES)
JOINT = {name: i for i, name in enumerate(JOINT_NAMES)}

# The same 35 connections as mediapipe.solutions.pose.POSE_CONNECTIONS, spelled out so that
# rendering never needs MediaPipe installed or imported.
LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24),
    (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31),
    (28, 32),
)  # fmt: skip


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    if name == "mouth_left":
        return "mouth_right"
    if name == "mouth_right":
        return "mouth_left"
    return name


# FLIP_PERMUTATION[i] is the joint that joint i becomes in a horizontally mirrored image.
FLIP_PERMUTATION: np.ndarray = np.array(
    [JOINT[_mirror_name(name)] for name in JOINT_NAMES], dtype=np.int64
)
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, int(j)) for i, j in enumerate(FLIP_PERMUTATION) if i < j
)

# The seed project's reduced view: the 13 joints its MLP baseline and matching used.
REDUCED_JOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
REDUCED_JOINTS: np.ndarray = np.array([JOINT[n] for n in REDUCED_JOINT_NAMES], dtype=np.int64)


def _hsv_palette(n: int, saturation: float, value: float) -> tuple[tuple[int, int, int], ...]:
    import colorsys

    return tuple(
        tuple(round(255 * c) for c in colorsys.hsv_to_rgb(i / n, saturation, value))
        for i in range(n)
    )


# Every limb gets its own hue, as in OpenPose renderings: left and right limbs must look
# different, or the generator cannot tell which arm is in front. That is also why a
# horizontal flip swaps joints and does not only mirror pixels.
LIMB_COLOURS: tuple[tuple[int, int, int], ...] = _hsv_palette(len(LIMBS), 1.0, 1.0)
JOINT_COLOURS: tuple[tuple[int, int, int], ...] = _hsv_palette(NUM_JOINTS, 0.6, 1.0)
# The version of the two palettes above, saved with every model in its skeleton style: a
# model trained on one palette must not be fed another. Bump it when a colour changes.
COLOURS_VERSION = 1


def flip_keypoints(keypoints: np.ndarray, width: float) -> np.ndarray:
    """Mirror keypoints (..., 33, 3) horizontally in an image `width` pixels wide.

    x maps to (width - 1) - x, the pixel-centre convention of `cv2.flip`, and left and right
    joints trade places so that a mirrored left arm is still drawn as a left arm.
    """
    flipped = keypoints[..., FLIP_PERMUTATION, :].copy()
    flipped[..., 0] = (width - 1) - flipped[..., 0]
    return flipped


def has_person(keypoints: np.ndarray) -> np.ndarray | bool:
    """True where a frame (33, 3) — or each frame of (N, 33, 3) — holds a detected person."""
    return ~np.isnan(keypoints).all(axis=(-2, -1))


def missing_frame() -> np.ndarray:
    """The (33, 3) row that stands for 'no person in this frame'."""
    return np.full((NUM_JOINTS, 3), np.nan, dtype=np.float32)


def load_keypoints(path: Path) -> np.ndarray:
    """Keypoints given by the user (`prepare --keypoints`, `infer --poses`): .npy, (N, 33, 3)
    numbers, NaN rows without a person and NaN joints unseen, no infinities; no pickle."""
    if path.is_dir():
        raise GanmotionError(f"{path}: is a directory; give the keypoints .npy file")
    try:
        keypoints = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise GanmotionError(f"{path}: no such file") from None
    except (ValueError, EOFError) as error:  # EOFError: an empty file
        raise GanmotionError(f"{path}: not a plain .npy array ({error or 'empty'})") from None
    except OSError as error:
        raise GanmotionError(f"{path}: cannot read ({error})") from None
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 3):
        raise GanmotionError(
            f"{path}: keypoints must be (frames, {NUM_JOINTS}, 3), got {keypoints.shape}"
        )
    if keypoints.dtype.kind not in "fiu":
        raise GanmotionError(f"{path}: keypoints must be numbers, got {keypoints.dtype}")
    if np.isinf(keypoints).any():  # NaN marks a missing person; an infinity is no position
        frame = int(np.flatnonzero(np.isinf(keypoints).any(axis=(1, 2)))[0])
        raise GanmotionError(f"{path}: keypoints of frame {frame} are infinite")
    return keypoints.astype(np.float32)
