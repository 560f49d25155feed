#!/bin/bash
# The quality table of benchmarks/RESULTS.md: nearest neighbour, the L1 U-Net (vanilla) and the
# GAN, each trained with the demo's budget (128 px, 400 steps, batch 8 x 2 processes on CPU),
# evaluated on the same held-out frames by `ganmotion eval`.
#
#   bash benchmarks/quality.sh [OUT]        # OUT defaults to quality_out/; ~15 min on 2 cores
#
# Datasets: a synthetic person (exact keypoints) evaluated on a motion it never saw and on its
# own held-out frames; the sample video ../shared/data/taichi2.mp4 (MediaPipe keypoints) on
# its held-out last 10%. Reports land in OUT/eval_*/ (report.md, report.json, contact_sheet.png).
set -euo pipefail
OUT=${1:-quality_out}
PY=${PYTHON:-.venv/bin/python}
TAICHI=${TAICHI:-../shared/data/taichi2.mp4}
mkdir -p "$OUT"

train() {  # train SCRIPT CONFIG SHARDS RUN_DIR
    ACCELERATE_USE_CPU=1 OMP_NUM_THREADS=1 "$PY" -m accelerate.commands.launch --multi_gpu \
        --num_processes 2 --main_process_port 29541 "train/$1" --config "configs/$2" \
        "data.shards=$3" "run.out_dir=$4" > "$4.log" 2>&1
}

# synthetic: the demo's target person, trained on one motion, tested on another
"$PY" -m ganmotion.data.synthetic --out "$OUT/target.mp4" --frames 450 --size 256
"$PY" -m ganmotion.data.synthetic --out "$OUT/unseen.mp4" --frames 120 --size 256 --motion-seed 11
"$PY" -m ganmotion.data.prepare --video "$OUT/target.mp4" --keypoints "$OUT/target.keypoints.npy" \
    --out "$OUT/synthetic" --size 128 --overwrite
"$PY" -m ganmotion.data.prepare --video "$OUT/unseen.mp4" --keypoints "$OUT/unseen.keypoints.npy" \
    --out "$OUT/unseen" --size 128 --val-fraction 0 --overwrite
train vanilla.py vanilla_demo.yaml "$OUT/synthetic" "$OUT/synthetic_vanilla"
train gan.py gan_demo.yaml "$OUT/synthetic" "$OUT/synthetic_gan"
models=(nearest "vanilla=$OUT/synthetic_vanilla" "gan=$OUT/synthetic_gan")
"$PY" -m ganmotion.eval --compare "${models[@]}" --shards "$OUT/unseen" --split train \
    --target-shards "$OUT/synthetic" --out "$OUT/eval_synthetic_unseen"
"$PY" -m ganmotion.eval --compare "${models[@]}" --shards "$OUT/synthetic" --out "$OUT/eval_synthetic_val"

# the sample video: MediaPipe keypoints, the last 10% of its frames held out
if [[ -f $TAICHI ]]; then
    "$PY" -m ganmotion.data.prepare --video "$TAICHI" --out "$OUT/taichi" --size 128 --overwrite
    train vanilla.py vanilla_demo.yaml "$OUT/taichi" "$OUT/taichi_vanilla"
    train gan.py gan_demo.yaml "$OUT/taichi" "$OUT/taichi_gan"
    "$PY" -m ganmotion.eval --compare nearest "vanilla=$OUT/taichi_vanilla" "gan=$OUT/taichi_gan" \
        --shards "$OUT/taichi" --out "$OUT/eval_taichi_val"
fi
