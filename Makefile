# `make install` once (idempotent: re-runs pip only when pyproject.toml changed), then train/test/generate.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
ARGS ?=
# A machine without an NVIDIA GPU: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu installs torch and
# torchvision from PyTorch's CPU-only index first (PyPI's Linux torch pulls ~3 GB of CUDA libraries).
TORCH_INDEX ?=

.PHONY: help install train test lint generate tensorboard readme-picture bench bench-data bench-metrics bench-ema bench-quality bench-default bench-backbones bench-alpha bench-budgets bench-mirror bench-gpu gpu-wheels data-fashion clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 24

install: $(STAMP)  ## create .venv and install the project with its dev, sweep and logger extras (no-op until pyproject.toml changes)

# compileall: src/'s bytecode, which a process started with PYTHONDONTWRITEBYTECODE=1 would compile at every start
# (~0.05 s of a run's start-up; an edited file is compiled again, in memory, as without it).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PY) -m pip install --quiet --disable-pip-version-check torch torchvision --index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,sweeps,loggers]'
	$(PY) -m compileall -q src
	touch $(STAMP)

train: install  ## the default job: dcgan on MNIST, 2000 batches, ~6 min on 2 CPU cores; extra overrides via ARGS="..."
	$(PY) -m src.train $(ARGS)

# One worker process per core (pytest-xdist; each computes on one thread, tests/conftest.py), and the slowest tests
# listed at the end. A single test, with prints and pdb: make test ARGS="-n 0 -s tests/test_x.py::test_y".
test: install  ## the test suite (offline, one worker per core); extra pytest flags via ARGS="..."
	$(PY) -m pytest -q -n auto --durations=15 $(ARGS)

lint: install  ## ruff over src, tests and benchmarks
	$(VENV)/bin/ruff check src tests benchmarks

generate: install  ## make generate ARGS="ckpt_path=outputs/<date>/<time> num_samples=64"
	$(PY) -m src.generate $(ARGS)

# README's picture and caption are this target's output: remake them when tests/test_readme_picture.py says the
# default run's trajectory changed, and commit the three files with that change.
readme-picture: install  ## make train's default run -> docs/default_run_samples.png, docs/default_run.json and README's caption (~6 min on 2 idle cores + evaluation)
	$(PY) -m benchmarks.readme_picture $(ARGS)

bench: install  ## training speed as users run it vs the best plain loop, start-up, fixed cost per batch (+ ARGS="--examples-dcgan <main.py>") -> benchmarks/train.md (~40 min)
	$(PY) -m benchmarks.bench_train $(ARGS)

bench-data: install  ## images/s of the data path per dataset and mode -> benchmarks/data.md; flags via ARGS="--help"
	$(PY) -m benchmarks.bench_data $(ARGS)

bench-metrics: install  ## seconds for the domain metrics on 10k samples -> benchmarks/metrics.md; ARGS="--run outputs/<date>/<time>"
	$(PY) -m benchmarks.bench_metrics $(ARGS)

bench-ema: install  ## raw G vs the EMA (G's or its own BatchNorm statistics) of one run -> benchmarks/quality.md; ARGS="--run outputs/<date>/<time>"
	$(PY) -m benchmarks.bench_ema $(ARGS)

bench-quality: install  ## domain FID/KID + class coverage per GAN objective at one budget -> benchmarks/quality.md (~40 min); needs make data-fashion or ARGS="--skip-folder"
	$(PY) -m benchmarks.bench_quality $(ARGS)

bench-default: install  ## the default run chosen by measurement: candidates x 2 seeds at make train's wall budget -> benchmarks/quality.md (~90 min); flags via ARGS="--help"
	$(PY) -m benchmarks.bench_default $(ARGS)

bench-backbones: install  ## ResNets vs DCGANs on MNIST, Fashion-MNIST and a 3,000-image folder at equal wall budgets -> benchmarks/quality.md (~60 min); needs make data-fashion
	$(PY) -m benchmarks.bench_backbones $(ARGS)

bench-alpha: install  ## transparent icons and a plain folder, trained before and after alpha compositing -> benchmarks/quality.md (~40 min); needs make data-fashion or ARGS="--rows icons"
	$(PY) -m benchmarks.bench_alpha $(ARGS)

bench-budgets: install  ## what a CPU budget buys: one default run on 3,000 colour icons in 4 classes, grids + fid_domain at 500/1,000/2,000 batches -> benchmarks/quality.md, docs/rgb_folder_budgets.png; ARGS="--train-minutes 40" caps it
	$(PY) -m benchmarks.bench_budgets $(ARGS)

bench-mirror: install  ## an RGB icon folder with and without data.mirror=true, 2 seeds -> benchmarks/quality.md + docs/mirror_grids.png (~40 min)
	$(PY) -m benchmarks.bench_mirror $(ARGS)

bench-gpu: install  ## on a CUDA GPU: project eager/captured vs the plain loop, start-up, compile check, 10k-sample evaluation -> benchmarks/gpu.md (<8 min)
	$(PY) -m benchmarks.bench_gpu $(ARGS)

gpu-wheels: install  ## the wheels bench-gpu needs on a GPU machine without network (Python 3.12) -> .whl/ (needs PyPI)
	PY=$(PY) bash benchmarks/gpu_wheels.sh

# Fashion-MNIST offline: Debian's package puts the four IDX .gz files in /usr/share/datasets/fashion-mnist,
# where data=fashion_mnist finds them (data.source_dir).
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
data-fashion:  ## install Debian's dataset-fashion-mnist (offline Fashion-MNIST)
	@command -v apt-get >/dev/null || { echo "no apt-get here: put the four Fashion-MNIST IDX .gz files in data/FashionMNIST/raw"; exit 1; }
	@apt-cache policy dataset-fashion-mnist | grep -q 'Candidate: [0-9]' || { echo "apt knows no dataset-fashion-mnist: run '$(strip $(SUDO) apt-get update)' and retry (the package is in Debian's main archive, e.g. bookworm)"; exit 1; }
	$(SUDO) apt-get install -y dataset-fashion-mnist

tensorboard: install  ## TensorBoard over outputs/ on http://localhost:6006
	$(VENV)/bin/tensorboard --logdir outputs

clean:  ## remove caches (pytest, ruff, __pycache__)
	rm -rf .pytest_cache .ruff_cache src/__pycache__ tests/__pycache__
