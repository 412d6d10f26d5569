"""`make bench-ema`: does the EMA generator help? Scores one run's raw G, its EMA with the BatchNorm statistics
copied from G (how the EMA sampled before), and its EMA with statistics recomputed for its own weights (how it
samples now), with the same metrics, samples and noise. Writes the "EMA" section of benchmarks/quality.md.
Run: python -m benchmarks.bench_ema --run outputs/<date>/<time> [--samples 10000]"""

import argparse
import copy
import datetime
from pathlib import Path

import torch
from torch import nn

from benchmarks.bench_data import cpu_model
from benchmarks.sections import write_section
from src.core.instantiate import instantiate
from src.core.layout import RunFolder
from src.metrics.evaluator import build_evaluator
from src.run.checkpoints import load_run_config
from src.run.compose import compose_config

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## EMA or raw generator"


def variants(run: Path) -> dict[str, nn.Module]:
    """The three generators of the run's last checkpoint, rebuilt through the GAN module the run configured."""
    cfg = load_run_config(run)
    gan = instantiate(cfg.model)
    gan.load_state_dict(torch.load(RunFolder(run).last_checkpoint, map_location="cpu", weights_only=True)["state_dict"])
    copied = copy.deepcopy(gan.ema.module)
    for kept, live in zip(copied.buffers(), gan.generator.buffers(), strict=True):
        kept.copy_(live)
    gan.recompute_ema_statistics()
    return {"raw G": gan.generator, "EMA, statistics copied from G": copied,
            "EMA, statistics recomputed (now)": gan.ema.module}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished run folder of src.train")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "quality.md"))
    parser.add_argument("--note", default="", help="a line on how the run was made (command, wall time)")
    args = parser.parse_args()
    run = Path(args.run)
    cfg = compose_config("evaluate", [f"ckpt_path={run}", f"num_samples={args.samples}"])
    evaluator = build_evaluator(instantiate(cfg.metrics), instantiate(load_run_config(run).data), torch.device("cpu"))
    z_dim = int(load_run_config(run).model.z_dim)
    rows = {name: evaluator.evaluate(g.eval(), z_dim, args.samples) for name, g in variants(run).items()}
    metrics = list(next(iter(rows.values())))
    lines = [
        SECTION, "",
        f"- command: `python -m benchmarks.bench_ema --run {args.run} --samples {args.samples}`",
        f"- machine: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"date {datetime.date.today().isoformat()}",
        f"- {args.samples} samples of each generator from the same noise; extractor: "
        f"{evaluator.extractor.description}; reference: the training split",
        *([f"- run: {args.note}"] if args.note else []), "",
        "| generator | " + " | ".join(metrics) + " |",
        "| --- |" + " ---: |" * len(metrics),
        *(f"| {name} | " + " | ".join(f"{values[m]:.4g}" for m in metrics) + " |" for name, values in rows.items()),
        "",
    ]
    section = "\n".join(lines)
    write_section(Path(args.out), SECTION, section)
    print(section)


if __name__ == "__main__":
    main()
