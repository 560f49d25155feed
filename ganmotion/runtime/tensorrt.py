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
from ganmotion.runtime.contract import INPUT_NAME, OUTPUT_NAME, check_batch, check_model_io
from ganmotion.runtime.sidecar import sidecar_skeleton

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
    sidecar (gen.plan.json), and without one it is the defaults for the engine's size.
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
        return backend

    def __call__(
        self, skeleton: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_batch(skeleton, self.size)
        if len(skeleton) == 0:
            return torch.zeros(0, 3, self.size, self.size, device=self.device)
        return torch.cat([self._run(part) for part in skeleton.split(self.max_batch)])

    def _run(self, skeleton: torch.Tensor) -> torch.Tensor:
        n = len(skeleton)
        x = skeleton.to(self.device, self._dtypes[INPUT_NAME]).contiguous()
        if n < self.min_batch:
            x = torch.cat([x, x.new_zeros(self.min_batch - n, *x.shape[1:])])
        context = self._context
        if not context.set_input_shape(INPUT_NAME, tuple(x.shape)):
            raise GanmotionError(f"TensorRT refused input shape {tuple(x.shape)}")
        y = torch.empty(
            tuple(context.get_tensor_shape(OUTPUT_NAME)),
            dtype=self._dtypes[OUTPUT_NAME],
            device=self.device,
        )
        context.set_tensor_address(INPUT_NAME, x.data_ptr())
        context.set_tensor_address(OUTPUT_NAME, y.data_ptr())
        # Torch's current stream: the copies above and whatever consumes `y` are ordered with
        # the engine's work without a sync, and x/y are freed in that same stream order.
        stream = torch.cuda.current_stream(self.device)
        with torch.cuda.device(self.device):
            if not context.execute_async_v3(stream.cuda_stream):
                raise GanmotionError("TensorRT failed to run the engine (see its log above)")
        return y[:n].float()
