"""`make bench-data`: images/s of the data path alone, per dataset and mode; writes benchmarks/data.md.

Each measurement builds the DataModule from the app's own configs (conf/data/*.yaml), iterates its training loader
for a fixed number of batches after a short warm-up, and includes the batch-wise resize and normalisation
(`on_after_batch_transfer`), so both paths end at the same float batches the model receives.

`--train` (`make bench-data ARGS=--train`) instead times training as users run it on the same folder,
`python -m src.train model=mlp_gan data=folder data.path=<folder> max_batches=N` per item (`data.in_memory=false`)
against decoded (the default), every default on (logger, progress bar, checkpoints, grids, metrics); the modes take
turns run by run, and each run's own closing `[done]` line gives its training time. It writes the section
TRAIN_SECTION of benchmarks/data.md and keeps the rest.
"""

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
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
from benchmarks.sections import write_section
from src.core.atomic_io import human_size
from src.data import decoded_cache
from src.data.base import ImageDataModule
from src.data.synthetic import write_cifar10

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")
TRAIN_SECTION = "## Training as users run it: a folder per item against decoded"
DONE = re.compile(r"\[done\] (\d+) batches of max_batches=\d+, this session (?:(\d+) min )?(\d+) s, "
                  r"first batch ([\d.]+) s after the command")
TRAIN_MODES = {"false": "per item (data.in_memory=false, 2 workers)", "true": "decoded (default)"}


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


# Seconds between timed runs: per-item workers refill their prefetch queue (2 batches each) after a run, and would
# otherwise take the cores from the next mode's run.
PAUSE = 1.0


def timed(stream: Iterator[tuple[torch.Tensor, torch.Tensor]], batches: int, device: torch.device) -> float:
    """Images/s of `batches` batches from `stream`."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(batches):
        images, _ = next(stream)
    sync()
    return batches * images.size(0) / (time.perf_counter() - start)


def images_per_second(built: dict[str, ImageDataModule], batches: int, warmup: int, repeats: int,
                      device: torch.device) -> dict[str, float]:
    """Each mode's best of `repeats` timed runs of `batches` batches, the modes taking turns (repetitions side by
    side): the CPU is shared, so a busy moment hits every mode alike, and the best run is the least disturbed."""
    streams = {mode: endless(dm, device) for mode, dm in built.items()}
    for stream in streams.values():
        for _ in range(warmup):  # worker start-up and first-call costs are not the steady state
            next(stream)
    best = dict.fromkeys(streams, 0.0)
    for _ in range(repeats):
        for mode, stream in streams.items():
            best[mode] = max(best[mode], timed(stream, batches, device))
            time.sleep(PAUSE)
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
    """`n` random RGB JPEGs of size x size in 4 class folders."""
    rng = np.random.default_rng(0)
    for i in range(n):
        (root / f"class_{i % 4}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f"class_{i % 4}/{i}.jpg")
    return root


def decoded_folder(overrides: list[str], mapped: bool = False) -> tuple[ImageDataModule, float]:
    """data=folder in memory, and the seconds its setup took (a first run decodes; later runs load the cache);
    `mapped`: memory-mapped, as a cache larger than half the free memory is."""
    real = decoded_cache.fits_in_memory
    decoded_cache.fits_in_memory = (lambda size: False) if mapped else real
    try:
        start = time.perf_counter()
        dm = datamodule("folder", [*overrides, "data.in_memory=true"])
        return dm, time.perf_counter() - start
    finally:
        decoded_cache.fits_in_memory = real


def folder_modes(overrides: list[str], store: Path) -> tuple[dict[str, ImageDataModule], str]:
    """The folder per item, decoded in memory and memory-mapped; and a note: first-run decoding time, the time a
    later run takes to load the cache, and the cache's size."""
    overrides = [*overrides, f"paths.data_dir={store}"]
    _, first = decoded_folder(overrides)
    in_memory, later = decoded_folder(overrides)
    mapped, _ = decoded_folder(overrides, mapped=True)
    assert in_memory.in_memory and not in_memory.mapped and mapped.mapped, "the decoded cache was not used"
    size = sum(p.stat().st_size for p in store.rglob("*.npy"))
    note = (f"first run: decoded in {first:.1f} s ({in_memory.num_images / first:,.0f} img/s, "
            f"{decoded_cache.worker_count()} processes, including the readability check of each file); later runs "
            f"load it in {later:.2f} s; cache {human_size(size)} ({size:,} bytes)")
    per_item = datamodule("folder", [*overrides, "data.in_memory=false"])
    return {"true": in_memory, "mapped": mapped, "false": per_item}, note


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def train_once(folder: Path, in_memory: str, batches: int, work: Path) -> dict[str, float]:
    """One `python -m src.train model=mlp_gan data=folder ...` as a user types it (its store beside the runs): the
    process's wall seconds and what its closing line says (batches, training seconds, first batch)."""
    run = work / f"run_{in_memory}_{time.monotonic_ns()}"
    command = [sys.executable, "-m", "src.train", "model=mlp_gan", "data=folder", f"data.path={folder}",
               f"data.in_memory={in_memory}", f"max_batches={batches}", f"paths.data_dir={work / 'store'}",
               f"hydra.run.dir={run}"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    match = DONE.search(done.stdout + done.stderr)
    if done.returncode != 0 or match is None:
        sys.exit(f"{' '.join(command)} exited {done.returncode} without its [done] line:\n{done.stderr[-2000:]}")
    count, minutes, secs, first = match.groups()
    session = int(minutes or 0) * 60 + int(secs)
    return {"wall": wall, "session": session, "batches_per_s": int(count) / session, "first_batch": float(first)}


def train_runs(folder: Path, batches: int, repeats: int, work: Path) -> tuple[dict[str, list[dict]], dict]:
    """`repeats` runs of each mode, taking turns (the order flips every repetition, so neither mode always follows
    the other), after one untimed decoded run: it builds the cache, as a user's first run does (the folder was just
    written, so the page cache holds its files for the per-item runs)."""
    first = train_once(folder, "true", batches, work)
    runs: dict[str, list[dict]] = {mode: [] for mode in TRAIN_MODES}
    for k in range(repeats):
        for mode in (list(TRAIN_MODES) if k % 2 == 0 else list(TRAIN_MODES)[::-1]):
            runs[mode].append(train_once(folder, mode, batches, work))
            print(mode, {key: round(v, 2) for key, v in runs[mode][-1].items()}, flush=True)
    return runs, first


def spread(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def train_report(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(Path(tmp) / "images", args.folder_images, args.folder_size)
        runs, first = train_runs(folder, args.train_batches, args.repeats, Path(tmp))
    loads = f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    median = {mode: statistics.median(r["batches_per_s"] for r in rs) for mode, rs in runs.items()}
    rows = []
    for mode, rs in runs.items():
        ratio = f"{median[mode] / median['false']:.2f}x" if mode != "false" else ""
        rows.append(f"| {TRAIN_MODES[mode]} | {spread([r['batches_per_s'] for r in rs], 2)} | "
                    f"{spread([r['session'] for r in rs], 0)} | {spread([r['wall'] for r in rs], 1)} | "
                    f"{spread([r['first_batch'] for r in rs], 1)} | {ratio} |")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        TRAIN_SECTION, "",
        f"- command: `make bench-data ARGS=\"{' '.join(sys.argv[1:])}\"`; each run is `python -m src.train "
        f"model=mlp_gan data=folder data.path=<folder> data.in_memory=<true|false> max_batches={args.train_batches}` "
        "(every default on: TensorBoard logger, progress bar, checkpoints, sample grids, training metrics; "
        "mlp_gan's model.image_size=28, so both paths resize the 64 px images to 28 px)",
        f"- folder: {args.folder_images:,} random {args.folder_size}x{args.folder_size} RGB JPEGs in 4 class folders "
        "(the data-path rows' folder)",
        f"- machine: {cores} CPU cores (nproc), {cpu_model()}, CPU only; torch {torch.__version__}; "
        f"**shared with other engineers' jobs while it ran** (1-minute load average {loads}); date "
        f"{datetime.datetime.now().isoformat(timespec='minutes')}",
        f"- {args.repeats} timed runs per mode, the modes taking turns run by run (order flipped every repetition) so "
        "that load from other jobs hits both alike; before them one untimed decoded run, which decoded the folder "
        f"into its cache (its training took {first['session']} s against "
        f"{runs['true'][0]['session']} s for the first timed decoded run)",
        "- batches/s: the run's own closing line, `[done] N batches of max_batches=N, this session T s` (T: "
        "`trainer.fit`, so it includes loading the cache or starting the workers, whole seconds); process: the "
        "command's wall time, start-up and closing included; first batch: from the same line. Median (min-max)",
        "",
        "| mode | batches/s | training s (closing line) | process s | first batch s | decoded / per item |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows, "",
    ]
    write_section(Path(args.out), TRAIN_SECTION, "\n".join(lines))
    print("\n".join(lines))


LABELS = {"true": "in memory (fast)", "mapped": "memory-mapped (page cache warm)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data", help="where MNIST / Fashion-MNIST raw files are (or go)")
    parser.add_argument("--datasets", default="mnist,fashion_mnist,cifar10,folder")
    parser.add_argument("--batches", type=int, default=100, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement; the best is reported")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32, help="model size of the built-in datasets")
    parser.add_argument("--folder-images", type=int, default=3000)
    parser.add_argument("--folder-size", type=int, default=64, help="the folder's image size and model size")
    parser.add_argument("--device", default="cpu", help="where batches end up (cuda: the in-memory data lives there)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    parser.add_argument("--out", default="benchmarks/data.md")
    parser.add_argument("--train", action="store_true", help="time src.train on the folder per item and decoded "
                        "instead (the section 'Training as users run it')")
    parser.add_argument("--train-batches", type=int, default=150, help="max_batches of each --train run")
    args = parser.parse_args()
    if args.train:
        train_report(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows, notes = [], []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        sources = {  # (what the table says, overrides made when the dataset is measured)
            "mnist": ("real files", lambda: [f"paths.data_dir={args.data_dir}"]),
            "fashion_mnist": ("real files (Debian package)", lambda: [f"paths.data_dir={args.data_dir}"]),
            "cifar10": ("synthetic: 50,000 random images in the real pickle format (CIFAR-10 is not available here)",
                        lambda: [f"paths.data_dir={write_cifar10(Path(tmp), per_batch=10_000).parent}",
                                 "data.verify_checksums=false"]),
            "folder": (f"synthetic: {args.folder_images:,} random {args.folder_size}x{args.folder_size} RGB JPEGs in "
                       "4 class folders",
                       lambda: [f"data.path={write_folder(Path(tmp) / 'images', args.folder_images, args.folder_size)}"
                                ]),
        }
        for name in args.datasets.split(","):
            source, make_overrides = sources[name]
            size = args.folder_size if name == "folder" else args.image_size
            common = [f"data.batch_size={args.batch_size}", f"model.image_size={size}", *make_overrides()]
            if name == "folder":
                built, note = folder_modes(common, Path(tmp) / "store")
                notes.append(f"{name}: {note}")
            else:
                built = {m: datamodule(name, [*common, f"data.in_memory={m}"]) for m in ("true", "false")}
            speed = images_per_second(built, args.batches, args.warmup, args.repeats, device)
            diff = max_difference(built["true"], built["false"])
            batch_bytes = built["true"].channels * size * size  # bytes of one uint8 image at the model's size
            for m, dm in built.items():
                ratio = f"{speed[m] / speed['false']:.1f}x" if m != "false" else ""
                label = LABELS.get(m, f"per item ({dm.num_workers} workers)")
                rows.append((name, source, f"{size}x{size}x{dm.channels}", label, f"{speed[m]:,.0f}",
                             f"{speed[m] * batch_bytes / 1e6:,.1f}", ratio, f"{diff:.5f}" if m == "true" else ""))
                print(rows[-1], flush=True)
    loads = f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    write_report(Path(args.out), rows, notes, args, device, loads)


def write_report(path: Path, rows: list[tuple], notes: list[str], args: argparse.Namespace, device: torch.device,
                 loads: str) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        "# Data path throughput",
        "",
        f"- command: `make bench-data` = `{' '.join(['python -m benchmarks.bench_data', *sys.argv[1:]])}`",
        f"- machine: {cores} CPU cores (nproc), {cpu_model()}; batches on `{device}`; torch {torch.__version__}, "
        f"{torch.get_num_threads()} intra-op threads; 1-minute load average {loads} (other jobs share the CPU)",
        f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
        f"- setting: model size {args.image_size} ({args.folder_size} for the folder), batch {args.batch_size}; per "
        f"measurement {args.warmup} warm-up batches, then the best of {args.repeats} timed runs of {args.batches} "
        f"batches, a dataset's modes taking turns run by run (repetitions side by side, {PAUSE:.0f} s apart so that "
        "per-item workers refilling their prefetch queue do not slow the next run; a per-item run starts with up "
        "to 4 batches prefetched); the data path alone (no model), including the batch-wise resize/normalise",
        "- MB/s: images/s times the bytes of one uint8 image at the model's size, to compare datasets of other sizes",
        *[f"- {note}" for note in notes],
        "- max |Δ|: largest absolute difference between the in-memory and per-item batches (same images, same "
        "order; pixel values in [-1, 1], one 8-bit level = 2/255 = 0.00784), over the first 10 batches",
        "",
        "| dataset | source | size | mode | images/s | MB/s | fast / per-item | max abs diff |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
    ]
    old = path.read_text() if path.is_file() else ""
    kept = old[old.index(TRAIN_SECTION):] if TRAIN_SECTION in old else ""  # --train's section stays
    path.write_text("\n".join(lines) + ("\n" + kept if kept else ""))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
