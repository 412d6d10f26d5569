"""Callbacks around a training run: checkpoints and exact resume, divergence stop, console lines, the logged scalars,
grids, GIFs, metrics and weights. They read the module through src/gan/contract.py."""
