import json

import numpy as np
import pytest

from ganmotion.errors import GanmotionError
from ganmotion.pose.render import SkeletonStyle, render_skeleton
from ganmotion.pose.schema import COLOURS_VERSION, JOINT, LIMB_COLOURS, LIMBS


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


def test_occluded_limbs_are_drawn_dim_and_beneath_the_visible_ones():
    keypoints = np.full((33, 3), np.nan, np.float32)
    shoulder, elbow = JOINT["left_shoulder"], JOINT["left_elbow"]
    hip, knee = JOINT["right_hip"], JOINT["right_knee"]
    keypoints[shoulder], keypoints[elbow] = (20, 50, 0.2), (100, 50, 0.2)  # hidden: horizontal
    keypoints[hip], keypoints[knee] = (60, 10, 1.0), (60, 110, 1.0)  # visible: crosses it
    assert not render_skeleton(keypoints, 128)[50, 30].any()  # left out by default
    image = render_skeleton(keypoints, 128, occluded=0.4)
    arm = LIMB_COLOURS[LIMBS.index((shoulder, elbow))]
    leg = LIMB_COLOURS[LIMBS.index((hip, knee))]
    assert tuple(image[50, 30]) == tuple(round(0.4 * c) for c in arm)
    assert tuple(image[80, 60]) == leg and tuple(image[50, 60]) == leg  # on top where they cross
    style = SkeletonStyle.for_size(128, occluded=0.4)
    np.testing.assert_array_equal(style.render(keypoints), image)


def test_with_nothing_occluded_the_option_draws_the_same_pixels():
    keypoints = _standing(64)
    np.testing.assert_array_equal(
        render_skeleton(keypoints, 64, occluded=0.5), render_skeleton(keypoints, 64)
    )


def test_far_off_keypoints_do_not_break_drawing():
    keypoints = _standing(64)
    keypoints[5, :2] = (1e9, -1e9)
    assert render_skeleton(keypoints, 64).shape == (64, 64, 3)


@pytest.mark.parametrize(("size", "thickness", "radius"), [(64, 1, 2), (256, 2, 3), (512, 4, 5)])
def test_the_default_style_draws_what_models_were_always_given(size, thickness, radius):
    style = SkeletonStyle.for_size(size)
    assert style == SkeletonStyle(size, thickness, radius, COLOURS_VERSION)
    keypoints = _standing(size)
    np.testing.assert_array_equal(style.render(keypoints), render_skeleton(keypoints, size))


def test_a_style_draws_its_own_limb_width_and_joint_radius():
    keypoints = _standing(64)
    thin, thick = SkeletonStyle.for_size(64), SkeletonStyle.for_size(64, thickness=3)
    assert thick.joint_radius == 4
    assert (thick.render(keypoints).any(-1)).sum() > (thin.render(keypoints).any(-1)).sum()
    dots = SkeletonStyle.for_size(64, thickness=3, joint_radius=6)
    assert not np.array_equal(dots.render(keypoints), thick.render(keypoints))
    assert dots.render(None).shape == (64, 64, 3)


def test_a_style_round_trips_through_json():
    style = SkeletonStyle.for_size(128, thickness=3, joint_radius=2)
    entry = json.loads(json.dumps(style.to_dict()))
    assert entry == {"size": 128, "thickness": 3, "joint_radius": 2, "colours": COLOURS_VERSION}
    assert SkeletonStyle.from_dict(entry) == style


def test_an_occluded_shade_is_saved_and_a_style_saved_without_one_reads_as_zero():
    style = SkeletonStyle.for_size(128, occluded=0.4)
    entry = json.loads(json.dumps(style.to_dict()))
    assert entry["occluded"] == 0.4 and SkeletonStyle.from_dict(entry) == style
    older = {"size": 128, "thickness": 1, "joint_radius": 2, "colours": COLOURS_VERSION}
    assert SkeletonStyle.from_dict(older).occluded == 0


GOOD = {"size": 64, "thickness": 3, "joint_radius": 4, "colours": COLOURS_VERSION}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ([64, 3, 4, 1], "expected a mapping of size, thickness, joint_radius, colours"),
        ({k: v for k, v in GOOD.items() if k != "thickness"}, "missing thickness"),
        ({**GOOD, "width": 3}, "unknown width"),
        ({**GOOD, "thickness": 0}, "thickness must be an integer >= 1, got 0"),
        ({**GOOD, "thickness": 2.5}, "thickness must be an integer >= 1, got 2.5"),
        ({**GOOD, "thickness": True}, "thickness must be an integer >= 1, got True"),
        ({**GOOD, "size": "64"}, "size must be an integer >= 1, got '64'"),
        ({**GOOD, "joint_radius": -1}, "joint_radius must be an integer >= 0, got -1"),
        ({**GOOD, "occluded": 1.5}, "occluded must be a number from 0 to 1, got 1.5"),
        ({**GOOD, "occluded": "dim"}, "occluded must be a number from 0 to 1, got 'dim'"),
        (
            {**GOOD, "colours": 99},
            f"colours version 99 is not this ganmotion's ({COLOURS_VERSION})",
        ),
    ],
)
def test_a_bad_style_is_one_line_naming_where_and_what(entry, message):
    with pytest.raises(GanmotionError) as raised:
        SkeletonStyle.from_dict(entry, "run/state.json: skeleton")
    text = str(raised.value)
    assert text.startswith("run/state.json: skeleton: ") and message in text and "\n" not in text


def test_a_style_made_in_code_is_checked_too():
    with pytest.raises(GanmotionError, match="^skeleton style: thickness must be"):
        SkeletonStyle.for_size(64, thickness=0)


def test_a_style_for_another_size_than_the_model_is_refused():
    SkeletonStyle.for_size(64).check_size(64, "gen.json")
    with pytest.raises(GanmotionError, match=r"^gen.json: skeletons drawn at 64 px for a model "):
        SkeletonStyle.for_size(64).check_size(128, "gen.json")
