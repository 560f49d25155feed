import numpy as np
import pytest
from conftest import listing

from ganmotion.errors import GanmotionError
from ganmotion.video import (
    StoredFrames,
    VideoWriter,
    check_complete,
    probe_video,
    read_frames,
    stored_frames,
)


def _frames(count: int, height: int = 64, width: int = 96) -> list[np.ndarray]:
    ramp = np.linspace(0, 255, width, dtype=np.float32)
    return [
        np.clip(np.stack([ramp + 10 * i, ramp[::-1], np.full_like(ramp, 128)], -1), 0, 255)
        .astype(np.uint8)[None]
        .repeat(height, 0)
        for i in range(count)
    ]


def test_write_then_read_roundtrip(tmp_path):
    frames = _frames(12)
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=25) as writer:
        for frame in frames:
            writer.write(frame)
    info = probe_video(path)
    assert (info.width, info.height, info.frame_count) == (96, 64, 12)
    assert info.fps == pytest.approx(25)
    decoded = list(read_frames(path))
    assert len(decoded) == 12
    assert np.abs(decoded[5].astype(int) - frames[5]).mean() < 4  # H.264 at crf 18
    assert listing(tmp_path) == ["clip.mp4"]


def test_read_range_equals_slice_of_full_read(tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=25) as writer:
        for frame in _frames(20):
            writer.write(frame)
    everything = list(read_frames(path))
    middle = list(read_frames(path, 7, 13))
    assert len(middle) == 6
    for a, b in zip(middle, everything[7:13]):
        np.testing.assert_array_equal(a, b)


def test_writer_leaves_nothing_when_interrupted(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "clip.mp4", fps=25) as writer:
            writer.write(_frames(1)[0])
            raise RuntimeError("stop")
    assert listing(tmp_path) == []


def test_writer_refuses_missing_directory(tmp_path):
    with pytest.raises(GanmotionError, match="does not exist"):
        VideoWriter(tmp_path / "nope" / "clip.mp4", fps=25)


def test_odd_sizes_are_padded_to_even(tmp_path):
    with VideoWriter(tmp_path / "odd.mp4", fps=25) as writer:
        writer.write(_frames(1, 33, 45)[0])
    assert (probe_video(tmp_path / "odd.mp4").width, probe_video(tmp_path / "odd.mp4").height) == (
        46,
        34,
    )


def test_probe_errors_name_the_file(tmp_path):
    with pytest.raises(GanmotionError, match="missing.mp4: no such file"):
        probe_video(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    with pytest.raises(GanmotionError, match="notes.mp4: not a readable video"):
        probe_video(text)


def test_a_video_without_frames_is_an_error_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old")
    with pytest.raises(GanmotionError, match="no frames were written"):
        with VideoWriter(path, fps=25):
            pass
    assert path.read_bytes() == b"old"
    assert listing(tmp_path) == ["clip.mp4"]


def _faststart_clip(path, count: int = 60):
    """An MP4 with its index at the front, as cameras and web downloads often are: cut
    short, it still opens (and decodes to the cut)."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        noise = np.random.default_rng(0)  # every frame about as large as the next
        for _ in range(count):
            frame = noise.integers(0, 256, (64, 96, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_a_video_cut_short_is_refused_unless_accepted(tmp_path, caplog):
    whole = _faststart_clip(tmp_path / "whole.mp4")
    assert check_complete(whole) == StoredFrames(60, 60)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert probe_video(cut).frame_count == 60  # what the header says: the cut is invisible
    counts = stored_frames(cut)
    assert counts.declared == 60 and 10 < counts.stored < 50
    assert len(list(read_frames(cut))) <= counts.stored
    with pytest.raises(GanmotionError, match=rf"cut.mp4: holds {counts.stored} of the 60 frames"):
        check_complete(cut)
    with caplog.at_level("WARNING", logger="ganmotion.video"):
        assert check_complete(cut, accept_truncated=True) == counts
    assert "looks cut short" in caplog.text
    assert counts.to_dict() == {"frames_declared": 60, "frames_stored": counts.stored}


def test_a_few_frames_short_is_only_a_warning(tmp_path, caplog):
    whole = _faststart_clip(tmp_path / "whole.mp4", count=100)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 97 // 100])  # the last few frames
    with caplog.at_level("WARNING", logger="ganmotion.video"):
        counts = check_complete(cut)
    assert 90 <= counts.stored < 100 and "looks cut short" in caplog.text


def test_the_first_third_of_the_sample_video_is_refused(taichi, tmp_path):
    cut = tmp_path / "taichi_cut.mp4"
    cut.write_bytes(taichi.read_bytes()[: taichi.stat().st_size * 3 // 10])
    with pytest.raises(GanmotionError, match=r"holds 27\d of the 901 frames"):
        check_complete(cut)
    assert check_complete(taichi) == StoredFrames(901, 901)
