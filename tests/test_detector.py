import numpy as np
import pytest

from ganmotion.errors import GanmotionError
from ganmotion.pose.detector import DetectorConfig, _chunk_bounds, detect_video
from ganmotion.pose.schema import has_person
from ganmotion.video import VideoWriter, read_frames


def test_only_the_shipped_model_complexity_is_accepted():
    for complexity in (0, 2):
        with pytest.raises(GanmotionError, match="ships only the model for model_complexity=1"):
            DetectorConfig(model_complexity=complexity)


def test_chunks_are_contiguous_and_cover_the_video():
    bounds = _chunk_bounds(101, 3)
    assert bounds[0][0] == 0 and bounds[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert _chunk_bounds(2, 5) == [(0, 1), (1, None)]


@pytest.fixture(scope="module")
def short_taichi(taichi, tmp_path_factory):
    """The first 60 frames of the sample video, re-encoded small."""
    path = tmp_path_factory.mktemp("short") / "taichi60.mp4"
    with VideoWriter(path, fps=30) as writer:
        for frame in read_frames(taichi, 0, 60):
            writer.write(frame[::2, ::2].copy())
    return path


def test_parallel_detection_equals_one_process(short_taichi):
    one = detect_video(short_taichi, workers=1, progress=False)
    two = detect_video(short_taichi, workers=2, progress=False)
    assert one.shape == two.shape == (60, 33, 3)
    assert has_person(one).all()
    np.testing.assert_array_equal(one, two)


def test_keypoints_are_pixels_of_the_frame(short_taichi):
    keypoints = detect_video(short_taichi, workers=1, progress=False)
    visible = keypoints[..., 2] > 0.5
    xs, ys = keypoints[..., 0][visible], keypoints[..., 1][visible]
    assert xs.min() >= 0 and xs.max() < 480 and ys.min() >= 0 and ys.max() < 360
    assert np.ptp(ys) > 100  # a standing person spans much of the 360 px frame height
