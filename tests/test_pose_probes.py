"""benchmarks/mirrored_poses.py and benchmarks/sharpen_probe.py: their limb swaps, the
outline band and where each sharpening lands."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mirrored_poses  # noqa: E402
import sharpen_probe  # noqa: E402

from ganmotion.pose.schema import JOINT  # noqa: E402


def standing(n: int) -> np.ndarray:
    """(n, 33, 3) poses with a 100 px torso and the legs 40 px apart, all visible."""
    pose = np.zeros((33, 3), np.float32)
    pose[:, 2] = 1
    for side, x in (("left", 140), ("right", 100)):
        pose[JOINT[f"{side}_shoulder"], :2] = x, 100
        pose[JOINT[f"{side}_hip"], :2] = x, 200
        pose[JOINT[f"{side}_knee"], :2] = x, 250
        pose[JOINT[f"{side}_ankle"], :2] = x, 300
    return np.repeat(pose[None], n, axis=0)


def test_a_swapped_pair_of_legs_counts_and_a_small_error_does_not():
    driving = standing(4)
    found = driving.copy()
    legs = [JOINT[n] for n in ("left_knee", "left_ankle", "right_knee", "right_ankle")]
    exchanged = [JOINT[n] for n in ("right_knee", "right_ankle", "left_knee", "left_ankle")]
    found[0, legs] = driving[0, exchanged]  # frame 0: the legs swapped
    found[1, legs, 0] += 5  # frame 1: off by 5 px, not swapped
    found[3] = np.nan  # frame 3: nobody found, not judged

    legs_share = mirrored_poses.limb_swapped_share(found, driving, ("knee", "ankle"))
    knees_share = mirrored_poses.limb_swapped_share(found, driving, ("knee",))

    assert legs_share == pytest.approx(1 / 3)
    assert knees_share == pytest.approx(1 / 3)
    table = mirrored_poses.joint_table({"model": found}, driving)
    knee = next(row for row in table if row.startswith("| left_knee |"))
    # two of four frames in place (one swapped, one not found); off by -40 and +5 px
    assert knee == "| left_knee | 0.50 (-0.12, +0.00) |"
    fixed = mirrored_poses.unswapped(found, driving)
    assert np.array_equal(fixed[0], driving[0])  # the swapped legs put back
    assert np.array_equal(fixed[1], found[1])  # 5 px off is no swap


def test_the_outline_band_lies_either_side_of_the_alpha_edge():
    alpha = np.zeros((1, 40, 40), np.float32)
    alpha[:, 10:30, 10:30] = 1
    band = sharpen_probe.outline_band(alpha, 2)[0, ..., 0]

    assert band[20, 7] == 0 and band[20, 8] == 1  # 2 px outside
    assert band[20, 11] == 1 and band[20, 12] == 0  # 2 px inside
    assert band[20, 20] == 0 and band[0, 0] == 0


def test_each_place_sharpens_only_its_part():
    rng = np.random.default_rng(0)
    person = rng.uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    background = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    alpha = np.zeros((1, 32, 32), np.float32)
    alpha[:, :, :16] = 1  # the person on the left half
    plain = sharpen_probe.sharpened(person, alpha, background, None, 0, 0, 0)

    on_background = sharpen_probe.sharpened(person, alpha, background, "background", 0, 1, 1)
    on_person = sharpen_probe.sharpened(person, alpha, background, "person", 0, 1, 1)

    assert np.array_equal(on_background[:, :, :16], plain[:, :, :16])
    assert not np.array_equal(on_background[:, :, 16:], plain[:, :, 16:])
    assert np.array_equal(on_person[:, :, 16:], plain[:, :, 16:])
    assert not np.array_equal(on_person[:, :, :16], plain[:, :, :16])


@pytest.mark.parametrize("spec", ["image", "hair:2@1", "outline:2@1", "image:0@1", "image:2"])
def test_a_variant_that_is_not_one_is_refused(spec):
    with pytest.raises(argparse.ArgumentTypeError, match="WHERE"):
        sharpen_probe.parse_variant(spec)


def test_a_variant_reads_its_place_band_sigma_and_amount():
    assert sharpen_probe.parse_variant("outline3:2@1.5") == ("outline", 3, 2.0, 1.5)
    assert sharpen_probe.parse_variant("image:1@0.5") == ("image", 0, 1.0, 0.5)
