"""Losses: conditional WGAN-GP (critic and generator sides), L1 and a VGG16 perceptual loss.

Images are (N, 3, H, W) float in [-1, 1]; critics map (skeleton, image) to a score grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ganmotion.config import check_ranges, ranged
from ganmotion.errors import GanmotionError, one_line


@dataclass(frozen=True)
class RegressionLossConfig:
    """Weights of the reconstruction terms (the regression baseline's whole loss).

    l1_weight: L1 to the real image (the seed's 50 with WGAN-GP), over the pixels inside the
        source frame (padding where a crop leaves the frame teaches nothing and is left out).
    person_weight: how much more an L1 pixel of the person counts than one of the room
        (weighted by the person mask; 1 = all alike). The person is a small part of most
        crops, and it is what a viewer looks at.
    head_weight: how much more an L1 pixel in the head's box counts (`head_boxes`, from the
        face keypoints), on top of person_weight. The face is a few pixels of the crop, and
        it says which way the person faces: a face drawn without eyes and mouth is taken
        by MediaPipe for a head seen from behind, left and right exchanged.
    mask_weight: the generator's alpha compared with the person mask (`mask_loss`; needs
        generator.alpha): the alpha learns where the person is, so that the room comes
        from the background.
    mask_person_weight: how much more a pixel of the person counts in that L1 than one of
        the room. An L1 puts the alpha at the median of what the mask has been in similar
        poses: where a pixel was the person in fewer than half of them (sleeves, hem, fast
        hands) it goes transparent, and the background shows through the body. Weighed k
        times, the alpha covers a pixel that was the person in more than 1 / (1 + k) of them.
    mask_loss: how the alpha is compared with the mask: "l1", or "bce" (binary cross
        entropy). An L1 makes the alpha the median of the mask in similar poses, 0 or 1; a
        cross entropy makes it the share of them in which the pixel was the person, and
        where the edge is uncertain the image becomes that blend of person and room, the
        least squared error a pixel can have (mask_person_weight weighs it the same way).
    perceptual_weight: VGG16 feature loss; 0 turns it off.
    vgg_weights: local torchvision VGG16 state dict (.pth or .safetensors), needed when
        perceptual_weight > 0: weights cannot be downloaded at run time.
    """

    l1_weight: float = ranged(50.0, 0)
    person_weight: float = ranged(1.0, 0)
    head_weight: float = ranged(1.0, 0)
    mask_weight: float = ranged(0.0, 0)
    mask_person_weight: float = ranged(1.0, 0)
    mask_loss: Literal["l1", "bce"] = "l1"
    perceptual_weight: float = ranged(0.0, 0)
    vgg_weights: str | None = None

    def __post_init__(self):
        check_ranges(self)
        if self.perceptual_weight > 0 and not self.vgg_weights:
            raise GanmotionError(
                "loss.perceptual_weight > 0 needs loss.vgg_weights: a local VGG16 state dict"
            )


@dataclass(frozen=True)
class GanLossConfig(RegressionLossConfig):
    """Weights of the WGAN-GP loss terms: the reconstruction terms, and

    gp_weight: gradient penalty lambda (10, as in Gulrajani et al.).
    gp_every: the penalty on every k-th critic update only, weighed k * gp_weight there
        (StyleGAN2's lazy regularisation): its double backward is the dearest part of a
        critic update, and 1 (every update) is WGAN-GP's own.
    adversarial_weight: the generator's Wasserstein term.
    feature_matching_weight: pix2pixHD's feature matching: L1 between the critic's
        activations on the generated and on the real image, layer by layer (pix2pixHD: 10).
        It needs no pretrained network, so it works offline; 0 turns it off.
    feature_matching_inside_weight: how much a critic activation counts in that L1 where
        it lies deeper than feature_matching_depth px inside the person mask (1 = as much
        as anywhere, 0 = not at all). Feature matching asks for texture; the detector
        needs it at the person's outline, and deep inside, where the skeleton cannot say
        where the folds of a suit lie, it is painted in the wrong places and costs SSIM
        (benchmarks/RESULTS.md, "Where the detector needs texture").
    feature_matching_depth: that depth, in pixels of the training images.
    """

    gp_weight: float = ranged(10.0, 0)
    gp_every: int = ranged(1, 1, 1000)
    adversarial_weight: float = ranged(1.0, 0)
    feature_matching_weight: float = ranged(0.0, 0)
    feature_matching_inside_weight: float = ranged(1.0, 0, 1)
    feature_matching_depth: int = ranged(6, 1, 256)


Critic = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss: push real scores up and fake ones down (the negated critic gap)."""
    return fake_scores.float().mean() - real_scores.float().mean()


def generator_adversarial_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.float().mean()


def weighted_l1(fake: torch.Tensor, real: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over samples of sum(weight * |fake - real|) / sum(weight), per-pixel weights
    (N, 1, H, W) shared by the channels; a sample whose weights are all 0 counts 0."""
    difference = (fake.float() - real.float()).abs().mean(1, keepdim=True)
    return _weighted_mean(difference, weight)


def _weighted_mean(loss: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over samples of sum(weight * loss) / sum(weight), both (N, 1, H, W); a sample
    whose weights are all 0 counts 0."""
    total = weight.flatten(1).sum(1)
    return ((loss * weight).flatten(1).sum(1) / total.clamp(min=1e-6)).mean()


def weighted_bce(alpha: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The binary cross entropy of an alpha (N, 1, H, W) in [0, 1] to a target mask of the
    same shape, weighted per pixel and averaged like `weighted_l1`, in float32 (a log under
    fp16 or bf16 autocast would lose the small alphas). Alphas within 1e-6 of 0 or 1 are
    clamped there."""
    alpha, target = alpha.float().clamp(1e-6, 1 - 1e-6), target.float()
    entropy = -(target * alpha.log() + (1 - target) * (1 - alpha).log())
    return _weighted_mean(entropy, weight)


def counted_more(weight: torch.Tensor, region: torch.Tensor, times: float) -> torch.Tensor:
    """Per-pixel loss weights with the pixels of `region` (1 inside, 0 outside, soft between)
    counting `times` as much as they did: `weight` * (1 + (times - 1) * region)."""
    if times == 1:
        return weight
    return weight * (1 + (times - 1) * region)


FACE_JOINTS = slice(0, 11)  # nose, eyes, ears and mouth in the MediaPipe schema


def head_boxes(keypoints: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 1, height, width) float: 1 inside each sample's head box, else 0. The box holds
    the sample's face keypoints (B, 33, 3 in pixels, pixel centres at integers), grown on
    every side by half its larger side and a pixel, to take in hair and chin; a sample whose
    face keypoints are all NaN has none."""
    face = keypoints[:, FACE_JOINTS, :2].float()  # (B, 11, 2)
    found = torch.isfinite(face).all(-1, keepdim=True)
    low = torch.where(found, face, torch.inf).amin(1)  # (B, 2): x, y
    high = torch.where(found, face, -torch.inf).amax(1)
    # Without keypoints low = inf and high = -inf, which the growth cannot reverse.
    grow = 0.5 * (high - low).amax(-1, keepdim=True).clamp(min=0) + 1
    low, high = low - grow, high + grow
    xs = torch.arange(width, device=keypoints.device, dtype=face.dtype)
    ys = torch.arange(height, device=keypoints.device, dtype=face.dtype)
    in_x = (xs >= low[:, :1]) & (xs <= high[:, :1])  # (B, W)
    in_y = (ys >= low[:, 1:]) & (ys <= high[:, 1:])  # (B, H)
    return (in_y[:, None, :, None] & in_x[:, None, None, :]).float()


def feature_matching_loss(
    fake: list[torch.Tensor], real: list[torch.Tensor], weight: torch.Tensor | None = None
) -> torch.Tensor:
    """pix2pixHD's feature-matching loss: the mean over layers of the L1 between a critic's
    activations on generated and on real images (the real ones held fixed). The scores,
    the last item of each list, are left out: they are the adversarial term's.

    `weight` (N, 1, H, W), at the images' size, weighs each activation by its mean over the
    pixels under it (adaptive average pooling to the layer's size); a layer's term is the
    mean of weight * L1, not renormalised, so weights of 1 are the plain loss and a weight
    of 0 removes a region's pull without adding to the rest's."""
    layers = list(zip(fake[:-1], real[:-1]))
    loss = 0.0
    for f, r in layers:
        difference = (f.float() - r.detach().float()).abs()
        if weight is not None:
            difference = difference * F.adaptive_avg_pool2d(weight.float(), f.shape[-2:])
        loss = loss + difference.mean()
    return loss / len(layers)


def interpolate(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Random points on the lines between real and fake images, one per sample, requiring grad."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    return (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)


def penalty_at(scores: torch.Tensor, mixed: torch.Tensor, loss_scale: float = 1.0) -> torch.Tensor:
    """Mean of (||d m / d mixed||_2 - 1)^2, m each sample's MEAN score over its patches (what
    `critic_loss` compares), the norm per sample over the whole image.

    The mean, not the sum: a penalty on the sum of K patch scores holds the mean's gradient
    to 1/K (K = 196 at 128 px), which caps the critic's gap at ||real - fake|| / K and makes
    the penalty outweigh the Wasserstein term K-fold. That is why the demo's gap sat at
    1e-4 for a whole run; with the mean it grows to a large share of its Lipschitz bound in
    a few dozen steps (tests/test_critic_learns.py).

    `loss_scale` is the fp16 gradient scaler's current scale: the scores are scaled before
    the inner gradient (so it does not underflow in half precision) and the gradient
    unscaled after, as in PyTorch's AMP notes; leave it at 1 without a scaler.
    """
    per_sample = scores.float().reshape(scores.shape[0], -1).mean(1)  # (N,)
    (grad,) = torch.autograd.grad(per_sample.sum() * loss_scale, mixed, create_graph=True)
    grad = grad.float() / loss_scale
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def gradient_penalty(
    critic: Critic,
    skeleton: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    loss_scale: float = 1.0,
) -> torch.Tensor:
    """WGAN-GP's penalty at random interpolates of real and fake (the skeleton is the
    condition, not interpolated). The trainer runs the same two steps with the critic's
    forward under autocast; this is the stand-alone form."""
    mixed = interpolate(real, fake)
    return penalty_at(critic(skeleton, mixed), mixed, loss_scale)


class PerceptualLoss(nn.Module):
    """Mean L1 distance between feature maps of a frozen feature network.

    `features` is a sequential network (VGG16's `.features`); the outputs after the layers
    at `taps` are compared. Inputs in [-1, 1] are mapped to ImageNet normalisation first.
    """

    def __init__(self, features: nn.Sequential, taps: Sequence[int] = (3, 8, 15, 22)):
        super().__init__()
        if max(taps) >= len(features):
            raise GanmotionError(f"perceptual taps {list(taps)} beyond {len(features)} layers")
        self.features = features[: max(taps) + 1].eval().requires_grad_(False)
        self.taps = set(taps)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)  # the feature network stays in eval mode

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = ((torch.cat([generated, target]) + 1) / 2 - self.mean) / self.std
        loss = x.new_zeros((), dtype=torch.float32)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                ours, theirs = x.chunk(2)
                loss = loss + F.l1_loss(ours.float(), theirs.float())
        return loss


def vgg16_features(weights: str | Path) -> nn.Sequential:
    """torchvision's VGG16 conv stack with weights from a local state dict file.

    Accepts a full VGG16 state dict (`features.N.weight`, `classifier...`) or just the
    features'; `.safetensors` or a torch file (read with weights_only=True, never unpickled).
    """
    from torchvision.models import vgg16

    path = Path(weights)
    if not path.is_file():
        raise GanmotionError(
            f"{path}: VGG16 weights file does not exist (the perceptual loss needs a local "
            "torchvision vgg16 state dict; it cannot be downloaded here)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise GanmotionError(f"{path}: not a readable state dict ({one_line(error)})") from None
    state = {k.removeprefix("features."): v for k, v in state.items() if "classifier" not in k}
    features = vgg16(weights=None).features
    try:
        features.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise GanmotionError(f"{path}: not a VGG16 state dict: {first}") from None
    return features
