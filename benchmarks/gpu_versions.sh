#!/bin/sh
# The GPU check rehearsed on this CPU under the GPU machine's package versions (`make
# gpu-rehearsal`): run it after changes, before a GPU session spends its one try on them.
#
# The GPU machine (the device tool's KINDS.md) has torch 2.11, numpy 2.5, onnx 1.23 with
# onnxruntime 1.30, and no MediaPipe, onnxconverter-common, lpips or DeepSpeed; ours are
# others. This builds a venv of those versions (PyPI's torch 2.11 is a CUDA build of ~5 GB,
# run on the CPU; numpy 2.4, the newest for Python 3.11), installs the bundle's wheels as the
# README's GPU command does there (--target, on PYTHONPATH, ganmotion itself not installed),
# then runs the check's smoke mode and the test suite. In the suite, expect only the cases
# that need what is not there (MediaPipe, lpips, the `ganmotion` console script) and the
# reference loss curves (recorded on our torch) to fail: benchmarks/RESULTS.md, "The GPU check
# rehearsed on the CPU".
#
#   REHEARSAL_VENV  where the venv goes [/tmp/ganmotion-gpu-versions]; kept, so a rerun
#                   installs nothing. (Not VENV or OUT: make exports its own values of those,
#                   .venv and demo_out, which would put these versions into the project's venv.)
#   REHEARSAL_OUT   the smoke run's report folder [$REHEARSAL_VENV/out]
set -eu
cd "$(dirname "$0")/.."
VENV=${REHEARSAL_VENV:-/tmp/ganmotion-gpu-versions}
OUT=${REHEARSAL_OUT:-$VENV/out}
case "$(realpath -m "$VENV")" in
  "$(realpath -m .venv)") echo "gpu_versions: $VENV is the project's venv; choose another" >&2; exit 1 ;;
esac
[ -d .gpu_bundle/wheels ] || { echo "gpu_versions: no .gpu_bundle (make gpu-bundle)" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  torch==2.11.0 torchvision==0.26.0 numpy==2.4.6 accelerate==1.15.0 onnx==1.23.1 \
  onnxruntime==1.30.0 onnxscript==0.7.2 safetensors==0.8.0 opencv-python-headless \
  pyyaml tqdm pillow tensorboard scikit-image pytest pytest-timeout
rm -rf "$VENV/site"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-index --no-deps \
  --target "$VENV/site" .gpu_bundle/wheels/*.whl

export PYTHONPATH="$VENV/site:$PWD"
# Its report's header names the versions it ran under.
"$VENV/bin/python" benchmarks/gpu_check.py --smoke --out "$OUT"
# Not the files that need DeepSpeed, SLURM or MediaPipe throughout.
"$VENV/bin/python" -m pytest -q -p no:cacheprovider --timeout 600 -rf tests \
  --ignore tests/test_deepspeed.py --ignore tests/test_slurm.py \
  --ignore tests/test_detector.py --ignore tests/test_demo.py --ignore tests/test_clean_exit.py
