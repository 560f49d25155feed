"""Build a TensorRT engine from the exported ONNX (or a checkpoint) and verify it.

python export/to_trt.py --onnx gen.onnx --out gen.plan --fp16 \
    --min-batch 1 --opt-batch 8 --max-batch 32
python export/to_trt.py --checkpoint runs/gan/checkpoints/step-002000 --out gen.plan --fp16
"""

from ganmotion.errors import interrupted_quietly

with interrupted_quietly():  # a Ctrl-C while torch loads: one line, not a traceback
    from ganmotion.export.tensorrt import main

if __name__ == "__main__":
    raise SystemExit(main())
