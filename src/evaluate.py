"""Measure a generator with one protocol:
  python -m src.evaluate ckpt_path=<ckpt or run folder> num_samples=10000   # a generator trained here
  python -m src.evaluate samples=<file.npz> data=<dataset>                  # images made anywhere

Prints the protocol (extractor, sample count, reference split, resize) and a table of metric, value, extractor,
samples, reference and resize; writes the same rows as JSON (metrics.json next to the checkpoint, or
<name>_metrics.json next to the samples)."""

import json
import logging
import sys
from datetime import datetime
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.table import Table

from src.core.atomic_io import WriteFailed, atomic_write
from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.data.folder import store_dir as folder_store
from src.metrics.evaluator import Evaluator, build_evaluator
from src.metrics.registry import METRICS
from src.metrics.samples_file import channels_first, read_samples, sample_labels
from src.metrics.settings import MetricSettings
from src.run.checkpoints import load_generator
from src.run.cli import pick_device, refuse_unknown_keys, run_cli
from src.run.compose import group_options

log = logging.getLogger(__name__)

COLUMNS = ("metric", "value", "extractor", "samples", "reference", "resize")


def print_table(report: dict) -> None:
    table = Table(title=report["title"])
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("value", "samples") else "left")
    for row in report["rows"]:
        counts = row["metric"].startswith(("classes_covered", "classes_balanced"))
        value = f"{row['value']:.0f}" if counts else f"{row['value']:.4g}"
        table.add_row(row["metric"], value, row["extractor"], str(row["samples"]), row["reference"], row["resize"])
    # Piped into a file or a log, rich would wrap at 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(report["protocol"], soft_wrap=True)
    console.print(table)


def check_source(cfg: DictConfig) -> None:
    """Exactly one of ckpt_path and samples; data= and use_ema= only where they mean something."""
    if cfg.ckpt_path and cfg.samples:
        raise UserError(f"ckpt_path={cfg.ckpt_path} and samples={cfg.samples} are both set: measure one of them")
    if not cfg.ckpt_path and not cfg.samples:
        raise UserError("nothing to measure: give ckpt_path=<run folder or .ckpt> (a generator trained here) or "
                        "samples=<file.npz> data=<dataset> (images made anywhere)")
    if cfg.ckpt_path and cfg.get("data") is not None:
        raise UserError("data= is for samples=: a checkpoint is measured against its own run's dataset (data_dir= "
                        "points at another copy of it)")
    if cfg.samples and cfg.get("data") is None:
        raise UserError(f"samples={cfg.samples} needs the dataset to measure against: add data=<name>, one of "
                        f"{', '.join(group_options('data'))} (e.g. data=mnist)")
    if cfg.samples and cfg.use_ema is not None:
        raise UserError("use_ema is for ckpt_path=: drop it with samples=")


# What a measurement returns: the evaluator, the values, the sample count, the datamodule, and where the samples came
# from (the JSON's first keys).
Measured = tuple[Evaluator, dict[str, float], int, object, dict]


def measure_samples(cfg: DictConfig, device: torch.device) -> Measured:
    path = Path(cfg.samples)
    images, labels = read_samples(path)
    images = channels_first(images, path)
    data_cfg = cfg.data
    channels, size = images.shape[1], images.shape[2]
    if data_cfg.channels != channels:
        raise UserError(f"samples={path} holds {channels}-channel images but the dataset is read with "
                        f"data.channels={data_cfg.channels}: add data.channels={channels} (the real images are "
                        "converted the same way) or pass images of the dataset's kind")
    if data_cfg.image_size not in (None, size):
        raise UserError(f"samples={path} holds {size}x{size} images but data.image_size={data_cfg.image_size}: drop "
                        "data.image_size (the real images are resized to the samples' size; samples never are)")
    with open_dict(data_cfg):
        data_cfg.image_size = size
    datamodule = instantiate(point_at(data_cfg, cfg.data_dir))
    count = min(int(cfg.num_samples), len(images))
    settings: MetricSettings = instantiate(cfg.metrics, num_samples=count)
    evaluator = build_evaluator(settings, datamodule, device)
    values = evaluator.evaluate_images(torch.from_numpy(images[:count]), sample_labels(labels, count, path))
    source = {"samples": str(path), "images_in_file": len(images),
              "title": f"{count} images of {path}" + (f" (the first of {len(images)})" if count < len(images) else "")}
    return evaluator, values, count, datamodule, source


def measure_checkpoint(cfg: DictConfig, device: torch.device) -> Measured:
    generator, run_cfg, weights, is_ema = load_generator(cfg.ckpt_path, cfg.use_ema)
    datamodule = instantiate(point_at(run_cfg.data, cfg.data_dir))
    settings: MetricSettings = instantiate(cfg.metrics)
    evaluator = build_evaluator(settings, datamodule, device)
    count = int(cfg.num_samples)
    values = evaluator.evaluate(generator.to(device), int(run_cfg.model.z_dim), count)
    generator_kind = "EMA" if is_ema else "raw"
    return evaluator, values, count, datamodule, {"checkpoint": str(weights), "generator": generator_kind,
                                                  "title": f"{generator_kind} generator of {weights}"}


def point_at(data_cfg: DictConfig, data_dir: str | None) -> DictConfig:
    """The data config with data_dir= applied: a dataset's files, classifiers/ and metrics_cache/ are there; an image
    folder's images stay at its data.path, and its classifier and statistics are looked up under data_dir."""
    if data_dir:
        with open_dict(data_cfg):
            if "store_dir" in data_cfg:
                data_cfg.store_dir = folder_store(data_dir, data_cfg.path)
            else:
                data_cfg.data_dir = data_dir
    return data_cfg


def protocol(evaluator: Evaluator, datamodule, count: int) -> tuple[str, tuple[str, str]]:
    """(the protocol line, (the real images' resize, the extractor's)): what a reader needs to compare two numbers."""
    settings, ref, extractor = evaluator.settings, evaluator.reference, evaluator.extractor
    size, channels = datamodule.image_size, datamodule.channels
    resize = (f"real to {size}x{size} as in training", f"extractor: {extractor.resize}")
    parts = [f"extractor {extractor.description}", f"{count} samples ({size}x{size}x{channels})",
             f"reference {datamodule.name} {settings.split} ({ref.num_images} images)",
             f"resize: real images to {size}x{size} as in training, samples as made, extractor: {extractor.resize}"]
    sizes = evaluator.sizes(count)
    described = {metric: names for metric, names in settings.names_by_metric().items()
                 if METRICS[metric].in_protocol is not None}
    subsets = [f"{metric.upper()} on {sizes[names[0]][0]} samples vs {sizes[names[0]][1]} real"
               for metric, names in described.items()]
    subsets += [note for note in (METRICS[metric].in_protocol(settings) for metric in described) if note]
    return "protocol: " + "; ".join(parts + subsets), resize


def evaluate(cfg: DictConfig) -> dict:
    check_source(cfg)
    device = pick_device(cfg.device)
    measure = measure_samples if cfg.samples else measure_checkpoint
    evaluator, values, count, datamodule, source = measure(cfg, device)
    line, resize = protocol(evaluator, datamodule, count)
    sizes, ref = evaluator.sizes(count), evaluator.reference

    def reference(real: int | None) -> str:
        if real is None:
            return "none"
        share = f"{real} images" if real == ref.num_images else f"{real} of {ref.num_images} images"
        return f"{datamodule.name} {evaluator.settings.split} ({share})"

    report = source | {
        "date": datetime.now().isoformat(timespec="seconds"),
        "protocol": line,
        "rows": [{"metric": name, "value": value, "extractor": evaluator.extractor.description,
                  "samples": sizes[name][0], "reference": reference(sizes[name][1]),
                  "resize": "; ".join(resize if sizes[name][1] is not None else resize[1:])}  # IS: no real images
                 for name, value in values.items()],
    }
    print_table(report)
    write_report(report, cfg)
    return report


def write_report(report: dict, cfg: DictConfig) -> Path:
    """The JSON beside what was measured; when that folder can't be written (a read-only run folder or dataset),
    in the current folder instead, so that minutes of measuring are never lost to it. output= is written or fails."""
    data = json.dumps(report, indent=2).encode()
    if cfg.output:
        return say_wrote(atomic_write(Path(cfg.output), lambda f: f.write(data)))
    if cfg.samples:
        out = Path(cfg.samples).with_name(f"{Path(cfg.samples).stem}_metrics.json")
        here = Path.cwd() / out.name
    else:
        weights = Path(report["checkpoint"])
        out = weights.parent / ("metrics_raw.json" if cfg.use_ema is False else "metrics.json")
        run = weights.parent.parent if weights.parent.name == "checkpoints" else weights.parent
        here = Path.cwd() / f"{run.name}_{out.name}"
    try:
        return say_wrote(atomic_write(out, lambda f: f.write(data)))
    except WriteFailed as err:
        if here.resolve() == out.resolve():
            raise
        wrote = atomic_write(here, lambda f: f.write(data))
        log.warning(f"{err.what}: wrote {wrote} instead (output=<file> picks the place)")
        return wrote


def say_wrote(path: Path) -> Path:
    log.info(f"wrote {path}")
    return path


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_cli(evaluate, cfg)


if __name__ == "__main__":
    refuse_unknown_keys("evaluate", sys.argv[1:])
    main()
