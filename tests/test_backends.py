"""TorchBackend's options: each stays within a stated tolerance of plain fp32 eager.

Errors are max|option - fp32 eager| / max|fp32 eager| (`relative_error`, as the ONNX parity
check measures them) on a tiny 64 px generator, for noise and for rendered skeletons.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import DEVICES, make_checkpoint

from ganmotion import precision
from ganmotion.errors import GanmotionError
from ganmotion.export.onnx import parity_batches, relative_error
from ganmotion.models.generator import UNetGenerator
from ganmotion.pose.render import SkeletonStyle
from ganmotion.runtime import TorchBackend
from ganmotion.training.checkpoint import load_generator

SIZE = 64
# fp32 with another memory layout or compiled kernels: a different summation order only.
FP32_TOLERANCE = 1e-4
# bf16 keeps 8 significant bits (~4e-3 per rounding); measured ~2e-2 here after ~10 layers.
BF16_TOLERANCE = 5e-2
# fp16 keeps 11 bits; measured ~2e-3 (on this CPU's slow fp16 path, which the backend refuses).
FP16_TOLERANCE = 1e-2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("backends") / "checkpoints", SIZE)


@pytest.fixture(scope="module")
def batches() -> list[tuple[str, torch.Tensor]]:
    return parity_batches(SkeletonStyle.for_size(SIZE))


def _reference(checkpoint, batches, device: str) -> list[torch.Tensor]:
    backend = TorchBackend.load(checkpoint, device)
    return [backend(batch) for _, batch in batches]


def _worst_error(backend: TorchBackend, batches, expected: list[torch.Tensor]) -> float:
    worst = 0.0
    for (_, batch), reference in zip(batches, expected):
        images = backend(batch)
        assert images.dtype == torch.float32 and images.device == backend.device
        assert images.shape == reference.shape and images.is_contiguous()
        assert images.abs().max() <= 1
        worst = max(worst, relative_error(images.cpu().numpy(), reference.cpu().numpy()))
    return worst


def test_defaults_are_fp32_eager(checkpoint, batches):
    backend = TorchBackend.load(checkpoint, "cpu")
    assert backend.variant == "torch fp32 eager"
    assert backend.forward is backend.generator
    generator = load_generator(checkpoint).eval()
    _, batch = batches[0]
    with torch.no_grad():
        assert torch.equal(backend(batch), generator(batch))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("options", "tolerance"),
    [
        ({"channels_last": True}, FP32_TOLERANCE),
        ({"precision": "bf16"}, BF16_TOLERANCE),
        ({"precision": "bf16", "channels_last": True}, BF16_TOLERANCE),
    ],
    ids=["channels_last", "bf16", "bf16-channels_last"],
)
def test_option_stays_close_to_fp32_eager(checkpoint, batches, device, options, tolerance):
    if device == "cuda" and options.get("precision") == "bf16":
        if not torch.cuda.is_bf16_supported():
            pytest.skip("this GPU has no bf16")
    expected = _reference(checkpoint, batches, device)
    backend = TorchBackend.load(checkpoint, device, **options)
    assert _worst_error(backend, batches, expected) <= tolerance


@pytest.mark.parametrize("device", DEVICES)
def test_fp16_runs_where_supported_and_is_refused_on_cpus_without_it(checkpoint, batches, device):
    if device == "cpu" and not precision.cpu_runs_natively("fp16"):
        with pytest.raises(GanmotionError, match="no native fp16 kernels"):
            TorchBackend.load(checkpoint, device, precision="fp16")
        return
    expected = _reference(checkpoint, batches, device)
    backend = TorchBackend.load(checkpoint, device, precision="fp16")
    assert _worst_error(backend, batches, expected) <= FP16_TOLERANCE


@pytest.mark.parametrize("native", [("bf16",), ()], ids=["bf16-native", "neither-native"])
def test_fp16_on_a_cpu_without_native_kernels_is_refused_naming_what_is_faster(
    checkpoint, monkeypatch, native
):
    monkeypatch.setattr(precision, "cpu_runs_natively", lambda kind: kind in native)
    faster = "bf16" if native else "fp32"  # bf16 emulated is as slow as fp16 emulated
    with pytest.raises(GanmotionError, match=f"no native fp16 kernels.*; use '{faster}'$"):
        TorchBackend.load(checkpoint, "cpu", precision="fp16")


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_native_kernels_runs_with_a_warning(
    checkpoint, batches, monkeypatch, caplog, native
):
    monkeypatch.setattr(precision, "cpu_runs_natively", lambda kind: native)
    backend = TorchBackend.load(checkpoint, "cpu", precision="bf16")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    if native:
        assert warned == []
    else:
        assert warned == [
            "precision 'bf16' on the CPU: this CPU has no native bf16 kernels (AVX-512 or AMX): "
            "a convolution runs 100x or more slower than in fp32; 'fp32' is faster here"
        ]
    assert backend(batches[0][1][:1]).dtype == torch.float32  # runs all the same


@pytest.mark.parametrize("precision", ["fp8", "float16", "FP32", ""])
def test_unknown_precision_is_a_clear_error(checkpoint, precision):
    with pytest.raises(GanmotionError, match="choose one of fp32, bf16, fp16") as error:
        TorchBackend.load(checkpoint, "cpu", precision=precision)
    assert "\n" not in str(error.value)


def test_empty_batch_gives_empty_float32_images(checkpoint):
    backend = TorchBackend.load(checkpoint, "cpu", channels_last=True, precision="bf16")
    images = backend(torch.zeros(0, 3, SIZE, SIZE))
    assert images.shape == (0, 3, SIZE, SIZE) and images.dtype == torch.float32


def test_compile_without_a_cpp_compiler_is_a_clear_error(checkpoint, monkeypatch):
    from torch._inductor import cpp_builder

    def missing() -> str:
        raise RuntimeError("no compiler")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", missing)
    with pytest.raises(GanmotionError, match="needs a C\\+\\+ compiler"):
        TorchBackend.load(checkpoint, "cpu", compile=True)


@pytest.mark.slow
def test_compiled_generator_stays_close_to_fp32_eager():
    try:
        TorchBackend.check_compiler(torch.device("cpu"))
    except GanmotionError as error:
        pytest.skip(str(error))
    # A smaller U-Net than the checkpoint's: compile time grows with the number of layers.
    torch.manual_seed(0)
    generator = UNetGenerator(size=32, base_channels=4, depth=2, max_channels=8).eval()
    with torch.no_grad():
        generator.attention.gamma.fill_(0.5)
    batches = [torch.rand(n, 3, 32, 32) * 2 - 1 for n in (2, 3)]
    eager = TorchBackend(copy.deepcopy(generator), "cpu")
    backend = TorchBackend(generator, "cpu", compile=True, channels_last=True)
    assert backend.variant == "torch fp32 channels_last compiled"
    # The second batch size compiles once more, with the batch dimension dynamic.
    for batch in batches:
        images = backend(batch)
        assert images.dtype == torch.float32 and images.is_contiguous()
        assert relative_error(images.numpy(), eager(batch).numpy()) <= FP32_TOLERANCE


def test_a_compile_mode_is_named_and_an_unknown_one_is_refused(checkpoint):
    assert TorchBackend.check_compile_mode(True) == "default"
    assert TorchBackend.check_compile_mode(False) is None
    assert TorchBackend.check_compile_mode("max-autotune") == "max-autotune"
    with pytest.raises(GanmotionError, match="compile mode 'fast': choose one of default, "):
        TorchBackend.load(checkpoint, "cpu", compile="fast")


def test_load_backend_passes_torch_options_to_a_checkpoint(checkpoint):
    from ganmotion.runtime import load_backend

    options = {"precision": "bf16", "channels_last": True, "compile": False}
    backend = load_backend(checkpoint, device="cpu", torch_options=options)
    assert backend.variant == "torch bf16 channels_last eager"
    default = {"precision": None, "channels_last": False, "compile": False}  # the CLI's defaults
    assert load_backend(checkpoint, device="cpu", torch_options=default).variant == (
        "torch fp32 eager"
    )


def test_torch_options_for_an_exported_model_are_refused(tmp_path):
    from ganmotion.runtime import load_backend

    onnx = tmp_path / "gen.onnx"
    onnx.write_bytes(b"")  # refused before it is read
    with pytest.raises(GanmotionError, match="precision only apply to the torch backend"):
        load_backend(onnx, torch_options={"precision": "bf16"})


# ----------------------------------------------------------------- skeleton style


def _edit_state(checkpoint, **changes):
    import json

    state = json.loads((checkpoint / "state.json").read_text())
    state.update(changes)
    (checkpoint / "state.json").write_text(json.dumps(state))


def test_a_checkpoint_draws_in_the_style_its_state_names(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "checkpoints", SIZE)
    _edit_state(checkpoint, skeleton=SkeletonStyle.for_size(SIZE, thickness=3).to_dict())
    assert load_generator(checkpoint).skeleton == SkeletonStyle(SIZE, 3, 4)
    assert TorchBackend.load(checkpoint, "cpu").skeleton == SkeletonStyle(SIZE, 3, 4)


def test_an_older_checkpoint_without_a_style_draws_as_its_training_config_did(
    checkpoint, tmp_path, caplog
):
    # make_checkpoint writes what runs wrote before styles were saved: no skeleton entry
    assert TorchBackend.load(checkpoint, "cpu").skeleton == SkeletonStyle.for_size(SIZE)
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    older = make_checkpoint(tmp_path / "checkpoints", SIZE)
    _edit_state(older, config={"data": {"stream": {"size": SIZE, "line_thickness": 3}}})
    assert load_generator(older).skeleton == SkeletonStyle.for_size(SIZE, thickness=3)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (SkeletonStyle.for_size(128).to_dict(), "skeletons drawn at 128 px for a model of 64 px"),
        ({"size": SIZE, "thickness": 0, "joint_radius": 1, "colours": 1}, "thickness must be"),
    ],
)
def test_a_bad_style_in_state_json_is_one_line_naming_the_file(tmp_path, entry, message):
    checkpoint = make_checkpoint(tmp_path / "checkpoints", SIZE)
    _edit_state(checkpoint, skeleton=entry)
    with pytest.raises(GanmotionError, match="state.json: skeleton: ") as raised:
        load_generator(checkpoint)
    assert message in str(raised.value) and "\n" not in str(raised.value)


# ----------------------------------------------------------------- alpha


def test_a_composed_checkpoint_gives_its_images_and_alpha(tmp_path, batches):
    from test_export import make_alpha_checkpoint

    from ganmotion.training.checkpoint import BACKGROUND_FILE, load_background

    checkpoint = make_alpha_checkpoint(tmp_path / "checkpoints", SIZE)
    backend = TorchBackend.load(checkpoint, "cpu")
    assert backend.has_alpha
    assert torch.equal(backend.background, load_background(checkpoint / BACKGROUND_FILE, SIZE))
    generator = load_generator(checkpoint)
    for _, batch in batches:
        images, alpha = backend.with_alpha(batch)
        assert images.shape == (len(batch), 3, SIZE, SIZE) and alpha.shape == (
            len(batch),
            1,
            SIZE,
            SIZE,
        )
        assert images.dtype == alpha.dtype == torch.float32
        assert 0 <= alpha.min() and alpha.max() <= 1
        with torch.no_grad():
            expected_images, expected_alpha = generator.with_alpha(batch)
        assert torch.equal(images, expected_images) and torch.equal(alpha, expected_alpha)
        assert torch.equal(backend(batch), images)  # skeleton -> image, as any generator
    images, alpha = backend.with_alpha(torch.zeros(0, 3, SIZE, SIZE))
    assert images.shape == (0, 3, SIZE, SIZE) and alpha.shape == (0, 1, SIZE, SIZE)
    # the options run the alpha too, within their tolerance
    bf16 = TorchBackend.load(checkpoint, "cpu", precision="bf16", channels_last=True)
    _, batch = batches[1]
    images, alpha = bf16.with_alpha(batch)
    assert images.dtype == alpha.dtype == torch.float32 and alpha.is_contiguous()
    assert relative_error(alpha.numpy(), backend.with_alpha(batch)[1].numpy()) <= BF16_TOLERANCE


def test_a_checkpoint_without_alpha_has_none(checkpoint):
    backend = TorchBackend.load(checkpoint, "cpu")
    assert backend.has_alpha is False and backend.background is None
    with pytest.raises(GanmotionError, match=f"{checkpoint}: the model has no alpha output"):
        backend.with_alpha(torch.zeros(1, 3, SIZE, SIZE))
