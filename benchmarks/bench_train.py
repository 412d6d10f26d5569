"""Images/s of a full GAN training step (D + G): the project through Lightning vs a plain PyTorch loop.

Both use the same networks (built from the same configs), the same batch size, the same losses and Adam settings,
and MNIST held in memory as uint8 (the plain loop resizes and normalises each batch itself, as the project's fast
data path does). Run: make bench  (or: python -m benchmarks.bench_train --models dcgan --batches 20)."""

import argparse
import json
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torchvision.datasets import MNIST

import src  # noqa: F401  (config resolvers)
from benchmarks.bench_data import cpu_model
from src.gan.ema import EMA
from src.gan.losses import discriminator_loss, generator_loss
from src.run.cli import instantiate
from src.run.compose import compose_config
from src.train import train

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["mlp_gan", "conv_gan", "dcgan28", "dcgan", "dcgan64"]
# Timed batches per model (--batches overrides): about 10-20 s of steps each on 2 CPU cores.
BATCHES = {"mlp_gan": 300, "conv_gan": 15, "dcgan28": 60, "dcgan": 40, "dcgan64": 4}


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


def plain_rate(model: str, batches: int, warmup: int, channels_last: bool = False, compiled: bool = False,
               fused: bool = False) -> float:
    """The same work written by hand: D step, G step, and the EMA update of G the project also does."""
    cfg = compose_config("train", [f"model={model}"])
    torch.manual_seed(0)
    generator, discriminator = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    ema = EMA(generator, float(cfg.model.ema_decay)) if cfg.model.ema_decay else None
    if channels_last:
        generator, discriminator = (m.to(memory_format=torch.channels_last) for m in (generator, discriminator))
    if compiled:
        generator.compile()
        discriminator.compile()
    betas = tuple(cfg.model.betas)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.model.lr_g, betas=betas, fused=fused or None)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.model.lr_d, betas=betas, fused=fused or None)
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
        if channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        fake = generator(torch.randn(batch, z_dim)).detach()
        d_loss = discriminator_loss(discriminator(real), discriminator(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(discriminator(generator(torch.randn(batch, z_dim))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if ema is not None:
            ema.update(generator)
    return batches * batch / (time.perf_counter() - start)


def machine() -> str:
    return f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, lightning {L.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", type=int, default=None, help="timed batches per model (default: BATCHES)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--options-models", default="mlp_gan,dcgan", help="models the options table measures")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "train.md"))
    args = parser.parse_args()
    rows, measured = [], {}
    for model in args.models.split(","):
        n = args.batches or BATCHES.get(model, 10)
        project, batch = lightning_rate(model, n, args.warmup, [])
        plain = plain_rate(model, n, args.warmup)
        measured[model] = project, plain
        rows.append(f"| {model} | {batch} | {n} | {project:.1f} | {plain:.1f} | {project / plain:.2f} |")
        print(rows[-1], flush=True)
    options = []
    for m in filter(None, args.options_models.split(",")):
        n, w = args.batches or BATCHES.get(m, 10), args.warmup
        base_project, base_plain = measured.get(m) or (lightning_rate(m, n, w, [])[0], plain_rate(m, n, w))

        def project(*overrides: str, m: str = m, n: int = n, w: int = w) -> float:
            return lightning_rate(m, n, w, list(overrides))[0]

        for what, rate, base in [
            ("project: model.channels_last=false", project("model.channels_last=false"), base_project),
            ("project: model.fused_adam=false", project("model.fused_adam=false"), base_project),
            ("project: model.compile=true", project("model.compile=true"), base_project),
            ("project: model.ema_decay=null (no EMA)", project("model.ema_decay=null"), base_project),
            ("plain loop: channels_last", plain_rate(m, n, w, channels_last=True), base_plain),
            ("plain loop: fused Adam", plain_rate(m, n, w, fused=True), base_plain),
        ]:
            options.append(f"| {m} | {what} | {rate:.1f} | {base:.1f} | {rate / base:.2f} |")
            print(options[-1], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    text = "\n".join([
        "# Training throughput: the project (Lightning) vs a plain PyTorch loop",
        "",
        f"- command: `make bench` = `python -m benchmarks.bench_train --models {args.models} "
        f"--batches {args.batches or '<per model, see BATCHES>'} --warmup {args.warmup} "
        f"--options-models {args.options_models}` (commit {commit})",
        f"- machine: {machine()}",
        f"- date: {date.today()}",
        "- images/s of full D + G steps (and the EMA update of G) on MNIST in memory, after the warm-up batches;"
        " CPU, fp32. The project runs `src.train` on its own configs with logging, checkpoints and the progress"
        " bar off; the plain loop is the same networks, losses, Adam hyper-parameters and EMA written by hand with"
        " PyTorch's defaults (NCHW, Adam's for-loop implementation on CPU), while the project runs its own defaults"
        " (channels_last, fused Adam). Single measurements on a shared 2-core VM: treat differences under ~8% as"
        " noise.",
        "",
        "| model | batch | timed batches | project img/s (a) | plain loop img/s (b) | ratio (a)/(b) |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        *(["## Options (each against its own baseline from the table above, measured by the same command)",
           "",
           "| model | option | img/s | baseline img/s | ratio |",
           "| --- | --- | --- | --- | --- |",
           *options,
           ""] if options else []),
    ])
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
