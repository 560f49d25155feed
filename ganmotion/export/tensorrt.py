"""TensorRT engines: build one from the exported ONNX and verify it.

    python export/to_trt.py --onnx gen.onnx --out gen.plan --fp16 --min-batch 1 --opt-batch 8 \
        --max-batch 32 [--workspace-gb 4] [--timing-cache trt.cache]

    gen.plan        the serialized engine: runs only with the TensorRT version and GPU model
                    it was built with
    gen.plan.json   the ONNX sidecar plus the build: TensorRT version, GPU, precision, batch
                    profile, and the verification against ONNX Runtime
    gen.plan.background.png   for a composed model (outputs `image` and `alpha`): a copy of
                    the plate baked into it (gen.background.png), named in gen.plan.json

Precision lives in the ONNX, not in builder flags. TensorRT 10.12 deprecated
BuilderFlag.FP16/BF16/INT8 and TensorRT 11 removed them ("superseded by strong typing"), so
the one path that builds on 10 and 11 alike is: convert the ONNX itself to fp16 (with
InstanceNormalization and the attention MatMul -> Softmax -> MatMul kept in fp32, see
`ganmotion.export.onnx.to_fp16`) and build a network created STRONGLY_TYPED, where every
layer runs in the type the ONNX gives it. BuilderFlag.FP16 is never set: combined with
strong typing it is an error, and without strong typing TensorRT would be free to run the
normalisations and the softmax in fp16, which is where this generator overflows.

The engine runs through `ganmotion.runtime.tensorrt.TensorRTBackend`, which the build also
uses to verify it. TensorRT is imported only inside these functions; without it (or without a
GPU) every entry point fails with one line that says what is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch

from ganmotion.errors import GanmotionError, command_line
from ganmotion.export.onnx import (
    DEFAULT_OPSET,
    alpha_error,
    check_output,
    export_checkpoint,
    parity_batches,
    relative_error,
    to_fp16,
)
from ganmotion.files import atomic_write
from ganmotion.models.generator import INSIDE_BLUR_HELP, ComposeConfig
from ganmotion.runtime.backends import OnnxRuntimeBackend
from ganmotion.runtime.contract import ENGINE_SUFFIXES, INPUT_NAME
from ganmotion.runtime.sidecar import background_path, read_sidecar, sidecar_path
from ganmotion.runtime.tensorrt import TensorRTBackend, import_tensorrt, require_cuda

# fp16 weights and activations, or TF32 convolutions in an fp32 build (TensorRT's default on
# Ampere and newer), carry ~10 mantissa bits: ~1e-3 relative per layer, a few 1e-3 at the
# output. 1e-2 of the [-1, 1] range is just over one 8-bit grey level (2/255 = 7.8e-3).
ENGINE_TOLERANCE = 1e-2


@dataclass(frozen=True)
class EngineConfig:
    """How to build an engine.

    min_batch, opt_batch, max_batch: the optimisation profile over the batch dimension; the
        engine runs any batch in [min_batch, max_batch] and is tuned for opt_batch.
    fp16: build from an fp16 copy of the ONNX (normalisations and attention stay fp32).
    workspace_gb: cap on the scratch memory a layer's tactic may use while building.
    timing_cache: file to read layer timings from and save them to; rebuilds of the same
        network on the same GPU then skip most of the tactic search.
    tolerance: the worst relative error max|trt - onnxruntime| / max|onnxruntime| accepted.
    """

    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32
    fp16: bool = False
    workspace_gb: float = 4.0
    timing_cache: Path | None = None
    tolerance: float = ENGINE_TOLERANCE

    def __post_init__(self) -> None:
        for name in ("min_batch", "opt_batch", "max_batch"):
            if getattr(self, name) < 1:
                raise GanmotionError(
                    f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= 1"
                )
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise GanmotionError(
                f"batch profile {self.min_batch}/{self.opt_batch}/{self.max_batch}: "
                "need --min-batch <= --opt-batch <= --max-batch"
            )
        if not self.workspace_gb > 0:
            raise GanmotionError(f"--workspace-gb {self.workspace_gb}: must be > 0")
        if not self.tolerance > 0:
            raise GanmotionError(f"--tolerance {self.tolerance}: must be > 0")
        if self.timing_cache is not None:
            cache = Path(self.timing_cache)
            if cache.is_dir() or not cache.parent.is_dir():
                raise GanmotionError(
                    f"{cache}: the timing cache must be a file in an existing directory"
                )
        if self.fp16 and importlib.util.find_spec("onnxconverter_common") is None:
            raise GanmotionError(
                "--fp16 needs onnxconverter-common: pip install 'onnxconverter-common>=1.16'"
            )


def parser_error(parser, onnx_path: Path) -> str:
    """The parser's first error as one line naming the failing ONNX node."""
    count = parser.num_errors
    if count == 0:
        return f"{onnx_path}: TensorRT cannot parse the ONNX (no error reported)"
    error = parser.get_error(0)
    where = ""
    if error.node() >= 0:
        name = error.node_name() if hasattr(error, "node_name") else ""
        op = error.node_operator() if hasattr(error, "node_operator") else ""
        where = (
            f" at node {error.node()}" + (f" {name!r}" if name else "") + (f" ({op})" if op else "")
        )
    more = f" (+{count - 1} more errors)" if count > 1 else ""
    return (
        f"{onnx_path}: TensorRT cannot parse the ONNX{where}: {error.desc()} [{error.code()}]{more}"
    )


@dataclass
class EngineSummary:
    path: Path
    precision: str
    config: EngineConfig
    bytes: int
    verify_error: float
    seconds: float

    def line(self) -> str:
        c = self.config
        return (
            f"built {self.path}: {self.precision}, batch {c.min_batch}/{c.opt_batch}/"
            f"{c.max_batch}, {self.bytes / 2**20:.1f} MiB, {self.verify_error:.1e} max relative "
            f"error vs ONNX Runtime (tolerance {c.tolerance:.0e}), {self.seconds:.1f} s"
        )


def check_build_paths(onnx_path: Path | None, out: Path) -> None:
    """One-line errors for an ONNX that is not there and an engine path that cannot be written."""
    if onnx_path is not None:
        if onnx_path.suffix != ".onnx":
            raise GanmotionError(f"{onnx_path}: expected an .onnx file")
        if not onnx_path.is_file():
            raise GanmotionError(f"{onnx_path}: no such file")
    check_output(out, ENGINE_SUFFIXES)


def build_engine(onnx_path: Path, out: Path, config: EngineConfig) -> EngineSummary:
    """Build `out` from the ONNX at `onnx_path`, verify it against ONNX Runtime on the same
    inputs at the min, opt and max batch, and write it (and gen.plan.json) only if it passes.
    """
    import onnx

    start = time.perf_counter()
    onnx_path, out = Path(onnx_path), Path(out)
    check_build_paths(onnx_path, out)
    trt = import_tensorrt()
    require_cuda()
    # The reference: the fp32 ONNX on the CPU (exact fp32; a CUDA provider may use TF32). It
    # also checks the model's inputs and outputs before TensorRT sees it.
    reference = OnnxRuntimeBackend(onnx_path, providers=["CPUExecutionProvider"])
    size = reference.size
    model = onnx.load(str(onnx_path))
    if config.fp16:
        model = to_fp16(model)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    # TensorRT's own normalisation layer, not the deprecated plugin: it runs in the type the
    # ONNX gives it (fp32 here, between Casts). TensorRT 10's default; set so it stays so.
    parser.set_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)
    # `path` tells the parser where external weights would be; ours are inside the model.
    if not parser.parse(model.SerializeToString(), str(onnx_path)):
        raise GanmotionError(parser_error(parser, onnx_path))

    profile = builder.create_optimization_profile()
    shape = (3, size, size)
    profile.set_shape(
        INPUT_NAME,
        (config.min_batch, *shape),
        (config.opt_batch, *shape),
        (config.max_batch, *shape),
    )
    build = builder.create_builder_config()
    build.add_optimization_profile(profile)
    build.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(config.workspace_gb * 2**30))
    cache_path = Path(config.timing_cache) if config.timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = build.create_timing_cache(cache_bytes)
    # ignore_mismatch=False: a cache from another GPU or TensorRT version is refused, not used.
    if not build.set_timing_cache(cache, ignore_mismatch=False):
        raise GanmotionError(f"{cache_path}: timing cache from another GPU or TensorRT version")

    serialized = builder.build_serialized_network(network, build)
    if serialized is None:
        raise GanmotionError(f"{onnx_path}: TensorRT could not build an engine (see its log)")
    engine = bytes(serialized)

    backend = TensorRTBackend(engine, str(out), skeleton=reference.skeleton)
    verify_error = verify_engine(backend, reference, config)

    meta = read_sidecar(onnx_path) or {}
    targets = []
    if meta.get("background") is not None:  # the reference read it: it is there, of its size
        plate = (onnx_path.parent / meta["background"]).read_bytes()
        targets.append((background_path(out), plate))
        meta["background"] = background_path(out).name
    meta.update(
        model=out.name,
        onnx=str(onnx_path.resolve()),
        precision="fp16" if config.fp16 else "fp32",
        engine={
            "tensorrt": trt.__version__,
            "gpu": torch.cuda.get_device_name(backend.device),
            "compute_capability": list(torch.cuda.get_device_capability(backend.device)),
            "strongly_typed": True,
            "profile": {k: getattr(config, k) for k in ("min_batch", "opt_batch", "max_batch")},
            "workspace_gb": config.workspace_gb,
        },
        verification={
            "max_relative_error": verify_error,
            "tolerance": config.tolerance,
            "definition": "max|tensorrt - onnxruntime(fp32 onnx)| / max|onnxruntime|",
        },
    )
    targets += [(out, engine), (sidecar_path(out), (json.dumps(meta, indent=2) + "\n").encode())]
    if cache_path is not None:
        targets.append((cache_path, bytes(build.get_timing_cache().serialize())))
    _write_all(targets)
    seconds = time.perf_counter() - start
    precision = "fp16" if config.fp16 else "fp32"
    return EngineSummary(out, precision, config, len(engine), verify_error, seconds)


def verify_engine(
    backend: TensorRTBackend, reference: OnnxRuntimeBackend, config: EngineConfig
) -> float:
    """Worst relative error of the engine against ONNX Runtime on the export's parity inputs,
    run at the profile's min, opt and max batch (rows repeat the 7 inputs: frames are
    independent, so each row must match its input's reference); with alpha, the worse of
    that and the alpha's `alpha_error`."""
    frames = torch.cat([b for _, b in parity_batches(reference.skeleton)])  # (7, 3, S, S)
    expected = [output.numpy() for output in _outputs(reference, frames)]
    worst = 0.0
    for batch in sorted({config.min_batch, config.opt_batch, config.max_batch}):
        rows = torch.arange(batch) % len(frames)
        outputs = _outputs(backend, frames[rows])
        for measure, actual, wanted in zip((relative_error, alpha_error), outputs, expected):
            error = measure(actual.cpu().numpy(), wanted[rows.numpy()])
            worst = error if not math.isfinite(error) else max(worst, error)
    if not worst <= config.tolerance:
        raise GanmotionError(
            f"the engine differs from ONNX Runtime: relative error {worst:.2e} > "
            f"{config.tolerance:.0e}"
        )
    return worst


def _outputs(backend, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(images,) or, from a model with alpha, (images, alpha)."""
    return backend.with_alpha(frames) if backend.has_alpha else (backend(frames),)


def _write_all(targets: list[tuple[Path, bytes]]) -> None:
    """Write every (path, data) under a temporary name, then rename them all into place, in
    order; after an error, none of them."""
    try:
        with ExitStack() as files:
            for path, data in reversed(targets):  # the last block entered commits first
                files.enter_context(atomic_write(path)).write_bytes(data)
    except OSError as error:
        raise GanmotionError(f"{error.filename}: cannot write ({error.strerror})") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Build a TensorRT engine (strongly typed; fp16 through an fp16 ONNX) with "
        "an optimisation profile over the batch, and verify it against ONNX Runtime.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--onnx", type=Path, help="the exported .onnx (export/to_onnx.py)")
    source.add_argument(
        "--checkpoint", type=Path, help="a checkpoint folder: exported first, to OUT's .onnx"
    )
    parser.add_argument("--out", type=Path, required=True, help="the .plan/.engine to write")
    parser.add_argument("--fp16", action="store_true", help="fp16 engine (norms/attention fp32)")
    parser.add_argument("--min-batch", type=int, default=1)
    parser.add_argument("--opt-batch", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--workspace-gb", type=float, default=4.0)
    parser.add_argument("--timing-cache", type=Path, help="read and update this timing cache")
    parser.add_argument("--tolerance", type=float, default=ENGINE_TOLERANCE)
    parser.add_argument("--raw", action="store_true", help="with --checkpoint: live, not EMA")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="with --checkpoint")
    parser.add_argument("--inside-blur", metavar="SIGMA[@DEPTH]", help=INSIDE_BLUR_HELP)
    return parser


@command_line
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Everything cheap first: arguments, paths, TensorRT and a GPU; then export and build.
    config = EngineConfig(
        args.min_batch, args.opt_batch, args.max_batch, args.fp16, args.workspace_gb,
        args.timing_cache, args.tolerance,
    )  # fmt: skip
    compose = ComposeConfig.parse(args.inside_blur)
    if compose is not None and args.onnx is not None:
        raise GanmotionError(
            f"{args.onnx}: --inside-blur applies to --checkpoint; an exported model keeps "
            "the inside blur it was exported with"
        )
    check_build_paths(args.onnx, args.out)
    if args.checkpoint is not None and not (args.checkpoint / "state.json").is_file():
        raise GanmotionError(f"{args.checkpoint}: not a checkpoint folder (no state.json)")
    import_tensorrt()
    require_cuda()
    onnx_path = args.onnx
    if onnx_path is None:
        onnx_path = args.out.with_suffix(".onnx")
        exported = export_checkpoint(
            args.checkpoint, onnx_path, not args.raw, args.opset, compose=compose
        )
        print(exported.line())
    summary = build_engine(onnx_path, args.out, config)
    print(summary.line())
    return 0
