"""The GAN itself: the LightningModule (module.py) and its adversarial step (step.py), its settings, the losses,
penalties and augmentations, the EMA generator, the running sum of what it logs, and sampling."""
