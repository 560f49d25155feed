"""Backends: one way to run a generator, whatever it was saved as.

    backend = load_backend("gen.onnx")          # a checkpoint folder, gen.onnx or gen.plan
    images = backend(skeletons)                 # (N, 3, S, S) in [-1, 1] -> (N, 3, S, S) in [-1, 1]
    backend.name, backend.size, backend.device  # "onnxruntime", S, where the images come back

Every backend takes a float tensor on any device and returns float32 images on its own
`device`, so the video pipeline and the benchmarks never branch on the backend. The model
files follow the exported-model contract: one input `skeleton` (N, 3, S, S) float32 with a
dynamic N, one output `image`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ganmotion.errors import GanmotionError
from ganmotion.training.checkpoint import load_generator

INPUT_NAME = "skeleton"
OUTPUT_NAME = "image"
BACKENDS = ("torch", "onnxruntime", "tensorrt")
ENGINE_SUFFIXES = (".plan", ".engine")

# Execution providers tried in this order. ONNX Runtime's TensorRT provider is left out of the
# default on purpose: it builds an engine inside every new session (minutes at 512 px) and
# keeps none of it unless configured; build a .plan with export/to_trt.py instead, or pass
# providers=["TensorrtExecutionProvider", ...] explicitly.
DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


@runtime_checkable
class Backend(Protocol):
    """A generator behind one call: skeletons (N, 3, size, size) float in [-1, 1] on any
    device -> images (N, 3, size, size) float32 in [-1, 1] on `device`.

    The video pipeline always passes the batch's keypoints (N, 33, 3) in pixels of the
    size x size image too: image-conditioned generators ignore them, and the seed's
    baselines (`needs_keypoints = True`), which work from poses, use nothing else.
    """

    name: str
    size: int
    device: torch.device
    needs_keypoints: bool

    def __call__(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor: ...


def check_batch(skeleton: torch.Tensor, size: int) -> None:
    """Raise a GanmotionError unless `skeleton` is a float tensor (N, 3, size, size)."""
    if not isinstance(skeleton, torch.Tensor):
        raise GanmotionError(
            f"skeleton batch must be a torch.Tensor, got {type(skeleton).__name__}"
        )
    if skeleton.ndim != 4 or tuple(skeleton.shape[1:]) != (3, size, size):
        raise GanmotionError(
            f"skeleton batch must be (N, 3, {size}, {size}), got {tuple(skeleton.shape)}"
        )
    if not skeleton.is_floating_point():
        raise GanmotionError(f"skeleton batch must be floating point, got {skeleton.dtype}")


def check_model_io(
    path: Path, inputs: list[tuple[str, list, str]], outputs: list[tuple[str, list, str]]
) -> int:
    """The image side S of a model whose inputs/outputs are (name, shape, dtype) triples, or a
    GanmotionError naming what breaks the contract. A dimension is an int, or a str/None/-1
    when dynamic; dtype is "float32" when it is one."""
    if [name for name, _, _ in inputs] != [INPUT_NAME]:
        found = ", ".join(repr(name) for name, _, _ in inputs) or "none"
        raise GanmotionError(
            f"{path}: model inputs are {found}; expected one input named {INPUT_NAME!r}"
        )
    if [name for name, _, _ in outputs] != [OUTPUT_NAME]:
        found = ", ".join(repr(name) for name, _, _ in outputs) or "none"
        raise GanmotionError(
            f"{path}: model outputs are {found}; expected one output named {OUTPUT_NAME!r}"
        )
    _, shape, dtype = inputs[0]
    shown = "(" + ", ".join(str(d) for d in shape) + ")"
    fixed = [isinstance(d, int) and d > 0 for d in shape]
    if len(shape) != 4 or fixed[0] or not all(fixed[1:]) or shape[1] != 3 or shape[2] != shape[3]:
        raise GanmotionError(
            f"{path}: input {INPUT_NAME!r} has shape {shown}; expected (N, 3, S, S) "
            "with a dynamic batch N"
        )
    for name, _, kind in (inputs[0], outputs[0]):
        if kind != "float32":
            raise GanmotionError(f"{path}: {name!r} is {kind}; expected float32")
    return int(shape[2])


class TorchBackend:
    """A checkpoint's generator in PyTorch (eval mode, fp32, no autograd)."""

    name = "torch"
    needs_keypoints = False

    def __init__(self, generator: torch.nn.Module, device: str | torch.device | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.generator = generator.eval().to(self.device)
        self.size = generator.config.size

    @classmethod
    def load(
        cls, checkpoint: Path, device: str | torch.device | None = None, ema: bool = True
    ) -> TorchBackend:
        return cls(load_generator(Path(checkpoint), ema=ema), device)

    def __call__(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_batch(skeleton, self.size)
        if len(skeleton) == 0:  # instance norm cannot take an empty batch
            return torch.zeros(0, 3, self.size, self.size, device=self.device)
        with torch.inference_mode():
            return self.generator(skeleton.to(self.device, torch.float32)).float()


class OnnxRuntimeBackend:
    """An exported .onnx run by ONNX Runtime; images come back on the CPU."""

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
        self.size = check_model_io(
            self.path,
            [_ort_io(v) for v in self.session.get_inputs()],
            [_ort_io(v) for v in self.session.get_outputs()],
        )

    @classmethod
    def load(cls, path: Path, providers: list[str] | None = None) -> OnnxRuntimeBackend:
        return cls(path, providers)

    def run(self, skeleton: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 numpy -> (N, 3, S, S) float32 numpy."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: skeleton})[0]

    def __call__(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_batch(skeleton, self.size)
        if len(skeleton) == 0:
            return torch.zeros(0, 3, self.size, self.size)
        batch = skeleton.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.run(batch))


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}


def _ort_io(value) -> tuple[str, list, str]:
    return value.name, list(value.shape), _ORT_TYPES.get(value.type, value.type)


def load_backend(
    path: str | Path, backend: str | None = None, device: str | torch.device | None = None
) -> Backend:
    """The backend for a model file: a checkpoint folder runs on torch, a .onnx on
    onnxruntime, a .plan/.engine on tensorrt. `backend` only confirms the choice; a model
    file that the named backend cannot run is an error that says how to convert it.
    """
    path = Path(path)
    if backend is not None and backend not in BACKENDS:
        raise GanmotionError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if not path.exists():
        raise GanmotionError(f"{path}: no such file or checkpoint folder")
    if path.is_dir():
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
    if backend is not None and backend != kind:
        how = {
            "onnxruntime": "export it with export/to_onnx.py",
            "tensorrt": "build an engine with export/to_trt.py",
            "torch": "the torch backend runs checkpoint folders",
        }[backend]
        raise GanmotionError(f"{path}: the {backend} backend cannot run this file ({how})")
    if kind == "torch":
        return TorchBackend.load(path, device)
    if kind == "onnxruntime":
        return OnnxRuntimeBackend.load(path)
    from ganmotion.runtime.tensorrt import TensorRTBackend

    return TensorRTBackend.load(path, device)
