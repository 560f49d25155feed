"""Export a checkpoint's generator to ONNX, with a parity check against PyTorch.

python export/to_onnx.py --checkpoint runs/gan/checkpoints/step-002000 --out gen.onnx [--raw]
"""

from ganmotion.errors import interrupted_quietly

with interrupted_quietly():  # a Ctrl-C while torch loads: one line, not a traceback
    from ganmotion.export.onnx import main

if __name__ == "__main__":
    raise SystemExit(main())
