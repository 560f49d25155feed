# `make test` and `make demo` set up .venv on first use (plain pip: see the README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

VIDEO  ?=
OUT    ?= demo_out

.PHONY: test lint demo bench clean

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
DEMO_PORT ?= 29517
DEMO_STEPS ?=
DEMO_FRAMES ?= 450
DEMO_SOURCE_FRAMES ?= 150
SOURCE ?=
SOURCE_VIDEO = $(if $(strip $(SOURCE)),$(SOURCE),$(OUT)/source.mp4)
demo: $(STAMP)
	mkdir -p $(OUT)
ifeq ($(strip $(VIDEO)),)
	$(BIN)/python -m ganmotion.data.synthetic --out $(OUT)/target.mp4 --frames $(DEMO_FRAMES) --size 256
	$(BIN)/python -m ganmotion.data.prepare --video $(OUT)/target.mp4 \
		--keypoints $(OUT)/target.keypoints.npy --out $(OUT)/shards --size 128 --overwrite
else
	$(BIN)/python -m ganmotion.data.prepare --video $(VIDEO) --out $(OUT)/shards --size 128 --overwrite
endif
	$(BIN)/python -m ganmotion.data.preview --shards $(OUT)/shards --out $(OUT)/preview.png
ifeq ($(strip $(SOURCE)),)
	$(BIN)/python -m ganmotion.data.synthetic --out $(OUT)/source.mp4 --frames $(DEMO_SOURCE_FRAMES) \
		--size 256 --motion-seed 7 --appearance-seed 3
endif
	rm -rf $(OUT)/run
	ACCELERATE_USE_CPU=1 OMP_NUM_THREADS=1 $(BIN)/accelerate launch --multi_gpu --num_processes 2 \
		--main_process_port $(DEMO_PORT) train/gan.py --config configs/gan_demo.yaml \
		data.shards=$(OUT)/shards run.out_dir=$(OUT)/run $(if $(DEMO_STEPS),run.steps=$(DEMO_STEPS))
	$(BIN)/python export/to_onnx.py --checkpoint $(OUT)/run --out $(OUT)/gen.onnx
	$(BIN)/python -m ganmotion.eval --compare nearest gan=$(OUT)/gen.onnx --shards $(OUT)/shards \
		--out $(OUT)/eval
	$(BIN)/python infer/video.py --source $(SOURCE_VIDEO) --model $(OUT)/gen.onnx \
		--out $(OUT)/result.mp4 --side-by-side --summary-json $(OUT)/infer.json
	$(BIN)/python -m ganmotion.report --run $(OUT)/run --infer $(OUT)/infer.json \
		--eval $(OUT)/eval --out $(OUT)/report.md --file "target video=$(if $(VIDEO),$(VIDEO),$(OUT)/target.mp4)" \
		--file "shards=$(OUT)/shards" --file "training samples=$(OUT)/preview.png" \
		--file "source motion=$(SOURCE_VIDEO)" --file "model=$(OUT)/gen.onnx" \
		--file "side by side (source | skeleton | generated)=$(OUT)/result.mp4"

bench: $(STAMP)
	$(BIN)/python benchmarks/data_stream.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
