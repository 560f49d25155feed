"""benchmarks/mask_ssim_depth.py: its blur laid only deep inside the person."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mask_ssim_depth  # noqa: E402


def test_the_blur_inside_leaves_the_edge_and_the_room_as_they_were():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 48, 48, 3), dtype=np.uint8)
    person = np.zeros((2, 48, 48), bool)
    person[:, 8:40, 8:40] = True  # a square person: its centre lies 16 px inside
    inside = 6
    out = mask_ssim_depth.blurred(images, 1.5, mask_ssim_depth.inside_weight(person, inside))
    whole = mask_ssim_depth.blurred(images, 1.5)

    assert np.array_equal(out[:, :8], images[:, :8])  # the room
    assert np.array_equal(out[:, 8 : 8 + inside, 8:40], images[:, 8 : 8 + inside, 8:40])  # the edge
    deep = np.s_[:, 8 + inside + mask_ssim_depth.RAMP_PX + 1 : 40 - inside - 3, 20:28]
    assert np.array_equal(out[deep], whole[deep])  # past the ramp: blurred in full
    assert out[deep].std() < 0.7 * images[deep].std()
