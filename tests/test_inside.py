import torch

from ganmotion.inside import deep_inside


def test_deep_inside_is_the_person_beyond_depth_px_of_its_outline():
    mask = torch.zeros(1, 1, 20, 20)
    mask[..., 4:14, 4:14] = 1  # a 10 px square: 2 px in from each side leaves 6 x 6
    mask[..., 15:, :3] = 0.7  # in the corner, cut by the image's border
    deep = deep_inside(mask, 2)
    expected = torch.zeros(1, 1, 20, 20)
    expected[..., 6:12, 6:12] = 1
    # The corner patch is 5 x 3: 2 px from its inner sides only; the border is no outline.
    expected[..., 17:, :1] = 1
    assert torch.equal(deep, expected)
    assert deep_inside(mask * 0.4, 1).sum() == 0  # a soft mask below 0.5 is not the person
