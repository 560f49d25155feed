"""The batched video runner: a source video in, the target person performing its motion out.

    decode ─► pose (worker processes) ─► track ─► generate (batches) ─► encode
                                         smooth, calibrate, retarget, render

Every arrow is a bounded queue and every stage its own thread (MediaPipe in its own
processes), so decoding, pose detection, rendering and encoding overlap with the generator,
frames come out in source order, and memory stays bounded however long the video is.

    summary = VideoPipeline(backend, RunnerConfig(batch_size=16), target_body).run(
        "dance.mp4", "out.mp4")
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ganmotion.errors import GanmotionError, children_ignore_interrupts
from ganmotion.pose.detector import DetectorConfig, serve_poses
from ganmotion.pose.filters import OneEuroConfig, PoseSmoother
from ganmotion.pose.retarget import (
    MOTIONS,
    BodyStats,
    InFrame,
    Retargeter,
    body_stats,
    fixed_crop,
)
from ganmotion.pose.schema import NUM_JOINTS, missing_frame
from ganmotion.runtime.background import FullFrame
from ganmotion.runtime.contract import Backend
from ganmotion.runtime.transfer import DeviceTransfer
from ganmotion.video import X264_PRESETS, VideoWriter, probe_video, read_frames

STAGES = ("decode", "pose", "track", "generate", "encode")


@dataclass(frozen=True)
class RunnerConfig:
    """How a video is run.

    batch_size: frames per generator call.
    pose_workers: MediaPipe processes. One runs in tracking mode (fast, temporally coherent);
        several each take every n-th frame, so they run in static-image mode.
    smoothing: One-Euro filter over the keypoints and the hold for short gaps without a pose.
    retarget: map the source body onto the target's height and foot position (from the
        training manifest); off, the source body is framed as it is, proportions unchanged.
    motion: "keep" the source's moves across the frame as far as the output holds the
        whole body, or hold the person at the "center" (`ganmotion.pose.retarget.InFrame`).
    calibration_frames: detected poses the source body is measured from (the first ones);
        frames wait for them, at most 3x this many.
    side_by_side: write source | skeleton | generated instead of the generated frames alone.
    queue_frames: capacity of each queue between stages, in frames (0: 4 batches).
    crf, preset: libx264 quality (0 lossless .. 51; 18 looks lossless) and speed (its preset
        names, X264_PRESETS: slower is smaller at the same quality) of the output.
    audio: carry the source's sound into the output (copied, or transcoded to AAC where
        the mp4 cannot carry its codec), cut to the output's frames.
    """

    batch_size: int = 8
    pose_workers: int = 1
    smoothing: OneEuroConfig = field(default_factory=OneEuroConfig)
    retarget: bool = True
    motion: str = "keep"
    calibration_frames: int = 30
    side_by_side: bool = False
    queue_frames: int = 0
    crf: int = 18
    preset: str = "veryfast"
    audio: bool = True

    def __post_init__(self) -> None:
        # Named as infer/video.py's flags, which is how a user sets them.
        if self.batch_size < 1:
            raise GanmotionError(f"--batch {self.batch_size}: must be >= 1")
        if self.pose_workers < 1:
            raise GanmotionError(f"--pose-workers {self.pose_workers}: must be >= 1")
        if self.calibration_frames < 1:
            raise GanmotionError(f"calibration_frames must be >= 1, got {self.calibration_frames}")
        if self.queue_frames < 0:
            raise GanmotionError(f"queue_frames must be >= 0, got {self.queue_frames}")
        if not 0 <= self.crf <= 51:
            raise GanmotionError(f"--crf {self.crf}: must be 0 (lossless) to 51")
        if self.preset not in X264_PRESETS:
            raise GanmotionError(
                f"--preset {self.preset}: not a libx264 preset (one of {', '.join(X264_PRESETS)})"
            )
        if self.motion not in MOTIONS:
            raise GanmotionError(f"motion must be one of {', '.join(MOTIONS)}, got {self.motion!r}")


@dataclass
class Frame:
    """One frame on its way through the stages."""

    index: int
    source: np.ndarray  # (H, W, 3) uint8 RGB
    detected: np.ndarray | None = None  # (33, 3) source pixels, as the detector gave it
    keypoints: np.ndarray | None = None  # (33, 3) pixels of the generator's image
    status: str = "missing"  # "detected", "held" (gap filled from the last pose), "missing"
    skeleton: np.ndarray | None = None  # (S, S, 3) uint8, the generator's input
    generated: np.ndarray | None = None  # (S, S, 3) uint8
    alpha: np.ndarray | None = None  # (S, S) float32 in [0, 1], for a full-frame output


@dataclass
class RunSummary:
    """What a run did: frame counts, and busy seconds per stage (threads overlap, so the
    stage times add up to more than the wall time)."""

    source: str
    out: str
    backend: str
    batch_size: int
    frames: int = 0
    detected: int = 0
    held: int = 0
    missing: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    poses: list[np.ndarray] = field(default_factory=list, repr=False)  # as detected, per frame
    frames_declared: int = 0  # by the source's container (0: unknown); more: it was cut short
    width: int = 0  # of the output video
    height: int = 0
    duration: float = 0.0  # seconds of output video
    audio: str = ""  # what became of the source's sound (VideoWriter.audio)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def stage_fps(self) -> dict[str, float]:
        return {
            stage: self.frames / seconds if seconds > 0 else float("inf")
            for stage, seconds in self.stage_seconds.items()
        }

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "out": self.out,
            "backend": self.backend,
            "batch_size": self.batch_size,
            "frames": self.frames,
            "frames_declared": self.frames_declared,
            "frames_detected": self.detected,
            "frames_held": self.held,
            "frames_without_pose": self.missing,
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames_per_second, 2),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "stage_frames_per_second": {k: round(v, 2) for k, v in self.stage_fps().items()},
            "resolution": f"{self.width}x{self.height}",
            "duration_s": round(self.duration, 3),
            "audio": self.audio,
        }

    def lines(self) -> list[str]:
        stages = "  ".join(f"{stage} {fps:.1f}" for stage, fps in self.stage_fps().items())
        lines = [
            f"{self.out}: {self.frames} frames in {self.seconds:.1f} s = "
            f"{self.frames_per_second:.1f} frames/s end to end ({self.backend}, batch "
            f"{self.batch_size})",
            f"output: {self.width}x{self.height}, {self.duration:.2f} s, audio: {self.audio}",
            f"frames without pose: {self.missing} (gaps filled from the last pose: {self.held})",
            f"stage frames/s (busy time): {stages}",
        ]
        if self.frames_declared > self.frames:
            lines.append(
                f"CUT SHORT: {self.source} gave {self.frames} of the {self.frames_declared} "
                "frames its container declares"
            )
        return lines


class _Stopped(Exception):
    """Raised inside a stage when another stage failed: unwind quietly."""


_END = None  # the last item on every queue


class _Stages:
    """Threads that pass items through bounded queues, stop together on the first error,
    and add up how long each stage was busy."""

    def __init__(self):
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.busy: dict[str, float] = defaultdict(float)
        self.threads: list[threading.Thread] = []

    def start(self, name: str, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            except _Stopped:
                pass
            except BaseException as error:  # handed to the main thread, which re-raises it
                self.errors.append(error)
                self.stop.set()

        thread = threading.Thread(target=run, name=f"ganmotion-{name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.busy[stage] += time.perf_counter() - start

    def put(self, box, item) -> None:
        while not self.stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return
            except queue.Full:
                pass
        raise _Stopped

    def get(self, box, alive: Callable[[], bool] = lambda: True):
        while not self.stop.is_set():
            try:
                return box.get(timeout=0.1)
            except queue.Empty:
                if not alive():
                    raise GanmotionError("a pose worker process died") from None
        raise _Stopped

    def join(self) -> None:
        for thread in self.threads:
            thread.join()
        if self.errors:
            raise self.errors[0]


class _PoseWorkers:
    """MediaPipe in `count` processes; frame i goes to worker i % count, so reading the
    results round-robin gives them in frame order without a reordering buffer."""

    def __init__(self, count: int, capacity: int):
        # spawn: MediaPipe and torch keep threads a forked child would inherit half-broken
        context = multiprocessing.get_context("spawn")
        config = DetectorConfig(static_image_mode=count > 1)
        self.inboxes = [context.Queue(maxsize=capacity) for _ in range(count)]
        self.outboxes = [context.Queue(maxsize=capacity) for _ in range(count)]
        self.processes = [
            context.Process(target=serve_poses, args=(inbox, outbox, config), daemon=True)
            for inbox, outbox in zip(self.inboxes, self.outboxes)
        ]
        with children_ignore_interrupts():  # close() stops them after a Ctrl-C
            for process in self.processes:
                process.start()

    def alive(self, index: int) -> Callable[[], bool]:
        return self.processes[index % len(self.processes)].is_alive

    def close(self) -> None:
        for box in self.inboxes + self.outboxes:
            box.cancel_join_thread()  # frames left in a queue must not hold up the exit
        for process in self.processes:
            process.join(timeout=1)
            if process.is_alive():
                process.terminate()
                process.join()


def no_pose_frame(size: int) -> np.ndarray:
    """The frame written where no person was found: dark, with a red 'no pose' mark."""
    image = np.full((size, size, 3), 24, np.uint8)
    scale = size / 256
    cv2.putText(
        image,
        "no pose",
        (int(size * 0.3), size // 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.8 * scale,
        (220, 40, 40),
        max(1, round(2 * scale)),
        cv2.LINE_AA,
    )
    return image


def side_by_side(frame: Frame, generated: np.ndarray) -> np.ndarray:
    """source | skeleton | generated (the crop, or the full frame), at the generated
    image's height."""
    size = generated.shape[0]
    height, width = frame.source.shape[:2]
    source = cv2.resize(frame.source, (max(2, round(width * size / height)), size), cv2.INTER_AREA)
    if frame.skeleton is None:
        skeleton = np.zeros((size, size, 3), np.uint8)
    else:
        skeleton = cv2.resize(frame.skeleton, (size, size), interpolation=cv2.INTER_NEAREST)
    return np.concatenate([source, skeleton, generated], axis=1)


class VideoPipeline:
    """Runs one backend over videos. `target` is the body the generator was trained on
    (pixels of its size x size image); needed when `config.retarget` is on. Skeletons are
    drawn in the backend's style (`skeleton`): the one its model was trained on."""

    def __init__(
        self,
        backend: Backend,
        config: RunnerConfig,
        target: BodyStats | None = None,
        full_frame: FullFrame | None = None,
    ):
        """`full_frame`: write each generated person into the target's whole frame
        (`ganmotion.runtime.background.full_frame_of`) rather than the crop."""
        if config.retarget and target is None:
            raise GanmotionError(
                "retargeting needs the target's body measurements (from the training shards' "
                "manifest): give the shards, or turn retargeting off"
            )
        self.backend = backend
        self.config = config
        self.target = target
        self.full_frame = full_frame
        self.size = backend.size
        self.skeleton = backend.skeleton
        self.transfer = DeviceTransfer(backend.device)

    def run(
        self,
        source: str | Path,
        out: str | Path,
        poses: np.ndarray | None = None,
        progress: bool = True,
    ) -> RunSummary:
        """Write the generated video for `source` to `out` (atomically) and summarise.

        `poses` (N, 33, 3) in source pixels, NaN rows without a person, replaces pose
        detection (e.g. poses saved from an earlier run).
        """
        source, out = Path(source), Path(out)
        info = probe_video(source)  # a clear error for a missing or unreadable video
        audio = source if self.config.audio else None
        config = self.config
        writer = VideoWriter(out, info.fps, config.crf, config.preset, audio)  # checks the dir
        summary = RunSummary(str(source), str(out), self.backend.name, self.config.batch_size)
        encoding = 0.0
        started = time.perf_counter()
        with (
            writer,
            tqdm(total=info.frame_count, unit="frame", desc="infer", disable=not progress) as bar,
        ):
            for frame in self.frames(source, poses, summary):
                start = time.perf_counter()
                writer.write(self.output(frame))
                encoding += time.perf_counter() - start
                bar.update()
        summary.seconds = time.perf_counter() - started
        summary.stage_seconds["encode"] = encoding
        (summary.width, summary.height), summary.duration = writer.size, writer.duration
        summary.audio = writer.audio if self.config.audio else "dropped (--no-audio)"
        return summary

    def output(self, frame: Frame) -> np.ndarray:
        """What the video shows of a generated frame: the crop or the full frame, alone or
        beside its source and skeleton."""
        image = frame.generated
        if self.full_frame is not None:
            image = self.full_frame(image, frame.alpha)
        return side_by_side(frame, image) if self.config.side_by_side else image

    def frames(
        self, source: str | Path, poses: np.ndarray | None = None, summary: RunSummary | None = None
    ) -> Iterator[Frame]:
        """The frames of `source`, generated, in order, as the stages produce them (the
        pipeline without the encoder: for evaluation, or a caller's own sink). `summary`, if
        given, receives the counts, the detected poses and the stages' busy times."""
        source = Path(source)
        info = probe_video(source)
        if poses is not None and (poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3)):
            raise GanmotionError(f"poses must be (N, {NUM_JOINTS}, 3), got {poses.shape}")
        summary = summary or RunSummary(str(source), "", self.backend.name, self.config.batch_size)
        capacity = self.config.queue_frames or 4 * self.config.batch_size
        stages = _Stages()
        decoded, tracked, generated = (queue.Queue(capacity) for _ in range(3))
        workers = None if poses is not None else _PoseWorkers(self.config.pose_workers, capacity)
        try:
            stages.start("decode", lambda: self._decode(stages, source, decoded, workers))
            stages.start(
                "track",
                lambda: self._track(stages, info, summary, decoded, tracked, workers, poses),
            )
            stages.start("generate", lambda: self._generate(stages, tracked, generated))
            while (frame := stages.get(generated)) is not _END:
                summary.frames += 1
                summary.detected += frame.status == "detected"
                summary.held += frame.status == "held"
                summary.missing += frame.status == "missing"
                yield frame
            stages.join()
        except _Stopped:  # another stage failed: raise its error
            stages.stop.set()
            stages.join()
            raise
        finally:
            stages.stop.set()
            if workers is not None:
                workers.close()
            for stage in STAGES:
                if stage in stages.busy:
                    summary.stage_seconds[stage] = stages.busy[stage]

    # ------------------------------------------------------------------ stages

    def _decode(self, stages: _Stages, source: Path, decoded, workers) -> None:
        frames = read_frames(source)
        index = 0
        while True:
            with stages.timed("decode"):
                image = next(frames, None)
            if image is None:
                break
            if workers is not None:
                stages.put(workers.inboxes[index % len(workers.inboxes)], image)
            stages.put(decoded, Frame(index, image))
            index += 1
        if workers is not None:
            for inbox in workers.inboxes:
                stages.put(inbox, _END)
        stages.put(decoded, _END)

    def _track(self, stages, info, summary, decoded, tracked, workers, poses) -> None:
        """Attach each frame's pose, smooth it, and render it in the generator's frame."""
        config, source = self.config, info.path
        smoother = PoseSmoother(config.smoothing, info.fps)
        mapping = None
        waiting: list[Frame] = []  # frames held back until the source body is measured
        calibration: list[np.ndarray] = []
        found = 0
        while (frame := stages.get(decoded)) is not _END:
            if workers is not None:
                outbox = workers.outboxes[frame.index % len(workers.outboxes)]
                frame.detected, seconds = stages.get(outbox, workers.alive(frame.index))
                # the workers run side by side: their busy time per frame is shared
                stages.busy["pose"] += seconds / len(workers.outboxes)
            elif frame.index < len(poses):
                detected = poses[frame.index]
                frame.detected = None if np.isnan(detected).all() else detected
            else:
                raise GanmotionError(
                    f"{source}: has more frames than the {len(poses)} poses given for it"
                )
            summary.poses.append(missing_frame() if frame.detected is None else frame.detected)
            with stages.timed("track"):
                frame.keypoints, frame.status = smoother(frame.detected)
            found += frame.detected is not None
            if mapping is None:
                waiting.append(frame)
                if frame.detected is not None:
                    calibration.append(frame.detected)
                if len(calibration) < config.calibration_frames:
                    if len(waiting) < 3 * config.calibration_frames:
                        continue
                    if not calibration:  # nobody yet: these frames have no pose to map
                        for early in waiting:
                            stages.put(tracked, self._render(early, None, stages))
                        waiting = []
                        continue
                mapping = self._mapping(np.stack(calibration))
                for early in waiting:
                    stages.put(tracked, self._render(early, mapping, stages))
                waiting = []
                continue
            stages.put(tracked, self._render(frame, mapping, stages))
        if found == 0:
            raise GanmotionError(f"{source}: no person found in any frame")
        if waiting:
            mapping = mapping or self._mapping(np.stack(calibration))
            for early in waiting:
                stages.put(tracked, self._render(early, mapping, stages))
        stages.put(tracked, _END)

    def _mapping(self, calibration: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Source pixels -> output pixels: the source body measured on `calibration`, mapped
        onto the target (or framed as it is), then kept in the frame, pose by pose."""
        source = body_stats(calibration)
        if self.config.retarget:
            mapping, anchor_x = Retargeter(source, self.target), self.target.feet[0]
        else:
            mapping, anchor_x = fixed_crop(source, self.size), self.size / 2
        in_frame = InFrame(
            self.size, self.config.motion, anchor_x, min_visibility=self.skeleton.min_visibility
        )
        return lambda keypoints: in_frame(mapping(keypoints))

    def _render(self, frame: Frame, mapping, stages: _Stages) -> Frame:
        with stages.timed("track"):
            if frame.keypoints is None:
                frame.status = "missing"
            else:
                frame.keypoints = mapping(frame.keypoints)
                frame.skeleton = self.skeleton.render(frame.keypoints)
        return frame

    def _generate(self, stages: _Stages, tracked, generated) -> None:
        """Batches of `batch_size` posed frames through the backend; frames without a pose
        ride along in order (at most one batch of them waits). On a GPU two batches are in
        flight: the next is copied in and started before the last one's images are taken
        back, so the host's work on one overlaps the device's on the other."""
        batch: list[Frame] = []
        in_flight: deque[tuple[list[Frame], Callable[[], None]]] = deque()
        posed = 0
        while True:
            frame = stages.get(tracked)
            if frame is not _END:
                batch.append(frame)
                posed += frame.skeleton is not None
                if posed < self.config.batch_size and len(batch) < 2 * self.config.batch_size:
                    continue
            if batch:
                with stages.timed("generate"):
                    in_flight.append((batch, self._start_batch(batch)))
                batch, posed = [], 0
            while in_flight and (frame is _END or len(in_flight) >= self.transfer.in_flight):
                done, finish = in_flight.popleft()
                with stages.timed("generate"):
                    finish()
                for each in done:
                    stages.put(generated, each)
            if frame is _END:
                break
        stages.put(generated, _END)

    def _start_batch(self, batch: list[Frame]) -> Callable[[], None]:
        """Start the generator on a batch's posed frames; the function returned waits for
        the images and puts them (a dark 'no pose' frame where none) into the frames."""
        posed = [f for f in batch if f.skeleton is not None]
        images = alphas = None
        if posed:
            skeletons = self.transfer.to_device(np.stack([f.skeleton for f in posed]))
            keypoints = torch.from_numpy(np.stack([f.keypoints for f in posed]).astype(np.float32))
            if self.full_frame is None:
                images = self.transfer.to_host(self.backend(skeletons, keypoints))
            else:  # the alpha lays the person into the frame
                drawn, alpha = self.backend.with_alpha(skeletons, keypoints)
                images, alphas = self.transfer.to_host(drawn), self.transfer.alpha_to_host(alpha)

        def finish() -> None:
            if posed:
                people = images.wait()
                mattes = alphas.wait() if alphas is not None else [None] * len(posed)
                for frame, image, alpha in zip(posed, people, mattes):
                    frame.generated, frame.alpha = image, alpha
            for frame in batch:
                if frame.generated is None:
                    frame.generated = no_pose_frame(self.size)

        return finish
