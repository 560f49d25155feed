"""The pose-to-image generator: a U-Net with self-attention at its bottleneck.

    generator = UNetGenerator(size=512)          # or UNetGenerator.from_config(config)
    image = generator(skeleton)                  # (N, 3, H, W) float in [-1, 1] both
    images = generator.generate(keypoints)       # (N, 33, 3) pixels -> (N, 3, 512, 512),
                                                 # skeletons drawn in generator.skeleton

With `alpha=True` the generator draws the person and where it is: its output has one more
channel, the alpha in [0, 1], and `compose` lays that person over a background (the room
the target was filmed in, cropped like the frame). A generator that composes never has to
paint the room from a skeleton, which it cannot know; `ComposedGenerator` holds one with its
background and is again skeleton -> image (what a checkpoint loads and the export bakes),
and may smooth the person deep inside its outline as it lays it down (`ComposeConfig`).

Upsampling is bilinear + 3x3 conv, never a transposed conv, whose uneven kernel overlap
paints checkerboards into 512 px output. At 512x512 the defaults cost about 36 GMAC and
5.8 M parameters per frame, the budget of the seed project's U-Net.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganmotion.config import check_ranges, ranged
from ganmotion.errors import GanmotionError
from ganmotion.images import to_unit_range
from ganmotion.inside import erode
from ganmotion.pose.render import SkeletonStyle
from ganmotion.pose.schema import NUM_JOINTS

NORMS = ("instance", "batch", "group")
ALPHA_INIT_LOGIT = -2.0
INSIDE_BLUR_RAMP_PX = 2  # the inside blur's weight rises from 0 to 1 over this many px inward
INSIDE_BLUR_HELP = (
    "with a checkpoint of an alpha generator: blur the person by a Gaussian of SIGMA px "
    "deeper than DEPTH px (default 6) inside its alpha, 0 = as drawn [the checkpoint "
    "config's compose.inside_blur]"
)


@dataclass(frozen=True)
class GeneratorConfig:
    """The constructor arguments of `UNetGenerator`, validated when made.

    in_channels: channels of the input skeleton image.
    out_channels: channels of the output image.
    base_channels: width of the full-resolution level; each level below doubles it.
    depth: number of stride-2 levels; the bottleneck is at 1/2**depth of the input size.
    max_channels: cap on the width of any level.
    norm: "instance", "batch" or "group" (GroupNorm with up to 32 groups).
    attention: self-attention over all positions of the bottleneck.
    size: side of the square images `generate` draws and returns; `forward` takes any size
        that fits the depth. In a training config it is data.stream.size (leave it out).
    alpha: also output an alpha channel (the person's coverage, in [0, 1]) after the image
        channels, for composition over a background (`compose`).
    full_res_skip: the last decoder level also takes the full-resolution stem's features.
        Without it the shortest path from an input pixel to an output pixel crosses the
        half-resolution level: the skeleton's limb colours have no three-conv route into
        the image (benchmarks/stripes.py measures that leak).
    """

    in_channels: int = ranged(3, 1)
    out_channels: int = ranged(3, 1)
    base_channels: int = ranged(32, 1)
    depth: int = ranged(5, 1, 10)
    max_channels: int = ranged(256, 1)
    norm: str = "instance"
    attention: bool = True
    size: int | None = ranged(None, 16, 4096)
    alpha: bool = False
    full_res_skip: bool = True

    def __post_init__(self) -> None:
        check_ranges(self, "generator.")
        if self.max_channels < self.base_channels:
            raise GanmotionError(
                f"generator max_channels={self.max_channels}: must be >= base_channels "
                f"({self.base_channels})"
            )
        if self.norm not in NORMS:
            raise GanmotionError(f"generator norm={self.norm!r}: must be one of {NORMS}")
        if self.size is not None:
            check_size_fits_depth(self.size, self.size, self.depth)


def check_size_fits_depth(height: int, width: int, depth: int) -> None:
    """Raise unless a (height, width) image halves `depth` times to a bottleneck of 2x2 or more.

    2x2 is the floor because instance norm of a single position is undefined in training.
    """
    step = 2**depth
    if height % step or width % step or min(height, width) < 2 * step:
        raise GanmotionError(
            f"image size {height}x{width} does not fit a depth-{depth} generator: "
            f"each side must be a multiple of {step} and at least {2 * step}"
        )


def as_keypoints(keypoints: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Keypoints as a float32 tensor (N, 33, 3), or a GanmotionError naming the bad shape."""
    keypoints = torch.as_tensor(keypoints, dtype=torch.float32)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 3):
        raise GanmotionError(
            f"keypoints must be (N, {NUM_JOINTS}, 3), got {tuple(keypoints.shape)}"
        )
    return keypoints


def render_skeletons(keypoints: torch.Tensor | np.ndarray, skeleton: SkeletonStyle) -> torch.Tensor:
    """Draw keypoints (N, 33, 3) in pixels as skeletons (N, 3, S, S) in [-1, 1] on the CPU,
    S = skeleton.size."""
    points = as_keypoints(keypoints).cpu().numpy()
    size = skeleton.size
    frames = np.zeros((len(points), size, size, 3), np.uint8)
    for frame, keypoints_ in zip(frames, points):
        frame[:] = skeleton.render(keypoints_)
    return to_unit_range(torch.from_numpy(frames).permute(0, 3, 1, 2))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(math.gcd(channels, 32), channels)


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int, norm: str) -> nn.Sequential:
    # No bias: every norm here has its own learned shift.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding=1, bias=False),
        _norm(norm, c_out),
        nn.LeakyReLU(0.2),
    )


class SelfAttention(nn.Module):
    """SAGAN self-attention: every position of (N, C, H, W) attends to all; identity at init.

    The learned gate `gamma` starts at 0, so a new generator is a plain U-Net and lets
    attention in as training finds it useful.
    """

    def __init__(self, channels: int):
        super().__init__()
        inner = max(1, channels // 8)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (N, HW, C/8)
        k = self.key(x).flatten(2).transpose(1, 2)  # (N, HW, C/8)
        v = self.value(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        # Softmax over positions, as SAGAN, plus the 1/sqrt(C/8) logit scale (SAGAN has
        # none), which keeps the softmax from saturating.
        out = F.scaled_dot_product_attention(q, k, v)  # (N, HW, C)
        return self.gamma * out.transpose(1, 2).reshape(n, c, h, w) + x


class UNetGenerator(nn.Module):
    """Skeleton image (N, in, H, W) -> image (N, out, H, W), both float in [-1, 1].

    A full-resolution 3x3 stem, `depth` stride-2 4x4 convs (width doubling up to
    `max_channels`), self-attention at the bottleneck, then per level a bilinear x2
    upsample, concatenation with the encoder feature of that resolution (at full
    resolution, the stem's, only with `full_res_skip`) and a 3x3 conv;
    a 3x3 conv and tanh make the image (with `alpha`, one more channel through a sigmoid:
    output (N, out + 1, H, W)). Arguments are those of `GeneratorConfig`.

    `skeleton` is how `generate` draws its input: the defaults for `size`, or, for a
    generator from `load_generator`, the style it was trained on (not an argument: it is
    no part of the architecture, and the weights do not depend on it).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 32,
        depth: int = 5,
        max_channels: int = 256,
        norm: str = "instance",
        attention: bool = True,
        size: int = 512,
        alpha: bool = False,
        full_res_skip: bool = True,
    ):
        super().__init__()
        self.config = GeneratorConfig(
            in_channels,
            out_channels,
            base_channels,
            depth,
            max_channels,
            norm,
            attention,
            size,
            alpha,
            full_res_skip,
        )
        self.size = size
        self.skeleton = SkeletonStyle.for_size(size)
        widths = [min(base_channels * 2**i, max_channels) for i in range(depth + 1)]
        self.stem = _conv_block(in_channels, widths[0], 3, 1, norm)
        self.down = nn.ModuleList(
            _conv_block(widths[i], widths[i + 1], 4, 2, norm) for i in range(depth)
        )
        self.attention = SelfAttention(widths[-1]) if attention else nn.Identity()
        # up[i] brings level i+1 up to level i: its input is level i+1's output and skip i
        # (skip 0, the stem's, only with full_res_skip).
        skip_widths = [widths[0] if full_res_skip else 0, *widths[1:]]
        self.up = nn.ModuleList(
            _conv_block(widths[i + 1] + skip_widths[i], widths[i], 3, 1, norm) for i in range(depth)
        )
        self.head = nn.Conv2d(widths[0], out_channels + alpha, 3, padding=1)
        if alpha:
            # A new generator shows the background (alpha = sigmoid(-2) = 0.12 everywhere):
            # most of a crop is room, and it then only has to learn where the person is,
            # from the skeleton's strokes, rather than first unlearn a grey veil of 0.5.
            with torch.no_grad():
                self.head.bias[-1] = ALPHA_INIT_LOGIT

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> UNetGenerator:
        if config.size is None:
            raise GanmotionError(
                f"{cls.__name__}: size is not set (a training config takes it from "
                "data.stream.size)"
            )
        return cls(**asdict(config))

    def check_input_size(self, height: int, width: int) -> None:
        """Raise a GanmotionError unless a height x width input fits this generator's depth."""
        check_size_fits_depth(height, width, self.config.depth)

    def forward(self, skeleton: torch.Tensor) -> torch.Tensor:
        if skeleton.ndim != 4 or skeleton.shape[1] != self.config.in_channels:
            raise GanmotionError(
                f"generator input must be (N, {self.config.in_channels}, H, W), "
                f"got {tuple(skeleton.shape)}"
            )
        self.check_input_size(skeleton.shape[2], skeleton.shape[3])
        x = self.stem(skeleton)  # (N, C0, H, W)
        skips: list[torch.Tensor | None] = []
        for down in self.down:
            skips.append(x)
            x = down(x)  # (N, C_i+1, H/2**(i+1), W/2**(i+1))
        x = self.attention(x)  # (N, C_depth, H/2**depth, W/2**depth)
        if not self.config.full_res_skip:
            skips[0] = None  # level 0 is the upsampled level 1 alone
        for up, skip in zip(reversed(self.up), reversed(skips)):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = up(x if skip is None else torch.cat([x, skip], dim=1))  # (N, C_i, H/2**i, W/2**i)
        x = self.head(x)  # (N, out (+ 1), H, W)
        if not self.config.alpha:
            return torch.tanh(x)
        image, alpha = x.split([self.config.out_channels, 1], dim=1)
        return torch.cat([torch.tanh(image), torch.sigmoid(alpha)], dim=1)

    @torch.no_grad()
    def generate(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Keypoints (N, 33, 3) in pixels of a size x size image -> (N, out, size, size) in [-1, 1].

        Skeletons are drawn in `self.skeleton` on the CPU and moved to the model's device;
        put the model in eval mode first (batch norm would otherwise use this batch's
        statistics).
        """
        weight = self.head.weight
        skeleton = render_skeletons(keypoints, self.skeleton).to(weight.device, weight.dtype)
        if len(skeleton) == 0:  # instance norm cannot take an empty batch
            channels = self.config.out_channels + self.config.alpha
            return skeleton.new_zeros(0, channels, self.size, self.size)
        return self(skeleton)


def compose(output: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(image, alpha) of an alpha generator's output (N, C + 1, H, W) over a background
    (N or 1, C, H, W): image = alpha * person + (1 - alpha) * background, alpha (N, 1, H, W)."""
    person, alpha = output[:, :-1], output[:, -1:]
    return alpha * person + (1 - alpha) * background.to(person.dtype), alpha


@dataclass(frozen=True)
class ComposeConfig:
    """How a `ComposedGenerator` lays its person over the background: what eval, the export
    and the runner draw. Training never applies it (its losses see the person as drawn), so
    it can be changed after training with `--inside-blur` (`parse`) where a checkpoint loads.

    inside_blur: the person layer is blurred by a Gaussian of this sigma in px where it lies
        deeper than `inside_depth` px inside its own alpha (>= 0.5), the blur's weight rising
        from 0 to 1 over 2 px; 0 = off. A skeleton cannot say where a fold or a stripe of
        the clothes lies, so the texture a GAN paints deep inside the person is mostly in the
        wrong place; a pose detector reads the outline and the few px behind it, which keep
        their texture (benchmarks/RESULTS.md, "Where the detector needs texture").
    inside_depth: px from the outline, at the generator's size, that keep their texture.
    """

    inside_blur: float = ranged(0.0, 0, 16)
    inside_depth: int = ranged(6, 0, 256)

    def __post_init__(self) -> None:
        check_ranges(self, "compose.")

    @classmethod
    def parse(cls, text: str | None) -> ComposeConfig | None:
        """`--inside-blur SIGMA[@DEPTH]` ("1", "1.5@4"; "0": as drawn), for the command lines
        that load a checkpoint; None (the flag not given: the checkpoint's own) -> None. An
        error names the flag and what it expects."""
        if text is None:
            return None
        sigma, _, depth = text.partition("@")
        try:
            return cls(float(sigma), int(depth) if depth else cls.inside_depth)
        except (ValueError, GanmotionError) as error:
            raise GanmotionError(
                f"--inside-blur {text}: expected SIGMA or SIGMA@DEPTH, a blur of 0-16 px deeper "
                f"than 0-256 px ({error})"
            ) from None


class InsideBlur(nn.Module):
    """`ComposeConfig.inside_blur` as a module: (person (N, C, H, W), alpha (N, 1, H, W)) ->
    the person blurred deep inside the alpha, of the same shape. Pooling and two 1-D
    convolutions, so the ONNX export and TensorRT take it as they are."""

    def __init__(self, sigma: float, depth: int):
        super().__init__()
        self.depth, self.radius = depth, math.ceil(3 * sigma)
        x = torch.arange(-self.radius, self.radius + 1, dtype=torch.float32)
        kernel = torch.exp(-(x**2) / (2 * sigma**2))
        self.register_buffer("kernel", kernel / kernel.sum())

    def forward(self, person: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        channels, taps = person.shape[1], len(self.kernel)
        kernel = self.kernel.to(person.dtype)
        # Replicated edges: a crop's border is no edge of the person's colour.
        smooth = F.pad(person, [self.radius] * 4, mode="replicate")
        smooth = F.conv2d(
            smooth, kernel.view(1, 1, taps, 1).expand(channels, 1, taps, 1), groups=channels
        )
        smooth = F.conv2d(
            smooth, kernel.view(1, 1, 1, taps).expand(channels, 1, 1, taps), groups=channels
        )
        # The person where alpha >= 0.5, but continuous (a linear step from 0.45 to 0.55):
        # with a hard threshold an alpha of 0.5 - 1e-7 in PyTorch and 0.5 + 1e-7 in ONNX
        # Runtime would move the blur's edge and break the export's parity.
        person_at = ((alpha - 0.5) * 10 + 0.5).clamp(0, 1)
        # The ramp: the mean of the insides 0 .. RAMP - 1 px deeper than `depth` (max-pool
        # erosions, so distances are in the chessboard metric): weight 1/2 at depth + 1 px.
        ramp = range(INSIDE_BLUR_RAMP_PX)
        weight = sum(erode(person_at, self.depth + step) for step in ramp) / len(ramp)
        return person + weight * (smooth - person)


class ComposedGenerator(nn.Module):
    """An alpha `UNetGenerator` and its background: skeleton (N, in, H, W) -> image (N, out,
    H, W) composed over the background, like a generator without alpha; `with_alpha` also
    returns the alpha (N, 1, H, W). `compose_config` says how the person is laid down
    (default: as drawn).

    The background (out, size, size) in [-1, 1] is a buffer: it travels with `.to()`, and
    the ONNX export bakes it into the model as a constant.
    """

    def __init__(
        self,
        generator: UNetGenerator,
        background: torch.Tensor,
        compose_config: ComposeConfig = ComposeConfig(),
    ):
        super().__init__()
        if not generator.config.alpha:
            raise GanmotionError("ComposedGenerator needs a generator with alpha=True")
        expected = (generator.config.out_channels, generator.size, generator.size)
        if tuple(background.shape) != expected:
            raise GanmotionError(
                f"background must be {expected} to compose this generator's output, "
                f"got {tuple(background.shape)}"
            )
        self.generator = generator
        self.register_buffer("background", background[None].float())
        self.compose_config = compose_config
        blur, depth = compose_config.inside_blur, compose_config.inside_depth
        self.inside_blur = InsideBlur(blur, depth) if blur else None
        self.size, self.skeleton, self.config = generator.size, generator.skeleton, generator.config

    def person_and_alpha(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The generator's output split into the person as it is laid down (blurred inside
        as `compose_config` says) and its alpha, before they meet the background."""
        person, alpha = output[:, :-1], output[:, -1:]
        if self.inside_blur is not None:
            person = self.inside_blur(person, alpha)
        return person, alpha

    def composed(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image, alpha) of the generator's output laid over the background."""
        if self.inside_blur is not None:
            output = torch.cat(self.person_and_alpha(output), dim=1)
        return compose(output, self.background)

    def with_alpha(self, skeleton: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input_size(skeleton.shape[-2], skeleton.shape[-1])
        return self.composed(self.generator(skeleton))

    def forward(self, skeleton: torch.Tensor) -> torch.Tensor:
        return self.with_alpha(skeleton)[0]

    def check_input_size(self, height: int, width: int) -> None:
        if (height, width) != (self.size, self.size):
            raise GanmotionError(
                f"a composed generator draws {self.size}x{self.size} images (its background's "
                f"size), got a {height}x{width} skeleton"
            )

    @torch.no_grad()
    def generate(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Keypoints (N, 33, 3) -> images (N, out, size, size) composed over the background."""
        return self.composed(self.generator.generate(keypoints))[0]
