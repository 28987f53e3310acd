# The two commands: `make run` and `make test`. Both create .venv if missing and install what they need.
# PYTHON picks the interpreter and with it the stack (docs/install.md): python3 (3.11 or 3.12) builds
# procgen-mirror + NumPy 1.26 into .venv; PYTHON=python3.13 builds procgen-gym + NumPy 2 into .venv313
# (each pythonX.Y gets its own .venvXY, so both stacks live side by side).
PYTHON ?= python3
PY_VERSION := $(patsubst python%,%,$(notdir $(PYTHON)))
VENV ?= $(if $(filter python3,$(notdir $(PYTHON))),.venv,.venv$(subst .,,$(PY_VERSION)))
# pyenv's shim runs pythonX.Y only when told which installed version to use: if $(PYTHON) does not
# start as it is, take pyenv's newest X.Y.* (a no-op without pyenv).
ifeq ($(shell $(PYTHON) -c "" >/dev/null 2>&1 && echo ok),)
PYENV_MATCH := $(shell pyenv versions --bare 2>/dev/null | grep -E '^$(subst .,\.,$(PY_VERSION))\.[0-9]+$$' | sort -V | tail -1)
ifneq ($(PYENV_MATCH),)
export PYENV_VERSION := $(PYENV_MATCH)
endif
endif
# torch is installed first, pinned, so pip never resolves heldout's `torch>=2.3` to a fresh download.
# On this project's CPU machines torch==2.13.0 comes from a local CPU wheel for CPython 3.11; for
# 3.13 and on a CUDA machine the same pin installs PyPI's CUDA build (it runs on CPUs too). Set TORCH= (empty) to keep whatever torch the venv already has.
TORCH ?= torch==2.13.0
# The extras installed with heldout: dev (tests, lint), ray (the sweep's Ray backend) and tune (Optuna,
# for sweep --tune's method optuna), both tested in the default suite. EXTRAS=dev leaves them out.
# The minihack extra (NLE, MiniHack) is not among them: nle pins gymnasium==1.2.0, whose vector
# RecordEpisodeStatistics miscounts same-step autoreset envs (heldout's Procgen vector env), so it gets a
# venv of its own: make test-minihack (docs/minihack.md).
EXTRAS ?= dev,ray,tune
# Test files or pytest options for make test (default: the whole default suite).
TESTS ?=
MINIHACK_VENV ?= .venv-minihack
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-all test-minihack lint bench install clean

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
	$(BIN)/python -m pytest -q $(TESTS)

## make test-minihack: the MiniHack family's tests in $(MINIHACK_VENV) (heldout with the minihack extra;
## Linux, CPython 3.11 or 3.12)
test-minihack:
	$(MAKE) test VENV=$(MINIHACK_VENV) EXTRAS=dev,minihack \
		TESTS="tests/envs/test_minihack.py tests/protocol/test_minihack_protocol.py tests/envs/test_registry_envs.py -k minihack"

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "not gpu"

lint: $(STAMP)
	$(BIN)/ruff check heldout tests benchmarks
	$(BIN)/ruff format --check heldout tests benchmarks

bench: $(STAMP)
	$(BIN)/heldout bench throughput

clean:
	rm -rf $(VENV) $(MINIHACK_VENV) build *.egg-info
