"""Reading and writing video frames.

Frames are RGB uint8 arrays (H, W, 3). Decoding uses OpenCV (fast, bundled FFmpeg); writing
uses PyAV's libx264, because OpenCV's wheels cannot write H.264 and `mp4v` files do not play
in browsers. A written video appears under its final name only once it is complete, with the
sound of another video if asked (`VideoWriter(..., audio_from=source)`, see `SourceAudio`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
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


# libx264's presets, fastest first: slower ones make smaller files at the same quality (crf).
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)

# Audio codecs copied into the mp4 as they are (no re-encode): the mp4 muxer takes them and
# players of mp4s play them (AC-3, E-AC-3 and ALAC not every browser). Others (PCM from a
# camera's .mov, MP2, Vorbis) are transcoded to AAC: FFmpeg would mux them into an mp4 too,
# but few players would play that.
COPY_AUDIO_CODECS = ("aac", "mp3", "opus", "ac3", "eac3", "alac", "flac")
# Copied sound from before the output's start kept for the decoder to settle (the mp4's edit
# list hides it): AAC needs the packet before, MP3's bit reservoir two or three, Opus 80 ms.
PREROLL_S = 0.1
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


class SourceAudio:
    """The first audio track of a video, muxed into a VideoWriter's mp4 in step with its frames.

    Time 0 of the output is the source's first video frame: audio timestamps are shifted by
    the source video stream's start time, and audio before 0 or after the output's end
    (`finish(duration)`) is cut, so an output shorter than its source (a source cut short)
    gets sound of its own length. A copied track is cut at packet boundaries, and the mp4's
    edit list and last sample duration cut it to the sample: the packet that ends at or just
    before 0 is kept as the decoder's pre-roll (AAC's priming packet), and the last packet's
    duration is shortened to end with the video. A transcoded track is cut to the sample.

    `describe` says what happened: "copied aac", "transcoded pcm_s16le to aac", "none in the
    source".
    """

    def __init__(self, path: str | os.PathLike, output):
        import av

        self.path = str(path)
        self.stream = None  # in `output`
        self.copy = False
        self._items: Iterator = iter(())
        self._pending = None  # (item, start s, end s): read, not yet muxed
        self._preroll: list = []  # (packet, start, end) within PREROLL_S before 0
        self.seconds_muxed = 0.0  # the end of the sound muxed so far, in output seconds
        self._error: Exception | None = None
        self._output = output
        try:
            self._input = av.open(self.path)
        except (av.error.FFmpegError, UnicodeDecodeError) as error:
            raise GanmotionError(f"{path}: cannot read its audio ({error})") from None
        if not self._input.streams.audio:
            self.describe = "none in the source"
            return
        source = self._input.streams.audio[0]
        video = self._input.streams.video
        self._offset = 0.0  # the source video's first frame, in seconds
        if video and video[0].start_time is not None:
            self._offset = float(video[0].start_time * video[0].time_base)
        name = source.codec_context.codec.canonical_name
        if name in COPY_AUDIO_CODECS and name in output.supported_codecs:
            self.copy = True
            self.stream = output.add_stream_from_template(source)
            self.describe = f"copied {name}"
            self._items = self._packets(source)
        else:
            rate = source.rate if source.rate in AAC_RATES else 48000
            layout = "mono" if source.channels == 1 else "stereo"  # 5.1 and up: downmixed
            self.stream = output.add_stream("aac", rate=rate, layout=layout)
            self.describe = f"transcoded {name} to aac"
            self._items = self._frames(source)

    # ------------------------------------------------------------------ reading

    def _seconds(self, timestamp: int, time_base: Fraction) -> float:
        return float(timestamp * time_base) - self._offset

    def _packets(self, source) -> Iterator:
        for packet in self._input.demux(source):
            if packet.size == 0:  # the demuxer's empty flush packet
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:  # no time: cannot be placed
                continue
            start = self._seconds(pts, packet.time_base)
            yield packet, start, start + float((packet.duration or 0) * packet.time_base)

    def _frames(self, source) -> Iterator:
        for packet in self._input.demux(source):
            for frame in packet.decode():  # the empty flush packet flushes the decoder
                if frame.pts is None:
                    continue
                start = self._seconds(frame.pts, frame.time_base)
                yield frame, start, start + frame.samples / frame.sample_rate

    def _next(self):
        """The next (item, start, end) read from the source, None at its end or first error."""
        import av

        if self._pending is None and self._error is None:
            try:
                self._pending = next(self._items, None)
            except (av.error.FFmpegError, UnicodeDecodeError) as error:  # a damaged or cut file
                self._error = error
        return self._pending

    # ------------------------------------------------------------------ writing

    def advance(self, until: float) -> None:
        """Mux what lies wholly before `until` seconds (the video written so far): sound and
        frames interleave as they are written, so nothing piles up on long videos."""
        while (item := self._next()) is not None and item[2] <= until:
            self._pending = None
            self._mux(*item, until)

    def finish(self, duration: float) -> None:
        """Mux the rest up to the output's end, `duration` seconds, and flush the encoder."""
        while (item := self._next()) is not None and item[1] < duration:
            self._pending = None
            self._mux(*item, duration)
        if not self.copy:
            self._output.mux(self.stream.encode(None))
        if self._error is not None and self.seconds_muxed < duration - 0.1:
            log.warning(
                "%s: its audio could not be read after %.2f s (%s): the output's last %.2f s "
                "are silent",
                self.path,
                self.seconds_muxed,
                self._error,
                duration - self.seconds_muxed,
            )

    def _mux(self, item, start: float, end: float, stop: float) -> None:
        if not self.copy:
            self._encode(item, start, stop)
        elif end <= 0:
            self._preroll = [p for p in self._preroll if p[2] > -PREROLL_S] + [(item, start, end)]
            return
        else:
            for packet, packet_start, _ in self._preroll:
                self._mux_packet(packet, packet_start, stop)
            self._preroll = []
            self._mux_packet(item, start, stop)
        self.seconds_muxed = max(self.seconds_muxed, min(end, stop))

    def _mux_packet(self, packet, start: float, stop: float) -> None:
        shift = round(self._offset / packet.time_base)
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        left = math.floor((stop - start) / packet.time_base + 1e-6)  # in packet.time_base
        if packet.duration and packet.duration > left:  # the last one ends with the video
            packet.duration = left
        # Setting .stream does not rescale the timestamps (PyAV 18 only sets the index; see
        # tests/test_audio.py): mux() rescales them from packet.time_base, the source's.
        packet.stream = self.stream
        self._output.mux(packet)

    def _encode(self, frame, start: float, stop: float) -> None:
        """Encode the part of a decoded frame that lies in [0, stop) seconds of the output."""
        import av

        rate = frame.sample_rate
        first = max(0, math.ceil(-start * rate - 1e-6))
        last = min(frame.samples, round((stop - start) * rate))
        if last <= first:
            return
        if (first, last) != (0, frame.samples):
            samples = frame.to_ndarray()  # planar (channels, n); packed (1, n * channels)
            step = 1 if frame.format.is_planar else len(frame.layout.channels)
            cut = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, first * step : last * step]),
                format=frame.format.name,
                layout=frame.layout.name,
            )
            cut.sample_rate = rate
            frame = cut
        frame.pts = round(start * rate) + first
        frame.time_base = Fraction(1, rate)
        self._output.mux(self.stream.encode(frame))

    def close(self) -> None:
        self._input.close()


class VideoWriter:
    """Writes RGB frames to an H.264 mp4 (yuv420p, plays everywhere), atomically.

    Use as a context manager: the file appears under `path` only when the block exits
    without an exception; on error the partial file is removed. With `audio_from` (a video),
    that video's sound goes with the frames: frame 0 is the source's first frame, and the
    sound ends with the last frame written (see `SourceAudio`; `audio` then says what was
    done with it).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        crf: int = 18,
        preset: str = "veryfast",
        audio_from: str | os.PathLike | None = None,
    ):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise GanmotionError(f"{self.path}: directory {self.path.parent} does not exist")
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self.audio_from = audio_from
        self.audio: str | None = None  # SourceAudio.describe once the first frame is written
        self.sound: SourceAudio | None = None  # while there is sound to mux
        self._container = None
        self._stream = None
        self._close = ExitStack()
        self.frames_written = 0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the written video (0, 0 before the first frame)."""
        return (self._stream.width, self._stream.height) if self._stream else (0, 0)

    @property
    def duration(self) -> float:
        """Seconds of video written."""
        return self.frames_written / self.fps

    def __enter__(self) -> VideoWriter:
        import av  # heavy: imported only by code that writes video

        with ExitStack() as stack:  # on an error here, the temporary file goes
            tmp = stack.enter_context(atomic_write(self.path))
            self._container = av.open(str(tmp), mode="w", format="mp4")
            stack.callback(self._container.close)  # runs before atomic_write's rename
            self._close = stack.pop_all()
        return self

    def _add_streams(self, width: int, height: int) -> None:
        """The video stream, and the audio one: all streams before the first packet."""
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(self.crf), "preset": self.preset}
        if self.audio_from is not None:
            self.sound = SourceAudio(self.audio_from, self._container)
            self._close.callback(self.sound.close)
            self.audio = self.sound.describe
            if self.sound.stream is None:
                self.sound = None

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame (H, W, 3); all frames must share the first one's size."""
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
            self._add_streams(frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != (self._stream.width, self._stream.height):
            raise GanmotionError(
                f"{self.path}: frame size {frame.shape[1]}x{frame.shape[0]} "
                f"differs from {self._stream.width}x{self._stream.height}"
            )
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)
        self.frames_written += 1
        if self.sound is not None:
            self.sound.advance(self.duration)

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
            if self.sound is not None:
                self.sound.finish(self.duration)
