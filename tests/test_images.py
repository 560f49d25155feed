"""The one mapping between 8-bit images and [-1, 1]."""

import numpy as np
import pytest
import torch

from ganmotion.images import to_uint8_images, to_unit_range


def test_every_level_maps_to_its_value_and_back():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    unit = to_unit_range(levels)
    assert unit.dtype == torch.float32
    assert unit.min() == -1 and unit.max() == 1
    assert torch.equal(unit, levels.float() / 127.5 - 1)
    back = to_uint8_images(unit)  # (1, 16, 16, 3)
    np.testing.assert_array_equal(back, levels.permute(0, 2, 3, 1).numpy())


def test_values_outside_the_range_are_clipped_and_nearest_levels_chosen():
    batch = torch.tensor([-3.0, -1.0, 0.0, 0.004, 1.0, 7.0]).reshape(1, 1, 1, 6).expand(1, 3, 1, 6)
    assert to_uint8_images(batch)[0, 0, :, 0].tolist() == [0, 0, 128, 128, 255, 255]


def test_a_float_batch_is_refused_not_scaled_twice():
    batch = torch.zeros(1, 3, 2, 2)
    with pytest.raises(TypeError, match="uint8"):
        to_unit_range(batch)
    assert torch.equal(batch, torch.zeros(1, 3, 2, 2))
