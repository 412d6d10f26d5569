"""The best plain PyTorch loop for the project's job, the baseline of `make bench` and `make bench-gpu`: the same
networks (built from the project's model configs), the same loss functions, MNIST in memory, written as a user who
knows PyTorch well would: channels_last, fused Adam, the whole dataset resized and normalised once up front (on the
training device), one generator forward per batch (the D step's fake batch reused for the G step, as
pytorch/examples' dcgan does), D frozen in the G step, no logging, no EMA, no checkpoints; on a GPU also cuDNN's
autotuner (cudnn.benchmark), TF32 matrix products and, with --precision bf16, bf16 autocast around the forwards.
--cuda-graph: the same step recorded once as one CUDA graph (D step + G step, noise drawn inside it, Adam with
capturable state) and replayed every batch, each batch copied into a fixed buffer first.
Run as a process of its own: python -m benchmarks.plain_loop --model dcgan --batches 330
On a GPU, timed in the process: python -m benchmarks.plain_loop --device cuda --batches 250 --time-from 50"""

import argparse
import contextlib
import time
from collections.abc import Callable

import torch
from torchvision.datasets import MNIST

from src.core.instantiate import instantiate
from src.data.batch_transform import BatchTransform
from src.run.compose import compose_config

GRAPH_WARMUP = 3  # eager batches on a side stream before capture: cuDNN picks kernels, Adam creates its state
Step = Callable[[torch.Tensor, torch.Tensor], None]  # (real images, noise) -> one trained batch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--batches", type=int, required=True)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32", help="bf16: bf16 autocast")
    parser.add_argument("--batch-size", type=int, help="default: the config's data.batch_size (64)")
    parser.add_argument("--cuda-graph", action="store_true", help="replay the step as one CUDA graph per batch")
    parser.add_argument("--time-from", type=int, help="print ms/batch over batches K..end (device drained at both)")
    parser.add_argument("overrides", nargs="*", help="model overrides, e.g. model.generator.width=64")
    args = parser.parse_args()
    if args.cuda_graph and not args.device.startswith("cuda"):
        parser.error("--cuda-graph needs --device cuda")
    first = GRAPH_WARMUP + 1 if args.cuda_graph else 0  # the capture itself is not a training batch's time
    if args.time_from is not None and not first <= args.time_from < args.batches:
        parser.error(f"--time-from must be in {first}..{args.batches - 1}")
    return args


def load_images(cfg, device: torch.device) -> torch.Tensor:
    raw = MNIST(cfg.paths.data_dir, train=True).data.unsqueeze(1).to(device)  # uint8, N x 1 x 28 x 28
    resize = BatchTransform(int(cfg.model.image_size), int(cfg.model.channels))
    return torch.cat([resize(chunk) for chunk in raw.split(4096)]).contiguous(memory_format=torch.channels_last)


def make_step(cfg, device: torch.device, precision: str, capturable: bool) -> Step:
    """One batch: D step on real and G(z), then G step through the frozen D on the same fake batch."""
    generator, discriminator = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    generator, discriminator = (m.to(device, memory_format=torch.channels_last) for m in (generator, discriminator))
    loss = instantiate(cfg.loss)
    betas = tuple(cfg.model.betas)
    adam = {"betas": betas, "fused": True, **({"capturable": True} if capturable else {})}
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.model.lr_g, **adam)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.model.lr_d, **adam)

    def forwards():  # a graph must not reuse casts autocast cached before its capture: no cache when captured
        if precision == "32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=not capturable)

    def step(real: torch.Tensor, z: torch.Tensor) -> None:
        with forwards():
            fake = generator(z)
            d_loss = loss.discriminator(discriminator(real), discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        discriminator.requires_grad_(False)  # no weight gradients for D in the G step
        with forwards():
            g_loss = loss.generator(discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        discriminator.requires_grad_(True)

    return step


class GraphedStep:
    """The step as one CUDA graph: warm-ups on a side stream, then one capture, then a replay per batch. Each batch
    is copied into `real`, the buffer the graph reads; the noise is drawn inside the graph."""

    def __init__(self, step: Step, real: torch.Tensor, z_dim: int) -> None:
        self.step, self.real, self.z_dim = step, real, z_dim
        self.warmup_left = GRAPH_WARMUP
        self.graph: torch.cuda.CUDAGraph | None = None

    def body(self) -> None:
        self.step(self.real, torch.randn(len(self.real), self.z_dim, device=self.real.device))

    def __call__(self, batch: torch.Tensor) -> None:
        self.real.copy_(batch)
        if self.warmup_left:
            self.warmup_left -= 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.body()
            torch.cuda.current_stream().wait_stream(side)
            return
        if self.graph is None:
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):  # records without running: the replay below trains on this batch
                self.body()
        self.graph.replay()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    args = parse_args()
    cfg = compose_config("train", [f"model={args.model}", *args.overrides])
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN time its kernels once
        torch.set_float32_matmul_precision("high")  # TF32 matrix products, as cuDNN's convolutions already use
    torch.manual_seed(0)
    step = make_step(cfg, device, args.precision, capturable=args.cuda_graph)
    images = load_images(cfg, device)
    batch, z_dim = args.batch_size or int(cfg.data.batch_size), int(cfg.model.z_dim)
    if args.cuda_graph:
        train_on = GraphedStep(step, torch.empty_like(images[:batch]), z_dim)
    else:
        def train_on(real: torch.Tensor) -> None:
            step(real, torch.randn(batch, z_dim, device=device))

    order = torch.randperm(len(images), device=device)
    per_epoch = len(images) // batch
    start = None
    for i in range(args.batches):
        if i == args.time_from:
            synchronize(device)
            start = time.perf_counter()
        if i and i % per_epoch == 0:
            order = torch.randperm(len(images), device=device)
        train_on(images[order[(i % per_epoch) * batch:(i % per_epoch + 1) * batch]])
    synchronize(device)
    if start is not None:
        timed = args.batches - args.time_from
        seconds = time.perf_counter() - start
        print(f"plain loop: {timed} batches of {batch} timed from batch {args.time_from}: "
              f"{seconds / timed * 1e3:.3f} ms/batch, {timed * batch / seconds:.1f} images/s")


if __name__ == "__main__":
    main()
