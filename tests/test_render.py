import numpy as np

from ganmotion.pose.render import render_skeleton
from ganmotion.pose.schema import JOINT, LIMB_COLOURS, LIMBS


def _standing(size: int) -> np.ndarray:
    keypoints = np.zeros((33, 3), np.float32)
    keypoints[:, 0] = np.linspace(0.3, 0.7, 33) * size
    keypoints[:, 1] = np.linspace(0.1, 0.9, 33) * size
    keypoints[:, 2] = 1.0
    return keypoints


def test_render_is_deterministic_and_any_size():
    keypoints = _standing(256)
    first = render_skeleton(keypoints, 256)
    assert first.shape == (256, 256, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, render_skeleton(keypoints.copy(), 256))
    wide = render_skeleton(keypoints, 200, 300)
    assert wide.shape == (200, 300, 3)


def test_limb_is_drawn_in_its_colour_between_its_joints():
    keypoints = np.full((33, 3), np.nan, np.float32)
    a, b = JOINT["left_shoulder"], JOINT["left_elbow"]
    keypoints[a] = (20, 50, 1)
    keypoints[b] = (100, 50, 1)
    image = render_skeleton(keypoints, 128)
    colour = LIMB_COLOURS[LIMBS.index((a, b))]
    assert tuple(image[50, 60]) == colour
    assert image[10].sum() == 0  # nothing far from the limb


def test_no_person_or_invisible_joints_give_black():
    assert render_skeleton(None, 64).sum() == 0
    assert render_skeleton(np.full((33, 3), np.nan, np.float32), 64).sum() == 0
    hidden = _standing(64)
    hidden[:, 2] = 0.1
    assert render_skeleton(hidden, 64).sum() == 0


def test_far_off_keypoints_do_not_break_drawing():
    keypoints = _standing(64)
    keypoints[5, :2] = (1e9, -1e9)
    assert render_skeleton(keypoints, 64).shape == (64, 64, 3)
