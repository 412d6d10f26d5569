"""`make bench-default`: the default run chosen by measurement -> benchmarks/quality.md, section "The default run".

Every candidate is today's `make train` (dcgan on MNIST, BCE, batch 64, Adam (0.5, 0.999) with lr_g 4e-4, lr_d 2e-4,
2000 batches) with one change, or a combination of changes, and every candidate gets the same wall-clock budget as
that default: a probe of each (the CPU time of a one-thread run of `--probe` + 10 batches minus that of 10 batches,
all candidates back to back, the median of `--probe-reps` rounds) gives its cost per batch, and its budget is the
default's batches times the default's cost per batch over its own (rounded to 50). CPU time rather than wall time, so
that other jobs on the cores don't skew the ratios. Budgets are in batches, so the scored runs themselves can share
the cores (`--jobs`) without changing what they compute. Each candidate trains with two seeds; each run is scored by
`python -m src.evaluate ckpt_path=<run> num_samples=10000` (domain metrics; the EMA generator where the run has one).
Run: python -m benchmarks.bench_default [--candidates default,diffaugment] [--seeds 42,43] [--jobs 2] [--reuse]
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lightning
import torch

from benchmarks.bench_data import cpu_model
from benchmarks.bench_quality import Result, ensure_classifier, last_line, train_and_evaluate
from benchmarks.sections import write_section
from src.metrics.classifier import classifier_path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SECTION = "## The default run, chosen by measurement"
DEFAULT_BATCHES = 2000  # today's make train (conf/train.yaml max_batches)

# name -> (what the table says, overrides on top of `make train`'s defaults)
CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "default": ("today's default (bce, batch 64, lr_g 4e-4)", []),
    "paper_lr": ("lr_g 2e-4 (DCGAN's; the default until 2026-12-05)", ["model.lr_g=2e-4"]),
    "diffaugment": ("+ DiffAugment", ["augment=diffaugment"]),
    "ada": ("+ ADA", ["augment=ada"]),
    "hinge_sn": ("hinge + SN (D without BatchNorm)",
                 ["loss=hinge", "model.spectral_norm=true", "model.discriminator.batch_norm=false"]),
    "ttur": ("TTUR (lr_g 1e-4, lr_d 4e-4)", ["model.lr_g=1e-4", "model.lr_d=4e-4"]),
    "batch128": ("batch 128", ["data.batch_size=128"]),
    "ema": ("+ EMA 0.999", ["model.ema_decay=0.999"]),
    "diffaugment_ema": ("+ DiffAugment + EMA 0.999", ["augment=diffaugment", "model.ema_decay=0.999"]),
    "diffaugment_ttur": ("+ DiffAugment, TTUR", ["augment=diffaugment", "model.lr_g=1e-4", "model.lr_d=4e-4"]),
    "ada_ema": ("+ ADA + EMA 0.999", ["augment=ada", "model.ema_decay=0.999"]),
}
FIRST_ROUND = ("default", "paper_lr", "diffaugment", "ada", "hinge_sn", "ttur", "batch128", "ema")
SHOWN = (("fid_domain", ".2f"), ("kid_domain", ".3f"), ("classes_balanced_domain", ".0f"),
         ("classes_covered_domain", ".0f"), ("class_kl_domain", ".3f"), ("precision_domain", ".3f"),
         ("recall_domain", ".3f"))


def cpu_seconds(overrides: list[str], batches: int, run_dir: Path, log: Path) -> float:
    """CPU seconds (user + system) of one `src.train` process with one thread, start to end."""
    with open(log, "w") as f:
        process = subprocess.Popen([PY, "-m", "src.train", *overrides, f"max_batches={batches}",
                                    f"hydra.run.dir={run_dir}"], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                   env=os.environ | {"OMP_NUM_THREADS": "1"})
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"probe {run_dir.name} failed: {last_line(log)} (log: {log})")
    return usage.ru_utime + usage.ru_stime


def probe(name: str, overrides: list[str], batches: int, work: Path) -> float:
    """CPU seconds per batch of one candidate: a long and a short run differ by `batches` batches and nothing
    else (start-up, data, the last files). CPU time, not wall time: other jobs on the cores barely change it."""
    times = []
    for length in (10, 10 + batches):
        log = work / "logs" / f"probe_{name}_{length}.log"
        times.append(cpu_seconds(overrides, length, work / "probes" / f"{name}_{length}", log))
    return (times[1] - times[0]) / batches


def costs(names: list[str], batches: int, reps: int, work: Path) -> dict[str, float]:
    """name -> CPU seconds per batch (the median of `reps` probes), every name probed in turn, `reps` rounds."""
    per_batch: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names:
            per_batch[name].append(probe(name, CANDIDATES[name][1], batches, work))
            print(f"probe {rep + 1}/{reps} {name}: {per_batch[name][-1] * 1000:.0f} CPU ms/batch", flush=True)
    return {name: statistics.median(times) for name, times in per_batch.items()}


def same_time(cost: dict[str, float], reference: str) -> dict[str, tuple[int, float]]:
    """name -> (the batches it trains in the time `reference` takes for DEFAULT_BATCHES, its cost per batch)."""
    return {name: (int(round(DEFAULT_BATCHES * cost[reference] / c / 50) * 50), c) for name, c in cost.items()}


def mean_std(values: list[float], digits: str = ".2f") -> str:
    if len(values) < 2:
        return format(values[0], digits)
    return f"{statistics.mean(values):{digits}} ± {statistics.stdev(values):{digits}}"


def section(args: argparse.Namespace, plan: dict[str, tuple[int, float]], results: dict[str, list[Result]],
            minutes: float) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    default_seconds = plan["default"][0] * plan["default"][1]
    lines = [
        SECTION, "",
        f"- command: `make bench-default ARGS=\"{' '.join(sys.argv[1:])}\"` = `python -m benchmarks.bench_default "
        f"{' '.join(sys.argv[1:])}`; this invocation took {minutes:.0f} min",
        f"- machine: {cores} CPU cores, {cpu_model()}, CPU only; torch {torch.__version__}, lightning "
        f"{lightning.__version__}; date {datetime.date.today().isoformat()}",
        f"- budget: the training time of today's `make train` ({DEFAULT_BATCHES} batches): each candidate trains "
        f"{DEFAULT_BATCHES} x (the default's cost per batch / its own) batches, rounded to 50. Cost per batch: "
        f"CPU ms of a one-thread `src.train` of {args.probe} + 10 batches minus one of 10, all candidates back "
        f"to back, the median of {args.probe_reps} (the default: {plan['default'][1] * 1000:.0f} CPU ms, "
        f"{default_seconds / 60:.1f} CPU min for its {DEFAULT_BATCHES} batches)",
        *(["- runs kept from earlier invocations with other `--candidates` (`--reuse`): the time above is this "
           "invocation's only"] if any(r.reused for rows in results.values() for r in rows) else []),
        f"- scored runs: {args.jobs} at a time"
        + (", 1 thread each (the budget is in batches, so sharing the cores changes only how long they take)"
           if args.jobs > 1 else "") + f"; seeds {args.seeds}",
        "- quality: `python -m src.evaluate ckpt_path=<run> num_samples=10000` (domain classifier mnist_32_1.pt vs "
        "MNIST train; the EMA generator where the run has one); balanced = classes with at least half their real "
        "share of the samples (`classes_balanced_domain`), covered = at least a tenth",
        "",
        "| candidate | overrides | CPU ms/batch | batches | seed | fid_domain | kid_domain | balanced | covered "
        "| class KL | precision | recall |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, rows in results.items():
        label, overrides = CANDIDATES[name]
        batches, seconds = plan[name]
        for r in rows:
            seed = next(o for o in r.overrides if o.startswith("seed=")).split("=")[1]
            values = (" | ".join(format(r.metrics[key], digits) for key, digits in SHOWN) if r.status == "ok"
                      else r.status + " |" * (len(SHOWN) - 1))
            lines.append(f"| {label} | `{' '.join(overrides) or '-'}` | {seconds * 1000:.0f} | {batches} | {seed} "
                         f"| {values} |")
    lines += ["", "Across seeds (mean ± std of the two seeds; worst seed for the class counts):", "",
              "| candidate | fid_domain | kid_domain | balanced (worst) | class KL |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for name, rows in results.items():
        ok = [r for r in rows if r.status == "ok"]
        if not ok:
            continue
        lines.append(f"| {CANDIDATES[name][0]} | {mean_std([r.metrics['fid_domain'] for r in ok])} "
                     f"| {mean_std([r.metrics['kid_domain'] for r in ok], '.3f')} "
                     f"| {min(r.metrics['classes_balanced_domain'] for r in ok):.0f}/10 "
                     f"| {mean_std([r.metrics['class_kl_domain'] for r in ok], '.3f')} |")
    return "\n".join(lines + ["", *verdict(results)]) + "\n"


def verdict(results: dict[str, list[Result]]) -> list[str]:
    """Read off the numbers: the lowest mean fid_domain, and which candidates beat today's default on every seed."""
    fid = {name: [r.metrics["fid_domain"] for r in rows if r.status == "ok"] for name, rows in results.items()}
    fid = {name: values for name, values in fid.items() if values}
    if "default" not in fid:
        return []
    best = min(fid, key=lambda name: statistics.mean(fid[name]))
    beat = [name for name in fid if name != "default" and max(fid[name]) < min(fid["default"])]
    return [f"Lowest mean fid_domain: **{CANDIDATES[best][0]}** ({statistics.mean(fid[best]):.2f}). Better than "
            f"today's default on every seed (its worst seed below the default's best, {min(fid['default']):.2f}): "
            + (", ".join(CANDIDATES[name][0] for name in beat) if beat else "none") + "."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", default=",".join(FIRST_ROUND),
                        help=f"comma-separated subset of {', '.join(CANDIDATES)}")
    parser.add_argument("--seeds", default="42,43")
    parser.add_argument("--probe", type=int, default=100, help="batches a probe's long run has over its short one")
    parser.add_argument("--probe-reps", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="scored runs at a time (1 thread each when > 1)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--reuse", action="store_true", help="keep runs (and probes) already measured")
    parser.add_argument("--work-dir", default=str(ROOT / "outputs" / "bench_default"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "quality.md"))
    args = parser.parse_args()
    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    if unknown := [n for n in names if n not in CANDIDATES]:
        parser.error(f"unknown candidates {unknown}: choose from {', '.join(CANDIDATES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(args.work_dir).resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ensure_classifier(["data=mnist", "model=dcgan"], classifier_path(ROOT / "data", "MNIST", 32, 1), work / "logs")

    saved = work / "costs.json"  # CPU seconds per batch of each candidate probed so far
    cost = json.loads(saved.read_text()) if args.reuse and saved.is_file() else {}
    if missing := [n for n in dict.fromkeys(["default", *names]) if n not in cost]:
        cost |= costs(missing, args.probe, args.probe_reps, work)
        saved.write_text(json.dumps(cost, indent=2))
    plan = same_time(cost, "default")
    print("budgets: " + ", ".join(f"{n} {plan[n][0]} batches ({plan[n][1] * 1000:.0f} CPU ms/batch)" for n in names),
          flush=True)

    if args.jobs > 1:
        os.environ["OMP_NUM_THREADS"] = "1"  # the scored runs' threads: jobs x 1 on the cores
    jobs = [(name, seed) for name in names for seed in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda job: train_and_evaluate(
            Result("default", "dcgan", CANDIDATES[job[0]][0],
                   [*CANDIDATES[job[0]][1], f"max_batches={plan[job[0]][0]}", f"seed={job[1]}"], ""),
            work / "runs" / f"{job[0]}_seed{job[1]}", args.samples, args.reuse), jobs))
    results: dict[str, list[Result]] = {}
    for (name, _), result in zip(jobs, done, strict=True):
        results.setdefault(name, []).append(result)
    (work / "results.json").write_text(json.dumps({n: [vars(r) for r in rs] for n, rs in results.items()}, indent=2))
    text = section(args, plan, results, (time.perf_counter() - start) / 60)
    write_section(Path(args.out), SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
