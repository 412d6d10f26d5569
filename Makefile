# `make install` once (idempotent: re-runs pip only when pyproject.toml changed), then train/test/generate.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
ARGS ?=

.PHONY: install train test lint generate tensorboard bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,sweeps]'
	touch $(STAMP)

train: install  ## the default job: dcgan on MNIST, ~10 min on 2 CPU cores; extra overrides via ARGS="..."
	$(PY) -m src.train $(ARGS)

test: install
	$(PY) -m pytest -q $(ARGS)

lint: install
	$(VENV)/bin/ruff check src tests

generate: install  ## make generate ARGS="ckpt_path=outputs/<date>/<time> num_samples=64"
	$(PY) -m src.generate $(ARGS)

bench: install  ## training throughput, project vs plain PyTorch -> benchmarks/train.md
	PYTHONPATH=. $(PY) benchmarks/bench_train.py

tensorboard: install
	$(VENV)/bin/tensorboard --logdir outputs

clean:
	rm -rf .pytest_cache .ruff_cache src/__pycache__ tests/__pycache__
