"""Inference: ONNX export, TensorRT engines, and the backends that run a generator.

    backend = load_backend("gen.onnx")      # or a checkpoint folder, or a gen.plan engine
    images = backend(skeletons)             # (N, 3, S, S) in [-1, 1] -> (N, 3, S, S) in [-1, 1]

Nothing here imports onnx, onnxruntime or tensorrt until a function needs it.
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
