# The two commands: `make run` and `make test`. Both create .venv if missing and install what they need.
PYTHON ?= python3
VENV ?= .venv
# torch is installed first, pinned, so pip never resolves heldout's `torch>=2.3` to a fresh download.
# On this project's CPU machines torch==2.13.0 comes from a local CPU wheel; on a CUDA machine the
# same pin installs PyPI's CUDA build. Set TORCH= (empty) to keep whatever torch the venv already has.
TORCH ?= torch==2.13.0
# The extras installed with heldout: dev (tests, lint), ray (the sweep's Ray backend) and tune (Optuna,
# for sweep --tune's method optuna), both tested in the default suite. EXTRAS=dev leaves them out.
EXTRAS ?= dev,ray,tune
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	@if [ -n "$(TORCH)" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		echo "installing $(TORCH) ..."; $(BIN)/python -m pip install -q "$(TORCH)"; fi
	@# PYTHONWARNINGS: setuptools prints a boxed "Editable installation" notice (information, not a problem)
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP)

## make run: the quickstart preset: PPO trains 300k steps on 5 MiniGrid DoorKey-6x6 levels and is tested on held-out
## ones (train ~0.96 vs test ~0.4-0.65: the generalization gap; learning_curve.png in the run folder); ~3 min on 2 CPU cores
run: $(STAMP)
	$(BIN)/heldout train --preset quickstart

## make test: the default test suite (CPU, a few minutes)
test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "not gpu"

lint: $(STAMP)
	$(BIN)/ruff check heldout tests benchmarks
	$(BIN)/ruff format --check heldout tests benchmarks

bench: $(STAMP)
	$(BIN)/heldout bench throughput

clean:
	rm -rf $(VENV) build *.egg-info
