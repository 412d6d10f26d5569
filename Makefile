# `make install` once (idempotent: re-runs pip only when pyproject.toml changed), then train/test/generate.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
ARGS ?=

.PHONY: install train test lint generate tensorboard bench bench-data bench-metrics data-fashion clean

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
	$(VENV)/bin/ruff check src tests benchmarks

generate: install  ## make generate ARGS="ckpt_path=outputs/<date>/<time> num_samples=64"
	$(PY) -m src.generate $(ARGS)

bench: install  ## training throughput, project vs plain PyTorch -> benchmarks/train.md
	$(PY) -m benchmarks.bench_train $(ARGS)

bench-data: install  ## images/s of the data path per dataset and mode -> benchmarks/data.md; flags via ARGS="--help"
	$(PY) -m benchmarks.bench_data $(ARGS)

bench-metrics: install  ## seconds for domain FID/KID/IS on 10k samples -> benchmarks/metrics.md; ARGS="--run outputs/<date>/<time>"
	$(PY) -m benchmarks.bench_metrics $(ARGS)

# Fashion-MNIST offline: Debian's package puts the four IDX .gz files in /usr/share/datasets/fashion-mnist,
# where data=fashion_mnist finds them (data.source_dir).
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
data-fashion:
	@command -v apt-get >/dev/null || { echo "no apt-get here: put the four Fashion-MNIST IDX .gz files in data/FashionMNIST/raw"; exit 1; }
	@apt-cache policy dataset-fashion-mnist | grep -q 'Candidate: [0-9]' || { echo "apt knows no dataset-fashion-mnist: run '$(strip $(SUDO) apt-get update)' and retry (the package is in Debian's main archive, e.g. bookworm)"; exit 1; }
	$(SUDO) apt-get install -y dataset-fashion-mnist

tensorboard: install
	$(VENV)/bin/tensorboard --logdir outputs

clean:
	rm -rf .pytest_cache .ruff_cache src/__pycache__ tests/__pycache__
