"""Images/s of a full GAN training step (D + G): the project through Lightning vs a plain PyTorch loop.

Both use the same networks (built from the same configs), the same batch size, the same losses and Adam settings,
and MNIST held in memory as uint8 (the plain loop resizes and normalises each batch itself, as the project's fast
data path does). Run: make bench  (or: python benchmarks/bench_train.py --models dcgan --batches 20)."""

import argparse
import json
import platform
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

import src  # noqa: F401  (config resolvers)
from src.cli import instantiate
from src.losses import discriminator_loss, generator_loss
from src.train import train
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["mlp_gan", "conv_gan", "dcgan28", "dcgan", "dcgan64"]


def lightning_rate(model: str, batches: int, warmup: int, extra: list[str]) -> tuple[float, int]:
    """The project's own `train` on its own configs, timed by the Throughput callback added through config."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "throughput.json"
        cfg = compose_config(
            "train",
            [f"model={model}", f"max_batches={batches + warmup}", "~logger", "~callbacks",
             "+trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false",
             "+callbacks.throughput._target_=src.callbacks.throughput.Throughput",
             f"+callbacks.throughput.warmup_batches={warmup}", f"+callbacks.throughput.out_file={result}", *extra],
            output_dir=Path(tmp),
        )
        train(cfg)
        return json.loads(result.read_text())["images_per_sec"], int(cfg.data.batch_size)


def plain_rate(model: str, batches: int, warmup: int, channels_last: bool = False, compiled: bool = False) -> float:
    cfg = compose_config("train", [f"model={model}"])
    torch.manual_seed(0)
    generator, discriminator = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    if channels_last:
        generator, discriminator = (m.to(memory_format=torch.channels_last) for m in (generator, discriminator))
    if compiled:
        generator.compile()
        discriminator.compile()
    betas = tuple(cfg.model.betas)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.model.lr_g, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.model.lr_d, betas=betas)
    from torchvision.datasets import MNIST

    images = MNIST(ROOT / "data", train=True).data.unsqueeze(1)  # uint8 N x 1 x 28 x 28
    size, batch, z_dim = int(cfg.model.image_size), int(cfg.data.batch_size), int(cfg.model.z_dim)
    order = torch.randperm(len(images))
    start = 0.0
    for i in range(warmup + batches):
        if i == warmup:
            start = time.perf_counter()
        real = images[order[i * batch:(i + 1) * batch]].float()
        if size != 28:
            real = F.interpolate(real, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        real = real / 127.5 - 1
        fake = generator(torch.randn(batch, z_dim)).detach()
        d_loss = discriminator_loss(discriminator(real), discriminator(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(discriminator(generator(torch.randn(batch, z_dim))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    return batches * batch / (time.perf_counter() - start)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, lightning {L.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "train.md"))
    args = parser.parse_args()
    rows = []
    for model in args.models.split(","):
        project, batch = lightning_rate(model, args.batches, args.warmup, [])
        plain = plain_rate(model, args.batches, args.warmup)
        rows.append(f"| {model} | {batch} | {project:.1f} | {plain:.1f} | {project / plain:.2f} |")
        print(rows[-1], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    text = "\n".join([
        "# Training throughput: the project (Lightning) vs a plain PyTorch loop",
        "",
        f"- command: `python benchmarks/bench_train.py --models {args.models} --batches {args.batches} "
        f"--warmup {args.warmup}` (commit {commit})",
        f"- machine: {machine()}",
        f"- date: {date.today()}",
        "- images/s of full D + G steps on MNIST (in memory), after the warm-up batches; CPU, fp32",
        "",
        "| model | batch | project img/s (a) | plain loop img/s (b) | ratio (a)/(b) |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
    ])
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
