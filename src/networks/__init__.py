"""The networks: the five design architectures (mlp_gan, conv_gan, dcgan28, dcgan, dcgan64: one file each), the
ResNets (resnet.py), and what they share: weight init, spectral norm and the class-conditioning wrappers. Every
generator maps (N, z_dim) noise to (N, C, S, S) images in [-1, 1]; every discriminator maps such images to (N,)
logits (no sigmoid: losses work on logits)."""
