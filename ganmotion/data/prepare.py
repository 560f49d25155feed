"""Prepare a target video for training: poses, person masks, stable person-centred crops,
WebDataset shards.

    python -m ganmotion.data.prepare --video target.mp4 --out data/shards --size 512

Output (DESIGN.md): `{split}-{index:06d}.tar` shards whose samples are `__key__`
`{clip}_{frame:06d}`, `jpg` (the crop; where it leaves the frame, the frame reflected about
its edge, see `crop_frame`), `pose.npy` (33, 3 keypoints in crop pixels), `mask.png` (the
person's mask in crop pixels, 0/255, 0 outside the frame) and `box.npy` ((3,) int32 x0, y0,
side: the square of source pixels the crop was cut from), plus `manifest.json`, `keypoints.npy`
(source-frame keypoints, NaN rows without a person), `crops.npy` ((N, 3) cx, cy, side in
source pixels) and, for a static camera, `plate.png` (the room without the person, in
source-frame pixels; `ganmotion.data.background.crop_plate(plate, box, size)` cuts it like a
sample). The validation split is the last contiguous range of frames. The manifest's `body`
is the training poses' `BodyStats`, the target that inference retargets source poses onto.
The directory appears only when complete.

The camera is measured on a subsample of the frames (`ganmotion.data.background`) and
recorded as `camera` ("static" or "moving") with `camera_measure`, the figure that decided
it. The crop (`--crop`) either tracks the person (`smooth_crops`) or is one box for the
whole clip (`fixed_crop`); `auto` picks fixed for a static camera unless that box's side is
more than `FIXED_MAX_RATIO` (1.5) times the median side of the tracking crop (a person
crossing a large frame would be small in it), and track otherwise. The manifest's
`crop_policy` records the choice and why, and its `pad` how crops leaving the frame are
filled ("reflect"; "constant-black" in shards prepared before, which still train).

Masks come from MediaPipe's segmentation, in the same pass as the keypoints. With given
keypoints (`--keypoints <stem>.keypoints.npy`), a mask file `<stem>.masks.npz` beside them
is used when it exists (synthetic clips write their exact masks there); without one,
MediaPipe runs for the masks alone and the keypoints stay the given ones. The manifest's
`source.masks` says which.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from tqdm import tqdm

from ganmotion.data.background import PLATE_NAME, PlateBuilder, measure_camera, write_plate
from ganmotion.data.crop import (
    CropPolicy,
    crop_frame,
    crop_mask,
    crop_window,
    fixed_crop,
    keypoints_to_crop,
    smooth_crops,
)
from ganmotion.data.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    CameraMeasure,
    FrameCounts,
    Manifest,
    PlateEntry,
    ShardEntry,
    SourceVideo,
    SplitEntry,
    load_manifest,
)
from ganmotion.data.masks import MasksOfFrames, read_masks
from ganmotion.errors import GanmotionError, command_line, naming_full_disk
from ganmotion.files import atomic_folder, check_writable
from ganmotion.pose.detector import DetectorConfig, PackedMask, detect_video
from ganmotion.pose.retarget import body_stats
from ganmotion.pose.schema import SCHEMA_VERSION, has_person, load_keypoints
from ganmotion.video import MIN_STORED_SHARE, VideoInfo, check_complete, probe_video, read_frames

CropMode = Literal["auto", "track", "fixed"]
CROP_MODES = ("auto", "track", "fixed")
FIXED_MAX_RATIO = 1.5  # auto: a fixed box larger than this times the tracking box -> track


@dataclass
class PrepareConfig:
    """What `prepare` makes.

    size: side of the square crops, in pixels.
    val_fraction: share of the frames with a person held out, as the last contiguous range.
    samples_per_shard: samples per tar; more shards than ranks x loader workers keeps
        every reader busy.
    jpeg_quality: OpenCV JPEG quality of the stored crops.
    workers: processes for pose detection.
    crop: the tracking crop's settings; the fixed crop uses its margin and visibility.
    crop_mode: "track" (a crop that follows the person), "fixed" (one box for the whole
        clip) or "auto" (fixed for a static camera when that box is at most
        `FIXED_MAX_RATIO` times the tracking crop's median side, track otherwise).
    crop_like: shards of another clip filmed by the same still camera (same frame size)
        whose fixed box this clip is cut with, instead of a box of its own: a motion
        scored in the target's crop, where the target's plate fits it.
    """

    size: int = 512
    val_fraction: float = 0.1
    samples_per_shard: int = 200
    jpeg_quality: int = 95
    workers: int = 2
    crop: CropPolicy = field(default_factory=CropPolicy)
    crop_mode: CropMode = "auto"
    crop_like: Path | None = None

    def validate(self) -> None:
        if not 16 <= self.size <= 4096:
            raise GanmotionError(f"--size {self.size}: must be between 16 and 4096")
        if not 0 <= self.val_fraction < 1:
            raise GanmotionError(f"--val-fraction {self.val_fraction}: must be in [0, 1)")
        if self.samples_per_shard < 1:
            raise GanmotionError(f"--samples-per-shard {self.samples_per_shard}: must be >= 1")
        if not 1 <= self.jpeg_quality <= 100:
            raise GanmotionError(f"--jpeg-quality {self.jpeg_quality}: must be in [1, 100]")
        if self.workers < 1:
            raise GanmotionError(f"--workers {self.workers}: must be >= 1")
        if self.crop_mode not in CROP_MODES:
            raise GanmotionError(f"--crop {self.crop_mode}: must be one of {', '.join(CROP_MODES)}")
        if self.crop_like is not None and self.crop_mode == "track":
            raise GanmotionError("--crop track and --crop-like: a tracking crop has no one box")


@dataclass
class PrepareSummary:
    frames_read: int
    frames_kept: int
    frames_skipped: int
    shards: int
    seconds: float
    camera: CameraMeasure | None = None
    crop: str = ""
    crop_reason: str = ""
    plate: bool = False
    frames_declared: int = 0  # by the container; more than frames_read: the file is cut short

    def line(self) -> str:
        line = (
            f"prepared {self.frames_kept}/{self.frames_read} frames "
            f"({self.frames_skipped} without a person skipped) into {self.shards} shards "
            f"in {self.seconds:.1f} s ({self.frames_read / max(self.seconds, 1e-9):.1f} frames/s)"
        )
        if self.camera is not None:
            line += (
                f"; {self.camera.motion} camera (residual {self.camera.residual:g}, threshold "
                f"{self.camera.threshold:g} grey levels){', plate.png' if self.plate else ''}"
            )
        if self.crop:
            line += f"; {self.crop} crop ({self.crop_reason})"
        if self.frames_declared > self.frames_read:
            line += (
                f"; CUT SHORT: {self.frames_read} of the {self.frames_declared} frames its "
                "container declares"
            )
        return line


def clip_name(video: Path) -> str:
    """The video's stem made safe for WebDataset keys (no dots: they separate extensions)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", video.stem) or "clip"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def masks_file_for(keypoints_file: Path) -> Path | None:
    """The mask file that goes with a keypoints file `<stem>.keypoints.npy`:
    `<stem>.masks.npz` beside it (how synthetic clips name theirs); None for other names."""
    suffix = ".keypoints.npy"
    if not keypoints_file.name.endswith(suffix):
        return None
    return keypoints_file.with_name(keypoints_file.name[: -len(suffix)] + ".masks.npz")


def _unpacked(masks: list[PackedMask | None]) -> MasksOfFrames:
    return lambda index: None if masks[index] is None else masks[index].unpack()


def check_output_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise GanmotionError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise GanmotionError(
            f"{out}: directory exists and is not empty (use --overwrite to replace it)"
        )
    # Missing parents are made (as training's and eval's output folders are), after the
    # poses are found: the nearest existing one must be a directory this user can write.
    check_writable(out, folder=True)


def split_frames(kept: np.ndarray, val_fraction: float) -> dict[str, np.ndarray]:
    """Frame indices of each split: validation is the last contiguous `val_fraction` of them."""
    n_val = int(round(len(kept) * val_fraction))
    if val_fraction > 0 and n_val == 0 and len(kept) >= 2:
        n_val = 1
    splits = {"train": kept[: len(kept) - n_val]}
    if n_val:
        splits["val"] = kept[len(kept) - n_val :]
    return splits


class _ShardSet:
    """Writes the samples of one split into numbered tars of at most `per_shard` samples."""

    def __init__(self, directory: Path, split: str, per_shard: int):
        self.directory, self.split, self.per_shard = directory, split, per_shard
        self.shards: list[dict] = []
        self._writer = None

    def write(self, sample: dict) -> None:
        import webdataset as wds

        if self._writer is None or self.shards[-1]["samples"] == self.per_shard:
            self.close()
            name = f"{self.split}-{len(self.shards):06d}.tar"
            self._writer = wds.TarWriter(str(self.directory / name))
            self.shards.append({"name": name, "samples": 0})
        self._writer.write(sample)
        self.shards[-1]["samples"] += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _encode_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def choose_crop(
    mode: CropMode, camera: CameraMeasure, fixed: np.ndarray, tracking: np.ndarray
) -> tuple[Literal["track", "fixed"], str]:
    """The crop to use, "track" or "fixed", and why, for `--crop mode`: `camera` is the
    measured camera, `fixed` the clip's fixed box (3,) and `tracking` the tracking crops
    (N, 3) (NaN rows without a person)."""
    if mode != "auto":
        return mode, f"--crop {mode}"
    measured = f"residual {camera.residual:g} {'<=' if camera.motion == 'static' else '>'} "
    measured += f"{camera.threshold:g} grey levels"
    if camera.motion == "moving":
        return "track", f"auto: moving camera, {measured}"
    ratio = fixed[2] / np.nanmedian(tracking[:, 2])
    if ratio > FIXED_MAX_RATIO:
        return "track", (
            f"auto: static camera, but the fixed box would be {ratio:.2f}x the tracking crop's "
            f"median side (> {FIXED_MAX_RATIO:g}) and the person small in it"
        )
    return "fixed", (
        f"auto: static camera, {measured}; the fixed box is {ratio:.2f}x the tracking crop's "
        f"median side (<= {FIXED_MAX_RATIO:g})"
    )


def box_of_shards(root: Path, width: int, height: int) -> np.ndarray:
    """The fixed box (3,) (cx, cy, side) of the shards in `root`, for a clip of width x
    height: one line naming the shards where they have no fixed box or another frame size."""
    manifest = load_manifest(root)
    if manifest.crop_policy.get("kind") != "fixed-square":
        raise GanmotionError(
            f"--crop-like {root}: its crop tracks the person, so it has no one box to share "
            "(prepare it with --crop fixed)"
        )
    if (manifest.source.width, manifest.source.height) != (width, height):
        raise GanmotionError(
            f"--crop-like {root}: its video is {manifest.source.width}x{manifest.source.height}"
            f", this one {width}x{height}: a box only fits clips of the same camera"
        )
    return np.array(manifest.crop_policy["box"], np.float64)


def write_shards(
    video: Path,
    directory: Path,
    keypoints: np.ndarray,
    masks: MasksOfFrames,
    crops: np.ndarray,
    splits: dict[str, np.ndarray],
    config: PrepareConfig,
    progress: bool,
    plate: PlateBuilder | None = None,
) -> tuple[dict[str, _ShardSet], int, int]:
    """The shard pass over the video: crop, encode and write each kept frame (and its mask,
    when it has one) to its split; hand `plate` the frames it wants.

    Returns the shard sets, the number of frames the video decoded to and the number of
    samples written without a mask."""
    split_of = {int(i): name for name, frames in splits.items() for i in frames}
    shard_sets = {name: _ShardSet(directory, name, config.samples_per_shard) for name in splits}
    clip = clip_name(video)
    encode = [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]
    decoded = without_mask = 0
    try:
        bar = tqdm(total=len(split_of), desc="shards", unit="frame", disable=not progress)
        for index, frame in enumerate(read_frames(video)):
            decoded += 1
            if plate is not None and plate.wants(index) and index < len(crops):
                plate.add(frame, masks(index))
            split = split_of.get(index)
            if split is None:
                continue
            image = crop_frame(frame, crops[index], config.size)
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), encode)
            assert ok, "OpenCV failed to encode a JPEG"
            pose = keypoints_to_crop(keypoints[index], crops[index], config.size)
            sample = {
                "__key__": f"{clip}_{index:06d}",
                "jpg": jpeg.tobytes(),
                "pose.npy": _encode_npy(pose.astype(np.float32)),
                "box.npy": _encode_npy(np.array(crop_window(crops[index]), np.int32)),
            }
            mask = masks(index)
            if mask is None:
                without_mask += 1
            else:
                # Level 1: a 256 px mask decodes in 0.08 ms against 0.25 at OpenCV's default,
                # in the training stream, for a file of about the same size.
                cropped = crop_mask(mask, crops[index], config.size)
                ok, png = cv2.imencode(".png", cropped, [cv2.IMWRITE_PNG_COMPRESSION, 1])
                assert ok, "OpenCV failed to encode a PNG"
                sample["mask.png"] = png.tobytes()
            shard_sets[split].write(sample)
            bar.update(1)
        bar.close()
    finally:
        for shard_set in shard_sets.values():
            shard_set.close()
    return shard_sets, decoded, without_mask


def prepare(
    video: str | os.PathLike,
    out: str | os.PathLike,
    config: PrepareConfig | None = None,
    keypoints_file: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    accept_truncated: bool = False,
) -> PrepareSummary:
    """Turn `video` into the shard directory `out`; see the module docstring for the layout.
    A video cut short (fewer frames than its container declares) is refused unless
    `accept_truncated` (`video.check_complete`)."""
    config = config or PrepareConfig()
    config.validate()
    video, out = Path(video), Path(out)
    check_output_dir(out, overwrite)
    started = time.perf_counter()
    info: VideoInfo = probe_video(video)
    # Read before detection: a wrong --crop-like fails in a second, not after minutes.
    like = None
    if config.crop_like is not None:
        like = box_of_shards(config.crop_like, info.width, info.height)
    stored = check_complete(video, accept_truncated)

    segmenting = DetectorConfig(segmentation=True)
    if keypoints_file is None:
        poses = detect_video(video, config.workers, segmenting, progress)
        keypoints, masks, masks_source = poses.keypoints, _unpacked(poses.masks), "mediapipe-pose"
    else:
        keypoints = load_keypoints(Path(keypoints_file))
        masks_file = masks_file_for(Path(keypoints_file))
        if masks_file is not None and masks_file.exists():
            masks = read_masks(masks_file, len(keypoints), info.height, info.width)
            masks_source = "given"
        else:  # MediaPipe for the masks alone: the keypoints stay the given ones
            masks = _unpacked(detect_video(video, config.workers, segmenting, progress).masks)
            masks_source = "mediapipe-pose"
    frames_read = len(keypoints)
    found = has_person(keypoints)
    if not found.any():
        raise GanmotionError(f"{video}: no person found in any of its {frames_read} frames")

    splits = split_frames(np.flatnonzero(found), config.val_fraction)
    if len(splits["train"]) == 0:
        raise GanmotionError(f"{video}: too few frames with a person ({found.sum()}) to split")

    camera, decoded = measure_camera(video, masks, frames_read)
    _check_decoded(video, keypoints_file, frames_read, decoded)
    tracking = smooth_crops(keypoints, info.fps, config.crop)
    if like is None:
        fixed = fixed_crop(keypoints, info.width, info.height, config.crop)
        crop_kind, crop_reason = choose_crop(config.crop_mode, camera, fixed, tracking)
    else:
        fixed, crop_kind, crop_reason = like, "fixed", f"--crop-like {config.crop_like}"
    if crop_kind == "fixed":
        crops = np.where(found[:, None], fixed, np.nan)
        crop_policy = config.crop.to_json(fixed)
    else:
        crops, crop_policy = tracking, config.crop.to_json()
    crop_policy |= {"requested": config.crop_mode, "reason": crop_reason}
    plate = PlateBuilder(frames_read, info.height, info.width)
    plate = plate if camera.motion == "static" else None

    # check_output_dir has decided that `out` may be replaced: it is absent, empty, or the
    # user asked to overwrite it.
    out.parent.mkdir(parents=True, exist_ok=True)  # where the folder is staged, then renamed
    with naming_full_disk(out), atomic_folder(out, replace=True) as staging:
        shard_sets, decoded, without_mask = write_shards(
            video, staging, keypoints, masks, crops, splits, config, progress, plate
        )
        _check_decoded(video, keypoints_file, frames_read, decoded)
        plate_entry = None
        if plate is not None:
            image, filled = plate.result()
            write_plate(staging / PLATE_NAME, image)
            plate_entry = PlateEntry(file=PLATE_NAME, frames=plate.count, filled=round(filled, 6))
        np.save(staging / "keypoints.npy", keypoints, allow_pickle=False)
        np.save(staging / "crops.npy", crops.astype(np.float32), allow_pickle=False)
        manifest = Manifest(
            manifest_version=MANIFEST_VERSION,
            keypoint_schema=SCHEMA_VERSION,
            image_size=config.size,
            source=SourceVideo(
                video=str(video),
                sha256=file_sha256(video),
                width=info.width,
                height=info.height,
                fps=info.fps,
                keypoints="given" if keypoints_file is not None else "mediapipe-pose",
                masks=masks_source,
            ),
            frames=FrameCounts(
                read=frames_read,
                kept=int(found.sum()),
                skipped_no_person=int((~found).sum()),
                kept_without_mask=without_mask,
                declared=stored.declared,
            ),
            crop_policy=crop_policy,
            body=_train_body(keypoints, crops, splits["train"], config.size),
            jpeg_quality=config.jpeg_quality,
            splits={
                name: SplitEntry(
                    frame_range=(int(frames[0]), int(frames[-1]) + 1),
                    samples=int(len(frames)),
                    shards=tuple(ShardEntry(**shard) for shard in shard_sets[name].shards),
                )
                for name, frames in splits.items()
            },
            camera=camera.motion,
            camera_measure=camera,
            plate=plate_entry,
        )
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")

    return PrepareSummary(
        frames_read=frames_read,
        frames_kept=int(found.sum()),
        frames_skipped=int((~found).sum()),
        shards=sum(len(s.shards) for s in shard_sets.values()),
        seconds=time.perf_counter() - started,
        camera=camera,
        crop=crop_kind,
        crop_reason=crop_reason,
        plate=plate_entry is not None,
        frames_declared=stored.declared,
    )


def _check_decoded(video: Path, keypoints_file, frames: int, decoded: int) -> None:
    if decoded != frames:
        source = keypoints_file if keypoints_file is not None else video
        raise GanmotionError(
            f"{source}: has {frames} frames of keypoints but {video} decodes to {decoded}"
        )


def _train_body(
    keypoints: np.ndarray, crops: np.ndarray, train: np.ndarray, size: int
) -> dict | None:
    """Body statistics of the training samples' poses (crop pixels), the target that
    retargeting maps source poses onto; None when no training frame shows a whole body."""
    poses = np.stack([keypoints_to_crop(keypoints[i], crops[i], size) for i in train])
    try:
        return body_stats(poses).to_json()
    except GanmotionError:
        return None


def build_parser() -> argparse.ArgumentParser:
    defaults = PrepareConfig()
    parser = argparse.ArgumentParser(
        prog="ganmotion prepare",
        description="Detect poses in a target video, crop the person and write WebDataset shards.",
    )
    parser.add_argument("--video", required=True, type=Path, help="target video of one person")
    parser.add_argument("--out", required=True, type=Path, help="shard directory to create")
    parser.add_argument(
        "--size", type=int, default=defaults.size, help="crop side in pixels (default %(default)s)"
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=defaults.val_fraction,
        help="last contiguous share of frames held out for validation (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help="pose detection processes (default %(default)s)",
    )
    parser.add_argument(
        "--samples-per-shard",
        type=int,
        default=defaults.samples_per_shard,
        help="samples per tar (default %(default)s)",
    )
    parser.add_argument(
        "--jpeg-quality",
        type=int,
        default=defaults.jpeg_quality,
        help="JPEG quality of the crops (default %(default)s)",
    )
    parser.add_argument(
        "--keypoints",
        type=Path,
        default=None,
        help="use these keypoints (.npy, frames x 33 x 3, NaN rows = no person) "
        "instead of MediaPipe's, e.g. a synthetic clip's ground truth; the person masks come "
        "from <stem>.masks.npz beside a <stem>.keypoints.npy (one height x width uint8 0/255 "
        "array per frame, see ganmotion.data.masks) when it exists, else from MediaPipe",
    )
    parser.add_argument(
        "--crop",
        choices=CROP_MODES,
        default=defaults.crop_mode,
        help="track: a crop that follows the person (moving cameras, people who cross the "
        "frame); fixed: one box for the whole clip that holds the person in every frame "
        "(static cameras: the background stays put); auto (default): fixed for a static "
        f"camera unless that box is more than {FIXED_MAX_RATIO:g}x the tracking crop, else track",
    )
    parser.add_argument(
        "--crop-like",
        type=Path,
        metavar="SHARDS",
        help="cut this clip with the fixed box of SHARDS (another clip of the same still "
        "camera), e.g. a new motion to score in the target's crop, over its plate",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it is not empty")
    parser.add_argument(
        "--accept-truncated",
        action="store_true",
        help="prepare a video that holds fewer frames than its container declares (cut short "
        # "%%": argparse %-formats help strings (a lone "% b" made --help crash)
        f"by an interrupted download or copy: refused below {MIN_STORED_SHARE:.0%}% by default)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@command_line
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = PrepareConfig(
        size=args.size,
        val_fraction=args.val_fraction,
        samples_per_shard=args.samples_per_shard,
        jpeg_quality=args.jpeg_quality,
        workers=args.workers,
        crop_mode=args.crop,
        crop_like=args.crop_like,
    )
    summary = prepare(args.video, args.out, config, args.keypoints, args.overwrite,
                      not args.quiet, args.accept_truncated)  # fmt: skip
    print(summary.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
