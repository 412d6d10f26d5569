"""The five design architectures. Every generator maps (N, z_dim) noise to (N, C, S, S) images in
[-1, 1]; every discriminator maps such images to (N,) logits (no sigmoid: losses work on logits)."""
