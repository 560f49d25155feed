"""Backends: one way to run a generator, whatever it was saved as.

    backend = load_backend("gen.onnx")          # a checkpoint folder, gen.onnx or gen.plan
    images = backend(skeletons)                 # (N, 3, S, S) in [-1, 1] -> (N, 3, S, S) in [-1, 1]
    backend.name, backend.size, backend.device  # "onnxruntime", S, where the images come back
    backend.skeleton.render(keypoints)          # the model's input for a pose, as trained

Every backend takes a float tensor on any device and returns float32 images on its own
`device`, so the video pipeline and the benchmarks never branch on the backend. The model
files follow the exported-model contract: one input `skeleton` (N, 3, S, S) float32 with a
dynamic N, one output `image`. Each backend knows how its model's skeletons are drawn
(`skeleton`, a SkeletonStyle): from the checkpoint's state.json or the exported model's
sidecar, so that whatever runs a model feeds it the skeletons it was trained on.

A composed model (a checkpoint of a generator with alpha, or its export with the second
output `alpha`) gives the same images, and more:

    backend.has_alpha                               # True
    images, alpha = backend.with_alpha(skeletons)   # alpha (N, 1, S, S) in [0, 1]
    backend.background                              # the plate it composes over, (3, S, S)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ganmotion.errors import GanmotionError, one_line
from ganmotion.models.generator import ComposeConfig, ComposedGenerator
from ganmotion.precision import emulated_on_cpu, fastest_cpu_precision
from ganmotion.runtime.baselines import KEYWORDS, KeypointBackend, load_mean, load_nearest
from ganmotion.runtime.contract import (
    ALPHA_NAME,
    ENGINE_SUFFIXES,
    INPUT_NAME,
    OUTPUT_NAME,
    Backend,
    alpha_batch_checked,
    check_batch,
    check_model_io,
    has_alpha_output,
)
from ganmotion.runtime.sidecar import sidecar_background, sidecar_skeleton
from ganmotion.runtime.tensorrt import TensorRTBackend
from ganmotion.training.checkpoint import checkpoint_folder, load_generator

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "tensorrt")

# Execution providers tried in this order. ONNX Runtime's TensorRT provider is left out of the
# default on purpose: it builds an engine inside every new session (minutes at 512 px) and
# keeps none of it unless configured; build a .plan with export/to_trt.py instead, or pass
# providers=["TensorrtExecutionProvider", ...] explicitly.
DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


class TorchBackend:
    """A checkpoint's generator in PyTorch (eval mode, no autograd).

    Options, all off by default; plain fp32 eager is the reference the others are tested against:

    precision: "fp32", or "bf16" / "fp16" to run the forward under `torch.autocast`: convs and
        matmuls run in that type, the weights stay fp32 and autocast keeps the ops it deems
        unsafe in fp32. On a CPU a reduced precision is fast only where oneDNN has native
        kernels for it (ganmotion.precision); elsewhere a convolution runs 100x or more slower
        than in fp32, so fp16 there is refused and bf16 warned of. On GPUs that have them both
        are the fast modes.
    channels_last: the weights and each input batch in NHWC memory layout, which oneDNN and
        cuDNN's tensor-core kernels prefer.
    compile: `torch.compile`: True for its default mode, or a mode by name (COMPILE_MODES):
        "max-autotune" also tries Triton templates for the convolutions, and on a GPU it and
        "reduce-overhead" replay each batch shape as a CUDA graph (one launch for the whole
        network). Compiling happens in the first call, not here (tens of seconds at 512 px,
        minutes with autotuning), and again the first time the batch size changes: warm up
        before timing. On a CPU, Inductor writes C++ and needs a C++ compiler (g++ or $CXX).

    Whatever the options, images come back float32 in [-1, 1], contiguous (NCHW), on `device`.
    `generator` itself is moved to `device` (and to channels_last if asked); its `skeleton`
    (set by `load_generator` from the checkpoint) is the backend's. A `ComposedGenerator`
    (what an alpha checkpoint loads as) has alpha: `with_alpha` runs its `with_alpha`.
    """

    name = "torch"
    needs_keypoints = False
    PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

    def __init__(
        self,
        generator: torch.nn.Module,
        device: str | torch.device | None = None,
        *,
        compile: bool | str = False,
        channels_last: bool = False,
        precision: str = "fp32",
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = self.check_precision(precision, self.device)
        self.compiled = self.check_compile_mode(compile)
        self.precision, self.channels_last = precision, channels_last
        # CUDA graphs replay into the same output memory: each call's outputs are copied
        # out before the next call can overwrite them.
        self.cuda_graphs = self.device.type == "cuda" and self.compiled in (
            "reduce-overhead",
            "max-autotune",
        )
        self.generator = generator.eval().to(self.device)
        if channels_last:
            self.generator = self.generator.to(memory_format=torch.channels_last)
        self.size = generator.config.size
        self.skeleton = generator.skeleton
        self.skeleton.check_size(self.size, type(generator).__name__)
        self.source = type(generator).__name__  # `load` names the checkpoint instead
        self.has_alpha = isinstance(generator, ComposedGenerator)
        self.background = generator.background[0].cpu() if self.has_alpha else None
        self.forward = self.generator
        self.forward_alpha = self.generator.with_alpha if self.has_alpha else None
        if self.compiled:
            self.check_compiler(self.device)
            self.forward = torch.compile(self.generator, mode=self.compiled)
            if self.has_alpha:
                self.forward_alpha = torch.compile(self.generator.with_alpha, mode=self.compiled)

    @classmethod
    def load(
        cls,
        checkpoint: Path,
        device: str | torch.device | None = None,
        ema: bool = True,
        *,
        compile: bool | str = False,
        channels_last: bool = False,
        precision: str = "fp32",
        compose: ComposeConfig | None = None,
    ) -> TorchBackend:
        backend = cls(
            load_generator(Path(checkpoint), ema=ema, compose=compose),
            device,
            compile=compile,
            channels_last=channels_last,
            precision=precision,
        )
        backend.source = str(checkpoint)
        return backend

    @property
    def variant(self) -> str:
        """The options in words, e.g. "torch bf16 channels_last compiled max-autotune"."""
        flags = [self.precision] + ["channels_last"] * self.channels_last
        if not self.compiled:
            return " ".join([self.name, *flags, "eager"])
        mode = "" if self.compiled == "default" else f" {self.compiled}"
        return " ".join([self.name, *flags, f"compiled{mode}"])

    @classmethod
    def check_compile_mode(cls, compile: bool | str) -> str | None:
        """The torch.compile mode of `compile` (True: "default"), None for eager, or a
        GanmotionError naming the modes."""
        if compile is False or compile is None:
            return None
        mode = "default" if compile is True else compile
        if mode not in cls.COMPILE_MODES:
            raise GanmotionError(
                f"compile mode {mode!r}: choose one of {', '.join(cls.COMPILE_MODES)}"
            )
        return mode

    @classmethod
    def check_precision(cls, precision: str, device: torch.device) -> torch.dtype:
        """The autocast dtype of `precision` on `device`, or a GanmotionError saying why not."""
        if precision not in cls.PRECISIONS:
            raise GanmotionError(
                f"precision {precision!r}: choose one of {', '.join(cls.PRECISIONS)}"
            )
        slow = emulated_on_cpu(precision) if device.type == "cpu" else None
        if slow and precision == "fp16":
            raise GanmotionError(
                f"precision 'fp16' on the CPU: {slow}; use '{fastest_cpu_precision()}'"
            )
        if slow:  # bf16: a warning, as for training (configs/gan_512.yaml asks for it anywhere)
            log.warning("precision 'bf16' on the CPU: %s; 'fp32' is faster here", slow)
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise GanmotionError(
                f"precision 'bf16': {torch.cuda.get_device_name(device)} has no bf16; use 'fp16'"
            )
        return cls.PRECISIONS[precision]

    @staticmethod
    def check_compiler(device: torch.device) -> None:
        """A GanmotionError when torch.compile cannot work on a CPU for want of a C++ compiler."""
        if device.type != "cpu":
            return
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler
        except ImportError:  # a private API: if it moves, the first call reports instead
            return
        try:
            get_cpp_compiler()
        except Exception:
            raise GanmotionError(
                "compile=True on the CPU needs a C++ compiler: install g++ or set $CXX"
            ) from None

    def compile_errors(self) -> tuple[type[BaseException], ...]:
        """What a compiled forward raises when compiling fails; nothing when not compiled."""
        if not self.compiled:
            return ()
        from torch._dynamo.exc import BackendCompilerFailed
        from torch._inductor.exc import InductorError

        return (BackendCompilerFailed, InductorError)

    def __call__(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_batch(skeleton, self.size)
        if len(skeleton) == 0:  # instance norm cannot take an empty batch
            return torch.zeros(0, 3, self.size, self.size, device=self.device)
        return self._run(self.forward, skeleton).float().contiguous()

    def with_alpha(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, 3, S, S) in [-1, 1], alpha (N, 1, S, S) in [0, 1]), float32 on `device`."""
        empty = alpha_batch_checked(self.has_alpha, self.source, skeleton, self.size, self.device)
        if empty is not None:
            return empty
        images, alpha = self._run(self.forward_alpha, skeleton)
        return images.float().contiguous(), alpha.float().contiguous()

    def _run(self, forward, skeleton: torch.Tensor):
        """`forward` on a checked batch, on `device`, in the backend's precision and layout."""
        batch = skeleton.to(self.device, torch.float32)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(
            self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32
        )
        try:
            with torch.inference_mode(), autocast:
                if self.cuda_graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                    outputs = forward(batch)
                    return (
                        tuple(o.clone() for o in outputs)
                        if isinstance(outputs, tuple)
                        else outputs.clone()
                    )
                return forward(batch)
        except self.compile_errors() as error:
            first = next((ln for ln in str(error).splitlines() if ln.strip()), "")
            raise GanmotionError(
                f"torch.compile failed ({type(error).__name__}: {first.strip()})"
            ) from None


class OnnxRuntimeBackend:
    """An exported .onnx run by ONNX Runtime; images come back on the CPU. Its skeleton style
    comes from the sidecar (gen.onnx -> gen.json); a composed model's (one with an `alpha`
    output) baked plate from the PNG the sidecar names (`sidecar_background`)."""

    name = "onnxruntime"
    needs_keypoints = False
    device = torch.device("cpu")

    def __init__(self, path: Path, providers: list[str] | tuple[str, ...] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise GanmotionError(f"{self.path}: no such file")
        available = ort.get_available_providers()
        wanted = [p for p in (providers or DEFAULT_PROVIDERS) if p in available]
        if not wanted:
            raise GanmotionError(
                f"none of the ONNX Runtime providers {list(providers or DEFAULT_PROVIDERS)} is "
                f"available here (available: {', '.join(available)})"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings would break the one-line rule
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=wanted)
        except Exception as error:  # onnxruntime raises its own pybind error types
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise GanmotionError(f"{self.path}: ONNX Runtime cannot load it ({first})") from None
        self.provider = self.session.get_providers()[0]
        outputs = [_ort_io(v) for v in self.session.get_outputs()]
        self.size = check_model_io(
            self.path, [_ort_io(v) for v in self.session.get_inputs()], outputs
        )
        self.skeleton = sidecar_skeleton(self.path, self.size)
        self.has_alpha = has_alpha_output(outputs)
        self.background = sidecar_background(self.path, self.size) if self.has_alpha else None

    @classmethod
    def load(cls, path: Path, providers: list[str] | None = None) -> OnnxRuntimeBackend:
        return cls(path, providers)

    def run(self, skeleton: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 numpy -> (N, 3, S, S) float32 numpy."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: skeleton})[0]

    def run_with_alpha(self, skeleton: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, S, S) float32 numpy -> images (N, 3, S, S) and alpha (N, 1, S, S), numpy."""
        images, alpha = self.session.run([OUTPUT_NAME, ALPHA_NAME], {INPUT_NAME: skeleton})
        return images, alpha

    def __call__(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_batch(skeleton, self.size)
        if len(skeleton) == 0:
            return torch.zeros(0, 3, self.size, self.size)
        return torch.from_numpy(self.run(self._numpy(skeleton)))

    def with_alpha(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, 3, S, S) in [-1, 1], alpha (N, 1, S, S) in [0, 1]), float32 on the CPU."""
        empty = alpha_batch_checked(self.has_alpha, str(self.path), skeleton, self.size)
        if empty is not None:
            return empty
        images, alpha = self.run_with_alpha(self._numpy(skeleton))
        return torch.from_numpy(images), torch.from_numpy(alpha)

    @staticmethod
    def _numpy(skeleton: torch.Tensor) -> np.ndarray:
        return skeleton.detach().to("cpu", torch.float32).contiguous().numpy()


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}


def _ort_io(value) -> tuple[str, list, str]:
    return value.name, list(value.shape), _ORT_TYPES.get(value.type, value.type)


def checked_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device; a GanmotionError when torch knows no such device type or
    this machine has no such device (no CUDA GPU, or fewer than the index asks for)."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise GanmotionError(f"device {str(device)!r}: {one_line(error)}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise GanmotionError(f"device {device}: torch sees no CUDA GPU here")
        if device.index is not None and device.index >= count:
            raise GanmotionError(f"device {device}: this machine has {count} CUDA GPU(s)")
    return device


def load_backend(
    path: str | Path,
    backend: str | None = None,
    device: str | torch.device | None = None,
    shards: str | None = None,
    torch_options: dict | None = None,
) -> Backend:
    """The backend for a model file: a checkpoint folder runs on torch, a .onnx on
    onnxruntime, a .plan/.engine on tensorrt. `backend` only confirms the choice; a model
    file that the named backend cannot run is an error that says how to convert it.
    `torch_options` (compile, channels_last, precision, compose) go to TorchBackend; for a
    file that another backend runs, asking for any of them is an error (an exported model's
    precision and inside blur were fixed when it was exported).

    The seed's baselines run from keypoints (`ganmotion.runtime.baselines`): a checkpoint
    trained with model: mlp; `"nearest"` in place of a path, which looks poses up in the
    training frames of `shards` (the target's shard root); and `"mean"`, their mean image.
    """
    if device is not None:
        device = checked_device(device)
    if str(path) in KEYWORDS:  # a keyword, not a file: the baseline is built from the shards
        if shards is None:
            raise GanmotionError(f"{path} needs --target-shards DIR")
        load = load_nearest if str(path) == "nearest" else load_mean
        return load(shards, device=device)
    path = Path(path)
    if backend is not None and backend not in BACKENDS:
        raise GanmotionError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if not path.exists():
        raise GanmotionError(f"{path}: no such file or checkpoint folder")
    if path.is_dir():
        path = checkpoint_folder(path)  # a run folder stands for its newest checkpoint
        kind = "torch"
    elif path.suffix == ".onnx":
        kind = "onnxruntime"
    elif path.suffix in ENGINE_SUFFIXES:
        kind = "tensorrt"
    else:
        raise GanmotionError(
            f"{path}: unsupported model file; expected a checkpoint folder, a .onnx or a "
            f"{'/'.join(ENGINE_SUFFIXES)} TensorRT engine"
        )
    torch_options = {k: v for k, v in (torch_options or {}).items() if v not in (None, False)}
    if kind != "torch" and torch_options:
        raise GanmotionError(
            f"{path}: {', '.join(torch_options)} only apply to the torch backend "
            "(a checkpoint folder); an exported model keeps the precision and the inside "
            "blur it was exported with"
        )
    if backend is not None and backend != kind:
        how = {
            "onnxruntime": "export it with export/to_onnx.py",
            "tensorrt": "build an engine with export/to_trt.py",
            "torch": "the torch backend runs checkpoint folders",
        }[backend]
        raise GanmotionError(f"{path}: the {backend} backend cannot run this file ({how})")
    if kind == "torch":
        from ganmotion.training.checkpoint import generator_class

        if generator_class(path) == "MLPGenerator":  # the seed's MLP: draws from keypoints
            if torch_options:
                raise GanmotionError(
                    f"{path}: the MLP baseline runs in fp32 eager only, and draws no alpha"
                )
            return KeypointBackend.load(path, device)
        return TorchBackend.load(path, device, **torch_options)
    if kind == "onnxruntime":
        return OnnxRuntimeBackend.load(path)
    return TensorRTBackend.load(path, device)
