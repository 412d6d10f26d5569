"""A run's life around the GAN: CLI plumbing and one-line errors, config checks, the run folder's layout,
checkpoints (atomic writes, reading, resuming), launch checks and the sweep summary."""
