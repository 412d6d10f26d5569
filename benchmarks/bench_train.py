"""`make bench`: training speed as users run it, against what they would run instead.

- project: `python -m src.train model=M max_batches=N` with every default on (TensorBoard logger, progress bar,
  checkpoints, sample grids, the EMA);
- best plain loop: benchmarks/plain_loop.py, the same networks and loss written by hand at its best (channels_last,
  fused Adam, data resized once, one G forward per batch, no logging);
- pytorch/examples' dcgan on its own job (optional, --examples-dcgan <path to its dcgan/main.py>), run as written,
  against the project on the same job (`model=dcgan64 model.generator.width=64`: ngf = ndf = 64, MNIST at 64x64,
  batch 64).

Each side runs as its own process. Rate = images of (long - short) batches / (time(long) - time(short)), so start-up
and the work done once at the end cancel; several repetitions, sides interleaved, median and range reported.
pytorch/examples' script can't be given a batch budget: its per-batch lines are timed as they appear instead.
Two more sections: start-up (command to first batch, --help, --cfg job, a refused typo, against a plain script's
`import torch` + MNIST load) and the fixed cost per batch (a tiny model, where compute is negligible: the project's
ms/batch minus the plain loop's).
Run: make bench  (flags: python -m benchmarks.bench_train --help; `--only startup,fixed` runs those two alone and
prints them instead of rewriting benchmarks/train.md)."""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import lightning as L
import torch

from benchmarks.bench_data import cpu_model
from src.core.host_memory import MMAP_THRESHOLD, TRIM_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]
# (long, short) batch budgets per model: 300 timed batches where a batch is quick, fewer where it is slow on a CPU.
BUDGETS = {"mlp_gan": (330, 30), "dcgan28": (330, 30), "dcgan": (330, 30), "conv_gan": (60, 10), "dcgan64": (25, 5)}
# Settings the project offers, each timed against the defaults on one model (the "Levers" table).
LEVERS = {
    "G step draws fresh noise (two G forwards)": ["model.reuse_fake=false"],
    "log every batch": ["trainer.log_every_n_steps=1"],
    "EMA on (model.ema_decay=0.999)": ["model.ema_decay=0.999"],
    "NCHW (model.channels_last=false)": ["model.channels_last=false"],
    "for-loop Adam (model.fused_adam=false)": ["model.fused_adam=false"],
    "torch.compile (model.compile=true)": ["model.compile=true"],
    "glibc's adaptive malloc thresholds": ["keep_freed_memory=false"],
}
# The baseline given the project's one process-level setting (src/core/host_memory.py) from outside, as a user would.
FIXED_MALLOC = {"GLIBC_TUNABLES": f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:"
                                  f"glibc.malloc.trim_threshold={TRIM_THRESHOLD}"}
EXAMPLES_JOB = ["model=dcgan64", "model.generator.width=64"]
EXAMPLES_LINE = re.compile(r"^\[0/\d+\]\[(\d+)/\d+\]")
SECTIONS = ("models", "levers", "examples", "startup", "fixed")
# The fixed cost per batch: a model so small that what is left is the project's work around the math.
TINY_JOB = ["model=mlp_gan", "model.generator.width=8", "data.batch_size=8"]
FIRST_BATCH = re.compile(r"first batch ([\d.]+) s after the command")
DATA = ROOT / "data"
# What a plain script pays before its first batch, each a process of its own.
PLAIN_STARTS = {
    "`import torch`": "import torch",
    "`import torch` + torchvision `MNIST(data, train=True).data`":
        f"import torch; from torchvision.datasets import MNIST; MNIST({str(DATA)!r}, train=True).data",
    "`import torch` + `torch.load` of the project's decoded MNIST (uint8)":
        f"import torch; torch.load({str(DATA / 'mnist_train_uint8.pt')!r}, weights_only=True)",
}


def seconds(command: list[str], log: Path, env: dict[str, str] | None = None, expect: int = 0) -> float:
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})})
    took = time.perf_counter() - start
    if done.returncode != expect:
        sys.exit(f"{' '.join(command)} exited {done.returncode} (expected {expect}), see {log}")
    return took


def project(model_args: list[str], batches: int, work: Path) -> list[str]:
    run = work / f"project_{time.monotonic_ns()}"
    return [sys.executable, "-m", "src.train", *model_args, f"max_batches={batches}", f"hydra.run.dir={run}"]


def plain(model_args: list[str], batches: int, work: Path) -> list[str]:
    model = next(a.split("=", 1)[1] for a in model_args if a.startswith("model="))
    rest = [a for a in model_args if not a.startswith("model=")]
    return [sys.executable, "-m", "benchmarks.plain_loop", "--model", model, "--batches", str(batches), *rest]


def rate(side: Callable[[list[str], int, Path], list[str]], model_args: list[str], budget: tuple[int, int],
         batch: int, work: Path, env: dict[str, str] | None = None) -> float:
    long, short = budget
    t_long = seconds(side(model_args, long, work), work / "long.log", env)
    t_short = seconds(side(model_args, short, work), work / "short.log", env)
    return (long - short) * batch / (t_long - t_short)


def examples_rate(script: Path, first: int, last: int, work: Path) -> float:
    """pytorch/examples' dcgan as written (its flags for ngf = ndf = 64, MNIST 64x64, batch 64, CPU), timed from the
    line it prints after batch `first` to the one after batch `last`, then stopped."""
    command = [sys.executable, str(script), "--dataset", "mnist", "--dataroot", str(ROOT / "data"), "--imageSize",
               "64", "--batchSize", "64", "--ngf", "64", "--ndf", "64", "--niter", "1", "--manualSeed", "0",
               "--outf", str(work)]
    seen: dict[int, float] = {}
    with subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as process:
        for line in process.stdout:
            if match := EXAMPLES_LINE.match(line):
                seen[int(match.group(1))] = time.perf_counter()
                if last in seen:
                    process.kill()
                    break
        process.wait()
    if first not in seen or last not in seen:
        sys.exit(f"{script} stopped before its batch {last}: run it by hand to see why ({' '.join(command)})")
    return (last - first) * 64 / (seen[last] - seen[first])


def summary(rates: list[float], digits: int = 1) -> str:
    return f"{statistics.median(rates):.{digits}f} ({min(rates):.{digits}f}-{max(rates):.{digits}f})"


def startup_rows(reps: int, work: Path) -> list[str]:
    """Seconds from the command to the first batch (the run's own `[done]` line says it), of the answers that need no
    training, and of a plain script's start; the commands interleaved within each repetition."""
    train = [sys.executable, "-m", "src.train"]
    commands = {
        "`python -m src.train max_batches=1`: command to first batch": [*train, "max_batches=1"],
        "`python -m src.train --help`": [*train, "--help"],
        "`python -m src.train --cfg job`": [*train, "--cfg", "job"],
        "`python -m src.train max_batch=1` (a refused typo)": [*train, "max_batch=1"],
        **{f"plain script: {name}": [sys.executable, "-c", code] for name, code in PLAIN_STARTS.items()},
    }
    seconds(commands["`python -m src.train --help`"], work / "warm.log")  # the page cache holds what every run reads
    seconds([*train, "max_batches=1", f"hydra.run.dir={work / 'warm'}"], work / "warm.log")  # MNIST decoded once
    taken: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(reps):
        for name, command in commands.items():
            if "max_batches=1" in command:
                taken[name].append(first_batch(command, work))
            else:
                taken[name].append(seconds(command, work / "startup.log", expect=2 if "typo" in name else 0))
            print(name, f"{taken[name][-1]:.2f} s", flush=True)
    return [f"| {name} | {summary(values, 2)} |" for name, values in taken.items()]


def first_batch(command: list[str], work: Path) -> float:
    log = work / "first_batch.log"
    seconds([*command, f"hydra.run.dir={work / f'first_batch_{time.monotonic_ns()}'}"], log)
    found = FIRST_BATCH.search(log.read_text())
    if not found:
        sys.exit(f"{' '.join(command)} did not say when its first batch ended, see {log}")
    return float(found.group(1))


def fixed_cost_row(reps: int, budget: tuple[int, int], work: Path) -> str:
    """ms/batch of the project and of the best plain loop on TINY_JOB (sides interleaved) and their difference."""
    long, short = budget
    ours, theirs = [], []
    for _ in range(reps):
        ours.append(1000 * 8 / rate(project, TINY_JOB, budget, 8, work))  # ms per batch of 8 images
        theirs.append(1000 * 8 / rate(plain, TINY_JOB, budget, 8, work))
        print(f"fixed cost: project {ours[-1]:.3f} ms/batch, plain loop {theirs[-1]:.3f}", flush=True)
    cost = statistics.median(ours) - statistics.median(theirs)
    return f"| `{' '.join(TINY_JOB)}` | {long} - {short} | {summary(ours, 3)} | {summary(theirs, 3)} | {cost:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dcgan28,dcgan", help=f"comma-separated, of {', '.join(BUDGETS)}")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--budget", help="long,short batches for every model instead of BUDGETS (a quick check)")
    parser.add_argument("--levers-model", default="dcgan28", help="model the Levers table times (empty: none)")
    parser.add_argument("--examples-dcgan", type=Path, help="path to pytorch/examples' dcgan/main.py")
    parser.add_argument("--examples-batches", default="5,25", help="first,last batch timed on the examples job")
    parser.add_argument("--startup-reps", type=int, default=5, help="repetitions of the start-up table")
    parser.add_argument("--fixed-budget", default="2030,30", help="long,short batches of the fixed-cost row")
    parser.add_argument("--only", help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (default: all); "
                                       "the tables are printed, and written only to an --out given with it")
    parser.add_argument("--out", help="default: benchmarks/train.md")
    args = parser.parse_args()
    sections = args.only.split(",") if args.only else SECTIONS
    if not set(sections) <= set(SECTIONS):
        parser.error(f"--only takes {', '.join(SECTIONS)}, got {args.only}")
    budgets = {m: tuple(int(n) for n in args.budget.split(",")) for m in BUDGETS} if args.budget else BUDGETS
    batch = 64
    rows, levers, baseline, examples, startup, fixed_cost = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for model in args.models.split(",") if "models" in sections else []:
            ours, theirs = [], []
            for _ in range(args.reps):  # interleaved, so a slower spell of the machine hits both sides
                ours.append(rate(project, [f"model={model}"], budgets[model], batch, work))
                theirs.append(rate(plain, [f"model={model}"], budgets[model], batch, work))
            ratio = statistics.median(ours) / statistics.median(theirs)
            long, short = budgets[model]
            rows.append(f"| {model} | {long} - {short} | {summary(ours)} | {summary(theirs)} | {ratio:.2f} |")
            print(rows[-1], flush=True)
        if args.levers_model and "levers" in sections:
            model = args.levers_model
            for name, overrides in {"defaults": [], **LEVERS}.items():
                rates = [rate(project, [f"model={model}", *overrides], budgets[model], batch, work)
                         for _ in range(args.reps)]
                levers.append((name, overrides, rates))
                print(name, summary(rates), flush=True)
            as_written, fixed = [], []
            for _ in range(args.reps):
                as_written.append(rate(plain, [f"model={model}"], budgets[model], batch, work))
                fixed.append(rate(plain, [f"model={model}"], budgets[model], batch, work, FIXED_MALLOC))
            baseline = [("as written", "-", as_written),
                        ("fixed malloc thresholds", " ".join(f"{k}={v}" for k, v in FIXED_MALLOC.items()), fixed)]
            print(*(f"{name} {summary(r)}" for name, _, r in baseline), flush=True)
        if args.examples_dcgan and "examples" in sections:
            first, last = (int(n) for n in args.examples_batches.split(","))
            ours, theirs = [], []
            for _ in range(args.reps):
                ours.append(rate(project, EXAMPLES_JOB, (last, first), batch, work))
                theirs.append(examples_rate(args.examples_dcgan.resolve(), first, last, work))
            ratio = statistics.median(ours) / statistics.median(theirs)
            examples.append(f"| MNIST 64x64, ngf = ndf = 64, batch 64 | {last - first} | {summary(ours)} | "
                            f"{summary(theirs)} | {ratio:.2f} |")
            print(examples[-1], flush=True)
        if "startup" in sections:
            startup = startup_rows(args.startup_reps, work)
        if "fixed" in sections:
            fixed_cost = [fixed_cost_row(args.reps, tuple(int(n) for n in args.fixed_budget.split(",")), work)]
    write(args, rows, levers, baseline, examples, startup, fixed_cost)


def write(args: argparse.Namespace, rows: list[str], levers: list, baseline: list, examples: list[str],
          startup: list[str], fixed_cost: list[str]) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    flags = " ".join(a for a in sys.argv[1:])
    base = statistics.median(levers[0][2]) if levers else 0.0
    first, last = args.examples_batches.split(",")
    text = "\n".join([
        "# Training speed as users run it",
        "",
        f"- command: `python -m benchmarks.bench_train {flags}` (`make bench`{' ARGS=...' if flags else ''}), "
        f"commit {commit}",
        f"- machine: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"lightning {L.__version__}; CPU, fp32",
        f"- date: {date.today()}",
        *([f"- images/s, median (min-max) of {args.reps} repetitions; each side is a process of its own, timed over "
           "a long and a short budget (columns `batches`) and the difference taken, so start-up and the end of the "
           "run cancel. Sides alternate within each repetition."] if rows or levers or examples else []),
        "- project: `python -m src.train model=M max_batches=N` with its defaults: TensorBoard logging (every 25 "
        "batches), progress bar, checkpoints, sample grids every 100 batches (the EMA is off by default). "
        "Best plain loop: "
        "`python -m benchmarks.plain_loop --model M --batches N`: the same networks and loss, channels_last, fused "
        "Adam, MNIST resized once and held in memory, one G forward per batch, D frozen in the G step, no logging, "
        "no EMA, no checkpoints.",
        "",
        *(["| model | batches (long - short) | project img/s | best plain loop img/s | ratio |",
           "| --- | --- | ---: | ---: | ---: |", *rows, ""] if rows else []),
        *([f"## Levers (project, `model={args.levers_model}`, each setting against the defaults)", "",
           "| setting | overrides | img/s | vs defaults |", "| --- | --- | ---: | ---: |",
           *(f"| {name} | `{' '.join(o) or '-'}` | {summary(r)} | {statistics.median(r) / base:.2f} |"
             for name, o, r in levers), ""] if levers else []),
        *(["The best plain loop given the same malloc thresholds from outside (environment variable), against it as "
           "written:", "", "| plain loop | environment | img/s | vs as written |", "| --- | --- | ---: | ---: |",
           *(f"| {name} | `{env}` | {summary(r)} | {statistics.median(r) / statistics.median(baseline[0][2]):.2f} |"
             for name, env, r in baseline), ""] if baseline else []),
        *(["## pytorch/examples' dcgan on its own job", "",
           "pytorch/examples' `dcgan/main.py` (get it with `git clone https://github.com/pytorch/examples`; "
           "the project does not ship it) run as written: `python main.py --dataset mnist --dataroot data "
           "--imageSize 64 --batchSize 64 --ngf 64 --ndf 64 --niter 1` (CPU, its 2 DataLoader workers, PIL "
           "transforms, a printed line per batch), timed from the line it prints after batch "
           f"{first} to the one after batch {last} (`--examples-batches`). The project: `python -m src.train "
           "model=dcgan64 model.generator.width=64` with its defaults.", "",
           "| job | timed batches | project img/s | pytorch/examples img/s | ratio |",
           "| --- | ---: | ---: | ---: | ---: |", *examples, ""] if examples else []),
        *(["## Start-up", "",
           f"Seconds, median (min-max) of {args.startup_reps} repetitions, the commands interleaved; MNIST decoded "
           "into the project's cache and the page cache warm (one run before the first repetition). Command to first "
           "batch: what the run's closing `[done]` line says (from the start of the process, as the kernel records "
           "it, to the end of its first batch; `dcgan` on MNIST, every default on). The others: wall time of the "
           "whole process.", "",
           "| command | seconds |", "| --- | ---: |", *startup, ""] if startup else []),
        *(["## Fixed cost per batch", "",
           "What the project adds around the math, on a model whose compute is negligible: ms per batch of 8 "
           f"images, median (min-max) of {args.reps} repetitions, each side a process of its own timed over a long "
           "and a short budget (the difference taken, so start-up and the end of the run cancel), sides "
           "interleaved. The project with every default on (logging, progress bar, checkpoints, grids); the fixed "
           "cost is the difference of the medians.", "",
           "| job | batches (long - short) | project ms/batch | best plain loop ms/batch | fixed cost ms/batch |",
           "| --- | --- | ---: | ---: | ---: |", *fixed_cost, ""] if fixed_cost else []),
    ])
    if args.only and not args.out:
        print(text)
        return
    out = Path(args.out or ROOT / "benchmarks" / "train.md")
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
