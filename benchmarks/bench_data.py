"""`make bench-data`: images/s of the data path alone, per dataset and mode; writes benchmarks/data.md.

Each measurement builds the DataModule from the app's own configs (conf/data/*.yaml), iterates its training loader
for a fixed number of batches after a short warm-up, and includes the batch-wise resize and normalisation
(`on_after_batch_transfer`), so both paths end at the same float batches the model receives.
"""

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import hydra
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

import src  # noqa: F401  (registers the config resolvers)
from src.data.base import ImageDataModule
from src.data.synthetic import write_cifar10

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def datamodule(name: str, overrides: list[str]) -> ImageDataModule:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"data={name}", "model=dcgan", *overrides])
    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def endless(dm: ImageDataModule, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches as the model gets them, epoch after epoch (a small folder has few batches per epoch)."""
    dm.trainer = SimpleNamespace(global_rank=0, world_size=1, strategy=SimpleNamespace(root_device=device))
    loader = dm.train_dataloader()
    for epoch in range(10**6):
        loader.sampler.set_epoch(epoch)
        for images, labels in loader:
            yield dm.on_after_batch_transfer((images.to(device), labels.to(device)), 0)


def images_per_second(dm: ImageDataModule, batches: int, warmup: int, repeats: int, device: torch.device) -> float:
    """The best of `repeats` timed runs of `batches` batches: the CPU is shared, the best run is the least disturbed."""
    stream = endless(dm, device)
    for _ in range(warmup):  # worker start-up and first-call costs are not the steady state
        next(stream)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best = 0.0
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(batches):
            images, _ = next(stream)
        sync()
        best = max(best, batches * images.size(0) / (time.perf_counter() - start))
    return best


def max_difference(fast: ImageDataModule, per_item: ImageDataModule, batches: int = 10) -> float:
    """Max |fast - per-item| over the first batches of epoch 0 (both paths draw the same images in the same order)."""
    cpu = torch.device("cpu")
    pairs = zip(endless(fast, cpu), endless(per_item, cpu), strict=False)
    worst = 0.0
    for _, ((x_fast, y_fast), (x_item, y_item)) in zip(range(batches), pairs, strict=False):
        assert torch.equal(y_fast, y_item), "the two paths drew different images"
        worst = max(worst, (x_fast - x_item).abs().max().item())
    return worst


def write_folder(root: Path, n: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        (root / f"class_{i % 4}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f"class_{i % 4}/{i}.jpg")
    return root


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data", help="where MNIST / Fashion-MNIST raw files are (or go)")
    parser.add_argument("--datasets", default="mnist,fashion_mnist,cifar10,folder")
    parser.add_argument("--batches", type=int, default=100, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement; the best is reported")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--folder-images", type=int, default=2000)
    parser.add_argument("--device", default="cpu", help="where batches end up (cuda: the in-memory data lives there)")
    parser.add_argument("--out", default="benchmarks/data.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    common = [f"data.batch_size={args.batch_size}", f"model.image_size={args.image_size}"]
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        sources = {  # (what the table says, overrides made when the dataset is measured)
            "mnist": ("real files", lambda: [f"paths.data_dir={args.data_dir}"]),
            "fashion_mnist": ("real files (Debian package)", lambda: [f"paths.data_dir={args.data_dir}"]),
            "cifar10": ("synthetic: 50,000 random images in the real pickle format (CIFAR-10 is not available here)",
                        lambda: [f"paths.data_dir={write_cifar10(Path(tmp), per_batch=10_000).parent}",
                                 "data.verify_checksums=false"]),
            "folder": (f"synthetic: {args.folder_images} random 96x96 RGB JPEGs in 4 class folders",
                       lambda: [f"data.path={write_folder(Path(tmp) / 'images', args.folder_images, 96)}"]),
        }
        for name in args.datasets.split(","):
            source, make_overrides = sources[name]
            overrides = make_overrides()
            modes = ["false"] if name == "folder" else ["true", "false"]
            built = {m: datamodule(name, [*common, *overrides, *([] if name == "folder" else [f"data.in_memory={m}"])])
                     for m in modes}
            timing = (args.batches, args.warmup, args.repeats, device)
            speed = {m: images_per_second(dm, *timing) for m, dm in built.items()}
            diff = max_difference(built["true"], built["false"]) if "true" in built else None
            for m in modes:
                ratio = f"{speed['true'] / speed['false']:.1f}x" if m == "true" else ""
                label = "in memory (fast)" if m == "true" else f"per item ({built[m].num_workers} workers)"
                rows.append((name, source, label, f"{speed[m]:,.0f}", ratio,
                             f"{diff:.5f}" if diff is not None and m == "true" else ""))
                print(rows[-1], flush=True)
    loads = f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    write_report(Path(args.out), rows, args, device, loads)


def write_report(path: Path, rows: list[tuple], args: argparse.Namespace, device: torch.device, loads: str) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        "# Data path throughput",
        "",
        f"- command: `make bench-data` = `{' '.join(['python -m benchmarks.bench_data', *sys.argv[1:]])}`",
        f"- machine: {cores} CPU cores (nproc), {cpu_model()}; batches on `{device}`; torch {torch.__version__}, "
        f"{torch.get_num_threads()} intra-op threads; 1-minute load average {loads} (other jobs share the CPU)",
        f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
        f"- setting: model size {args.image_size}, batch {args.batch_size}; per measurement {args.warmup} warm-up "
        f"batches, then the best of {args.repeats} timed runs of {args.batches} batches; the data path alone "
        "(no model), including the batch-wise resize/normalise",
        "- max |Δ|: largest absolute difference between the in-memory and per-item batches (same images, same "
        "order; pixel values in [-1, 1], one 8-bit level = 2/255 = 0.00784), over the first 10 batches",
        "",
        "| dataset | source | mode | images/s | fast / per-item | max abs diff |",
        "| --- | --- | --- | ---: | ---: | ---: |",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
    ]
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
