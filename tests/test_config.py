import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from ganmotion.config import config_to_dict, field_range, load_config
from ganmotion.errors import GanmotionError
from ganmotion.training.config import GanConfig, VanillaConfig

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config_class = GanConfig if path.name.startswith("gan") else VanillaConfig
    config = load_config(config_class, path)
    model = config.mlp if getattr(config, "model", "unet") == "mlp" else config.generator
    assert model.size == config.data.stream.size


def test_overrides_apply_after_the_file_with_yaml_types():
    config = load_config(
        GanConfig,
        CONFIGS[0].parent / "gan_tiny.yaml",
        ["run.steps=7", "generator_optim.betas=[0.0, 0.9]", "run.tensorboard=false"],
    )
    assert config.run.steps == 7
    assert config.generator_optim.betas == (0.0, 0.9)
    assert config.run.tensorboard is False
    assert config_to_dict(config)["generator_optim"]["betas"] == [0.0, 0.9]


def test_defaults_need_no_file():
    assert load_config(GanConfig).critic_steps == 5


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("run: {stpes: 3}\n", [], "unknown key run.stpes (valid keys here: out_dir, steps"),
        ("nonsense: 1\n", [], "unknown key nonsense"),
        ("run: {steps: three}\n", [], "run.steps must be int, got 'three'"),
        ("run: {precision: fp8}\n", [], "run.precision must be one of no, bf16, fp16"),
        ("run: [1, 2]\n", [], "run must be a mapping"),
        ("run: {steps: 0}\n", [], "run.steps must be >= 1"),
        ("data: {stream: {size: 80}}\n", [], "image size 80x80 does not fit a depth-5 generator"),
        ("critic: {norm: batch}\n", [], "WGAN-GP needs per-sample gradients"),
        ("run: {steps: 3\n", [], "not valid YAML at line"),
        ("- a\n- b\n", [], "expected a mapping of sections"),
        ("", ["run.steps"], "expected key.sub=value"),
        ("", ["loss.perceptual_weight=1"], "needs loss.vgg_weights"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(GanmotionError, match=None) as error:
        load_config(GanConfig, path, overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(GanmotionError, match="gone.yaml: config file does not exist"):
        load_config(GanConfig, tmp_path / "gone.yaml")


def test_vanilla_config_has_no_critic():
    with pytest.raises(GanmotionError, match="unknown key critic"):
        load_config(VanillaConfig, None, ["critic.depth=2"])


def config_classes(cls: type, seen: set | None = None) -> set[type]:
    """`cls` and every config dataclass nested in it."""
    seen = set() if seen is None else seen
    seen.add(cls)
    for hint in typing.get_type_hints(cls).values():
        if dataclasses.is_dataclass(hint) and hint not in seen:
            config_classes(hint, seen)
    return seen


def is_numeric(hint) -> bool:
    options = typing.get_args(hint) if typing.get_origin(hint) else (hint,)
    return any(option in (int, float) or typing.get_origin(option) is tuple for option in options)


@pytest.mark.parametrize("root", [GanConfig, VanillaConfig], ids=lambda c: c.__name__)
def test_every_numeric_key_declares_its_range(root):
    for cls in config_classes(root):
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if is_numeric(hints[field.name]):
                assert field_range(field) is not None, f"{cls.__name__}.{field.name}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.stream.batch_size=0", "data.stream.batch_size must be in [1, 4096], got 0"),
        ("run.log_every=0", "run.log_every must be >= 1, got 0"),
        ("data.stream.flip_probability=7", "data.stream.flip_probability must be in [0, 1]"),
        ("loss.gp_weight=-1", "loss.gp_weight must be >= 0, got -1.0"),
        ("critic_optim.betas=[0.5,1.0]", "critic_optim.betas must be in [0, 1), got (0.5, 1.0)"),
        ("generator_optim.lr=.nan", "generator_optim.lr must be in (0, 1], got nan"),
        ("run.ema_decay=1", "run.ema_decay must be in [0, 1), got 1.0"),
        ("data.stream.size=100000", "data.stream.size must be in [16, 4096], got 100000"),
        ("data.workers=-1", "data.workers must be in [0, 64], got -1"),
    ],
)
def test_out_of_range_values_name_the_key_and_the_range(override, message):
    with pytest.raises(GanmotionError) as error:
        load_config(GanConfig, CONFIGS[0].parent / "gan_tiny.yaml", [override])
    assert message in str(error.value), str(error.value)


def test_the_image_size_is_declared_once():
    tiny = CONFIGS[0].parent / "gan_tiny.yaml"
    config = load_config(GanConfig, tiny, ["data.stream.size=128"])
    assert config.generator.size == 128  # taken from the stream
    assert load_config(GanConfig, tiny, ["generator.size=64"]).generator.size == 64  # the same
    with pytest.raises(GanmotionError, match=r"generator.size \(32\) differs from data.stream"):
        load_config(GanConfig, tiny, ["generator.size=32"])
    mlp = load_config(VanillaConfig, CONFIGS[0].parent / "mlp_tiny.yaml", ["data.stream.size=96"])
    assert mlp.mlp.size == 96


def test_a_critic_too_deep_for_the_image_size_is_refused_at_load():
    with pytest.raises(GanmotionError, match="below the minimum 192 of a depth-6 critic"):
        load_config(GanConfig, CONFIGS[0].parent / "gan_tiny.yaml", ["critic.depth=6"])
    tiny = CONFIGS[0].parent / "gan_tiny.yaml"  # 64 px, a depth-2 critic: 12 px at least
    assert load_config(GanConfig, tiny, ["critic.scales=3"]).critic.scales == 3  # 48 px
    with pytest.raises(GanmotionError, match="minimum 96 of a depth-3 critic at 3 scale"):
        load_config(GanConfig, tiny, ["critic.scales=3", "critic.depth=3"])


def test_options_of_another_objective_are_refused():
    vanilla = CONFIGS[0].parent / "vanilla_tiny.yaml"
    with pytest.raises(GanmotionError, match="unknown key loss.gp_weight"):
        load_config(VanillaConfig, vanilla, ["loss.gp_weight=1"])
    with pytest.raises(GanmotionError, match="unknown key loss.adversarial_weight"):
        load_config(VanillaConfig, vanilla, ["loss.adversarial_weight=1"])
    with pytest.raises(GanmotionError, match="generator: set, but model is 'mlp'"):
        load_config(VanillaConfig, CONFIGS[0].parent / "mlp_tiny.yaml", ["generator.depth=3"])
    with pytest.raises(GanmotionError, match="mlp: set, but model is 'unet'"):
        load_config(VanillaConfig, vanilla, ["mlp.hidden=16"])


def test_compose_needs_a_generator_that_draws_an_alpha():
    configs = CONFIGS[0].parent
    blur, no_alpha = ["compose.inside_blur=1"], ["generator.alpha=false", "loss.mask_weight=0"]
    with pytest.raises(GanmotionError, match="inside_blur=1: it blurs the person inside the"):
        load_config(GanConfig, configs / "gan_tiny.yaml", [*no_alpha, *blur])
    with pytest.raises(
        GanmotionError, match="compose.inside_blur: the MLP baseline draws no alpha"
    ):
        load_config(VanillaConfig, configs / "mlp_tiny.yaml", blur)
    config = load_config(GanConfig, configs / "gan_tiny.yaml", ["generator.alpha=true", *blur])
    assert config.compose.inside_blur == 1.0 and config.compose.inside_depth == 6


def test_dry_run_reports_a_bad_value_in_one_line():
    script = Path(__file__).parent.parent / "train" / "gan.py"
    result = subprocess.run(
        [sys.executable, str(script), "--dry-run", "data.stream.batch_size=0"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == "error: config: data.stream.batch_size must be in [1, 4096], got 0\n"
