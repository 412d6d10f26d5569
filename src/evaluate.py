"""Measure a trained generator: `python -m src.evaluate ckpt_path=<ckpt or run folder> num_samples=10000`.

Prints metric, value, extractor, samples and reference split as a table; writes the same rows as JSON next to
the checkpoint (metrics.json)."""

import json
import sys
from datetime import datetime
from pathlib import Path

import hydra
from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.table import Table

from src.metrics.evaluator import build_evaluator
from src.metrics.settings import MetricSettings
from src.run.atomic_io import atomic_write
from src.run.checkpoints import load_generator
from src.run.cli import instantiate, pick_device, run_cli


def print_table(report: dict) -> None:
    table = Table(title=f"{report['generator']} generator of {report['checkpoint']}")
    for column in ("metric", "value", "extractor", "samples", "reference"):
        table.add_column(column, justify="right" if column in ("value", "samples") else "left")
    for row in report["rows"]:
        value = f"{row['value']:.0f}" if row["metric"].startswith("classes_covered") else f"{row['value']:.4g}"
        table.add_row(row["metric"], value, row["extractor"], str(row["samples"]), row["reference"])
    # Piped into a file or a log, rich would wrap at 80 columns.
    (Console() if sys.stdout.isatty() else Console(width=160)).print(table)


def evaluate(cfg: DictConfig) -> dict:
    device = pick_device(cfg.device)
    generator, run_cfg, weights, is_ema = load_generator(cfg.ckpt_path, cfg.use_ema)
    settings: MetricSettings = instantiate(cfg.metrics)
    data_cfg = run_cfg.data
    if cfg.data_dir:
        with open_dict(data_cfg):
            data_cfg.data_dir = cfg.data_dir
    datamodule = instantiate(data_cfg)
    evaluator = build_evaluator(settings, datamodule, device)
    values = evaluator.evaluate(generator.to(device), int(run_cfg.model.z_dim), cfg.num_samples)

    ref = evaluator.reference
    reference = f"{datamodule.name} {settings.split} ({ref.num_images} images)"
    report = {
        "checkpoint": str(weights),
        "generator": "EMA" if is_ema else "raw",
        "date": datetime.now().isoformat(timespec="seconds"),
        "rows": [{"metric": name, "value": value, "extractor": evaluator.extractor.description,
                  "samples": int(cfg.num_samples), "reference": reference} for name, value in values.items()],
    }
    print_table(report)
    out = Path(cfg.output) if cfg.output else weights.parent / ("metrics_raw.json" if cfg.use_ema is False
                                                                else "metrics.json")
    atomic_write(out, lambda f: f.write(json.dumps(report, indent=2).encode()))
    print(f"wrote {out}")
    return report


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_cli(evaluate, cfg)


if __name__ == "__main__":
    main()
