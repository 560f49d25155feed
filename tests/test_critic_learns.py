"""The patch critic learns to tell real crops from blurred ones within a few dozen steps.

Issue 13: in the demo the critic's gap (mean real score - mean fake score) stayed at 1e-4..1e-3
for 400 steps, so the adversarial term did nothing. The cause: the gradient penalty was on the
SUM of the K patch scores while the Wasserstein term compares their MEAN. That holds the mean
score's gradient at 1/K (K = 196 at 128 px), so the gap can be at most ||real - fake||_2 / K,
and the penalty outweighs the Wasserstein term K-fold (lambda = 10 K in the usual units).
Instance norm in the critic slowed it a further 3-10x. This trains the configs' critic (norm
"none"; the penalty now on each sample's mean patch score, see losses.penalty_at) on real
crops against the same crops blurred, with the demo's optimiser, and measures the gap in
units of its Lipschitz bound: a critic whose mean score has ||grad_x|| <= 1 cannot score a
real image more than ||real - blurred||_2 above its blurred copy.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ganmotion.data.manifest import shard_urls
from ganmotion.data.stream import StreamConfig, validation_batches
from ganmotion.losses import critic_loss, gradient_penalty
from ganmotion.models.critic import PatchCritic

STEPS = 60
BATCH = 16


def blurred(images: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """(N, 3, H, W) images under a separable Gaussian blur of `sigma` px, edges replicated."""
    radius = math.ceil(3 * sigma)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).repeat(3, 1, 1, 1)  # (3, 1, 1, 2r + 1)
    x = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, kernel, groups=3)
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(x, kernel.transpose(2, 3), groups=3)


def crops(shards, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(skeletons, images) of every sample of a split, (N, 3, 64, 64) in [-1, 1]."""
    config = StreamConfig(size=64, batch_size=32)
    batches = validation_batches(shard_urls(shards, split), config, 100)
    return torch.cat([b.skeleton for b in batches]), torch.cat([b.image for b in batches])


def train_critic(skeletons, images, norm: str = "none"):
    """The demo's critic and optimiser (base 16, depth 3, max 64; Adam 5e-4, betas (0.5,
    0.999); gp_weight 10), trained alone on real against blurred; returns it and its gap
    (mean real score - mean blurred score) at each step."""
    critic = PatchCritic(base_channels=16, depth=3, max_channels=64, norm=norm)
    adam = torch.optim.Adam(critic.parameters(), lr=5e-4, betas=(0.5, 0.999))
    fakes, gaps = blurred(images), []
    for _ in range(STEPS):
        pick = torch.randint(0, len(images), (BATCH,))
        skeleton, real, fake = skeletons[pick], images[pick], fakes[pick]
        adam.zero_grad(set_to_none=True)
        penalty = gradient_penalty(critic, skeleton, real, fake)
        scores = critic(skeleton.repeat(2, 1, 1, 1), torch.cat([real, fake]))
        wasserstein = critic_loss(*scores.chunk(2))
        (wasserstein + 10.0 * penalty).backward()
        adam.step()
        gaps.append(-wasserstein.item())
    return critic, torch.tensor(gaps)


@contextmanager
def one_thread():
    """Small convolutions run no slower on one thread, and two threads on a busy 2-core
    machine ran this test 4x slower (52 s against 14 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def test_the_critic_separates_real_from_blurred_crops(synthetic_shards):
    torch.manual_seed(0)
    skeletons, images = crops(synthetic_shards, "train")
    with one_thread():
        critic, gaps = train_critic(skeletons, images)

    bound = (images - blurred(images)).flatten(1).norm(dim=1).mean().item()  # 15.6 here
    first, last = gaps[:5].abs().mean().item(), gaps[-10:].mean().item()
    # Measured (64 px, 60 steps, seeds 0-3): 0.35-0.50 of the bound for this critic. With
    # the penalty on the SUM of the patch scores it stays at 0.002 (norm "none") and 0.0005-
    # 0.0008 (instance norm, the demo's critic before issue 13): 1/K-scaled and barely moving.
    assert last > 0.05 * bound, f"gap {last:.4g} after {STEPS} steps, bound {bound:.3g}"
    assert last > 10 * first, f"gap went from {first:.3g} to {last:.3g}: it did not grow"

    skeletons, images = crops(synthetic_shards, "val")
    with torch.no_grad():
        real = critic(skeletons, images).mean(dim=(1, 2, 3))
        fake = critic(skeletons, blurred(images)).mean(dim=(1, 2, 3))
    assert (real > fake).float().mean() >= 0.9, f"held-out real above blurred: {real - fake}"
