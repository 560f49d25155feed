"""Quality metrics of generated video and of the poses that drive it.

Each metric is a plain function over numpy arrays, documented with its unit, so evaluation
scripts and benchmarks report the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganmotion.errors import GanmotionError, one_line
from ganmotion.images import to_unit_range
from ganmotion.pose.schema import FLIP_PERMUTATION, JOINT, REDUCED_JOINTS


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


# ----------------------------------------------------------------- reconstruction


def _channels_first(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) images -> uint8 (N, 3, H, W), or a ValueError naming what they are."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 images (N, H, W, 3), got {images.dtype} {tuple(images.shape)}"
        )
    return images.permute(0, 3, 1, 2)


def _unit(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) images -> float64 (N, 3, H, W) in [0, 1]."""
    return _channels_first(images).to(torch.float64) / 255


def _weighted_mean(values: torch.Tensor, weights: np.ndarray | None) -> torch.Tensor:
    """Mean of values (N, C, H, W) per image over C, H, W, or with weights (N, H, W) (e.g. a
    person mask, 0/255 or in [0, 1]) their weighted mean; NaN for an image whose weights
    are all 0."""
    if weights is None:
        return values.mean(dim=(1, 2, 3))
    w = torch.as_tensor(np.asarray(weights), dtype=torch.float64)
    if w.shape != (values.shape[0], *values.shape[2:]):
        raise ValueError(f"weights {tuple(w.shape)} do not fit values {tuple(values.shape)}")
    w = w[:, None].expand_as(values)
    return (values * w).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3))


def psnr(generated: np.ndarray, real: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of each image pair (N,), uint8 (N, H, W, 3) in;
    inf for identical images. With `weights` (N, H, W), over the weighted pixels only (the
    mean squared error is their weighted mean)."""
    mse = _weighted_mean((_unit(generated) - _unit(real)) ** 2, weights)
    with np.errstate(divide="ignore"):
        return (10 * np.log10(1 / mse.numpy())).astype(np.float64)


# An image generated exactly has infinite PSNR; means over images count it as this many dB.
PSNR_CAP_DB = 100.0


def mean_psnr(values: np.ndarray) -> float:
    """Mean of per-image PSNRs with each capped at PSNR_CAP_DB, so one exact image does not
    make the mean infinite."""
    return float(np.minimum(values, PSNR_CAP_DB).mean())


def l1(generated: np.ndarray, real: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Mean absolute difference of each image pair (N,) on the [-1, 1] scale the models
    work in (what training logs as val/l1); uint8 (N, H, W, 3) in. With `weights`
    (N, H, W), their weighted mean."""
    return (2 * _weighted_mean((_unit(generated) - _unit(real)).abs(), weights)).numpy()


SSIM_WINDOW = 11  # pixels across the Gaussian window


def _blur(images: torch.Tensor, size: int = SSIM_WINDOW, sigma: float = 1.5) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 3, H - size + 1, W - size + 1): each channel blurred by the
    normalised size x size Gaussian, at the positions where the window fits.

    The 2-D window is the outer product of the 1-D one, so a pass down the columns and one
    along the rows give the same sums (to float64 rounding) for 2 x 11 products a pixel
    instead of 11 x 11: a float64 grouped 11 x 11 convolution took most of an evaluation."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    down = F.conv2d(images, g.view(1, 1, size, 1).expand(3, 1, size, 1), groups=3)
    return F.conv2d(down, g.view(1, 1, 1, size).expand(3, 1, 1, size), groups=3)


def window_std(images: np.ndarray) -> torch.Tensor:
    """The texture of uint8 (N, H, W, 3) images: the standard deviation within the SSIM
    window at each position where it fits, float64 (N, H - 10, W - 10) in grey levels, the
    mean over the channels."""
    x = _channels_first(images).to(torch.float64)
    variance = _blur(x * x) - _blur(x) ** 2
    return variance.clamp(min=0).sqrt().mean(dim=1)


def ssim_map(generated: np.ndarray, real: np.ndarray) -> torch.Tensor:
    """The SSIM map of each image pair, uint8 (N, H, W, 3) in -> float64 (N, H - 10, W - 10):
    the structural similarity of the 11 x 11 window centred on each position where it fits,
    averaged over the channels (the definition of `ssim`, before its mean over positions)."""
    c1, c2 = 0.01**2, 0.03**2
    x, y = _unit(generated), _unit(real)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"images of {tuple(x.shape[-2:])} are smaller than the SSIM window")
    mx, my = _blur(x), _blur(y)
    vx, vy, cxy = _blur(x * x) - mx**2, _blur(y * y) - my**2, _blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(dim=1)


def ssim(
    generated: np.ndarray, real: np.ndarray, chunk: int = 16, weights: np.ndarray | None = None
) -> np.ndarray:
    """Structural similarity of each image pair (N,), uint8 (N, H, W, 3) in.

    The standard definition (Wang et al. 2004): an 11 x 11 Gaussian window of sigma 1.5,
    K1 = 0.01, K2 = 0.03, data range 1, population statistics, computed per channel over
    the positions where the window fits and averaged; float64 throughout. 1 for identical
    images. Matches skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=-1). With `weights` (N, H, W),
    the SSIM map's weighted mean, each position weighted by the pixel at its window's centre.
    """
    out = []
    for start in range(0, len(generated), chunk):
        s = ssim_map(generated[start : start + chunk], real[start : start + chunk])[:, None]
        w = None
        if weights is not None:  # the map covers the positions where the window fits
            edge = SSIM_WINDOW // 2
            w = np.asarray(weights[start : start + chunk])[:, edge:-edge, edge:-edge]
        out.append(_weighted_mean(s, w))
    return torch.cat(out).numpy() if out else np.zeros(0)


# ------------------------------------------------------------------- the person region

# Margin around the body's keypoints, as a share of the box's longer side on each side: the
# keypoints stop at the ears, wrists and heels, the person does not.
PERSON_MARGIN = 0.15
PERSON_CROP_SIZE = 128  # person boxes are compared at one size, whatever their size in pixels


def person_boxes(keypoints: np.ndarray, size: int, margin: float = PERSON_MARGIN) -> np.ndarray:
    """A square box (x0, y0, x1, y1), int, around each frame's person (N, 4), as in the body
    crops of Everybody Dance Now: the visible keypoints' (visibility >= 0.5) extent, squared
    about its centre, grown by `margin` of its side on each side and clipped to the size x
    size image; the whole image for a frame with fewer than two visible keypoints."""
    boxes = np.tile(np.array([0, 0, size, size]), (len(keypoints), 1))
    for i, frame in enumerate(keypoints):
        visible = np.isfinite(frame).all(axis=1) & (frame[:, 2] >= 0.5)
        if visible.sum() < 2:
            continue
        points = frame[visible, :2]
        low, high = points.min(axis=0), points.max(axis=0)
        centre, side = (low + high) / 2, (high - low).max() * (1 + 2 * margin)
        side = max(side, 16.0)
        x0, y0 = np.floor(centre - side / 2).astype(int)
        x1, y1 = np.ceil(centre + side / 2).astype(int)
        boxes[i] = (max(0, x0), max(0, y0), min(size, x1), min(size, y1))
    return boxes


def crop_boxes(
    images: np.ndarray, boxes: np.ndarray, out: int = PERSON_CROP_SIZE, nearest: bool = False
) -> np.ndarray:
    """Each image's box (N, 4) cut out and resized to out x out: images (N, H, W, ...) uint8
    -> (N, out, out, ...). Linear interpolation (area when shrinking), or nearest for masks."""
    import cv2

    crops = []
    for image, (x0, y0, x1, y1) in zip(images, boxes):
        region = image[y0:y1, x0:x1]
        shrinking = max(region.shape[:2]) > out
        mode = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        crops.append(cv2.resize(region, (out, out), interpolation=mode))
    return np.stack(crops)


# ------------------------------------------------------------------- pose accuracy

# Joints whose position a generated body must get right: the seed's reduced skeleton (nose,
# shoulders, elbows, wrists, hips, knees, ankles). Face and finger points are too small to
# judge at these sizes and MediaPipe guesses them from the head and wrists anyway.
POSE_JOINTS = REDUCED_JOINTS
PCK_THRESHOLDS = (0.05, 0.1)


def torso_height(keypoints: np.ndarray, min_visibility: float = 0.5) -> np.ndarray:
    """Distance from the shoulders' midpoint to the hips' midpoint of each frame (N,), in
    pixels; NaN where a shoulder or hip is not visible. keypoints (N, 33, 3)."""
    k = keypoints.astype(np.float64)
    ends = [JOINT[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    visible = (k[:, ends, 2] >= min_visibility).all(axis=1) & np.isfinite(k[:, ends]).all(
        axis=(1, 2)
    )
    shoulders = k[:, ends[:2], :2].mean(axis=1)
    hips = k[:, ends[2:], :2].mean(axis=1)
    return np.where(visible, np.linalg.norm(shoulders - hips, axis=-1), np.nan)


def pose_errors(
    detected: np.ndarray, driving: np.ndarray, min_visibility: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What `pose_accuracy` and `mirrored_share` judge: the frames whose driving torso is
    visible (N,), and over those frames' POSE_JOINTS the joints judged (F, J), the
    detected-to-driving distance in pixels (F, J; NaN where not found) and the same in
    driving torso heights."""
    torso = torso_height(driving, min_visibility)
    frames = np.isfinite(torso)
    drive = driving[frames][:, POSE_JOINTS].astype(np.float64)
    got = detected[frames][:, POSE_JOINTS].astype(np.float64)
    judged = (drive[..., 2] >= min_visibility) & np.isfinite(drive).all(axis=-1)  # (F, J)
    found = (got[..., 2] >= min_visibility) & np.isfinite(got).all(axis=-1)  # (F, J)
    distance = np.where(found, np.linalg.norm(got[..., :2] - drive[..., :2], axis=-1), np.nan)
    return frames, judged, distance, distance / torso[frames][:, None]


def pose_accuracy(
    detected: np.ndarray, driving: np.ndarray, min_visibility: float = 0.5
) -> dict[str, float]:
    """How well the poses found in generated frames match the poses that drove them.

    detected, driving: keypoints (N, 33, 3) in the same pixels; a frame where the detector
    found nobody is a row of NaN. A joint counts as found only with visibility >=
    `min_visibility`: on a smeared image MediaPipe can still return a "person" whose joints
    lie far outside the frame at visibility ~1e-4, which is no detection at all. Judged on
    POSE_JOINTS visible in the driving pose, in frames whose driving torso is visible:
      pck@0.05, pck@0.1  share of those joints found within 0.05 / 0.1 torso heights of
                         the driving position; a joint not found is a miss
      error_px           mean distance in pixels over the joints found (NaN if none)
      detected           share of frames where a person was found with a visible torso
    """
    frames, judged, distance, relative = pose_errors(detected, driving, min_visibility)
    people = np.isfinite(torso_height(detected, min_visibility))
    result = {"frames": int(frames.sum()), "detected": float(people.mean()) if len(people) else 0.0}
    for threshold in PCK_THRESHOLDS:
        hits = np.nan_to_num(relative, nan=np.inf) <= threshold
        result[f"pck@{threshold}"] = float(hits[judged].mean()) if judged.any() else float("nan")
    measured = judged & np.isfinite(distance)
    result["error_px"] = float(distance[measured].mean()) if measured.any() else float("nan")
    return result


MIRRORED_MARGIN = 0.2


def mirrored_share(
    detected: np.ndarray,
    driving: np.ndarray,
    min_visibility: float = 0.5,
    margin: float = MIRRORED_MARGIN,
) -> float:
    """Share of the frames judged by `pose_accuracy` whose detected pose scores a PCK@0.1
    higher by more than `margin` with its left and right joints exchanged: frames where the
    detector took the figure for one seen from behind (as it does for a face drawn without
    eyes and mouth), which PCK counts as a wrong pose. NaN when no frame is judged."""

    def pck_per_frame(poses: np.ndarray) -> np.ndarray:
        _, judged, _, relative = pose_errors(poses, driving, min_visibility)
        hits = (np.nan_to_num(relative, nan=np.inf) <= 0.1) & judged
        return hits.sum(1) / np.maximum(judged.sum(1), 1)

    as_found = pck_per_frame(detected)
    if len(as_found) == 0:
        return float("nan")
    exchanged = pck_per_frame(detected[:, FLIP_PERMUTATION])
    return float((exchanged > as_found + margin).mean())


# ----------------------------------------------------------------------- flicker


def frame_difference(frames: np.ndarray, consecutive: np.ndarray | None = None) -> float:
    """Mean absolute difference between successive frames, uint8 (N, H, W, 3) in, on the
    0-255 scale. `consecutive` (N - 1,) bool marks the pairs that are neighbours in the
    video (False across a gap in the frame numbers); all of them by default."""
    if len(frames) < 2:
        return float("nan")
    pairs = np.ones(len(frames) - 1, bool) if consecutive is None else consecutive
    diffs = [
        np.abs(frames[i + 1].astype(np.int16) - frames[i].astype(np.int16)).mean()
        for i in np.flatnonzero(pairs)
    ]
    return float(np.mean(diffs)) if diffs else float("nan")


# -------------------------------------------------------------------------- LPIPS


class LPIPS:
    """Learned perceptual distance (Zhang et al. 2018, LPIPS v0.1 with AlexNet) of each
    image pair (N,), uint8 (N, H, W, 3) in; 0 for identical images, lower is closer.

    The `lpips` package ships the small linear heads; the AlexNet backbone is a local file
    (torchvision's AlexNet state dict, .pth or .safetensors), since nothing is downloaded.
    """

    def __init__(self, backbone: str | Path, device: str | torch.device = "cpu"):
        import warnings

        import lpips

        backbone = Path(backbone)
        if not backbone.is_file():
            raise GanmotionError(
                f"{backbone}: LPIPS backbone weights not found (torchvision AlexNet state dict)"
            )
        try:
            if backbone.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(backbone))
            else:
                state = torch.load(backbone, map_location="cpu", weights_only=True)
        except Exception as error:  # safetensors' and torch's own error types
            raise GanmotionError(
                f"{backbone}: not a readable weights file ({one_line(error)})"
            ) from None
        with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained`
            warnings.simplefilter("ignore")
            self.model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
        # lpips keeps AlexNet's feature layers under their index in five slices:
        # net.slice2.3.weight is torchvision's features.3.weight.
        wanted = {k: "features." + k.split(".", 1)[1] for k in self.model.net.state_dict()}
        missing = sorted(v for v in wanted.values() if v not in state)
        if missing:
            raise GanmotionError(
                f"{backbone}: not an AlexNet state dict (missing {', '.join(missing[:4])})"
            )
        self.model.net.load_state_dict({k: state[v] for k, v in wanted.items()})
        self.device = torch.device(device)
        self.model.eval().to(self.device)

    def __call__(self, generated: np.ndarray, real: np.ndarray, chunk: int = 16) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(generated), chunk):
                x = to_unit_range(_channels_first(generated[start : start + chunk]))
                y = to_unit_range(_channels_first(real[start : start + chunk]))
                x, y = x.to(self.device), y.to(self.device)
                out.append(self.model(x, y).flatten().cpu().double())
        return torch.cat(out).numpy() if out else np.zeros(0)
