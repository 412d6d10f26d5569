"""Callbacks that turn a training run into things a person looks at: console lines, grids, GIFs, weights."""
