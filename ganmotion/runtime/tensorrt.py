"""TensorRT engines as a backend: run a serialized engine on the GPU.

    backend = load_backend("gen.plan")     # or TensorRTBackend.load("gen.plan", "cuda:1")
    images = backend(skeletons)            # (N, 3, S, S) in [-1, 1] -> (N, 3, S, S) on the GPU

An engine runs only with the TensorRT version and GPU model it was built with; building and
verifying one is `ganmotion.export.tensorrt` (`python export/to_trt.py`).

TensorRT is imported only inside these functions; without it (or without a GPU) every entry
point fails with one line that says what is missing.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganmotion.errors import GanmotionError
from ganmotion.pose.render import SkeletonStyle
from ganmotion.runtime.contract import (
    ALPHA_NAME,
    INPUT_NAME,
    OUTPUT_NAME,
    alpha_batch_checked,
    check_batch,
    check_model_io,
    has_alpha_output,
)
from ganmotion.runtime.sidecar import sidecar_background, sidecar_skeleton

TENSORRT_MISSING = (
    "TensorRT is not installed: pip install 'ganmotion[tensorrt]' on a machine with an "
    "NVIDIA GPU and driver"
)


def import_tensorrt():
    """The tensorrt module (10 or newer), or a one-line GanmotionError saying what is missing."""
    try:
        import tensorrt as trt
    except ImportError:
        raise GanmotionError(TENSORRT_MISSING) from None
    except OSError as error:  # the wheel is there but its CUDA libraries do not load
        raise GanmotionError(f"TensorRT is installed but cannot load: {error}") from None
    major = int(trt.__version__.split(".")[0])
    if major < 10:
        raise GanmotionError(f"TensorRT {trt.__version__} is too old: ganmotion needs 10 or newer")
    return trt


def require_cuda() -> None:
    if not torch.cuda.is_available():
        raise GanmotionError("TensorRT needs an NVIDIA GPU, and torch sees none here")


_DTYPES = {
    "FLOAT": torch.float32,
    "HALF": torch.float16,
    "BF16": torch.bfloat16,
    "INT32": torch.int32,
    "INT64": torch.int64,
    "INT8": torch.int8,
    "UINT8": torch.uint8,
    "BOOL": torch.bool,
}


def _torch_dtype(trt, dtype) -> torch.dtype:
    table = {getattr(trt.DataType, k): v for k, v in _DTYPES.items() if hasattr(trt.DataType, k)}
    if dtype not in table:
        raise GanmotionError(f"engine tensor type {dtype} is not supported")
    return table[dtype]


class TensorRTBackend:
    """A serialized TensorRT engine, run on the GPU with torch CUDA tensors as its buffers.

    Batches larger than the engine's profile are run in slices of its max batch; smaller
    ones are padded up to its min batch (frames are independent: no batch statistics).
    `skeleton`: how the model's skeletons are drawn; `load` reads it from the engine's
    sidecar (gen.plan.json), and without one it is the defaults for the engine's size. An
    engine of a composed model has the output `alpha` too (outputs are bound by name);
    `background`, its baked plate, comes from the PNG its sidecar names.
    """

    name = "tensorrt"
    needs_keypoints = False

    def __init__(
        self,
        engine: bytes,
        source: str = "engine",
        device=None,
        skeleton: SkeletonStyle | None = None,
    ):
        trt = import_tensorrt()
        require_cuda()
        self.device = torch.device(device or "cuda")
        if self.device.type != "cuda":
            raise GanmotionError(f"TensorRT runs on a CUDA device, not {self.device}")
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.init()  # TensorRT then shares torch's CUDA context on this device
        with torch.cuda.device(self.device):
            # The runtime must outlive the engine, the engine its contexts: keep all three.
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(engine)
            if self._engine is None:
                raise GanmotionError(
                    f"{source}: TensorRT {trt.__version__} cannot load this engine (built with "
                    "another TensorRT version or for another GPU? rebuild it here)"
                )
            self._context = self._engine.create_execution_context()
        engine_ = self._engine
        names = [engine_.get_tensor_name(i) for i in range(engine_.num_io_tensors)]
        self._dtypes = {n: _torch_dtype(trt, engine_.get_tensor_dtype(n)) for n in names}

        def described(mode) -> list[tuple[str, list, str]]:
            return [
                (n, list(engine_.get_tensor_shape(n)), str(self._dtypes[n]).removeprefix("torch."))
                for n in names
                if engine_.get_tensor_mode(n) == mode
            ]

        inputs, outputs = described(trt.TensorIOMode.INPUT), described(trt.TensorIOMode.OUTPUT)
        self.size = check_model_io(Path(source), inputs, outputs)
        self.source = source
        self.has_alpha = has_alpha_output(outputs)
        self.background = None  # `load` reads a composed engine's from its sidecar
        self._outputs = [name for name, _, _ in outputs]
        low, _, high = engine_.get_tensor_profile_shape(INPUT_NAME, 0)  # (min, opt, max) shapes
        self.min_batch, self.max_batch = int(low[0]), int(high[0])
        self.skeleton = skeleton or SkeletonStyle.for_size(self.size)
        self.skeleton.check_size(self.size, source)

    @classmethod
    def load(cls, path: Path, device=None) -> TensorRTBackend:
        path = Path(path)
        if not path.is_file():
            raise GanmotionError(f"{path}: no such engine file")
        backend = cls(path.read_bytes(), str(path), device)
        backend.skeleton = sidecar_skeleton(path, backend.size)  # the size is the engine's
        if backend.has_alpha:
            backend.background = sidecar_background(path, backend.size)
        return backend

    def __call__(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_batch(skeleton, self.size)
        if len(skeleton) == 0:
            return torch.zeros(0, 3, self.size, self.size, device=self.device)
        parts = skeleton.split(self.max_batch)
        return torch.cat([self._run(part)[OUTPUT_NAME] for part in parts])

    def with_alpha(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, 3, S, S) in [-1, 1], alpha (N, 1, S, S) in [0, 1]) on the GPU."""
        empty = alpha_batch_checked(self.has_alpha, self.source, skeleton, self.size, self.device)
        if empty is not None:
            return empty
        runs = [self._run(part) for part in skeleton.split(self.max_batch)]
        return tuple(torch.cat([run[name] for run in runs]) for name in (OUTPUT_NAME, ALPHA_NAME))

    def _run(self, skeleton: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every output of the engine for one batch, by name, float32 on the GPU."""
        n = len(skeleton)
        x = skeleton.to(self.device, self._dtypes[INPUT_NAME]).contiguous()
        if n < self.min_batch:
            x = torch.cat([x, x.new_zeros(self.min_batch - n, *x.shape[1:])])
        context = self._context
        if not context.set_input_shape(INPUT_NAME, tuple(x.shape)):
            raise GanmotionError(f"TensorRT refused input shape {tuple(x.shape)}")
        context.set_tensor_address(INPUT_NAME, x.data_ptr())
        outputs = {}  # every output needs a buffer bound, whichever the caller wants
        for name in self._outputs:
            outputs[name] = torch.empty(
                tuple(context.get_tensor_shape(name)), dtype=self._dtypes[name], device=self.device
            )
            context.set_tensor_address(name, outputs[name].data_ptr())
        # Torch's current stream: the copies above and whatever consumes the outputs are
        # ordered with the engine's work without a sync, and the buffers are freed in that
        # same stream order.
        stream = torch.cuda.current_stream(self.device)
        with torch.cuda.device(self.device):
            if not context.execute_async_v3(stream.cuda_stream):
                raise GanmotionError("TensorRT failed to run the engine (see its log above)")
        return {name: y[:n].float() for name, y in outputs.items()}
