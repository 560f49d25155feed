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

test: lint
	$(BIN)/pytest -q

# Without VIDEO: a synthetic target clip with exact keypoints. With VIDEO=target.mp4: MediaPipe.
demo: $(STAMP)
ifeq ($(strip $(VIDEO)),)
	mkdir -p $(OUT)
	$(BIN)/python -m ganmotion.data.synthetic --out $(OUT)/target.mp4 --frames 240 --size 256
	$(BIN)/python -m ganmotion.data.prepare --video $(OUT)/target.mp4 \
		--keypoints $(OUT)/target.keypoints.npy --out $(OUT)/shards --size 256 --overwrite
else
	mkdir -p $(OUT)
	$(BIN)/python -m ganmotion.data.prepare --video $(VIDEO) --out $(OUT)/shards --size 256 --overwrite
endif
	$(BIN)/python -m ganmotion.data.preview --shards $(OUT)/shards --out $(OUT)/preview.png

bench: $(STAMP)
	$(BIN)/python benchmarks/data_stream.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
