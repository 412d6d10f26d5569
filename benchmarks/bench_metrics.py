"""`make bench-metrics`: seconds to evaluate the domain metrics (FID/KID/IS, class coverage, precision/recall/density/
coverage: conf/metrics/domain.yaml) on 10,000 samples of a trained run, on this machine.

Two timings through src.evaluate's own function: with the real statistics not cached yet (they are computed from
the whole training split and cached), then with the cache. The domain classifier must exist
(python -m src.train_classifier data=<the run's dataset>). Writes benchmarks/metrics.md.
Run: python -m benchmarks.bench_metrics --run outputs/<date>/<time> [--samples 10000]"""

import argparse
import datetime
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from benchmarks.bench_data import cpu_model
from src.core.instantiate import instantiate
from src.evaluate import evaluate
from src.metrics.extractors import load_extractor
from src.metrics.reference import reference_path
from src.run.compose import compose_config

ROOT = Path(__file__).resolve().parents[1]


def timed_evaluate(run: Path, samples: int) -> tuple[float, dict]:
    cfg = compose_config("evaluate", [f"ckpt_path={run}", f"num_samples={samples}", "device=cpu",
                                      f"output={ROOT / 'benchmarks' / '.bench_metrics.json'}"])
    start = time.perf_counter()
    report = evaluate(cfg)
    return time.perf_counter() - start, report


def clear_reference_cache(run: Path, samples: int) -> None:
    """Remove the cached real statistics this evaluation uses, so the first timing includes computing them."""
    run_cfg = OmegaConf.load(run / "config.yaml")
    cfg = compose_config("evaluate", [f"ckpt_path={run}", f"num_samples={samples}"])
    settings, datamodule = instantiate(cfg.metrics), instantiate(run_cfg.data)
    path = reference_path(datamodule, settings, load_extractor(settings, datamodule))
    path.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a run folder of src.train (its data config and generator)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "metrics.md"))
    args = parser.parse_args()
    run = Path(args.run)

    clear_reference_cache(run, args.samples)
    cold, report = timed_evaluate(run, args.samples)
    warm, _ = timed_evaluate(run, args.samples)
    (ROOT / "benchmarks" / ".bench_metrics.json").unlink(missing_ok=True)
    values = {row["metric"]: row["value"] for row in report["rows"]}
    reference = report["rows"][0]["reference"]
    lines = [
        "# Metrics benchmark: domain FID/KID/IS, class coverage, precision/recall/density/coverage of samples",
        "",
        f"- command: `python -m benchmarks.bench_metrics --run {args.run} --samples {args.samples}`",
        f"- machine: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, CPU only",
        f"- date: {datetime.date.today().isoformat()}",
        f"- extractor: {report['rows'][0]['extractor']}; reference: {reference}; {report['generator']} generator",
        "",
        "| real statistics | samples | seconds (sample G + features + every metric) |",
        "| --- | ---: | ---: |",
        f"| computed now, then cached | {args.samples} | {cold:.1f} |",
        f"| from the cache | {args.samples} | {warm:.1f} |",
        "",
        "Values of that evaluation: " + ", ".join(f"{k} = {v:.4g}" for k, v in values.items()),
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
