"""ONNX export, fp16 conversion, the TensorRT command line's checks, and the backends.

TensorRT and a GPU are absent here: engine building and the TensorRT backend are covered up
to the point where they need them (argument checks, the missing-TensorRT error, parser
error formatting).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import STEP, listing, make_checkpoint, save_onnx
from onnx import TensorProto, helper

from ganmotion.errors import GanmotionError
from ganmotion.export import onnx as export_module
from ganmotion.export import tensorrt as trt_module
from ganmotion.export.onnx import (
    PARITY_TOLERANCES,
    MatMulAttention,
    export_checkpoint,
    parity_batches,
    relative_error,
    to_fp16,
)
from ganmotion.models.generator import ComposeConfig, SelfAttention, UNetGenerator
from ganmotion.pose.render import SkeletonStyle
from ganmotion.runtime import OnnxRuntimeBackend, TorchBackend, load_backend
from ganmotion.runtime.contract import check_model_io, has_alpha_output
from ganmotion.runtime.tensorrt import TENSORRT_MISSING
from ganmotion.training import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module", params=[64, 128])
def exported(request, tmp_path_factory) -> tuple[Path, Path, object]:
    """(checkpoint, gen.onnx, summary) for a tiny generator at 64 and at 128 px."""
    root = tmp_path_factory.mktemp(f"export{request.param}")
    checkpoint = make_checkpoint(root / "checkpoints", request.param)
    summary = export_checkpoint(checkpoint, root / "gen.onnx")
    return checkpoint, root / "gen.onnx", summary


@pytest.fixture(scope="module")
def onnx64(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export64")
    checkpoint = make_checkpoint(root / "checkpoints", 64)
    export_checkpoint(checkpoint, root / "gen.onnx")
    return checkpoint, root / "gen.onnx"


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return lines[0]


# ------------------------------------------------------------------------------ export


def test_matmul_attention_computes_what_sdpa_does():
    attention = SelfAttention(64).eval()
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    x = torch.randn(3, 64, 4, 4)
    with torch.no_grad():
        assert torch.allclose(MatMulAttention(attention)(x), attention(x), atol=1e-5)


def test_onnx_matches_pytorch_within_tolerance(exported):
    _, path, summary = exported
    assert summary.parity["noise"] <= PARITY_TOLERANCES["noise"]
    assert summary.parity["skeletons"] <= PARITY_TOLERANCES["skeletons"]
    assert summary.nodes == len(onnx.load(str(path)).graph.node)
    assert path.stat().st_size == summary.bytes
    assert not path.with_name(path.name + ".data").exists()  # weights inside the one file
    onnx.checker.check_model(str(path), full_check=True)


def test_batch_is_dynamic(exported):
    checkpoint, path, _ = exported
    generator = ckpt.load_generator(checkpoint)
    size = generator.config.size
    session = OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"])
    [graph_input] = session.session.get_inputs()
    assert graph_input.name == "skeleton" and isinstance(graph_input.shape[0], str)
    assert graph_input.shape[1:] == [3, size, size]
    for batch in (1, 5):
        skeleton = torch.rand(batch, 3, size, size) * 2 - 1
        with torch.no_grad():
            expected = generator(skeleton)
        actual = session(skeleton)
        assert actual.shape == (batch, 3, size, size)
        assert relative_error(actual.numpy(), expected.numpy()) < 1e-4


def test_sidecar_describes_the_model(exported):
    checkpoint, path, _ = exported
    meta = json.loads(path.with_suffix(".json").read_text())
    state = json.loads((checkpoint / "state.json").read_text())
    size = state["image_size"]
    assert meta["size"] == size and meta["normalisation"] == "[-1, 1]"
    assert meta["skeleton"] == SkeletonStyle.for_size(size).to_dict()
    assert meta["input"] == {"name": "skeleton", "shape": ["N", 3, size, size], "dtype": "float32"}
    assert meta["output"]["name"] == "image"
    assert meta["channels"] == {"in": 3, "out": 3}
    assert meta["architecture"] == state["architecture"]["generator"]
    assert meta["source"]["step"] == STEP
    assert meta["source"]["weights"] == "generator_ema.safetensors"
    assert Path(meta["source"]["checkpoint"]) == checkpoint.resolve()
    assert meta["opset"] == 20 and meta["precision"] == "fp32"
    assert meta["versions"]["ganmotion"]
    assert meta["parity"]["noise"]["max_relative_error"] <= 1e-4
    assert meta["parity"]["skeletons"]["frames"] == 5


def test_the_cli_exports_the_live_generator_with_raw(onnx64, tmp_path, capsys):
    checkpoint, _ = onnx64
    out = tmp_path / "raw.onnx"
    argv = ["--checkpoint", str(checkpoint), "--out", str(out), "--raw"]
    assert export_module.main(argv) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"exported {out}: ") and "nodes" in line and "parity" in line
    assert json.loads(out.with_suffix(".json").read_text())["source"]["weights"] == (
        "generator.safetensors"
    )
    skeleton = parity_batches(SkeletonStyle.for_size(64))[1][1]
    live, ema = ckpt.load_generator(checkpoint, ema=False), ckpt.load_generator(checkpoint)
    actual = OnnxRuntimeBackend(out)(skeleton).numpy()
    with torch.no_grad():
        assert relative_error(actual, live(skeleton).numpy()) < 1e-4
        assert relative_error(actual, ema(skeleton).numpy()) > 1e-2
    assert sorted(listing(tmp_path)) == ["raw.json", "raw.onnx"]


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda c, d: ["--checkpoint", str(d / "none"), "--out", str(d / "g.onnx")], "no such"),
        (lambda c, d: ["--checkpoint", str(d), "--out", str(d / "g.onnx")], "no state.json"),
        (lambda c, d: ["--checkpoint", str(c), "--out", str(d / "x" / "g.onnx")], "does not exist"),
        (lambda c, d: ["--checkpoint", str(c), "--out", str(d / "g.pt")], "must end in .onnx"),
        (
            lambda c, d: ["--checkpoint", str(c), "--out", str(d / "g.onnx"), "--opset", "9"],
            "opset",
        ),
    ],
)
def test_cli_errors_are_one_line(onnx64, tmp_path, capsys, make_args, message):
    checkpoint, _ = onnx64
    assert export_module.main(make_args(checkpoint, tmp_path)) == 1
    assert message in _one_error_line(capsys)
    assert capsys.readouterr().out == ""
    assert listing(tmp_path) == []


def test_parity_failure_leaves_no_output(onnx64, tmp_path, capsys, monkeypatch):
    checkpoint, _ = onnx64
    out = tmp_path / "gen.onnx"
    out.write_bytes(b"an older export")
    run = OnnxRuntimeBackend.run
    monkeypatch.setattr(OnnxRuntimeBackend, "run", lambda self, x: run(self, x) + 1e-3)
    assert export_module.main(["--checkpoint", str(checkpoint), "--out", str(out)]) == 1
    line = _one_error_line(capsys)
    assert f"{out}: ONNX Runtime and PyTorch disagree on noise inputs" in line
    assert listing(tmp_path) == ["gen.onnx"]  # no sidecar, no temporary files
    assert out.read_bytes() == b"an older export"


def test_the_script_exits_non_zero_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "export" / "to_onnx.py"), "--checkpoint", str(tmp_path)]
        + ["--out", str(tmp_path / "gen.onnx")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path}: not a checkpoint folder (no state.json)"
    assert result.stdout == ""


def test_load_generator_rejects_a_folder_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(GanmotionError, match="no state.json"):
        ckpt.load_generator(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps({"architecture": {}}))
    with pytest.raises(GanmotionError, match="no architecture.generator"):
        ckpt.load_generator(tmp_path)


# ------------------------------------------------------------------------------ fp16


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input]}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def test_fp16_onnx_runs_close_to_fp32_with_norms_and_attention_in_fp32(exported, tmp_path):
    pytest.importorskip("onnxconverter_common")
    _, path, _ = exported
    half = to_fp16(onnx.load(str(path)))
    onnx.checker.check_model(half)
    types = _elem_types(half)
    kept = [n for n in half.graph.node if n.op_type in ("InstanceNormalization", "Softmax")]
    kept += [n for n in half.graph.node if n.op_type == "MatMul"]
    assert len(kept) == 9 + 1 + 2  # stem + 4 down + 4 up instance norms; attention: 3 ops
    for node in kept:
        assert all(types[name] == TensorProto.FLOAT for name in node.input if name), node.name
    convs = [n for n in half.graph.node if n.op_type == "Conv"]
    assert all(types[n.input[1]] == TensorProto.FLOAT16 for n in convs)
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT

    onnx.save(half, str(tmp_path / "half.onnx"))
    full = OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"])
    fp16 = OnnxRuntimeBackend(tmp_path / "half.onnx", providers=["CPUExecutionProvider"])
    for _, batch in parity_batches(full.skeleton):
        # fp16 keeps 11 significant bits (~5e-4 per rounding); after ~10 layers the output
        # stays within one 8-bit grey level (2/255) of fp32: 2e-3 here, 4e-3 at 512 px.
        assert relative_error(fp16(batch).numpy(), full(batch).numpy()) < 2 / 255


# ------------------------------------------------------------------------------ to_trt


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--min-batch", "0"], "--min-batch 0: must be >= 1"),
        (["--min-batch", "4", "--opt-batch", "2"], "need --min-batch <= --opt-batch"),
        (["--opt-batch", "64", "--max-batch", "32"], "need --min-batch <= --opt-batch"),
        (["--workspace-gb", "0"], "--workspace-gb 0"),
        (["--timing-cache", "/nonexistent/dir/trt.cache"], "timing cache"),
    ],
)
def test_to_trt_checks_arguments_before_anything_else(onnx64, tmp_path, capsys, extra, message):
    _, path = onnx64
    argv = ["--onnx", str(path), "--out", str(tmp_path / "gen.plan"), *extra]
    assert trt_module.main(argv) == 1
    assert message in _one_error_line(capsys)
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (lambda o, d: ["--onnx", str(d / "none.onnx"), "--out", str(d / "g.plan")], "no such file"),
        (lambda o, d: ["--onnx", str(o), "--out", str(d / "x" / "g.plan")], "does not exist"),
        (lambda o, d: ["--onnx", str(o), "--out", str(d / "g.trt")], ".plan or .engine"),
        (lambda o, d: ["--checkpoint", str(d), "--out", str(d / "g.plan")], "no state.json"),
    ],
)
def test_to_trt_checks_paths(onnx64, tmp_path, capsys, args, message):
    _, path = onnx64
    assert trt_module.main(args(path, tmp_path)) == 1
    assert message in _one_error_line(capsys)


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_to_trt_without_tensorrt_says_how_to_get_it(onnx64, tmp_path):
    _, path = onnx64
    result = subprocess.run(
        [sys.executable, str(ROOT / "export" / "to_trt.py"), "--onnx", str(path)]
        + ["--out", str(tmp_path / "gen.plan")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {TENSORRT_MISSING}"
    assert listing(tmp_path) == []


def test_parser_errors_name_the_failing_node():
    class Error:
        def node(self):
            return 12

        def node_name(self):
            return "node_upsample_bilinear2d"

        def node_operator(self):
            return "Resize"

        def desc(self):
            return "unsupported coordinate transformation"

        def code(self):
            return "UNSUPPORTED_NODE"

    class Parser:
        num_errors = 2

        def get_error(self, index):
            return Error()

    line = trt_module.parser_error(Parser(), Path("gen.onnx"))
    assert line == (
        "gen.onnx: TensorRT cannot parse the ONNX at node 12 'node_upsample_bilinear2d' "
        "(Resize): unsupported coordinate transformation [UNSUPPORTED_NODE] (+1 more errors)"
    )


# ------------------------------------------------------------------------------ backends


def test_torch_and_onnxruntime_backends_agree(onnx64):
    checkpoint, path = onnx64
    torch_backend = load_backend(checkpoint, device="cpu")
    onnx_backend = load_backend(path)
    assert isinstance(torch_backend, TorchBackend) and torch_backend.name == "torch"
    assert isinstance(onnx_backend, OnnxRuntimeBackend) and onnx_backend.name == "onnxruntime"
    assert torch_backend.size == onnx_backend.size == 64
    skeleton = torch.cat([batch for _, batch in parity_batches(torch_backend.skeleton)])
    expected = torch_backend(skeleton)
    actual = onnx_backend(skeleton.double())  # any float dtype goes in; float32 comes out
    assert actual.dtype == expected.dtype == torch.float32
    assert relative_error(actual.numpy(), expected.numpy()) < 1e-4
    for backend in (torch_backend, onnx_backend):
        assert backend(skeleton[:0]).shape == (0, 3, 64, 64)
        with pytest.raises(GanmotionError, match=r"must be \(N, 3, 64, 64\), got \(2, 3, 32, 32\)"):
            backend(torch.zeros(2, 3, 32, 32))


def _onnx_file(path: Path, name: str = "skeleton", shape=("N", 3, 64, 64)) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", [name], ["image"])],
        "not_a_generator",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(shape))],
    )
    return save_onnx(graph, path)


def test_an_onnx_draws_in_its_sidecars_style_and_an_older_one_in_the_defaults(onnx64, tmp_path):
    _, path = onnx64
    copy = tmp_path / "gen.onnx"
    shutil.copy(path, copy)
    assert OnnxRuntimeBackend(copy).skeleton == SkeletonStyle.for_size(64)  # no sidecar
    meta = json.loads(path.with_suffix(".json").read_text())
    older = {k: v for k, v in meta.items() if k != "skeleton"}
    copy.with_suffix(".json").write_text(json.dumps(older))
    assert OnnxRuntimeBackend(copy).skeleton == SkeletonStyle.for_size(64)
    thick = SkeletonStyle.for_size(64, thickness=3)
    copy.with_suffix(".json").write_text(json.dumps({**meta, "skeleton": thick.to_dict()}))
    assert load_backend(copy).skeleton == thick
    wrong = SkeletonStyle.for_size(128).to_dict()
    copy.with_suffix(".json").write_text(json.dumps({**meta, "skeleton": wrong}))
    with pytest.raises(GanmotionError, match=r"gen.json: skeleton: skeletons drawn at 128 px"):
        load_backend(copy)


def test_load_backend_accepts_a_contract_onnx(tmp_path):
    backend = load_backend(_onnx_file(tmp_path / "identity.onnx"))
    skeleton = torch.rand(3, 3, 64, 64)
    assert torch.equal(backend(skeleton), skeleton)


@pytest.mark.parametrize(
    ("make", "backend", "message"),
    [
        (lambda d: d / "gone.onnx", None, "no such file or checkpoint folder"),
        (lambda d: (d / "gen.pt").touch() or d / "gen.pt", None, "unsupported model file"),
        (lambda d: _onnx_file(d / "x.onnx", name="x"), None, "expected one input named"),
        (lambda d: _onnx_file(d / "s.onnx", shape=(1, 3, 64, 64)), None, "dynamic batch"),
        (lambda d: _onnx_file(d / "c.onnx", shape=("N", 1, 64, 64)), None, "(N, 3, S, S)"),
        (lambda d: _onnx_file(d / "r.onnx", shape=("N", 3, 64, 32)), None, "(N, 3, S, S)"),
        (lambda d: (d / "bad.onnx").write_bytes(b"junk") and d / "bad.onnx", None, "cannot load"),
        (lambda d: _onnx_file(d / "g.onnx"), "tensorrt", "build an engine with export/to_trt.py"),
        (lambda d: d, "onnxruntime", "export it with export/to_onnx.py"),
        (lambda d: d, "tflite", "unknown backend 'tflite'"),
    ],
)
def test_load_backend_errors_name_the_file_and_problem(tmp_path, make, backend, message):
    path = make(tmp_path)
    with pytest.raises(GanmotionError, match=None) as raised:
        load_backend(path, backend)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_an_engine_without_tensorrt_is_one_clear_error(tmp_path):
    (tmp_path / "gen.plan").write_bytes(b"\0" * 16)
    with pytest.raises(GanmotionError, match="TensorRT is not installed"):
        load_backend(tmp_path / "gen.plan")


def test_importing_the_runtime_loads_no_inference_engines():
    code = (
        "import sys, ganmotion.runtime\n"
        "print(sorted(m for m in ('tensorrt', 'onnxruntime', 'onnx') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"


def test_relative_error_is_max_difference_over_max_reference():
    expected = np.array([0.5, -1.0, 0.25])
    assert relative_error(expected + [0.0, 0.01, 0.0], expected) == pytest.approx(0.01)
    assert relative_error(expected * 0, expected * 0) == 0.0
    assert np.isnan(relative_error(np.array([np.nan, 0, 0]), expected))


# ------------------------------------------------------------------------------ composition


def alpha_generator(size: int, alpha_bias: float = 0.0) -> UNetGenerator:
    """A tiny U-Net with alpha, whose alpha's logit bias is `alpha_bias` (0: alpha around
    0.5, some person and some plate in every frame; -40: alpha ~ 0, no person)."""
    torch.manual_seed(3)
    model = UNetGenerator(base_channels=4, depth=3, max_channels=16, size=size, alpha=True)
    with torch.no_grad():
        model.attention.gamma.fill_(0.5)  # 0 at init, which would hide the attention
        model.head.bias[-1] = alpha_bias
    return model.eval()


def plate(size: int, seed: int = 0) -> np.ndarray:
    """A background plate, RGB uint8 (size, size, 3): a gradient with noise."""
    ramp = np.linspace(0, 200, size, dtype=np.float32)
    noise = np.random.default_rng(seed).integers(0, 55, (size, size, 3))
    return (ramp[:, None, None] + noise).astype(np.uint8)


def make_alpha_checkpoint(
    root: Path,
    size: int,
    shards: Path | None = None,
    alpha_bias: float = 0.0,
    background: np.ndarray | None = None,
) -> Path:
    """A checkpoint folder of a generator with alpha (live = EMA weights) and its
    background.png (`plate(size)` unless given), as training writes one."""
    folder = make_checkpoint(root, size, shards)
    model = alpha_generator(size, alpha_bias)
    for name in ("generator.safetensors", "generator_ema.safetensors"):
        ckpt.save_weights(model, folder / name)
    state = json.loads((folder / "state.json").read_text())
    state["architecture"]["generator"] = {"class": "UNetGenerator", **asdict(model.config)}
    (folder / "state.json").write_text(json.dumps(state))
    ckpt.save_background(plate(size) if background is None else background,
                         folder / ckpt.BACKGROUND_FILE)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def composed(tmp_path_factory) -> tuple[Path, Path, object]:
    """(checkpoint, gen.onnx, summary) of a 64 px generator with alpha."""
    root = tmp_path_factory.mktemp("composed")
    checkpoint = make_alpha_checkpoint(root / "checkpoints", 64)
    (root / "export").mkdir()
    summary = export_checkpoint(checkpoint, root / "export" / "gen.onnx")
    return checkpoint, root / "export" / "gen.onnx", summary


def test_a_composed_model_exports_image_and_alpha_over_its_baked_plate(composed):
    checkpoint, path, summary = composed
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    outputs = {o.name: o.type.tensor_type for o in model.graph.output}
    assert list(outputs) == ["image", "alpha"]
    for name, channels in (("image", 3), ("alpha", 1)):
        dims = outputs[name].shape.dim
        assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [channels, 64, 64]
        assert outputs[name].elem_type == TensorProto.FLOAT
    # the plate is a constant of the graph, exactly the checkpoint's background.png
    background = ckpt.load_background(checkpoint / ckpt.BACKGROUND_FILE, 64)[None].numpy()
    constants = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer]
    assert any(c.shape == (1, 3, 64, 64) and np.array_equal(c, background) for c in constants)
    # beside it: the sidecar, which says so, and the plate as a PNG of the same pixels
    assert listing(path.parent) == ["gen.background.png", "gen.json", "gen.onnx"]
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["alpha"] is True and meta["background"] == "gen.background.png"
    assert meta["alpha_output"] == {"name": "alpha", "shape": ["N", 1, 64, 64], "dtype": "float32"}
    assert meta["output"]["name"] == "image" and meta["architecture"]["alpha"] is True
    assert meta["architecture"]["class"] == "UNetGenerator"
    png = ckpt.load_background(path.parent / "gen.background.png", 64)[None].numpy()
    assert np.array_equal(png, background)
    assert summary.parity["noise"] <= PARITY_TOLERANCES["noise"]
    assert summary.parity["skeletons"] <= PARITY_TOLERANCES["skeletons"]


def test_a_composed_onnx_matches_pytorch_on_both_outputs(composed):
    checkpoint, path, _ = composed
    generator = ckpt.load_generator(checkpoint)
    backend = load_backend(path)
    assert backend.has_alpha and torch.equal(backend.background, generator.background[0])
    batches = [b for _, b in parity_batches(backend.skeleton)] + [torch.rand(5, 3, 64, 64)]
    for batch in batches:
        with torch.no_grad():
            image, alpha = generator.with_alpha(batch)
        actual_image, actual_alpha = backend.with_alpha(batch)
        assert actual_alpha.shape == (len(batch), 1, 64, 64)
        assert relative_error(actual_image.numpy(), image.numpy()) < 1e-4
        assert export_module.alpha_error(actual_alpha.numpy(), alpha.numpy()) < 1e-4
        assert torch.equal(backend(batch), actual_image)  # the contract: skeleton -> image
    empty_image, empty_alpha = backend.with_alpha(batches[0][:0])
    assert empty_image.shape == (0, 3, 64, 64) and empty_alpha.shape == (0, 1, 64, 64)


def test_the_fp16_copy_of_a_composed_onnx_keeps_both_outputs_close(composed, tmp_path):
    pytest.importorskip("onnxconverter_common")
    _, path, _ = composed
    half = to_fp16(onnx.load(str(path)))
    onnx.checker.check_model(half)
    assert [o.type.tensor_type.elem_type for o in half.graph.output] == [TensorProto.FLOAT] * 2
    onnx.save(half, str(tmp_path / "half.onnx"))
    full = OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"])
    fp16 = OnnxRuntimeBackend(tmp_path / "half.onnx", providers=["CPUExecutionProvider"])
    for _, batch in parity_batches(full.skeleton):
        (image, alpha), (half_image, half_alpha) = full.with_alpha(batch), fp16.with_alpha(batch)
        assert relative_error(half_image.numpy(), image.numpy()) < 2 / 255
        assert export_module.alpha_error(half_alpha.numpy(), alpha.numpy()) < 2 / 255


def test_an_alpha_that_disagrees_fails_the_export_and_leaves_nothing(
    composed, tmp_path, capsys, monkeypatch
):
    checkpoint, _, _ = composed
    run = OnnxRuntimeBackend.run_with_alpha

    def off(self, x):
        image, alpha = run(self, x)
        return image, alpha + 1e-3

    monkeypatch.setattr(OnnxRuntimeBackend, "run_with_alpha", off)
    assert export_module.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "g.onnx")])
    line = _one_error_line(capsys)
    assert "disagree on noise inputs: the alpha: error 1.00e-03 > 1.0e-04" in line
    assert listing(tmp_path) == []


def test_a_plate_of_another_size_is_one_line_and_no_export(tmp_path, capsys):
    checkpoint = make_alpha_checkpoint(tmp_path / "checkpoints", 64, background=plate(32))
    out = tmp_path / "export"
    out.mkdir()
    assert export_module.main(["--checkpoint", str(checkpoint), "--out", str(out / "g.onnx")])
    line = _one_error_line(capsys)
    assert f"{checkpoint / 'background.png'}: the background is 32x32" in line
    assert "draws 64x64" in line and listing(out) == []


def test_a_composed_export_needs_its_background_png_only_where_the_sidecar_names_it(
    composed, tmp_path
):
    _, path, _ = composed
    copy = tmp_path / "gen.onnx"
    shutil.copy(path, copy)
    shutil.copy(path.with_suffix(".json"), copy.with_suffix(".json"))
    with pytest.raises(GanmotionError, match="gen.background.png: missing; gen.json names it"):
        load_backend(copy)
    (tmp_path / "gen.background.png").write_bytes(b"not a png")
    with pytest.raises(GanmotionError, match="gen.background.png: missing or not a readable"):
        load_backend(copy)
    ckpt.save_background(plate(32), tmp_path / "gen.background.png")
    with pytest.raises(GanmotionError, match="the background is 32x32, the generator draws 64"):
        load_backend(copy)
    copy.with_suffix(".json").unlink()  # no sidecar: the alpha still there, the plate unknown
    backend = load_backend(copy)
    assert backend.has_alpha and backend.background is None


def test_the_inside_blur_of_a_checkpoints_config_is_loaded_and_baked_into_the_export(tmp_path):
    checkpoint = make_alpha_checkpoint(tmp_path / "checkpoints", 64)
    as_drawn = ckpt.load_generator(checkpoint)
    assert as_drawn.inside_blur is None  # a checkpoint without compose: as drawn
    state = json.loads((checkpoint / "state.json").read_text())
    state["config"]["compose"] = {"inside_blur": 1.0, "inside_depth": 1}
    (checkpoint / "state.json").write_text(json.dumps(state))
    generator = ckpt.load_generator(checkpoint)
    assert generator.compose_config == ComposeConfig(inside_blur=1.0, inside_depth=1)
    path = tmp_path / "export" / "gen.onnx"
    path.parent.mkdir()
    export_checkpoint(checkpoint, path)
    assert json.loads(path.with_suffix(".json").read_text())["compose"] == {
        "inside_blur": 1.0,
        "inside_depth": 1,
    }
    backend = load_backend(path)
    batches = [b for _, b in parity_batches(backend.skeleton)] + [torch.rand(5, 3, 64, 64)]
    blurred_somewhere = False
    for batch in batches:
        with torch.no_grad():
            image, alpha = generator.with_alpha(batch)
            blurred_somewhere |= not torch.equal(image, as_drawn(batch))
        actual_image, actual_alpha = backend.with_alpha(batch)
        assert relative_error(actual_image.numpy(), image.numpy()) < 1e-4
        assert export_module.alpha_error(actual_alpha.numpy(), alpha.numpy()) < 1e-4
    assert blurred_somewhere  # the parity above compared the blur, not only the plain image
    # --inside-blur overrides the checkpoint's config: 0 exports the person as drawn
    plain = tmp_path / "export" / "plain.onnx"
    assert export_module.main(["--checkpoint", str(checkpoint), "--out", str(plain),
                               "--inside-blur", "0"]) == 0  # fmt: skip
    assert json.loads(plain.with_suffix(".json").read_text())["compose"]["inside_blur"] == 0
    skeletons = batches[0]
    with torch.no_grad():
        expected = as_drawn(skeletons).numpy()
    assert relative_error(load_backend(plain)(skeletons).numpy(), expected) < 1e-4
    # and so does the runner's and eval's torch backend (infer/video.py --inside-blur 0)
    torch_backend = load_backend(checkpoint, torch_options={"compose": ComposeConfig()})
    assert torch.equal(torch_backend(skeletons), torch.from_numpy(expected))
    state["config"]["compose"] = {"inside_blur": "much"}
    (checkpoint / "state.json").write_text(json.dumps(state))
    with pytest.raises(GanmotionError, match=r"state.json: .*compose.inside_blur"):
        ckpt.load_generator(checkpoint)


def test_a_model_without_alpha_has_none_and_says_so(onnx64):
    checkpoint, path = onnx64
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["alpha"] is False and "background" not in meta
    for backend in (load_backend(path), load_backend(checkpoint, device="cpu")):
        assert backend.has_alpha is False and backend.background is None
        with pytest.raises(GanmotionError, match="has no alpha output") as raised:
            backend.with_alpha(torch.zeros(1, 3, 64, 64))
        assert str(raised.value).startswith(str(path if backend.name != "torch" else checkpoint))


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([("image", ["N", 3, 64, 64], "float32"), ("alpha", ["N", 1, 64, 64], "float32")], None),
        ([("alpha", ["N", 1, 64, 64], "float32"), ("image", ["N", 3, 64, 64], "float32")], None),
        ([("image", ["N", 3, 64, 64], "float32"), ("alpha", ["N", 3, 64, 64], "float32")],
         "output 'alpha' has shape (N, 3, 64, 64); expected (N, 1, S, S)"),
        ([("image", ["N", 3, 64, 64], "float32"), ("alpha", ["N", 1, 64, 64], "float16")],
         "'alpha' is float16; expected float32"),
        ([("alpha", ["N", 1, 64, 64], "float32")], "model outputs are 'alpha'"),
        ([("image", ["N", 3, 64, 64], "float32"), ("mask", ["N", 1, 64, 64], "float32")],
         "model outputs are 'image', 'mask'"),
    ],
)  # fmt: skip
def test_the_contract_allows_an_alpha_output_beside_the_image(outputs, message):
    inputs = [("skeleton", ["N", 3, 64, 64], "float32")]
    if message is None:
        assert check_model_io(Path("g.onnx"), inputs, outputs) == 64
        assert has_alpha_output(outputs)
        return
    with pytest.raises(GanmotionError) as raised:
        check_model_io(Path("g.onnx"), inputs, outputs)
    assert message in str(raised.value)


def test_engine_verification_compares_the_alpha_too(composed):
    """verify_engine with ONNX Runtime standing in for the engine (no TensorRT here)."""
    _, path, _ = composed
    reference = OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"])
    config = trt_module.EngineConfig(min_batch=1, opt_batch=2, max_batch=3)
    assert trt_module.verify_engine(reference, reference, config) == 0.0

    class AlphaOff:
        has_alpha = True

        def with_alpha(self, frames):
            image, alpha = reference.with_alpha(frames)
            return image, alpha + 0.02

    with pytest.raises(GanmotionError, match="relative error 2.00e-02 > 1e-02"):
        trt_module.verify_engine(AlphaOff(), reference, config)


def test_parity_batches_for_the_smallest_model_a_config_allows():
    """A training stream may be 16 px; synthetic frames are 32 px at least: the parity
    skeletons are drawn at 32 and scaled down (an export of a 16 px model failed here)."""
    kinds = parity_batches(SkeletonStyle.for_size(16))
    skeletons = kinds[1][1]
    assert skeletons.shape == (4, 3, 16, 16)
    assert all((frame > -1).any() for frame in skeletons)  # a drawn figure in each
