"""Building what the runtime runs: a checkpoint's generator -> ONNX -> TensorRT engine.

    onnx.py       export to ONNX (dynamic batch), check it, prove parity with PyTorch, write
                  gen.onnx and its sidecar gen.json; the fp16 copy that TensorRT builds from
    tensorrt.py   build a strongly typed engine from that ONNX, verify it against ONNX
                  Runtime, write gen.plan and gen.plan.json

Building uses the running side (`ganmotion.runtime`: the ONNX input/output names, the
backends that check an export, the sidecar's path, the target body); the running side never
imports this package. The scripts are export/to_onnx.py and export/to_trt.py.
"""
