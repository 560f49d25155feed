import inspect
from dataclasses import asdict, fields

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ganmotion.errors import GanmotionError
from ganmotion.models import (
    ComposeConfig,
    ComposedGenerator,
    CriticConfig,
    GeneratorConfig,
    MLPGenerator,
    NearestNeighbourGenerator,
    PatchCritic,
    PoseToImage,
    SelfAttention,
    UNetGenerator,
    compose,
    reduced_pose_vector,
    render_skeletons,
)
from ganmotion.models.generator import InsideBlur
from ganmotion.pose.render import SkeletonStyle
from ganmotion.pose.schema import JOINT, REDUCED_JOINTS

SIZES = (64, 128, 256, 512)


def _tiny_generator(size: int = 64, **overrides) -> UNetGenerator:
    torch.manual_seed(0)
    return UNetGenerator(**{"base_channels": 8, "depth": 4, "size": size, **overrides})


def _random_keypoints(n: int, size: int, seed: int = 0, missing: float = 0.0) -> torch.Tensor:
    """(n, 33, 3) poses inside a size x size image; a `missing` share of joints invisible."""
    rng = torch.Generator().manual_seed(seed)
    keypoints = torch.rand(n, 33, 3, generator=rng)
    keypoints[..., :2] *= size
    keypoints[..., 2] = (torch.rand(n, 33, generator=rng) >= missing).float()
    return keypoints


def _constructor_defaults(cls) -> dict:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.name != "self"}


@pytest.mark.parametrize(
    ("config_cls", "model_cls"), [(GeneratorConfig, UNetGenerator), (CriticConfig, PatchCritic)]
)
def test_config_mirrors_constructor(config_cls, model_cls):
    constructor = _constructor_defaults(model_cls)
    config = asdict(config_cls())
    if "size" in config:  # None in a config: a training config takes data.stream.size
        assert config["size"] is None
        config["size"] = constructor["size"]
    assert config == constructor
    assert [f.name for f in fields(config_cls)] == list(constructor)
    model = model_cls.from_config(config_cls(**config))
    assert model.config == config_cls(**config)


def test_a_generator_config_without_a_size_cannot_build_a_model():
    with pytest.raises(GanmotionError, match="size is not set"):
        UNetGenerator.from_config(GeneratorConfig())


@pytest.mark.parametrize("size", SIZES)
def test_generator_keeps_image_size_in_range(size):
    generator = _tiny_generator(size, depth=5 if size >= 128 else 4)
    with torch.no_grad():
        image = generator(torch.rand(2, 3, size, size) * 2 - 1)
    assert image.shape == (2, 3, size, size)
    assert image.abs().max() <= 1


def test_generator_takes_1024_and_rectangles():
    with torch.device("meta"):  # shapes only, no arithmetic
        generator = UNetGenerator()
        assert generator(torch.zeros(1, 3, 1024, 1024)).shape == (1, 3, 1024, 1024)
    wide = _tiny_generator()
    with torch.no_grad():
        assert wide(torch.zeros(1, 3, 64, 160)).shape == (1, 3, 64, 160)


def test_default_generator_matches_seed_budget():
    with torch.device("meta"):
        generator = UNetGenerator()
        with FlopCounterMode(display=False) as counter:
            generator(torch.zeros(1, 3, 512, 512))
    params = sum(p.numel() for p in generator.parameters())
    assert 5e6 <= params <= 6e6
    assert 33e9 <= counter.get_total_flops() / 2 <= 37e9  # multiply-accumulates per frame


def test_attention_starts_as_identity():
    attention = SelfAttention(16)
    assert attention.gamma.item() == 0
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(attention(x), x)


def test_attention_mixes_all_positions_once_open():
    attention = SelfAttention(16)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    x = torch.randn(1, 16, 4, 4, requires_grad=True)
    attention(x)[0, :, 0, 0].sum().backward()
    assert x.grad[0, :, 3, 3].abs().sum() > 0  # the far corner reached the first position


def test_generator_has_no_transposed_convolution():
    modules = list(UNetGenerator().modules())
    assert not any(isinstance(m, (nn.ConvTranspose2d, nn.ConvTranspose1d)) for m in modules)
    assert any(isinstance(m, SelfAttention) for m in modules)


def test_generator_without_attention_works():
    generator = _tiny_generator(attention=False)
    assert not any(isinstance(m, SelfAttention) for m in generator.modules())
    with torch.no_grad():
        assert generator(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("full_res_skip", [True, False])
def test_without_the_full_resolution_skip_the_input_reaches_the_image_only_through_level_1(
    full_res_skip,
):
    """With the stride-2 path cut (down[0] zeroed), the input still reaches the output
    through the stem's full-resolution skip, and only through it: that is the short route
    by which a skeleton's limb colours can print into the image."""
    generator = _tiny_generator(full_res_skip=full_res_skip).eval()
    with torch.no_grad():
        generator.down[0][0].weight.zero_()
        skeleton = torch.zeros(2, 3, 64, 64)
        skeleton[1, :, 30:34, 30:34] = 1.0  # a stroke in the second input only
        out = generator(skeleton)
    assert out.shape == (2, 3, 64, 64)
    changed = (out[1] - out[0]).abs().amax().item()
    assert (changed > 1e-4) == full_res_skip, changed


@pytest.mark.parametrize("norm", ["instance", "batch", "group"])
def test_each_generator_norm_trains(norm):
    generator = _tiny_generator(norm=norm)
    image = generator(torch.rand(2, 3, 64, 64) * 2 - 1)
    image.mean().backward()
    assert image.shape == (2, 3, 64, 64)
    assert all(p.grad is not None for p in generator.head.parameters())


@pytest.mark.parametrize(("height", "width"), [(100, 100), (32, 32), (64, 80)])
def test_size_not_fitting_depth_is_a_clear_error(height, width):
    generator = UNetGenerator(base_channels=8)
    message = (
        f"image size {height}x{width} does not fit a depth-5 generator: "
        "each side must be a multiple of 32 and at least 64"
    )
    with pytest.raises(GanmotionError, match=message):
        generator(torch.zeros(1, 3, height, width))
    with pytest.raises(GanmotionError, match=message):
        generator.check_input_size(height, width)


def test_generator_rejects_wrong_channels():
    with pytest.raises(GanmotionError, match=r"must be \(N, 3, H, W\)"):
        _tiny_generator()(torch.zeros(1, 4, 64, 64))


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"norm": "layer"}, "norm='layer'"),
        ({"depth": 0}, r"generator.depth must be in \[1, 10\], got 0"),
        ({"base_channels": 0}, "generator.base_channels must be >= 1, got 0"),
        ({"base_channels": 64, "max_channels": 32}, "max_channels=32"),
        ({"size": 100}, "image size 100x100"),
    ],
)
def test_bad_generator_arguments_are_clear_errors(arguments, complaint):
    with pytest.raises(GanmotionError, match=complaint):
        UNetGenerator(**arguments)
    with pytest.raises(GanmotionError, match=complaint):
        GeneratorConfig(**arguments)


@pytest.mark.parametrize("size", SIZES)
def test_critic_scores_a_patch_grid(size):
    critic = PatchCritic(base_channels=8, max_channels=64)
    with torch.no_grad():
        scores = critic(torch.zeros(2, 3, size, size), torch.zeros(2, 3, size, size))
    assert scores.shape == (2, 1, size // 8 - 2, size // 8 - 2)


def test_a_two_scale_critic_judges_the_pair_again_at_half_resolution():
    torch.manual_seed(0)
    one = PatchCritic(base_channels=8, max_channels=64)
    two = PatchCritic(base_channels=8, max_channels=64, scales=2)
    # the first scale is the one-scale critic, under the same names: its checkpoints load
    assert two.load_state_dict(one.state_dict(), strict=False).unexpected_keys == []
    seen = []
    two.coarser[0][0].register_forward_hook(lambda module, inputs, out: seen.append(inputs[0]))
    skeleton, image = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64, requires_grad=True)
    scores = two(skeleton, image)
    assert scores.shape == (2, 2)  # each scale's mean patch score, per sample
    assert seen[0].shape == (2, 6, 32, 32)
    with torch.no_grad():
        first = one(skeleton, image).flatten(1).mean(1)
    assert torch.allclose(scores[:, 0], first)
    scores[0, 1].backward()  # the coarse scale alone still sees sample 0 only
    assert image.grad[0].abs().sum() > 0 and torch.count_nonzero(image.grad[1]) == 0
    features = two.features(skeleton, image)
    assert len(features) == 2 * 4 + 1 and torch.equal(features[-1], scores)
    assert two.min_input_size() == 48  # 24 at the half-resolution scale
    with pytest.raises(GanmotionError, match="at 2 scale\\(s\\): each side must be at least 48"):
        two(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))


def test_critic_has_no_batch_norm_and_rejects_it():
    for norm in ("instance", "layer", "none"):
        modules = PatchCritic(base_channels=8, norm=norm).modules()
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules)
    with pytest.raises(GanmotionError, match="WGAN-GP needs per-sample gradients"):
        PatchCritic(norm="batch")
    with pytest.raises(GanmotionError, match="norm='group'"):
        CriticConfig(norm="group")


@pytest.mark.parametrize("norm", ["instance", "layer", "none"])
def test_critic_scores_each_sample_independently(norm):
    torch.manual_seed(0)
    critic = PatchCritic(base_channels=8, norm=norm)
    skeleton = torch.randn(3, 3, 64, 64)
    image = torch.randn(3, 3, 64, 64, requires_grad=True)
    critic(skeleton, image)[0].sum().backward()
    assert image.grad[0].abs().sum() > 0
    assert torch.count_nonzero(image.grad[1:]) == 0


def test_critic_rejects_bad_inputs():
    critic = PatchCritic(base_channels=8)
    with pytest.raises(GanmotionError, match="6 channels in all"):
        critic(torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64))
    with pytest.raises(GanmotionError, match="of one size"):
        critic(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 32, 32))
    with pytest.raises(GanmotionError, match="at least 24"):
        critic(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))


def test_reduced_pose_vector_scales_and_zeroes_missing_joints():
    keypoints = _random_keypoints(3, 64)
    nose, hip = JOINT["nose"], JOINT["left_hip"]
    keypoints[0, nose] = torch.tensor([0.0, 64.0, 1.0])
    keypoints[0, hip, 2] = 0.2  # seen poorly
    keypoints[1, nose] = torch.tensor([float("nan"), 3.0, 1.0])
    keypoints[2] = float("nan")  # no person
    vector = reduced_pose_vector(keypoints, 64)
    assert vector.shape == (3, 39) and vector.dtype == torch.float32
    assert torch.isfinite(vector).all()
    joints = vector.view(3, 13, 3)
    assert joints[0, 0].tolist() == [-1.0, 1.0, 1.0]
    hip_slot = list(REDUCED_JOINTS).index(hip)
    assert joints[0, hip_slot].tolist() == [0.0, 0.0, 0.0]
    assert joints[1, 0].tolist() == [0.0, 0.0, 0.0]
    assert not joints[2].any()
    visible = joints[..., 2] > 0
    assert joints[..., :2][visible].abs().max() <= 1


def test_reduced_pose_vector_accepts_numpy():
    keypoints = _random_keypoints(2, 64)
    from_numpy = reduced_pose_vector(keypoints.numpy(), 64)
    assert torch.equal(from_numpy, reduced_pose_vector(keypoints, 64))
    with pytest.raises(GanmotionError, match=r"keypoints must be \(N, 33, 3\)"):
        reduced_pose_vector(np.zeros((2, 13, 3)), 64)


@pytest.mark.parametrize(("size", "base_size"), [(128, 16), (32, 32)])
def test_mlp_generator_shapes(size, base_size):
    torch.manual_seed(0)
    mlp = MLPGenerator(size, hidden=32, layers=3, base_size=base_size)
    assert [m.out_features for m in mlp.modules() if isinstance(m, nn.Linear)] == [
        32,
        32,
        3 * base_size**2,
    ]
    image = mlp(torch.randn(4, 39))
    assert image.shape == (4, 3, size, size)
    assert image.abs().max() <= 1


def test_mlp_generator_rejects_bad_arguments():
    with pytest.raises(GanmotionError, match=r"mlp.layers must be in \[1, 64\], got 0"):
        MLPGenerator(64, layers=0)
    with pytest.raises(GanmotionError, match="base_size=128"):
        MLPGenerator(64, base_size=128)


def _training_set(m: int, size: int, seed: int = 0, missing: float = 0.0):
    keypoints = _random_keypoints(m, size, seed, missing)
    rng = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (m, 3, size, size), dtype=torch.uint8, generator=rng)
    return keypoints, images


def test_nearest_neighbour_returns_the_training_image_of_a_training_pose():
    keypoints, images = _training_set(50, 16)
    model = NearestNeighbourGenerator(keypoints, images)
    out = model.generate(keypoints[[7, 3]])
    assert torch.equal(out, images[[7, 3]].float() / 127.5 - 1)


def test_nearest_neighbour_finds_one_pose_among_thousands():
    keypoints, images = _training_set(4000, 8, missing=0.2)
    model = NearestNeighbourGenerator(keypoints, images)
    wanted = torch.tensor([0, 1234, 2999, 3999])
    nudged = keypoints[wanted].clone()
    nudged[..., :2] += 0.01  # a query near, not at, a training pose
    assert torch.equal(model.nearest(nudged), wanted)


def _brute_force_nearest(train: torch.Tensor, queries: torch.Tensor, size: int) -> list[int]:
    """The distance written out joint by joint, in float64."""
    train_vector = reduced_pose_vector(train, size).double().view(len(train), 13, 3)
    query_vector = reduced_pose_vector(queries, size).double().view(len(queries), 13, 3)
    best = []
    for q in query_vector:
        best_index, best_distance = 0, float("inf")
        for index, t in enumerate(train_vector):
            shared = [j for j in range(13) if q[j, 2] > 0 and t[j, 2] > 0]
            if not shared:
                continue
            distance = sum(float(((q[j, :2] - t[j, :2]) ** 2).sum()) for j in shared) / len(shared)
            if distance < best_distance:
                best_index, best_distance = index, distance
        best.append(best_index)
    return best


def test_nearest_neighbour_matches_brute_force():
    train, images = _training_set(300, 32, seed=1, missing=0.5)
    queries = _random_keypoints(40, 32, seed=2, missing=0.5)
    model = NearestNeighbourGenerator(train, images)
    expected = _brute_force_nearest(train, queries, 32)
    assert model.nearest(queries).tolist() == expected
    # Small chunks give the same answer as one big one.
    assert model.nearest(queries, chunk_elements=1).tolist() == expected


def test_nearest_neighbour_without_shared_joints_gives_an_image_not_nan():
    keypoints, images = _training_set(5, 16)
    keypoints[:, :, 2] = 0
    keypoints[:, JOINT["nose"], 2] = 1  # training poses show only the nose
    query = _random_keypoints(2, 16)
    query[0, JOINT["nose"], 2] = 0
    query[1] = float("nan")
    model = NearestNeighbourGenerator(keypoints, images)
    assert model.nearest(query).tolist() == [0, 0]
    assert torch.isfinite(model.generate(query)).all()


def test_nearest_neighbour_keeps_float_images_and_rejects_mismatch():
    keypoints, images = _training_set(4, 16)
    floats = images.float() / 127.5 - 1
    model = NearestNeighbourGenerator(keypoints.numpy(), floats)
    assert torch.equal(model.generate(keypoints), floats)
    with pytest.raises(GanmotionError, match="3 poses, 4 images"):
        NearestNeighbourGenerator(keypoints[:3], images)
    with pytest.raises(GanmotionError, match=r"images must be \(M, 3, S, S\)"):
        NearestNeighbourGenerator(keypoints, images[..., :8])


def test_unet_generate_draws_skeletons_and_runs_forward():
    generator = _tiny_generator().eval()
    keypoints = _random_keypoints(2, 64)
    with torch.no_grad():
        expected = generator(render_skeletons(keypoints, SkeletonStyle.for_size(64)))
    assert torch.equal(generator.generate(keypoints), expected)


def _pose_to_image_models(size: int) -> list:
    keypoints, images = _training_set(10, size)
    torch.manual_seed(0)
    return [
        _tiny_generator(size).eval(),
        MLPGenerator(size, hidden=16, base_size=16),
        NearestNeighbourGenerator(keypoints, images),
    ]


@pytest.mark.parametrize("index", range(3), ids=["unet", "mlp", "nearest"])
def test_models_keep_the_generate_contract(index):
    model = _pose_to_image_models(64)[index]
    assert isinstance(model, PoseToImage) and model.size == 64
    keypoints = _random_keypoints(3, 64, seed=5, missing=0.3)
    keypoints[1] = float("nan")  # a frame without a person still gets an image
    images = model.generate(keypoints)
    assert images.shape == (3, 3, 64, 64) and images.dtype == torch.float32
    assert torch.isfinite(images).all() and images.abs().max() <= 1
    assert model.generate(keypoints[:0]).shape == (0, 3, 64, 64)


def test_alpha_generator_outputs_image_and_alpha_in_range():
    generator = UNetGenerator(base_channels=4, depth=3, max_channels=16, size=32, alpha=True)
    output = generator(torch.randn(2, 3, 32, 32) * 3)
    assert output.shape == (2, 4, 32, 32)
    assert output[:, :3].abs().max() <= 1
    assert 0 <= output[:, 3:].min() and output[:, 3:].max() <= 1


def test_compose_lays_the_person_over_the_background_by_alpha():
    person = torch.full((1, 3, 2, 2), 0.5)
    alpha = torch.tensor([[[[1.0, 0.0], [0.25, 0.5]]]])
    background = torch.full((1, 3, 2, 2), -1.0)
    image, returned = compose(torch.cat([person, alpha], 1), background)
    assert torch.equal(returned, alpha)
    expected = torch.tensor([[0.5, -1.0], [0.25 * 0.5 - 0.75, 0.5 * 0.5 - 0.5]])
    assert torch.allclose(image[0, 0], expected)


def test_composed_generator_is_skeleton_to_image_over_its_background():
    generator = UNetGenerator(base_channels=4, depth=3, max_channels=16, size=32, alpha=True)
    background = torch.rand(3, 32, 32) * 2 - 1
    composed = ComposedGenerator(generator, background).eval()
    skeleton = torch.randn(2, 3, 32, 32)
    image, alpha = composed.with_alpha(skeleton)
    assert torch.allclose(composed(skeleton), image)
    with torch.no_grad():
        person = generator(skeleton)[:, :3]
    assert torch.allclose(image, alpha * person + (1 - alpha) * background, atol=1e-6)
    assert composed.generate(torch.zeros(1, 33, 3)).shape == (1, 3, 32, 32)
    with pytest.raises(GanmotionError, match="32x32"):
        composed(torch.randn(1, 3, 64, 64))


def test_composed_generator_rejects_a_background_that_does_not_fit():
    generator = UNetGenerator(base_channels=4, depth=3, max_channels=16, size=32, alpha=True)
    with pytest.raises(GanmotionError, match=r"\(3, 32, 32\)"):
        ComposedGenerator(generator, torch.zeros(3, 16, 16))
    plain = UNetGenerator(base_channels=4, depth=3, max_channels=16, size=32)
    with pytest.raises(GanmotionError, match="alpha=True"):
        ComposedGenerator(plain, torch.zeros(3, 32, 32))


def test_the_inside_blur_smooths_the_person_only_deep_inside_its_alpha():
    blur = InsideBlur(sigma=1.0, depth=3)
    person = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    alpha = torch.zeros(1, 1, 32, 32)
    alpha[..., 4:28, 4:28] = 0.9  # a 24 px square: its pixels lie 1 to 12 px inside
    smoothed = blur(person, alpha)
    changed = (smoothed != person).any(1)[0]
    # Up to 3 px in (and all of the room) as drawn; weight 1/2 at 4 px, all blur from 5.
    assert not changed[:7].any() and not changed[25:].any() and not changed[:, :7].any()
    assert changed[7:25, 7:25].all()
    texture = smoothed[..., 8:24, 8:24].std() / person[..., 8:24, 8:24].std()
    assert texture < 0.5  # sigma 1 px takes most of a noise's contrast
    ring, core = (slice(7, 8), slice(7, 25)), (slice(8, 24), slice(8, 24))
    full = blur(person, torch.ones(1, 1, 32, 32))  # all person: blurred everywhere
    assert torch.allclose(smoothed[..., core[0], core[1]], full[..., core[0], core[1]])
    half = (person + full) / 2
    assert torch.allclose(smoothed[..., ring[0], ring[1]], half[..., ring[0], ring[1]])
    # An alpha below 0.45 is no person: nothing changes.
    assert torch.equal(blur(person, alpha * 0.45 / 0.9), person)


def test_a_composed_generator_lays_its_person_down_blurred_inside_as_its_config_says():
    generator = UNetGenerator(base_channels=4, depth=3, max_channels=16, size=32, alpha=True)
    background = torch.rand(3, 32, 32) * 2 - 1
    plain = ComposedGenerator(generator, background).eval()
    blurred = ComposedGenerator(generator, background, ComposeConfig(inside_blur=1.5)).eval()
    skeleton = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        output = generator(skeleton)
        image, alpha = blurred.with_alpha(skeleton)
    person = InsideBlur(1.5, 6)(output[:, :3], output[:, 3:])
    assert torch.equal(alpha, plain.with_alpha(skeleton)[1])
    assert torch.allclose(image, alpha * person + (1 - alpha) * background, atol=1e-6)
    keypoints = torch.zeros(1, 33, 3)
    skeletons = render_skeletons(keypoints, generator.skeleton)
    assert torch.allclose(blurred.generate(keypoints), blurred(skeletons))
    with pytest.raises(GanmotionError, match="compose.inside_blur"):
        ComposeConfig(inside_blur=-1)
