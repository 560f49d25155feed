"""Reading and writing video frames.

Frames are RGB uint8 arrays (H, W, 3). Decoding uses OpenCV (fast, bundled FFmpeg); writing
uses PyAV's libx264, because OpenCV's wheels cannot write H.264 and `mp4v` files do not play
in browsers. A written video appears under its final name only once it is complete.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ganmotion.errors import GanmotionError
from ganmotion.files import atomic_write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frame_count: int  # from the container header: an estimate for some files


def _open(path: str | os.PathLike) -> cv2.VideoCapture:
    path = str(path)
    if not os.path.exists(path):
        raise GanmotionError(f"{path}: no such file")
    if os.path.isdir(path):
        raise GanmotionError(f"{path}: is a directory, not a video")
    if os.path.getsize(path) == 0:
        raise GanmotionError(f"{path}: empty file (0 bytes)")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise GanmotionError(f"{path}: {_why_unreadable(path)}")
    return capture


def _why_unreadable(path: str) -> str:
    """Tell an empty video from a file that is no video at all (OpenCV cannot)."""
    import av

    try:
        with av.open(path) as container:
            streams = container.streams.video
            if not container.streams:
                return "contains no frames (empty video)"
            if not streams:
                return "has no video stream (not a video)"
            if any(True for _ in container.decode(streams[0])):
                return "not a video OpenCV can decode"
            return "contains no frames (empty video)"
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        return f"not a readable video ({error.__class__.__name__})"


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate and frame count of a video; errors if it cannot be decoded or is empty."""
    capture = _open(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise GanmotionError(f"{path}: contains no frames (empty video)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return VideoInfo(
            path=str(path),
            width=frame.shape[1],
            height=frame.shape[0],
            fps=fps if fps and np.isfinite(fps) and fps > 0 else 30.0,
            frame_count=max(count, 1),
        )
    finally:
        capture.release()


# A video whose file holds fewer frames than its container declares is cut short (an
# interrupted download or copy: an MP4 with its index at the front still opens, and decodes
# to the cut). Below this share it is refused unless the user accepts it; above, a warning.
MIN_STORED_SHARE = 0.9


@dataclass(frozen=True)
class StoredFrames:
    """Frames a video's container declares (0 when it declares none, as some do) and frames
    whose data the file holds (video packets, counted without decoding: milliseconds)."""

    declared: int
    stored: int

    @property
    def short(self) -> bool:
        return 0 < self.declared and self.stored < self.declared

    def to_dict(self) -> dict[str, int]:
        return {"frames_declared": self.declared, "frames_stored": self.stored}


def stored_frames(path: str | os.PathLike) -> StoredFrames:
    """Count the video packets of `path` against the frame count its container declares."""
    import av

    _open(path).release()  # the usual one-line errors for a missing or unreadable file
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stored = 0
        try:
            for packet in container.demux(stream):
                stored += packet.size > 0  # the demuxer ends with an empty flush packet
        except av.error.FFmpegError:  # data cut mid-packet: what was read counts
            pass
        return StoredFrames(int(stream.frames or 0), stored)


def check_complete(path: str | os.PathLike, accept_truncated: bool = False) -> StoredFrames:
    """`stored_frames` of a video, refused with one line when it holds less than
    MIN_STORED_SHARE of the frames its container declares (unless `accept_truncated`);
    a file that holds fewer frames but more than that is only warned about."""
    counts = stored_frames(path)
    if not counts.short:
        return counts
    message = (
        f"{path}: holds {counts.stored} of the {counts.declared} frames its container "
        "declares: the file looks cut short (an interrupted download or copy?)"
    )
    if counts.stored < MIN_STORED_SHARE * counts.declared and not accept_truncated:
        raise GanmotionError(f"{message}; pass --accept-truncated to use what it holds")
    log.warning("%s; using the %d frames it holds", message, counts.stored)
    return counts


def read_frames(
    path: str | os.PathLike, start: int = 0, stop: int | None = None
) -> Iterator[np.ndarray]:
    """Yield RGB frames [start, stop) of a video, in order.

    Frames before `start` are decoded and dropped rather than reached by seeking: container
    seeking lands on key frames and is not frame-exact for every file, and workers that split
    a video into chunks must see exactly the frames a single reader sees.
    """
    capture = _open(path)
    try:
        index = 0
        while stop is None or index < stop:
            if index < start:
                if not capture.grab():
                    return
            else:
                ok, frame = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


class VideoWriter:
    """Writes RGB frames to an H.264 mp4 (yuv420p, plays everywhere), atomically.

    Use as a context manager: the file appears under `path` only when the block exits
    without an exception; on error the partial file is removed.
    """

    def __init__(
        self, path: str | os.PathLike, fps: float, crf: int = 18, preset: str = "veryfast"
    ):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise GanmotionError(f"{self.path}: directory {self.path.parent} does not exist")
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self._container = None
        self._stream = None
        self._close = ExitStack()
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        import av  # heavy: imported only by code that writes video

        with ExitStack() as stack:  # on an error here, the temporary file goes
            tmp = stack.enter_context(atomic_write(self.path))
            self._container = av.open(str(tmp), mode="w", format="mp4")
            stack.callback(self._container.close)  # runs before atomic_write's rename
            self._close = stack.pop_all()
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame (H, W, 3); all frames must share the first one's size."""
        from fractions import Fraction

        import av

        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise GanmotionError(
                f"{self.path}: frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}"
            )
        # yuv420p needs even sides: pad the last row/column by replication.
        pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        if self._stream is None:
            rate = Fraction(self.fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = frame.shape[1], frame.shape[0]
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self.crf), "preset": self.preset}
        elif (frame.shape[1], frame.shape[0]) != (self._stream.width, self._stream.height):
            raise GanmotionError(
                f"{self.path}: frame size {frame.shape[1]}x{frame.shape[0]} "
                f"differs from {self._stream.width}x{self._stream.height}"
            )
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        # Closing the container, then renaming the file into place or, after any error
        # (the block's, an empty video, the encoder's flush), removing it.
        if exc_type is not None:
            self._close.__exit__(exc_type, exc, tb)
            return
        with self._close:
            if self.frames_written == 0:
                raise GanmotionError(f"{self.path}: no frames were written")
            for packet in self._stream.encode():  # flush the encoder's delayed frames
                self._container.mux(packet)
