"""The source's sound in the runner's output: copied (or transcoded to AAC), in sync with the
frames, cut to the output's length; --no-audio; a silent source; the encoder's --crf/--preset
and what the summary says about the output."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import listing, make_checkpoint

from ganmotion.data.synthetic import write_clip
from ganmotion.errors import GanmotionError
from ganmotion.runtime import load_backend
from ganmotion.runtime.infer import main as infer_main
from ganmotion.runtime.pipeline import RunnerConfig, VideoPipeline
from ganmotion.video import VideoWriter, read_frames

SIZE = 64  # the generator's
FPS = 30
FRAMES = 45  # 1.5 s of video
TONE_HZ = 440.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path]:
    """(video, keypoints .npy) of a 1.5 s synthetic clip without sound."""
    return write_clip(tmp_path_factory.mktemp("clip") / "dancer.mp4", frames=FRAMES, size=96)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("audio") / "checkpoints", SIZE)


def with_sound(
    clip: Path,
    out: Path,
    codec: str = "aac",
    video_start: float = 0.0,
    tone_from: float = 0.0,
    sound_after: float = 1.0,
    rate: int = 44100,
    faststart: bool = False,
) -> Path:
    """`clip`'s video (its packets copied, starting at `video_start` s of the file's time)
    with a mono sound track from 0 s: silence, then a 440 Hz tone at half scale from
    `tone_from` s, lasting `sound_after` s past the video's end. Packets are muxed in time
    order, as a camera interleaves them."""
    options = {"movflags": "faststart"} if faststart else {}  # the index first: cut, it opens
    with av.open(str(clip)) as source, av.open(str(out), "w", options=options) as file:
        video_in = source.streams.video[0]
        video = file.add_stream_from_template(video_in)
        audio = file.add_stream(codec, rate=rate, layout="mono")
        shift = round(video_start / video_in.time_base)
        packets = []
        for packet in source.demux(video_in):
            if packet.size:
                packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                packet.stream = video
                packets.append((float(packet.dts * packet.time_base), packet))
        end = video_start + FRAMES / FPS + sound_after
        samples = np.arange(round(end * rate)) / rate
        tone = np.where(samples >= tone_from, 0.5 * np.sin(2 * np.pi * TONE_HZ * samples), 0.0)
        for start in range(0, len(tone), 1024):  # the encoder re-cuts them to its frame size
            frame = av.AudioFrame.from_ndarray(
                tone[None, start : start + 1024].astype(np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            packets += [(float(p.dts * p.time_base), p) for p in audio.encode(frame)]
        packets += [(float(p.dts * p.time_base), p) for p in audio.encode(None)]
        for _, packet in sorted(packets, key=lambda item: item[0]):
            file.mux(packet)
    return out


def streams(path: Path) -> dict[str, dict]:
    """Per stream type: codec, start and duration in seconds (from the mp4's header; where a
    container declares none, as Matroska, from the end of its last packet)."""
    found = {}
    with av.open(str(path)) as container:
        for s in container.streams:
            if s.duration is not None:
                duration = float(s.duration * s.time_base)
            else:
                ends = [p.pts + p.duration for p in container.demux(s) if p.size]
                container.seek(0)
                duration = float(max(ends) * s.time_base) - float(s.start_time * s.time_base)
            found[s.type] = {
                "codec": s.codec_context.codec.canonical_name,
                "start": float(s.start_time * s.time_base),
                "duration": duration,
            }
    return found


def sound(path: Path) -> tuple[np.ndarray, float]:
    """The decoded first audio track as mono float samples, and the time of the first one."""
    with av.open(str(path)) as container:
        to_float = av.AudioResampler(format="fltp", layout="mono")
        frames = [f for frame in container.decode(audio=0) for f in to_float.resample(frame)]
    first = frames[0]
    return np.concatenate([f.to_ndarray()[0] for f in frames]), float(first.pts * first.time_base)


def tone_onset(path: Path) -> float:
    """Seconds into the output at which the tone starts (the first sample above 1/4 scale)."""
    samples, start = sound(path)
    return start + np.argmax(np.abs(samples) > 0.25) / rate_of(path)


def rate_of(path: Path) -> int:
    with av.open(str(path)) as container:
        return container.streams.audio[0].rate


def peak_hz(path: Path, start: float, stop: float) -> float:
    samples, first = sound(path)
    rate = rate_of(path)
    window = samples[round((start - first) * rate) : round((stop - first) * rate)]
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
    return float(np.argmax(spectrum) * rate / len(window))


def approx(seconds: float) -> object:
    """A duration as the mp4 states it: libx264's slower presets end the video track a few
    ticks of its 1/15360 s early (medium: 0.8330 s for 25 frames at 30 fps)."""
    return pytest.approx(seconds, abs=1e-3)


def run(model, source, out, poses, **options):
    config = RunnerConfig(retarget=False, calibration_frames=10, **options)
    pipeline = VideoPipeline(load_backend(model), config)
    return pipeline.run(source, out, poses=np.load(poses), progress=False)


def packets(path: Path) -> list[bytes]:
    """The audio packets' data, in file order."""
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def infer(model, source, out, poses, *flags) -> int:
    argv = ["--source", str(source), "--model", str(model), "--out", str(out)]
    return infer_main([*argv, "--poses", str(poses), "--no-retarget", "--quiet", *flags])


# ---------------------------------------------------------------------------- sound


@pytest.mark.parametrize(
    "codec, suffix, rate, kept",
    [
        ("aac", ".mp4", 44100, "copied aac"),
        ("libmp3lame", ".mp4", 44100, "copied mp3"),
        ("libopus", ".mkv", 48000, "copied opus"),  # Matroska: times in 1/1000 s
        ("pcm_s16le", ".mov", 44100, "transcoded pcm_s16le to aac"),  # a camera's .mov
    ],
)
def test_the_sound_is_kept_in_sync_and_as_long_as_the_video(
    model, clip, tmp_path, codec, suffix, rate, kept
):
    """The source's video starts 0.3 s into its file and the tone 0.8 s in; the sound goes on
    1 s past the last frame. The output starts at the first frame, so the tone starts 0.5 s
    into it (measured: to the sample from an mp4 or mov, within 0.5 ms from Matroska, whose
    times are whole milliseconds), and the sound ends with the video."""
    source = with_sound(clip[0], tmp_path / f"source{suffix}", codec, 0.3, 0.8, rate=rate)
    assert streams(source)["audio"]["duration"] == pytest.approx(2.8, abs=0.03)
    assert tone_onset(source) == pytest.approx(0.8, abs=0.001)
    out = tmp_path / "out.mp4"
    summary = run(model, source, out, clip[1])

    assert summary.audio == kept
    found = streams(out)
    assert found["video"] == {"codec": "h264", "start": 0.0, "duration": approx(FRAMES / FPS)}
    assert found["audio"]["codec"] == kept.split()[-1]
    assert found["audio"]["start"] == 0.0
    assert abs(found["audio"]["duration"] - FRAMES / FPS) < 1 / FPS
    assert tone_onset(out) == pytest.approx(0.5, abs=0.001)  # measured: sample-exact
    assert peak_hz(out, 0.6, 1.4) == pytest.approx(TONE_HZ, abs=3)  # (1.25 Hz bins)
    if kept.startswith("copied"):  # no re-encode: a run of the source's own packets
        copied, original = packets(out), packets(source)
        runs = [i for i in range(len(original)) if original[i : i + len(copied)] == copied]
        assert len(runs) == 1 and runs[0] > 0  # those before the first frame left out


@pytest.mark.parametrize("codec", ["aac", "libmp3lame", "ac3"])
def test_copied_sound_decodes_to_the_sources_own_from_the_first_frame_on(clip, tmp_path, codec):
    """The packets just before the first frame go along (hidden by the mp4's edit list) for
    the decoder to settle: without them AAC's first 1024 samples and MP3's first ~4000 differ
    from the source's at the same time."""
    source = with_sound(clip[0], tmp_path / "source.mp4", codec, video_start=0.3, rate=48000)
    with VideoWriter(tmp_path / "out.mp4", FPS, audio_from=source) as writer:
        for _ in range(FRAMES):
            writer.write(np.zeros((SIZE, SIZE, 3), np.uint8))
    assert writer.audio.startswith("copied")
    (original, start), (copied, copied_start) = sound(source), sound(tmp_path / "out.mp4")
    assert start == copied_start == 0.0
    original = original[round(0.3 * 48000) :][: len(copied)]
    assert len(copied) > 1.5 * 48000 and np.abs(original - copied).max() < 1e-4


def test_no_audio_leaves_the_sound_out(model, clip, tmp_path, capsys):
    source = with_sound(clip[0], tmp_path / "source.mp4")
    out, summary = tmp_path / "out.mp4", tmp_path / "summary.json"
    assert infer(model, source, out, clip[1], "--no-audio", "--summary-json", str(summary)) == 0
    assert list(streams(out)) == ["video"]
    assert json.loads(summary.read_text())["audio"] == "dropped (--no-audio)"
    assert "output: 64x64, 1.50 s, audio: dropped (--no-audio)" in capsys.readouterr().out


def test_a_silent_source_gives_a_silent_output_without_a_warning(
    model, clip, tmp_path, capsys, caplog
):
    out, summary = tmp_path / "out.mp4", tmp_path / "summary.json"
    with caplog.at_level(logging.WARNING):
        assert infer(model, clip[0], out, clip[1], "--summary-json", str(summary)) == 0
    assert list(streams(out)) == ["video"]
    assert caplog.records == [] and capsys.readouterr().err == ""
    assert json.loads(summary.read_text())["audio"] == "none in the source"


def test_a_source_cut_short_gets_sound_no_longer_than_its_video(model, clip, tmp_path):
    """An interrupted download: the file holds about half the video and half the sound. The
    output ends with the frames the file holds, and its sound with them, not with the 2.5 s
    of sound the source declares."""
    whole = with_sound(clip[0], tmp_path / "whole.mp4", sound_after=1.0, faststart=True)
    assert streams(whole)["audio"]["duration"] == pytest.approx(2.5, abs=0.03)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "out.mp4"
    assert infer(model, cut, out, clip[1], "--accept-truncated") == 0
    found = streams(out)
    frames = len(list(read_frames(out)))
    assert 0 < frames < FRAMES and found["video"]["duration"] == approx(frames / FPS)
    assert 0.5 * frames / FPS < found["audio"]["duration"] <= frames / FPS


def test_the_sound_is_muxed_while_the_frames_are_written(clip, tmp_path):
    """Interleaved as the frames come, not all at the end: after each frame the sound up to
    that frame's end (whole AAC packets of 1024 samples) is in the file's muxer."""
    source = with_sound(clip[0], tmp_path / "source.mp4")
    packet = 1024 / 44100
    with VideoWriter(tmp_path / "out.mp4", FPS, audio_from=source) as writer:
        for index in range(FRAMES):
            writer.write(np.zeros((SIZE, SIZE, 3), np.uint8))
            written = (index + 1) / FPS
            assert written - packet < writer.sound.seconds_muxed <= written
    assert writer.audio == "copied aac"
    assert streams(tmp_path / "out.mp4")["audio"]["duration"] == pytest.approx(FRAMES / FPS)


def test_sound_that_cannot_be_decoded_ends_with_a_warning(clip, tmp_path, caplog):
    """An MP2 track (transcoded) whose second half is zeroed: the output keeps the first
    half and says where the sound stopped."""
    source = with_sound(clip[0], tmp_path / "source.mov", "mp2", sound_after=0.0)
    with av.open(str(source)) as container:
        places = [(p.pos, p.size) for p in container.demux(audio=0) if p.size]
    data = bytearray(source.read_bytes())
    for position, size in places[len(places) // 2 :]:
        data[position : position + size] = bytes(size)
    damaged = tmp_path / "damaged.mov"
    damaged.write_bytes(bytes(data))
    with (
        caplog.at_level(logging.WARNING),
        VideoWriter(tmp_path / "out.mp4", FPS, audio_from=damaged) as writer,
    ):
        for _ in range(FRAMES):
            writer.write(np.zeros((SIZE, SIZE, 3), np.uint8))
    heard = streams(tmp_path / "out.mp4")["audio"]["duration"]
    assert 0.5 < heard < 0.9  # half of 1.5 s, in whole packets
    assert f"damaged.mov: its audio could not be read after {heard:.2f} s" in caplog.text


def test_setting_a_packets_stream_does_not_rescale_its_timestamps(tmp_path):
    """What SourceAudio relies on, measured on PyAV 18: `packet.stream = other` keeps pts,
    dts and time_base as they were; `mux` rescales them from the packet's time base to the
    output stream's (1/1000 from Matroska, 1/44100 in the mp4)."""
    source = tmp_path / "sound.mkv"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("flac", rate=44100, layout="mono")
        for start in range(0, 44100, 4410):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 4410), np.int16), "s16", "mono")
            frame.sample_rate, frame.pts, frame.time_base = 44100, start, Fraction(1, 44100)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(source)) as container, av.open(str(tmp_path / "out.mp4"), "w") as out:
        copy = out.add_stream_from_template(container.streams.audio[0])
        kept = []
        for packet in container.demux(audio=0):
            if packet.size:
                before = packet.pts, packet.dts, packet.time_base
                packet.stream = copy
                assert (packet.pts, packet.dts, packet.time_base) == before
                assert packet.time_base == Fraction(1, 1000)
                kept.append(packet.pts / 1000)
                out.mux(packet)
        assert copy.time_base == Fraction(1, 44100)  # the mp4 muxer's choice, at its header
    with av.open(str(tmp_path / "out.mp4")) as container:
        muxed = [float(p.pts * p.time_base) for p in container.demux(audio=0) if p.size]
    assert muxed == pytest.approx(kept, abs=1 / 44100)


# ---------------------------------------------------------------------------- output settings


def x264_settings(path: Path) -> dict[str, str]:
    """The options libx264 writes into the stream it encodes (its SEI text)."""
    import re

    text = path.read_bytes().split(b" - options: ", 1)[1].split(b"\0", 1)[0].decode()
    return dict(re.findall(r"(\w+)=(\S+)", text))


def test_crf_and_preset_reach_the_encoder(model, clip, tmp_path, capsys):
    """libx264 records its settings in the stream: the crf given, and the preset's subpixel
    motion search (subme: ultrafast 0, veryfast 2, slow 8). A lower crf is a bigger file."""
    sizes = {}
    for crf, preset, subme in ((12, "ultrafast", "0"), (40, "slow", "8")):
        out = tmp_path / f"crf{crf}.mp4"
        assert infer(model, clip[0], out, clip[1], "--crf", str(crf), "--preset", preset) == 0
        settings = x264_settings(out)
        assert (settings["crf"], settings["subme"]) == (f"{crf}.0", subme)
        sizes[crf] = out.stat().st_size
    assert sizes[12] > 2 * sizes[40]
    out = tmp_path / "default.mp4"
    assert infer(model, clip[0], out, clip[1]) == 0
    assert (x264_settings(out)["crf"], x264_settings(out)["subme"]) == ("18.0", "2")


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--preset", "fastest", "--preset fastest: not a libx264 preset (one of ultrafast, "),
        ("--crf", "52", "--crf 52: must be 0 (lossless) to 51"),
        ("--crf", "-1", "--crf -1: must be 0 (lossless) to 51"),
    ],
)
def test_a_bad_crf_or_preset_is_one_line(model, clip, tmp_path, capsys, flag, value, message):
    out = tmp_path / "out" / "out.mp4"
    out.parent.mkdir()
    assert infer(model, clip[0], out, clip[1], flag, value) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1
    assert listing(out.parent) == []


def test_the_runner_config_refuses_what_libx264_would_not_take():
    """The one home of these checks, whose messages name infer/video.py's flags."""
    with pytest.raises(GanmotionError, match=r"^--crf 60: must be 0 \(lossless\) to 51$"):
        RunnerConfig(crf=60)
    with pytest.raises(GanmotionError, match="^--preset fastest: not a libx264 preset"):
        RunnerConfig(preset="fastest")
