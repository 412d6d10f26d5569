"""The GAN itself: the LightningModule with its adversarial step, the losses, the EMA generator, sampling."""
