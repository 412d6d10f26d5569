"""`make bench-backbones`: the ResNet backbones against the DCGANs at equal wall-clock budgets -> benchmarks/quality.md,
section "ResNets against DCGANs".

Each model trains with its own defaults (`python -m src.train model=<m> data=<d>`, nothing else changed) on MNIST,
Fashion-MNIST and `--folder-images` Fashion-MNIST training images in an image folder, for the training time of
`--budget` dcgan batches (1000: half of today's `make train`): a model's budget is that x (dcgan's cost per batch /
its own), the cost per batch measured as in bench_default (CPU time of one-thread probes on MNIST, robust to other
jobs on the cores).
Each run is scored by `python -m src.evaluate ckpt_path=<run> num_samples=10000` (domain metrics at 32 px).
Run: python -m benchmarks.bench_backbones [--rows mnist:dcgan,fashion:resnet32_w64] [--budget 1000] [--reuse]
"""

import argparse
import datetime
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lightning
import torch

from benchmarks.bench_data import cpu_model
from benchmarks.bench_default import probe
from benchmarks.bench_quality import (
    FASHION_SOURCE,
    Result,
    ensure_classifier,
    folder_classifier,
    train_and_evaluate,
    write_fashion_folder,
)
from benchmarks.sections import write_section
from src.metrics.classifier import classifier_path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## ResNets against DCGANs at equal wall-clock budgets"
IMAGE_SIZE = 32  # every model here makes 32x32 images: the data is resized to it, the classifiers see it

MODELS: dict[str, tuple[str, list[str]]] = {
    "dcgan": ("dcgan", ["model=dcgan"]),
    "resnet32": ("resnet32", ["model=resnet32"]),
    "resnet32_w64": ("resnet32, widths 64", ["model=resnet32", "model.generator.width=64",
                                             "model.discriminator.width=64"]),
}
SHOWN = (("fid_domain", ".2f"), ("kid_domain", ".3f"), ("precision_domain", ".3f"), ("recall_domain", ".3f"),
         ("classes_balanced_domain", ".0f"), ("classes_covered_domain", ".0f"), ("class_kl_domain", ".3f"))


def datasets(names: list[str], work: Path, folder_images: int) -> dict[str, tuple[str, list[str]]]:
    """name -> (what the table says, data overrides), with each dataset's 32 px domain classifier in place."""
    logs = work / "logs"
    found: dict[str, tuple[str, list[str]]] = {}
    if "mnist" in names:
        ensure_classifier(["data=mnist", "model=dcgan"], classifier_path(ROOT / "data", "MNIST", IMAGE_SIZE, 1), logs)
        found["mnist"] = ("MNIST", ["data=mnist"])
    if {"fashion", "folder"} & set(names):
        if not (FASHION_SOURCE / "train-images-idx3-ubyte.gz").is_file():
            sys.exit(f"Fashion-MNIST rows need {FASHION_SOURCE}: run `make data-fashion`")
        fashion = classifier_path(ROOT / "data", "Fashion-MNIST", IMAGE_SIZE, 1)
        ensure_classifier(["data=fashion_mnist", "model=dcgan"], fashion, logs)
        if "fashion" in names:
            found["fashion"] = ("Fashion-MNIST", ["data=fashion_mnist"])
        if "folder" in names:
            images = work / "fashion_folder" / "images"
            if not images.is_dir():
                write_fashion_folder(images, folder_images)
            folder_classifier(images, logs, "dcgan", IMAGE_SIZE)  # Fashion-MNIST's: the images are its own
            found["folder"] = (f"{folder_images:,}-image folder",
                               ["data=folder", f"data.path={images}", "data.channels=1"])
    return found


def section(args: argparse.Namespace, plan: dict[str, tuple[int, float]], data: dict[str, tuple[str, list[str]]],
            results: list[tuple[str, str, Result]], minutes: float) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        SECTION, "",
        f"- command: `make bench-backbones ARGS=\"{' '.join(sys.argv[1:])}\"`; this invocation took {minutes:.0f} min",
        *(["- runs kept from earlier invocations (`--reuse`): the time above is this invocation's only"]
          if any(r.reused for _, _, r in results) else []),
        f"- machine: {cores} CPU cores, {cpu_model()}, CPU only; torch {torch.__version__}, lightning "
        f"{lightning.__version__}; date {datetime.date.today().isoformat()}",
        f"- budget: the training time of {args.budget} dcgan batches of 64 (half of today's `make train`) for every "
        "model: " + ", ".join(f"{MODELS[m][0]} {plan[m][0]} batches ({plan[m][1] * 1000:.0f} CPU ms/batch)"
                              for m in plan) + ". Cost per batch as in bench_default: CPU time of a one-thread run "
        f"of 10 + {args.probe} batches (`--probe`) minus one of 10, on MNIST; {args.jobs} scored runs at a time, "
        "1 thread each; seed 42",
        "- every model with its own defaults (`python -m src.train model=<m> data=<d> max_batches=<budget>`): dcgan "
        "trains BCE with BatchNorm in D, the resnets BCE with spectral norm in D (their default); images at 32 px",
        "- quality: `python -m src.evaluate ckpt_path=<run> num_samples=10000` on the dataset's 32 px domain "
        "classifier (the folder: Fashion-MNIST's, against the folder's own images); balanced = classes with at "
        "least half their real share, covered = a tenth",
        "",
        "| data | model | batches | fid_domain | kid_domain | precision | recall | balanced | covered | class KL "
        "| command |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for dataset, model, r in results:
        values = (" | ".join(format(r.metrics[key], digits) for key, digits in SHOWN) if r.status == "ok"
                  else r.status + " |" * (len(SHOWN) - 1))
        lines.append(f"| {data[dataset][0]} | {MODELS[model][0]} | {plan[model][0]} | {values} | `{r.command}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="mnist:dcgan,mnist:resnet32,mnist:resnet32_w64,fashion:dcgan,"
                        "fashion:resnet32_w64,folder:dcgan,folder:resnet32_w64",
                        help=f"dataset:model pairs; datasets mnist, fashion, folder; models {', '.join(MODELS)}")
    parser.add_argument("--budget", type=int, default=1000, help="dcgan batches whose training time every row gets")
    parser.add_argument("--folder-images", type=int, default=3000)
    parser.add_argument("--probe", type=int, default=20, help="batches a probe's long run has over its short one")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--reuse", action="store_true", help="keep runs (and probes) already measured")
    parser.add_argument("--work-dir", default=str(ROOT / "outputs" / "bench_backbones"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "quality.md"))
    args = parser.parse_args()
    rows = [tuple(row.split(":")) for row in args.rows.split(",")]
    if bad := [r for r in rows if len(r) != 2 or r[0] not in ("mnist", "fashion", "folder") or r[1] not in MODELS]:
        parser.error(f"unknown rows {bad}: dataset:model with datasets mnist, fashion, folder and models "
                     f"{', '.join(MODELS)}")
    models = list(dict.fromkeys(m for _, m in rows))
    work = Path(args.work_dir).resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = datasets(list(dict.fromkeys(d for d, _ in rows)), work, args.folder_images)

    saved = work / "budgets.json"
    plan = {k: tuple(v) for k, v in json.loads(saved.read_text()).items()} if args.reuse and saved.is_file() else {}
    for model in dict.fromkeys(["dcgan", *models]):
        if model not in plan:
            plan[model] = (0, probe(model, MODELS[model][1], args.probe, work))
            print(f"probe {model}: {plan[model][1] * 1000:.0f} CPU ms/batch", flush=True)
    plan = {m: (max(10, int(round(args.budget * plan["dcgan"][1] / cost / 10) * 10)), cost)
            for m, (_, cost) in plan.items()}
    saved.write_text(json.dumps(plan, indent=2))

    os.environ["OMP_NUM_THREADS"] = "1"
    jobs = rows
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda job: train_and_evaluate(
            Result(job[0], job[1], MODELS[job[1]][0],
                   [*MODELS[job[1]][1], *data[job[0]][1], f"max_batches={plan[job[1]][0]}"], ""),
            work / "runs" / f"{job[0]}_{job[1]}", args.samples, args.reuse), jobs))
    results = [(d, m, r) for (d, m), r in zip(jobs, done, strict=True)]
    (work / "results.json").write_text(json.dumps([vars(r) for _, _, r in results], indent=2))
    text = section(args, plan, data, results, (time.perf_counter() - start) / 60)
    write_section(Path(args.out), SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
