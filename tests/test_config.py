from pathlib import Path

import pytest

from ganmotion.config import config_to_dict, load_config
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
        ("generator: {size: 100}\n", [], "image size 100x100 does not fit a depth-5 generator"),
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
