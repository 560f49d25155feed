# `make test` and `make demo` set up .venv on first use (plain pip: see the README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

VIDEO  ?=
OUT    ?= demo_out

.PHONY: test lint demo train bench gpu-bundle gpu-rehearsal clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The SLURM tests need slurmctld/slurmd/munge: installed here (as root), never by a test;
# quiet, and never fatal (without them those tests skip and say why).
test: lint
	@-sh tests/setup_slurm.sh
	$(BIN)/pytest -q

# The whole product on a CPU, end to end: a target clip -> shards -> 2-process GAN training ->
# ONNX (evaluated against nearest neighbour on held-out frames) -> the batched runner on a
# different motion -> side-by-side video and report.md.
# Without VIDEO: a synthetic target with exact keypoints. With VIDEO=target.mp4: MediaPipe.
# SOURCE=dance.mp4 replaces the synthetic source motion.
# DEMO_STEPS, DEMO_FRAMES, DEMO_SOURCE_FRAMES shorten it (the test suite runs it that way).
# Each step's output is shown and kept in $(OUT)/logs/<step>.log; a failing step stops the demo
# with one line that names it and its log.
DEMO_PORT ?= 29517
DEMO_STEPS ?=
DEMO_FRAMES ?= 450
DEMO_SOURCE_FRAMES ?= 150
SOURCE ?=
SOURCE_VIDEO = $(if $(strip $(SOURCE)),$(SOURCE),$(OUT)/source.mp4)
LOGS = $(OUT)/logs
# $(call step,NAME,COMMAND): COMMAND's output to the terminal and to $(LOGS)/NAME.log (pipefail
# keeps COMMAND's exit status through tee); on failure, one line naming the step and its log.
step = echo "make demo: $(1) (log: $(LOGS)/$(1).log)"; \
	set -o pipefail; { $(2); } 2>&1 | tee $(LOGS)/$(1).log || { status=$$?; \
	echo "make demo: step '$(1)' failed (exit $$status); its log: $(LOGS)/$(1).log" >&2; \
	exit $$status; }
demo: SHELL := /bin/bash
demo: $(STAMP)
	mkdir -p $(OUT) $(LOGS)
ifeq ($(strip $(VIDEO)),)
	@$(call step,synthetic,$(BIN)/python -m ganmotion.data.synthetic --out $(OUT)/target.mp4 \
		--frames $(DEMO_FRAMES) --size 256)
	@$(call step,prepare,$(BIN)/python -m ganmotion.data.prepare --video $(OUT)/target.mp4 \
		--keypoints $(OUT)/target.keypoints.npy --out $(OUT)/shards --size 128 --overwrite)
else
	@$(call step,prepare,$(BIN)/python -m ganmotion.data.prepare --video $(VIDEO) \
		--out $(OUT)/shards --size 128 --overwrite)
endif
	@$(call step,preview,$(BIN)/python -m ganmotion.data.preview --shards $(OUT)/shards \
		--out $(OUT)/preview.png)
ifeq ($(strip $(SOURCE)),)
	@$(call step,source,$(BIN)/python -m ganmotion.data.synthetic --out $(OUT)/source.mp4 \
		--frames $(DEMO_SOURCE_FRAMES) --size 256 --motion-seed 7 --appearance-seed 3)
endif
	rm -rf $(OUT)/run
	@$(call step,train,ACCELERATE_USE_CPU=1 OMP_NUM_THREADS=1 $(BIN)/accelerate launch \
		--multi_gpu --num_processes 2 --main_process_port $(DEMO_PORT) train/gan.py \
		--config configs/gan_demo.yaml data.shards=$(OUT)/shards run.out_dir=$(OUT)/run \
		$(if $(DEMO_STEPS),run.steps=$(DEMO_STEPS)))
	@$(call step,export,$(BIN)/python export/to_onnx.py --checkpoint $(OUT)/run \
		--out $(OUT)/gen.onnx)
	@$(call step,eval,$(BIN)/ganmotion eval --compare nearest gan=$(OUT)/gen.onnx \
		--shards $(OUT)/shards --out $(OUT)/eval)
	@$(call step,infer,$(BIN)/python infer/video.py --source $(SOURCE_VIDEO) \
		--model $(OUT)/gen.onnx --out $(OUT)/result.mp4 --side-by-side \
		--summary-json $(OUT)/infer.json)
	@$(call step,report,$(BIN)/python -m ganmotion.report --run $(OUT)/run \
		--infer $(OUT)/infer.json --eval $(OUT)/eval --out $(OUT)/report.md \
		--file "target video=$(if $(VIDEO),$(VIDEO),$(OUT)/target.mp4)" \
		--file "shards=$(OUT)/shards" --file "training samples=$(OUT)/preview.png" \
		--file "source motion=$(SOURCE_VIDEO)" --file "model=$(OUT)/gen.onnx" \
		--file "side by side (source | skeleton | generated)=$(OUT)/result.mp4")

# Your own video, trained in a wall-clock budget on this machine's CPU cores (ganmotion
# train-video): prepare at 256 px, train with 2 processes for MINUTES (the learning rates
# decaying over them), export to ONNX, evaluate against nearest neighbour. In $(OUT) (here
# train_out unless given): gen.onnx, eval/report.md, run/, and logs/<stage>.log.
#   make train VIDEO=me.mp4 MINUTES=60 [OUT=train_out]
MINUTES ?=
train: OUT = train_out
train: $(STAMP)
	$(BIN)/ganmotion train-video $(if $(VIDEO),--video $(VIDEO)) \
		$(if $(MINUTES),--minutes $(MINUTES)) --out $(OUT)

bench: $(STAMP)
	$(BIN)/python benchmarks/data_stream.py

# What the GPU check (benchmarks/gpu_check.py) needs on the GPU machine, which has no MediaPipe,
# WebDataset, PyAV or network: the sample clip with its poses and masks, and wheels, in
# .gpu_bundle (the README's GPU section has the command that runs the check there).
gpu-bundle: $(STAMP)
	$(BIN)/python benchmarks/gpu_bundle.py --out .gpu_bundle

# The check and the suite on this CPU under the GPU machine's versions (torch 2.11, numpy 2.x,
# onnx 1.23 + onnxruntime 1.30), after `make gpu-bundle`: a venv of ~5 GB in /tmp, then ~15
# minutes on 2 cores.
gpu-rehearsal:
	sh benchmarks/gpu_versions.sh

clean:
	rm -rf $(VENV) $(OUT) train_out .gpu_bundle .pytest_cache .ruff_cache
