"""MediaPipe Pose behind our own interface, and detection over a whole video in parallel.

MediaPipe is imported only here, when a detector is built, so nothing else in ganmotion
needs it installed or pays for importing it. With `DetectorConfig.segmentation` the same
pass also gives the person's mask: the bundled full pose model has a segmentation output, so
there is no second model and nothing to download. It adds about 8% to a frame's detection
(2.5 of 31 ms at 960x720 on one core) and leaves the keypoints bit for bit as they were.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from ganmotion.errors import GanmotionError, children_ignore_interrupts
from ganmotion.pose.schema import NUM_JOINTS, missing_frame
from ganmotion.video import probe_video, read_frames

# mediapipe 0.10.21 ships only pose_landmark_full.tflite; complexities 0 and 2 try to
# download their model at run time, which fails offline.
SUPPORTED_MODEL_COMPLEXITY = 1


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of MediaPipe Pose.

    static_image_mode: run the person detector on every frame. Each frame's result then
        depends on that frame alone, so a video split across worker processes gives exactly
        the keypoints of one process. Tracking mode (False) is faster per frame but carries
        state from frame to frame, so chunk boundaries would change the results.
    segmentation: also give the person's mask (`PoseDetector.detect`, `detect_video`).
    """

    model_complexity: int = SUPPORTED_MODEL_COMPLEXITY
    static_image_mode: bool = True
    segmentation: bool = False
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def __post_init__(self) -> None:
        if self.model_complexity != SUPPORTED_MODEL_COMPLEXITY:
            raise GanmotionError(
                f"model_complexity={self.model_complexity} is not available: mediapipe 0.10.21 "
                f"ships only the model for model_complexity={SUPPORTED_MODEL_COMPLEXITY}, and "
                "the others would be downloaded at run time"
            )


class PoseDetector:
    """Keypoints (33, 3) in pixels of the frame, or None when no person is found.

    x, y use the pixel-centre convention of OpenCV (the centre of the top-left pixel is
    (0, 0)); visibility is MediaPipe's, in [0, 1].
    """

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        # MediaPipe's C++ logging prints a screenful of INFO/WARNING lines per process.
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import mediapipe as mp
        except ImportError as error:  # pragma: no cover - a broken install
            raise GanmotionError(
                f"MediaPipe is not importable ({error}); reinstall ganmotion"
            ) from error
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=self.config.static_image_mode,
            model_complexity=self.config.model_complexity,
            smooth_landmarks=False,  # smoothing is ours to choose, later, and per use
            enable_segmentation=self.config.segmentation,
            # Only used in tracking mode, where it steadies the mask from frame to frame.
            smooth_segmentation=True,
            min_detection_confidence=self.config.min_detection_confidence,
            min_tracking_confidence=self.config.min_tracking_confidence,
        )

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """Detect the person in one RGB uint8 frame (H, W, 3)."""
        return self.detect(frame)[0]

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(keypoints (33, 3) or None, mask) of one RGB uint8 frame (H, W, 3).

        The mask is the person's segmentation, (H, W) float32 in [0, 1] (the chance that a
        pixel is the person); None without `config.segmentation` or without a person.
        """
        height, width = frame.shape[:2]
        result = self._pose.process(frame)
        if result.pose_landmarks is None:
            return None, None
        landmarks = result.pose_landmarks.landmark
        keypoints = np.array(
            [(lm.x * width - 0.5, lm.y * height - 0.5, lm.visibility) for lm in landmarks],
            dtype=np.float32,
        )
        assert keypoints.shape == (NUM_JOINTS, 3)
        mask = result.segmentation_mask if self.config.segmentation else None
        return keypoints, mask

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _chunk_bounds(frame_count: int, chunks: int) -> list[tuple[int, int | None]]:
    """Contiguous [start, stop) ranges covering the video; the last is open-ended because the
    header's frame count is only an estimate."""
    edges = np.linspace(0, frame_count, chunks + 1).round().astype(int)
    bounds: list[tuple[int, int | None]] = [
        (int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a
    ]
    bounds[-1] = (bounds[-1][0], None)
    return bounds


_progress_queue = None  # set in each worker process by _init_worker


def _init_worker(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue


class PackedMask(NamedTuple):
    """A person mask in a few kilobytes: the pixels where MediaPipe's mask is >= 0.5, one bit
    each, deflated (about 2 KB at 960x720, against 2.8 MB for the float mask).

    Masks of a whole video travel from the detection workers and wait for the shard pass in
    this form. Bits and zlib rather than PNG: 0.3 ms to pack and unpack a 960x720 mask
    against 4 ms, which was most of what masks added to `prepare`.
    """

    height: int
    width: int
    bits: bytes

    @classmethod
    def pack(cls, mask: np.ndarray) -> PackedMask:
        """Pack a mask (H, W) float in [0, 1], as `PoseDetector.detect` gives it."""
        person = cv2.compare(mask, 0.5, cv2.CMP_GE)  # 0/255; several times faster than numpy
        return cls(*mask.shape, zlib.compress(np.packbits(person, axis=None).tobytes(), 1))

    def unpack(self) -> np.ndarray:
        """The mask as (H, W) uint8 0/255."""
        bits = np.frombuffer(zlib.decompress(self.bits), np.uint8)
        person = np.unpackbits(bits, count=self.height * self.width)
        return person.reshape(self.height, self.width) * np.uint8(255)


class VideoPoses(NamedTuple):
    """What `detect_video` found in a video of N frames.

    keypoints: (N, 33, 3) float32, NaN rows where no person.
    masks: with segmentation, N entries: the person's mask, None where no person; None
        without segmentation.
    """

    keypoints: np.ndarray
    masks: list[PackedMask | None] | None


def _detect_chunk(
    path: str, start: int, stop: int | None, config: DetectorConfig, report=None
) -> VideoPoses:
    """Poses of frames [start, stop); `report(n)` is told of progress (default: the queue
    of the worker process this runs in)."""
    report = report or _progress_queue.put
    results, masks = [], []
    with PoseDetector(config) as detector:
        for frame in read_frames(path, start, stop):
            keypoints, mask = detector.detect(frame)
            results.append(missing_frame() if keypoints is None else keypoints)
            masks.append(None if mask is None else PackedMask.pack(mask))
            report(1)
    keypoints = np.stack(results) if results else np.zeros((0, NUM_JOINTS, 3), np.float32)
    return VideoPoses(keypoints, masks if config.segmentation else None)


def _concatenate(chunks: list[VideoPoses]) -> VideoPoses:
    keypoints = np.concatenate([chunk.keypoints for chunk in chunks])
    if chunks[0].masks is None:
        return VideoPoses(keypoints, None)
    return VideoPoses(keypoints, [mask for chunk in chunks for mask in chunk.masks])


def detect_video(
    path: str | os.PathLike,
    workers: int = 1,
    config: DetectorConfig | None = None,
    progress: bool = True,
) -> VideoPoses:
    """Keypoints (and with `config.segmentation`, masks) of every frame of a video.

    With `workers` > 1 the video is split into that many contiguous chunks, each detected in
    its own process; results come back in frame order.
    """
    config = config or DetectorConfig()
    info = probe_video(path)
    workers = max(1, min(workers, info.frame_count))
    with tqdm(total=info.frame_count, desc="pose", unit="frame", disable=not progress) as bar:
        if workers == 1:
            return _detect_chunk(str(path), 0, None, config, report=bar.update)
        # spawn, not fork: MediaPipe and torch keep threads that a forked child would inherit
        # in an unknown state.
        context = multiprocessing.get_context("spawn")
        progress_queue = context.Queue()
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(progress_queue,)
        ) as pool:
            with children_ignore_interrupts():  # a spawned worker starts on its submit
                futures = [
                    pool.submit(_detect_chunk, str(path), start, stop, config)
                    for start, stop in _chunk_bounds(info.frame_count, workers)
                ]
            try:
                while not all(future.done() for future in futures):
                    try:
                        bar.update(progress_queue.get(timeout=0.2))
                    except queue.Empty:
                        pass
            except BaseException:  # Ctrl-C or an error here: the workers' chunks are not wanted
                for process in list(pool._processes.values()):  # no public way to stop them
                    process.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            return _concatenate([future.result() for future in futures])


def serve_poses(inbox, outbox, config: DetectorConfig) -> None:
    """A pose worker process: frames from `inbox` until None, each answered on `outbox` with
    (keypoints or None, seconds spent detecting), in the order they came."""
    import time

    with PoseDetector(config) as detector:
        while (frame := inbox.get()) is not None:
            start = time.perf_counter()
            keypoints = detector(frame)
            outbox.put((keypoints, time.perf_counter() - start))
