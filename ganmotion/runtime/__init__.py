"""Running a generator: the backends (torch, onnxruntime, tensorrt), the seed's baselines,
the batched video pipeline and `ganmotion infer`.

    backend = load_backend("gen.onnx")      # or a checkpoint folder, or a gen.plan engine
    images = backend(skeletons)             # (N, 3, S, S) in [-1, 1] -> (N, 3, S, S) in [-1, 1]

Nothing here imports onnx, onnxruntime or tensorrt until a function needs it. Building the
.onnx and .plan files is `ganmotion.export`, which imports this package, never the reverse.
"""

from ganmotion.runtime.backends import (
    Backend,
    OnnxRuntimeBackend,
    TorchBackend,
    check_batch,
    load_backend,
)
from ganmotion.runtime.tensorrt import TensorRTBackend

__all__ = [
    "Backend",
    "OnnxRuntimeBackend",
    "TensorRTBackend",
    "TorchBackend",
    "check_batch",
    "load_backend",
]
