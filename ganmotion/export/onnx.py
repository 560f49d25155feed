"""Export a checkpoint's generator to ONNX, and prove the file computes what PyTorch does.

    python export/to_onnx.py --checkpoint runs/gan/checkpoints/step-002000 --out gen.onnx

    gen.onnx   input `skeleton` (N, 3, S, S) float32 in [-1, 1] -> output `image` (N, 3, S, S)
               float32 in [-1, 1]; N is dynamic, S is the generator's size
    gen.json   the sidecar: size, normalisation, skeleton style, channels, architecture,
               source checkpoint and step, opset, parity result, versions

A generator with alpha (its checkpoint loads as a `ComposedGenerator`) keeps that contract:
its plate is baked into gen.onnx as a constant, so `image` is the person composed over it,
and a second output `alpha` (N, 1, S, S) in [0, 1] says where the person is. Beside it:

    gen.background.png   the baked plate, lossless (the constant is exactly its pixels), which
                         puts the person on another background (`ganmotion.runtime.background`);
                         the sidecar names it ("background") and has "alpha": true and
                         "compose", how the person is laid down (its inside blur is in
                         the graph too)

Parity: ONNX Runtime (CPU) and PyTorch (CPU, fp32) run the same batches, uniform noise
(batch 2) and skeletons drawn from synthetic poses in the model's skeleton style (batches 4
and 1). The relative error max|onnx - torch| / max|torch| must stay under 1e-4 on noise and
under one 8-bit grey level (2/255) on skeletons (why: `PARITY_TOLERANCES`), and so must the
alpha's max|onnx - torch| (its range is [0, 1]: the same units), or the export fails and
leaves nothing at --out (files are written under temporary names and renamed at the end).

The weights go inside the .onnx (no .onnx.data sidecar): the default generator is 22 MiB at 512 px,
far below protobuf's 2 GiB cap, and one file is one thing to copy and rename atomically.
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganmotion.errors import GanmotionError, command_line
from ganmotion.files import atomic_write, check_writable
from ganmotion.images import to_uint8_images, to_unit_range
from ganmotion.models.generator import (
    INSIDE_BLUR_HELP,
    ComposeConfig,
    ComposedGenerator,
    SelfAttention,
    UNetGenerator,
    render_skeletons,
)
from ganmotion.pose.render import SkeletonStyle
from ganmotion.runtime.backends import OnnxRuntimeBackend
from ganmotion.runtime.contract import ALPHA_NAME, INPUT_NAME, OUTPUT_NAME
from ganmotion.runtime.sidecar import background_path, sidecar_path
from ganmotion.runtime.target import checkpoint_target
from ganmotion.training.checkpoint import (
    checkpoint_folder,
    load_generator,
    read_state,
    save_background,
)

DEFAULT_OPSET = 20
# The opsets torch 2.14's exporter writes itself; outside them it calls a version converter
# that fails quietly (asked for 17 it leaves 18) or prints pages to the console.
MIN_OPSET, MAX_OPSET = 18, 24
# Parity tolerances on max|onnx - torch| / max|torch|, by kind of input.
PARITY_TOLERANCES = {
    # Noise keeps every layer well conditioned: the runtimes agree to ~4e-6 here at 64-512 px,
    # so any op translated differently shows.
    "noise": 1e-4,
    # Skeletons are mostly flat background, so each instance norm averages S*S nearly equal
    # values; ONNX Runtime's CPU kernel accumulates them in fp32 and is ~2e-4 off at the first
    # norm of a 512 px frame where PyTorch is 1e-7 off. By the output that is 1-3e-3 at 512 px
    # (3e-4 at 256, 1e-5 at 64), measured with random weights. Bound: one 8-bit grey level.
    "skeletons": 2 / 255,
}
SIDECAR_FORMAT = 1
# Stay clear of protobuf's 2 GiB message limit; beyond it ONNX needs external data files.
MAX_SINGLE_FILE_BYTES = 1 << 30

# Ops the fp16 conversion keeps in fp32, on top of onnxconverter-common's own list (which
# holds Resize: its `scales` input must stay float32 by the ONNX spec). Instance/group norm
# reduce over all H*W positions: an fp16 sum of squares over a 512x512 map overflows 65504.
# The attention's MatMul -> Softmax -> MatMul holds logits over all bottleneck positions,
# which fp16 overflows as they grow (SAGAN has no 1/sqrt(d) scale; ours has one, which helps
# but bounds nothing).
FP32_OPS = (
    "InstanceNormalization",
    "GroupNormalization",
    "LayerNormalization",
    "MatMul",
    "Softmax",
)


class MatMulAttention(nn.Module):
    """`SelfAttention` with the attention written out as MatMul -> Softmax -> MatMul.

    torch 2.14's ONNX exporter translates scaled_dot_product_attention only for 4D inputs,
    and the generator's are (N, HW, C); explicit ops also let the fp16 conversion keep just
    this chain in fp32. Same parameters and the same maths (softmax(q k^T / sqrt(d)) v),
    equal to the original up to float rounding; the parity check compares with the original.
    """

    def __init__(self, attention: SelfAttention):
        super().__init__()
        self.query, self.key, self.value = attention.query, attention.key, attention.value
        self.gamma = attention.gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (N, HW, C/8)
        k = self.key(x).flatten(2)  # (N, C/8, HW)
        v = self.value(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        # Scale q before the product so that MatMul -> Softmax -> MatMul stays one chain.
        q = q * (1.0 / math.sqrt(q.shape[-1]))
        weights = F.softmax(q @ k, dim=-1)  # (N, HW, HW)
        out = (weights @ v).transpose(1, 2).reshape(n, c, h, w)
        return self.gamma * out + x


class ComposedOutputs(nn.Module):
    """A `ComposedGenerator` with both its outputs: skeleton (N, 3, S, S) -> (image (N, 3, S, S)
    over its background, alpha (N, 1, S, S)), what its ONNX computes. The background is a
    buffer, which the exporter writes as a constant (an initializer) of the graph."""

    def __init__(self, composed: ComposedGenerator):
        super().__init__()
        self.composed = composed

    def forward(self, skeleton: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.composed.with_alpha(skeleton)


def exportable(generator: UNetGenerator | ComposedGenerator) -> nn.Module:
    """An eval-mode copy of `generator` on the CPU with every SelfAttention as MatMulAttention;
    a composed one returns (image, alpha) (`ComposedOutputs`)."""
    model = copy.deepcopy(generator).eval().cpu().float()
    for name, module in list(model.named_modules()):
        if isinstance(module, SelfAttention):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, MatMulAttention(module))
    return ComposedOutputs(model) if isinstance(model, ComposedGenerator) else model


def output_names(generator: UNetGenerator | ComposedGenerator) -> list[str]:
    """The ONNX outputs of `generator`: `image`, and `alpha` for a composed one."""
    return [OUTPUT_NAME, ALPHA_NAME] if isinstance(generator, ComposedGenerator) else [OUTPUT_NAME]


def export_onnx(
    generator: UNetGenerator | ComposedGenerator, path: Path, opset: int = DEFAULT_OPSET
):
    """Write `generator` as ONNX to `path` (one file, dynamic batch) and return the ModelProto.

    Input `skeleton` (N, in, S, S), output `image` (N, out, S, S), S = generator.config.size;
    a composed generator also `alpha` (N, 1, S, S), its background a constant in the graph.
    """
    import onnx

    config = generator.config
    model = exportable(generator)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    if weight_bytes > MAX_SINGLE_FILE_BYTES:
        raise GanmotionError(
            f"{path}: the generator holds {weight_bytes / 2**30:.1f} GiB of weights; "
            "one-file ONNX export stops at 1 GiB"
        )
    # An example batch of 2: the exporter specialises a dimension it sees as 0 or 1.
    example = torch.zeros(2, config.in_channels, config.size, config.size)
    batch = torch.export.Dim("batch", min=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (example,),
                input_names=[INPUT_NAME],
                output_names=output_names(generator),
                opset_version=opset,
                dynamo=True,
                dynamic_shapes={INPUT_NAME: {0: batch}},
                external_data=False,
                verbose=False,
            )
    except Exception as error:  # the exporter raises many types, with pages of detail
        raise GanmotionError(
            f"{path}: ONNX export failed ({type(error).__name__}: {_first_line(error)})"
        ) from None
    proto = program.model_proto
    written = {o.domain: o.version for o in proto.opset_import}.get("", 0)
    if written != opset:
        raise GanmotionError(f"{path}: asked for opset {opset}, the exporter wrote {written}")
    proto.doc_string = "ganmotion generator: skeleton (N, 3, S, S) in [-1, 1] -> image in [-1, 1]"
    if isinstance(generator, ComposedGenerator):
        proto.doc_string += " composed over the baked background, and alpha (N, 1, S, S) in [0, 1]"
    onnx.save_model(proto, str(path))
    return proto


def check_onnx(path: Path) -> None:
    """Run the ONNX checker with full type/shape inference; a GanmotionError if it objects."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise GanmotionError(
            f"{path}: the ONNX checker rejects it ({_first_line(error)})"
        ) from None


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max|actual - expected| / max|expected|: the worst error in units of the output's range.

    The outputs are images in [-1, 1], so max|expected| is close to 1 and this reads as the
    worst pixel error as a fraction of full scale. NaN anywhere gives NaN (fails any check).
    """
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise GanmotionError(f"output shapes differ: {actual.shape} vs {expected.shape}")
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-12)
    return float(np.abs(actual - expected).max(initial=0.0) / scale)


def alpha_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max|actual - expected| of alphas in [0, 1]: the worst error in units of the range, as
    `relative_error` is for images. Not relative to max|expected|: an alpha near 0 everywhere
    (a frame with no person) would turn float noise into large ratios. NaN gives NaN."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise GanmotionError(f"alpha shapes differ: {actual.shape} vs {expected.shape}")
    return float(np.abs(actual - expected).max(initial=0.0))


def parity_batches(skeleton: SkeletonStyle, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """(kind, batch) pairs that check an export: "noise" (2, 3, S, S) uniform in [-1, 1], and
    "skeletons" (4, 3, S, S) drawn in `skeleton` from synthetic poses plus one of them alone
    (batch 1); S = skeleton.size."""
    from ganmotion.data.synthetic import MIN_SIZE, Motion, pose_at

    size = skeleton.size
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(2, 3, size, size, generator=generator) * 2 - 1
    drawn = max(size, MIN_SIZE)  # a model may be smaller (16 px) than a synthetic frame
    poses = np.stack(
        [pose_at(Motion.from_seed(seed + i), 1.3 * i, drawn) for i in range(4)]
    )  # (4, 33, 3) pixels
    poses[..., :2] *= size / drawn
    skeletons = render_skeletons(poses, skeleton)
    return [("noise", noise), ("skeletons", skeletons), ("skeletons", skeletons[:1].clone())]


def check_parity(
    path: Path,
    generator: UNetGenerator | ComposedGenerator,
    batches: list[tuple[str, torch.Tensor]],
    tolerances: dict[str, float] = PARITY_TOLERANCES,
) -> dict[str, float]:
    """The worst error of ONNX Runtime (CPU) against `generator` (CPU, fp32) for each kind of
    batch: `relative_error` of the image, and for a composed generator the worse of that and
    `alpha_error`; a GanmotionError naming the output if one exceeds its tolerance or is not
    finite."""
    session = OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"])
    reference = copy.deepcopy(generator).eval().cpu().float()  # leave the caller's as it is
    worst: dict[str, float] = {}
    culprit: dict[str, str] = {}  # which output the worst error is of
    for kind, batch in batches:
        for output, error in _output_errors(session, reference, batch):
            before = worst.get(kind, 0.0)
            if math.isfinite(before) and not error <= before:  # larger, or NaN (which stays)
                worst[kind], culprit[kind] = error, output
            worst.setdefault(kind, error)
    for kind, error in worst.items():
        if not error <= tolerances[kind]:
            if culprit.get(kind) == ALPHA_NAME:
                what, definition = "the alpha: error", "max|onnx - torch|, alpha in [0, 1]"
            else:
                what, definition = "relative error", "max|onnx - torch| / max|torch|"
            raise GanmotionError(
                f"{path}: ONNX Runtime and PyTorch disagree on {kind} inputs: {what} "
                f"{error:.2e} > {tolerances[kind]:.1e} ({definition})"
            )
    return worst


def _output_errors(session: OnnxRuntimeBackend, reference: nn.Module, batch: torch.Tensor):
    """(output name, error) of each output of the ONNX against `reference` on one batch."""
    if not isinstance(reference, ComposedGenerator):
        with torch.inference_mode():
            expected = reference(batch).numpy()
        yield OUTPUT_NAME, relative_error(session(batch).numpy(), expected)
        return
    with torch.inference_mode():
        image, alpha = reference.with_alpha(batch)
    actual_image, actual_alpha = session.with_alpha(batch)
    yield OUTPUT_NAME, relative_error(actual_image.numpy(), image.numpy())
    yield ALPHA_NAME, alpha_error(actual_alpha.numpy(), alpha.numpy())


def to_fp16(model):
    """An fp16 copy of an fp32 ONNX ModelProto for strongly typed TensorRT builds.

    Inputs and outputs stay float32 (Casts at the edges), and `FP32_OPS` plus
    onnxconverter-common's default block list stay float32 inside, with Casts around them.
    """
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError:
        raise GanmotionError(
            "fp16 conversion needs onnxconverter-common: pip install 'onnxconverter-common>=1.16'"
        ) from None
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    _outputs_read_by_no_node(copied.graph)
    with warnings.catch_warnings():
        # Weights below fp16's smallest subnormal (6e-8) are flushed; it warns for each one.
        warnings.simplefilter("ignore")
        return float16.convert_float_to_float16(
            copied,
            keep_io_types=True,
            op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *FP32_OPS],
        )


def _outputs_read_by_no_node(graph) -> None:
    """Give each graph output that nodes also read (a composed model's `alpha`, which the
    composition uses) an Identity of its own. The fp16 conversion casts a graph output back
    to float32 under its own name, so the nodes reading it would get float32 beside float16
    inputs, which ONNX Runtime and TensorRT refuse."""
    from onnx import helper

    read = {name for node in graph.node for name in node.input}
    for output in graph.output:
        if output.name not in read:
            continue
        name, inner = output.name, f"{output.name}_internal"
        for node in graph.node:
            node.input[:] = [inner if i == name else i for i in node.input]
            node.output[:] = [inner if o == name else o for o in node.output]
        for info in graph.value_info:
            if info.name == name:
                info.name = inner
        graph.node.append(helper.make_node("Identity", [inner], [name], name=f"{name}_output"))


def versions() -> dict:
    import onnx
    import onnxruntime

    try:
        ganmotion = importlib.metadata.version("ganmotion")
    except importlib.metadata.PackageNotFoundError:
        ganmotion = "unknown"
    return {
        "ganmotion": ganmotion,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def check_output(out: Path, suffixes: tuple[str, ...]) -> None:
    """A one-line error unless `out` has one of `suffixes` and can be written, with its
    sidecar beside it (before any work: an export takes seconds, an engine build minutes)."""
    if out.suffix not in suffixes:
        raise GanmotionError(f"{out}: the output must end in {' or '.join(suffixes)}")
    if not out.parent.is_dir():
        raise GanmotionError(f"{out}: directory {out.parent} does not exist")
    check_writable(out)
    check_writable(sidecar_path(out))


def check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise GanmotionError(f"--opset {opset}: must be between {MIN_OPSET} and {MAX_OPSET}")


@dataclass
class ExportSummary:
    path: Path
    nodes: int
    bytes: int
    opset: int
    parity: dict[str, float]  # worst relative error by kind of input
    tolerances: dict[str, float]
    seconds: float

    def line(self) -> str:
        parity = ", ".join(
            f"{error:.1e} on {kind} (tolerance {self.tolerances[kind]:.1e})"
            for kind, error in self.parity.items()
        )
        return (
            f"exported {self.path}: {self.nodes} nodes, {self.bytes / 2**20:.1f} MiB, "
            f"opset {self.opset}, parity max|onnx - torch| / max|torch| {parity}, "
            f"{self.seconds:.1f} s"
        )


def export_generator(
    generator: UNetGenerator | ComposedGenerator,
    out: Path,
    source: dict | None = None,
    normalisation: str = "[-1, 1]",
    opset: int = DEFAULT_OPSET,
    tolerances: dict[str, float] = PARITY_TOLERANCES,
    target: dict | None = None,
) -> ExportSummary:
    """Export, check and parity-test `generator`; write `out` and its sidecar (and a composed
    generator's background PNG) only if all pass.

    `source` (checkpoint, step, weights) goes into the sidecar as it is, and so does `target`
    (the training shards' body measurements, which the video runner retargets to), and the
    generator's skeleton style (`generator.skeleton`), which whatever runs the file draws in.
    """
    start = time.perf_counter()
    out = Path(out)
    check_output(out, (".onnx",))
    check_opset(opset)
    config = generator.config
    if config.in_channels != 3:
        raise GanmotionError(
            f"generator takes {config.in_channels} input channels; skeleton images have 3"
        )
    generator.skeleton.check_size(config.size, f"{out}: the generator's skeleton style")
    composed = isinstance(generator, ComposedGenerator)
    plate = background_pixels(generator, out) if composed else None
    sidecar = sidecar_path(out)
    tmp = out  # the temporary name, once there is one (errors name `out` instead)
    try:
        # The inner blocks commit first: the background, the ONNX, then the sidecar that
        # names them, so a sidecar is never there without its files.
        with (
            atomic_write(sidecar) as tmp_sidecar,
            atomic_write(out) as tmp,
            atomic_write(background_path(out)) if composed else nullcontext() as tmp_plate,
        ):
            if composed:
                save_background(plate, tmp_plate)
            proto = export_onnx(generator, tmp, opset)
            check_onnx(tmp)
            batches = parity_batches(generator.skeleton)
            parity = check_parity(tmp, generator, batches, tolerances)
            size = config.size
            unet = generator.generator if composed else generator
            meta = {
                "format": SIDECAR_FORMAT,
                "model": out.name,
                "input": {"name": INPUT_NAME, "shape": ["N", 3, size, size], "dtype": "float32"},
                "output": {
                    "name": OUTPUT_NAME,
                    "shape": ["N", config.out_channels, size, size],
                    "dtype": "float32",
                },
                "size": size,
                "normalisation": normalisation,
                "skeleton": generator.skeleton.to_dict(),
                "channels": {"in": config.in_channels, "out": config.out_channels},
                "alpha": composed,
                "architecture": {"class": type(unet).__name__, **asdict(config)},
                **({"compose": asdict(generator.compose_config)} if composed else {}),
                "source": source or {},
                **({"target": target} if target is not None else {}),
                "opset": opset,
                "precision": "fp32",
                "parity": {
                    "definition": "max|onnxruntime - torch| / max|torch| per batch, CPU, fp32"
                    + (", and the alpha's max|onnxruntime - torch| if worse" if composed else ""),
                    **{
                        kind: {
                            "max_relative_error": error,
                            "tolerance": tolerances[kind],
                            "frames": sum(len(b) for k, b in batches if k == kind),
                        }
                        for kind, error in parity.items()
                    },
                },
                "versions": versions(),
            }
            if composed:  # the second output, and the file that holds the baked plate
                alpha = {"name": ALPHA_NAME, "shape": ["N", 1, size, size], "dtype": "float32"}
                meta.update(alpha_output=alpha, background=background_path(out).name)
            tmp_sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    except OSError as error:
        raise GanmotionError(f"{out}: cannot write ({error})") from None
    except GanmotionError as error:  # name the file the user asked for, not the temporary one
        raise GanmotionError(str(error).replace(str(tmp), str(out))) from None
    nodes, size_bytes = len(proto.graph.node), out.stat().st_size
    seconds = time.perf_counter() - start
    return ExportSummary(out, nodes, size_bytes, opset, parity, tolerances, seconds)


def background_pixels(generator: ComposedGenerator, out: Path) -> np.ndarray:
    """A composed generator's background as RGB uint8 (S, S, 3), the PNG written beside its
    export; an error unless those 8-bit levels are exactly the float background baked into
    the model (a checkpoint's background.png always is), so that the runner, which reads the
    PNG, subtracts exactly the constant the model adds."""
    background = generator.background.detach().float().cpu()  # (1, 3, S, S)
    pixels = to_uint8_images(background)[0]
    if not torch.equal(to_unit_range(torch.from_numpy(pixels).permute(2, 0, 1)), background[0]):
        raise GanmotionError(
            f"{out}: the composed generator's background is not an 8-bit image in [-1, 1] "
            "(to_unit_range of uint8 pixels): its PNG beside the export would differ from the "
            "baked constant"
        )
    return pixels


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    ema: bool = True,
    opset: int = DEFAULT_OPSET,
    tolerances: dict[str, float] = PARITY_TOLERANCES,
    compose: ComposeConfig | None = None,
) -> ExportSummary:
    """Export the (EMA, or with ema=False the live) generator of a checkpoint folder (or of
    a run folder's newest checkpoint); with alpha, composed over its background.png as
    `compose` says (default: as its training config's compose section says)."""
    checkpoint, out = checkpoint_folder(checkpoint), Path(out)
    check_output(out, (".onnx",))  # before loading anything
    check_opset(opset)
    generator = load_generator(checkpoint, ema=ema, compose=compose)
    if not isinstance(generator, (UNetGenerator, ComposedGenerator)):  # the seed's MLP
        raise GanmotionError(
            f"{checkpoint}: the MLP baseline is not exported; run it from the checkpoint"
        )
    state = read_state(checkpoint)
    source = {
        "checkpoint": str(checkpoint.resolve()),
        "step": state.get("step"),
        "weights": "generator_ema.safetensors" if ema else "generator.safetensors",
    }
    normalisation = state.get("normalisation", "[-1, 1]")
    target = checkpoint_target(checkpoint)
    return export_generator(generator, out, source, normalisation, opset, tolerances, target)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Export a checkpoint's generator to ONNX (dynamic batch) and check parity "
        "with PyTorch; writes OUT and its JSON sidecar (OUT with .json).",
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint folder")
    parser.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument(
        "--raw", action="store_true", help="export the live generator, not the EMA one"
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (20)")
    parser.add_argument("--inside-blur", metavar="SIGMA[@DEPTH]", help=INSIDE_BLUR_HELP)
    return parser


@command_line
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    compose = ComposeConfig.parse(args.inside_blur)
    summary = export_checkpoint(
        args.checkpoint, args.out, ema=not args.raw, opset=args.opset, compose=compose
    )
    print(summary.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
