"""The top floor beside the CLIs: a run's life around the GAN (CLI plumbing and exit codes, resuming, checking a
checkpoint fits, why a run stopped, its summary, launch checks and the sweep summary)."""
