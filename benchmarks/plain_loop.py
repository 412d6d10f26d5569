"""The best plain PyTorch loop for the project's job, the baseline of `make bench`: the same networks (built from the
project's model configs), the same loss functions, MNIST in memory, written as a user who knows PyTorch well would:
channels_last, fused Adam, the whole dataset resized and normalised once up front, one generator forward per batch
(the D step's fake batch reused for the G step, as pytorch/examples' dcgan does), D frozen in the G step, no
logging, no EMA, no checkpoints.
Run as a process of its own: python -m benchmarks.plain_loop --model dcgan --batches 330"""

import argparse

import torch
from torchvision.datasets import MNIST

from src.data.batch_transform import BatchTransform
from src.run.cli import instantiate
from src.run.compose import compose_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--batches", type=int, required=True)
    parser.add_argument("overrides", nargs="*", help="model overrides, e.g. model.generator.width=64")
    args = parser.parse_args()
    cfg = compose_config("train", [f"model={args.model}", *args.overrides])
    torch.manual_seed(0)
    generator, discriminator = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    generator, discriminator = (m.to(memory_format=torch.channels_last) for m in (generator, discriminator))
    loss = instantiate(cfg.loss)
    betas = tuple(cfg.model.betas)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.model.lr_g, betas=betas, fused=True)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.model.lr_d, betas=betas, fused=True)

    raw = MNIST(cfg.paths.data_dir, train=True).data.unsqueeze(1)  # uint8, N x 1 x 28 x 28
    resize = BatchTransform(int(cfg.model.image_size), int(cfg.model.channels))
    images = torch.cat([resize(chunk) for chunk in raw.split(4096)]).contiguous(memory_format=torch.channels_last)
    batch, z_dim = int(cfg.data.batch_size), int(cfg.model.z_dim)
    order = torch.randperm(len(images))
    per_epoch = len(images) // batch
    for i in range(args.batches):
        if i and i % per_epoch == 0:
            order = torch.randperm(len(images))
        real = images[order[(i % per_epoch) * batch:(i % per_epoch + 1) * batch]]
        fake = generator(torch.randn(batch, z_dim))
        d_loss = loss.discriminator(discriminator(real), discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        discriminator.requires_grad_(False)  # no weight gradients for D in the G step
        g_loss = loss.generator(discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        discriminator.requires_grad_(True)


if __name__ == "__main__":
    main()
