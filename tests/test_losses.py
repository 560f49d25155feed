import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from ganmotion.errors import GanmotionError
from ganmotion.losses import (
    PerceptualLoss,
    critic_loss,
    feature_matching_loss,
    gradient_penalty,
    head_boxes,
    vgg16_features,
    weighted_bce,
    weighted_l1,
)
from ganmotion.models.critic import PatchCritic


class SquareCritic(nn.Module):
    """score = sum(w * x^2) + sum(skeleton): d score / d x = 2 w x, by hand."""

    def __init__(self, shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape))

    def forward(self, skeleton, image):
        return (self.w * image**2).flatten(1).sum(1) + skeleton.flatten(1).sum(1)


def test_gradient_penalty_matches_a_hand_computation():
    torch.manual_seed(0)
    critic = SquareCritic((3, 4, 4))
    skeleton, real, fake = (torch.randn(5, 3, 4, 4) for _ in range(3))
    torch.manual_seed(1)
    penalty = gradient_penalty(critic, skeleton, real, fake)
    torch.manual_seed(1)
    alpha = torch.rand(5, 1, 1, 1)
    mixed = alpha * real + (1 - alpha) * fake
    grad = 2 * critic.w.detach() * mixed
    expected = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(penalty, expected)


def test_gradient_penalty_is_differentiable_in_the_critic_weights():
    critic = SquareCritic((3, 4, 4))
    skeleton, real, fake = (torch.randn(2, 3, 4, 4) for _ in range(3))
    gradient_penalty(critic, skeleton, real, fake).backward()
    assert critic.w.grad is not None and critic.w.grad.abs().sum() > 0


def test_gradient_penalty_is_unchanged_by_loss_scaling():
    critic = SquareCritic((3, 4, 4))
    skeleton, real, fake = (torch.randn(3, 3, 4, 4) for _ in range(3))
    torch.manual_seed(2)
    plain = gradient_penalty(critic, skeleton, real, fake)
    torch.manual_seed(2)
    scaled = gradient_penalty(critic, skeleton, real, fake, loss_scale=65536.0)
    torch.testing.assert_close(plain, scaled)


def test_critic_loss_is_the_negated_gap():
    assert critic_loss(torch.tensor([3.0, 1.0]), torch.tensor([0.5])).item() == pytest.approx(-1.5)


def tiny_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
    )


def test_perceptual_loss_is_zero_for_identical_images_and_frozen():
    loss = PerceptualLoss(tiny_features(), taps=(1, 3))
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    assert loss(image, image).item() == 0
    assert loss(image, -image).item() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.features.training


def test_perceptual_loss_passes_gradients_to_the_generated_image():
    loss = PerceptualLoss(tiny_features(), taps=(1, 3))
    generated = torch.zeros(1, 3, 8, 8, requires_grad=True)
    loss(generated, torch.rand(1, 3, 8, 8)).backward()
    assert generated.grad.abs().sum() > 0


def test_missing_vgg_weights_are_a_clear_error(tmp_path):
    with pytest.raises(GanmotionError, match="vgg16.pth: VGG16 weights file does not exist"):
        vgg16_features(tmp_path / "vgg16.pth")


def test_vgg_weights_of_another_network_are_rejected(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"0.weight": torch.zeros(4, 3, 3, 3)}, str(path))
    with pytest.raises(GanmotionError, match="not a VGG16 state dict"):
        vgg16_features(path)


def test_vgg_features_load_from_a_local_torchvision_state_dict(tmp_path):
    from torchvision.models import vgg16

    reference = vgg16(weights=None).features
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in reference.state_dict().items()}, path)
    loaded = vgg16_features(path)
    torch.testing.assert_close(loaded[0].weight, reference[0].weight)


def test_weighted_l1_counts_only_weighted_pixels_per_sample():
    fake = torch.zeros(2, 3, 2, 2)
    real = torch.zeros(2, 3, 2, 2)
    real[0, :, 0, 0] = 1.0  # sample 0: one pixel off by 1
    real[1] = 0.5  # sample 1: every pixel off by 0.5
    weight = torch.zeros(2, 1, 2, 2)
    weight[0, :, 0, :] = 1  # sample 0: the top row only
    weight[1] = 1
    # sample 0: (1 + 0) / 2 pixels; sample 1: 0.5 everywhere; their mean
    assert weighted_l1(fake, real, weight).item() == pytest.approx((0.5 + 0.5) / 2)
    assert weighted_l1(fake, real, torch.ones(2, 1, 2, 2)).item() == pytest.approx(
        torch.nn.functional.l1_loss(fake, real).item()
    )
    # A sample with no weight at all counts zero, not NaN.
    assert weighted_l1(fake, real, torch.zeros(2, 1, 2, 2)).item() == 0


@pytest.mark.parametrize(
    ("loss", "share"), [(weighted_l1, 0.0), (weighted_bce, 0.3)], ids=["l1", "bce"]
)
def test_the_mask_loss_puts_an_uncertain_alpha_at_the_median_or_at_the_share(loss, share):
    """A pixel that was the person in 30% of otherwise alike samples: an L1 learns the
    median, 0 (the room shows through); the cross entropy learns the share, 0.3 (the blend
    with the least squared error). Only weighted pixels count."""
    target = torch.zeros(10, 1, 2, 2)
    target[:3, :, 0, 0] = 1
    weight = torch.zeros_like(target)
    weight[:, :, 0, 0] = 1
    logit = torch.zeros((), requires_grad=True)  # the same alpha for every sample
    optimiser = torch.optim.Adam([logit], lr=0.05)
    for _ in range(400):
        optimiser.zero_grad()
        alpha = torch.sigmoid(logit).expand_as(target)
        loss(alpha, target, weight).backward()
        optimiser.step()
    assert torch.sigmoid(logit).item() == pytest.approx(share, abs=0.02)


def test_weighted_bce_is_the_cross_entropy_in_float32_whatever_the_alpha_dtype():
    alpha = torch.tensor([0.25, 0.0, 1.0]).view(1, 1, 1, 3)
    target = torch.tensor([1.0, 1.0, 1.0]).view(1, 1, 1, 3)
    weight = torch.tensor([1.0, 0.0, 1.0]).view(1, 1, 1, 3)  # the clamped 0 is not counted
    expected = (-torch.log(torch.tensor(0.25)) - torch.log(torch.tensor(1 - 1e-6))) / 2
    for dtype in (torch.float32, torch.bfloat16):
        value = weighted_bce(alpha.to(dtype), target, weight)
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert value.item() == pytest.approx(expected.item(), rel=1e-4)


def test_head_boxes_hold_the_face_grown_by_half_its_side():
    keypoints = torch.full((2, 33, 3), 50.0)  # the body far from the face
    keypoints[0, :11, 0] = torch.linspace(10, 14, 11)  # face x 10..14, y 20..22
    keypoints[0, :11, 1] = torch.linspace(20, 22, 11)
    keypoints[0, 3] = float("nan")  # a missing face keypoint is left out
    keypoints[1, :11] = float("nan")  # no face at all
    boxes = head_boxes(keypoints, 40, 30)
    assert boxes.shape == (2, 1, 40, 30)
    # Grown by 4 / 2 + 1 = 3 px on every side: x 7..17, y 17..25, both ends included.
    ys, xs = torch.nonzero(boxes[0, 0], as_tuple=True)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (7, 17, 17, 25)
    assert boxes[0].sum() == 11 * 9
    assert boxes[1].sum() == 0


def test_feature_matching_compares_layers_not_scores_and_holds_real_fixed():
    fake = [torch.ones(1, 2, 4, 4, requires_grad=True), torch.zeros(1, 1, 2, 2)]
    real = [torch.zeros(1, 2, 4, 4, requires_grad=True), torch.full((1, 1, 2, 2), 100.0)]
    loss = feature_matching_loss(fake, real)
    assert loss.item() == pytest.approx(1.0)  # the scores' difference of 100 is left out
    loss.backward()
    assert fake[0].grad is not None and real[0].grad is None


def test_feature_matching_weight_scales_each_layer_where_it_lies():
    fake = [
        torch.ones(1, 2, 4, 4, requires_grad=True),
        torch.ones(1, 2, 2, 2, requires_grad=True),
        torch.zeros(1, 1, 1, 1),
    ]
    real = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]
    weight = torch.ones(1, 1, 8, 8)
    assert feature_matching_loss(fake, real, weight).item() == pytest.approx(
        feature_matching_loss(fake, real).item()
    )
    weight[..., :, 4:] = 0  # the right half of the image does not count
    weight[..., :4, :2] = 0.5  # nor half of the top-left quarter's left half
    loss = feature_matching_loss(fake, real, weight)
    # 4x4 layer: 8 of 16 cells at 0, 2 at 0.5, 6 at 1 (7 / 16); 2x2 layer: the left cells
    # pool the halves (0.75 top, 1 bottom), the right ones 0 (1.75 / 4): not renormalised.
    assert loss.item() == pytest.approx((7 / 16 + 1.75 / 4) / 2)
    loss.backward()
    assert torch.all(fake[0].grad[..., :, 2:] == 0) and torch.all(fake[0].grad[..., :, :2] > 0)


def test_critic_features_end_in_its_scores():
    critic = PatchCritic(base_channels=4, depth=2, max_channels=8)
    skeleton, image = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    features = critic.features(skeleton, image)
    assert len(features) == 3 + 1  # after each LeakyReLU (depth + 1 of them), then the scores
    assert torch.equal(features[-1], critic(skeleton, image))
