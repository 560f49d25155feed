import numpy as np
import pytest

from ganmotion.errors import GanmotionError
from ganmotion.pose.detector import (
    DetectorConfig,
    PackedMask,
    PoseDetector,
    _chunk_bounds,
    detect_video,
)
from ganmotion.pose.schema import JOINT, has_person
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
    config = DetectorConfig(segmentation=True)
    one = detect_video(short_taichi, workers=1, config=config, progress=False)
    two = detect_video(short_taichi, workers=2, config=config, progress=False)
    assert one.keypoints.shape == two.keypoints.shape == (60, 33, 3)
    assert has_person(one.keypoints).all()
    np.testing.assert_array_equal(one.keypoints, two.keypoints)
    assert len(one.masks) == 60 and None not in one.masks
    assert one.masks == two.masks  # in frame order
    assert one.masks[0].unpack().shape == (360, 480)


def test_keypoints_are_pixels_of_the_frame(short_taichi):
    keypoints, masks = detect_video(short_taichi, workers=1, progress=False)
    assert masks is None  # segmentation is asked for, not on by default
    visible = keypoints[..., 2] > 0.5
    xs, ys = keypoints[..., 0][visible], keypoints[..., 1][visible]
    assert xs.min() >= 0 and xs.max() < 480 and ys.min() >= 0 and ys.max() < 360
    assert np.ptp(ys) > 100  # a standing person spans much of the 360 px frame height


def test_segmentation_masks_the_person_and_leaves_the_keypoints_alone(taichi):
    """One real frame: the mask covers the torso, is a plausible share of the frame, and
    asking for it changes no keypoint."""
    (frame,) = read_frames(taichi, 300, 301)
    with PoseDetector(DetectorConfig(segmentation=True)) as detector:
        keypoints, mask = detector.detect(frame)
    with PoseDetector() as detector:
        plain, no_mask = detector.detect(frame)
    np.testing.assert_array_equal(keypoints, plain)
    assert no_mask is None
    assert mask.shape == frame.shape[:2] and mask.dtype == np.float32
    assert 0 <= mask.min() and mask.max() <= 1
    person = mask >= 0.5
    assert 0.02 < person.mean() < 0.20, person.mean()
    torso = keypoints[
        [JOINT[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    ]
    for x, y in [*torso[:, :2], torso[:, :2].mean(axis=0)]:  # corners and centre of the torso
        assert person[round(y), round(x)], (x, y)
    packed = PackedMask.pack(mask)
    assert len(packed.bits) < 10_000
    np.testing.assert_array_equal(packed.unpack(), np.where(person, 255, 0))
