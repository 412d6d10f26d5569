"""`make bench-quality`: sample quality per GAN objective at one fixed budget in batches -> benchmarks/quality.md.

Every row is the project's own entry points run as a user runs them, one subprocess each:
`python -m src.train` (the objective's overrides, everything else the defaults), then
`python -m src.evaluate ckpt_path=<run> num_samples=N` (domain FID/KID and class coverage of the EMA generator).
The domain classifiers come from `python -m src.train_classifier` (trained once if missing).

MNIST rows: each model x each objective at the same `--budget` batches. Small-data rows: `data=folder` on
`--folder-images` Fashion-MNIST training images written as PNGs in class subfolders (Debian's
dataset-fashion-mnist, `make data-fashion`), `dcgan28` without and with DiffAugment at `--folder-budget` batches.
Run: python -m benchmarks.bench_quality [--budget 600] [--models dcgan,dcgan28] [--rows bce,wgan_gp] [--skip-folder]
"""

import argparse
import datetime
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning
import numpy as np
import torch
from PIL import Image

from benchmarks.bench_data import cpu_model
from benchmarks.bench_ema import SECTION as EMA_SECTION
from src.data.folder import store_dir
from src.metrics.classifier import classifier_path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# name -> (what the table says, src.train overrides). Everything not listed keeps the defaults: Adam 2e-4,
# betas (0.5, 0.999), n_critic 1, batch 64, EMA on.
ROWS: dict[str, tuple[str, list[str]]] = {
    "bce": ("bce", []),
    "hinge_sn": ("hinge + SN", ["loss=hinge", "model.spectral_norm=true"]),
    "lsgan": ("lsgan", ["loss=lsgan"]),
    "wgan_gp": ("wgan + gp (D without BatchNorm)",
                ["loss=wgan", "regularizer=gp", "model.discriminator.batch_norm=false"]),
    "bce_diffaug": ("bce + diffaugment", ["augment=diffaugment"]),
    "hinge_sn_diffaug": ("hinge + SN + diffaugment", ["loss=hinge", "model.spectral_norm=true", "augment=diffaugment"]),
}
FOLDER_ROWS: dict[str, tuple[str, list[str]]] = {
    "folder_bce": ("bce", []),
    "folder_bce_diffaug": ("bce + diffaugment", ["augment=diffaugment"]),
}
FOLDER_MODEL = "dcgan28"  # Fashion-MNIST is 28x28: no resize, and ~3x the speed of dcgan on CPU
FASHION_SOURCE = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
METRICS = ("fid_domain", "kid_domain", "kid_domain_std", "classes_covered_domain", "class_kl_domain")


@dataclass
class Result:
    section: str
    model: str
    label: str
    overrides: list[str]
    command: str
    train_seconds: float = float("nan")
    train_load: float = float("nan")
    eval_seconds: float = float("nan")
    status: str = "ok"
    samples: int = 0
    reused: bool = False
    metrics: dict[str, float] = field(default_factory=dict)


def run(cmd: list[str], log: Path, cwd: Path = ROOT) -> tuple[int, float, float]:
    """Run one entry point with its output in `log`: (exit status, wall seconds, mean 1-minute load average while it
    ran, sampled every 5 s: the process itself accounts for about 2 with its 2 threads, the rest is other jobs)."""
    start, loads = time.perf_counter(), []
    with open(log, "w") as f:
        process = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        while True:
            try:
                code = process.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                loads.append(os.getloadavg()[0])
    return code, time.perf_counter() - start, (sum(loads) / len(loads) if loads else os.getloadavg()[0])


def last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def ensure_classifier(overrides: list[str], path: Path, logs: Path) -> None:
    """src.train_classifier once per dataset and size (it is a no-op when the file exists; skip even starting it)."""
    if path.is_file():
        return
    print(f"training the domain classifier {path.name} ...", flush=True)
    log = logs / f"classifier_{path.stem}.log"
    code, seconds, _ = run([PY, "-m", "src.train_classifier", *overrides], log)
    if code != 0:
        sys.exit(f"src.train_classifier {' '.join(overrides)} failed: {last_line(log)} (log: {log})")
    print(f"  {last_line(log)} ({seconds:.0f} s)", flush=True)


def trained_by(run_dir: Path, overrides: list[str]) -> bool:
    """Whether run_dir is a finished src.train run of exactly these overrides (Hydra records them)."""
    recorded = run_dir / ".hydra" / "overrides.yaml"
    if not (run_dir / "generator.pt").is_file() or not recorded.is_file():
        return False
    return [line.removeprefix("- ").strip() for line in recorded.read_text().splitlines()] == overrides


def train_and_evaluate(result: Result, run_dir: Path, samples: int, reuse: bool) -> Result:
    saved = run_dir.parent / f"{run_dir.name}.result.json"
    if reuse and saved.is_file():
        old = Result(**json.loads(saved.read_text()))
        if old.overrides == result.overrides and old.samples == samples and old.status == "ok":
            print(f"[{result.model}] {result.label}: reusing {saved}", flush=True)
            old.reused = True
            return old
    saved.unlink(missing_ok=True)
    result.samples = samples
    result.command = "python -m src.train " + " ".join(result.overrides)
    if reuse and trained_by(run_dir, result.overrides):  # only its evaluation is missing (it failed before)
        print(f"[{result.model}] {result.label}: evaluating the finished run {run_dir}", flush=True)
        result.reused, code = True, 0
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)  # a rerun starts afresh (src.train refuses nothing here, but old files would mix)
        train_cmd = [PY, "-m", "src.train", *result.overrides, f"hydra.run.dir={run_dir}"]
        print(f"[{result.model}] {result.label}: {result.command}", flush=True)
        log = run_dir.parent / f"{run_dir.name}.train.log"
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        code, result.train_seconds, result.train_load = run(train_cmd, log)
    if code != 0 or not (run_dir / "generator.pt").is_file():
        result.status = f"training failed: {last_line(log)}"
        print(f"  {result.status} (log: {log})", flush=True)
        return result
    out = run_dir / "metrics.json"
    eval_log = run_dir.parent / f"{run_dir.name}.evaluate.log"
    code, result.eval_seconds, _ = run([PY, "-m", "src.evaluate", f"ckpt_path={run_dir}", f"num_samples={samples}",
                                     "device=cpu", f"output={out}"], eval_log)
    if code != 0 or not out.is_file():
        result.status = f"evaluation failed: {last_line(eval_log)}"
        print(f"  {result.status} (log: {eval_log})", flush=True)
        return result
    rows = json.loads(out.read_text())["rows"]
    result.metrics = {row["metric"]: float(row["value"]) for row in rows}
    result.metrics["extractor"] = rows[0]["extractor"]
    result.metrics["reference"] = rows[0]["reference"]
    saved.write_text(json.dumps(vars(result), indent=2))
    print(f"  train {result.train_seconds:.0f} s (load {result.train_load:.1f}), eval {result.eval_seconds:.0f} s: "
          + ", ".join(f"{k}={result.metrics[k]:.4g}" for k in METRICS if k in result.metrics), flush=True)
    return result


def read_idx(path: Path) -> np.ndarray:
    """An IDX .gz file (uint8 images or labels) as a numpy array."""
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_fashion_folder(root: Path, count: int) -> dict[str, int]:
    """The first `count` Fashion-MNIST training images as PNGs in one subfolder per class ("0_tshirt", ...: sorted
    names keep the dataset's label order, so the folder's labels are Fashion-MNIST's). Returns images per class."""
    images = read_idx(FASHION_SOURCE / "train-images-idx3-ubyte.gz")[:count]
    labels = read_idx(FASHION_SOURCE / "train-labels-idx1-ubyte.gz")[:count]
    if root.exists():
        shutil.rmtree(root)
    per_class: dict[str, int] = {}
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / f"{label}_{FASHION_CLASSES[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{i:05d}.png")
        per_class[folder.name] = per_class.get(folder.name, 0) + 1
    return dict(sorted(per_class.items()))


def folder_classifier(images: Path, logs: Path, model: str = FOLDER_MODEL, size: int = 28) -> Path:
    """The folder's domain classifier is the Fashion-MNIST one at the same size (src.train_classifier
    data=fashion_mnist, all 60,000 training images), copied where src.evaluate looks for the folder's
    (data/image_folders/<folder>-<hash>/classifiers/imagefolder_<size>_1.pt, src/data/folder.py): the folder holds
    Fashion-MNIST's own pixels, so the classifier sees the kind of images it was trained on, and every folder row is
    scored by the same classifier."""
    source = classifier_path(ROOT / "data", "Fashion-MNIST", size, 1)
    ensure_classifier(["data=fashion_mnist", f"model={model}"], source, logs)
    target = classifier_path(Path(store_dir(str(ROOT / "data"), str(images))), "image folder", size, 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def fmt(result: Result, key: str, digits: str = ".2f") -> str:
    value = result.metrics.get(key)
    return "" if value is None else format(value, digits)


def table(results: list[Result]) -> list[str]:
    lines = ["| model | objective | fid_domain | kid_domain (mean ± std) | classes covered | class KL "
             "| train s | load | eval s | command |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        if r.status != "ok":
            lines.append(f"| {r.model} | {r.label} | {r.status} | | | | {r.train_seconds:.0f} | {r.train_load:.1f} | "
                         f"| `{r.command}` |")
            continue
        kid = f"{fmt(r, 'kid_domain', '.3f')} ± {fmt(r, 'kid_domain_std', '.3f')}"
        lines.append(f"| {r.model} | {r.label} | {fmt(r, 'fid_domain')} | {kid} "
                     f"| {fmt(r, 'classes_covered_domain', '.0f')}/10 | {fmt(r, 'class_kl_domain', '.3f')} "
                     f"| {r.train_seconds:.0f}{'*' if r.reused else ''} | {r.train_load:.1f} | {r.eval_seconds:.0f} "
                     f"| `{r.command}` |")
    return lines


def kid_gap(a: Result, b: Result) -> str:
    """How b's KID compares with a's, against the KID estimator's own spread (the two stds added)."""
    diff = b.metrics["kid_domain"] - a.metrics["kid_domain"]
    noise = a.metrics.get("kid_domain_std", 0.0) + b.metrics.get("kid_domain_std", 0.0)
    return "clear of the KID spread" if abs(diff) > noise else "within the KID spread"


def compare(base: Result, other: Result) -> str:
    """One sentence: `other` against `base` on FID, KID and coverage."""
    fid_a, fid_b = base.metrics["fid_domain"], other.metrics["fid_domain"]
    better = "better" if fid_b < fid_a else "worse"
    kid_a, kid_b = base.metrics["kid_domain"], other.metrics["kid_domain"]
    kid_word = "lower" if kid_b < kid_a else "higher"
    return (f"**{other.label}** vs **{base.label}**: fid_domain {fid_a:.2f} -> {fid_b:.2f} ({better}), "
            f"kid_domain {kid_a:.3f} -> {kid_b:.3f} ({kid_word}, {kid_gap(base, other)}), classes covered "
            f"{base.metrics['classes_covered_domain']:.0f} -> {other.metrics['classes_covered_domain']:.0f}, "
            f"class KL {base.metrics['class_kl_domain']:.3f} -> {other.metrics['class_kl_domain']:.3f}")


def verdicts(mnist: list[Result], folder: list[Result], budget: int) -> list[str]:
    """Statements read off the measured numbers only: per model the FID ranking and where KID agrees, then
    DiffAugment against the same objective without it."""
    lines = []
    ok = [r for r in mnist if r.status == "ok"]
    for model in dict.fromkeys(r.model for r in ok):
        rows = sorted((r for r in ok if r.model == model), key=lambda r: r.metrics["fid_domain"])
        by_kid = min(rows, key=lambda r: r.metrics["kid_domain"])
        ranking = " < ".join(f"{r.label} {r.metrics['fid_domain']:.2f}" for r in rows)
        kid_note = ("KID agrees on the winner" if by_kid is rows[0] else
                    f"KID prefers **{by_kid.label}** ({by_kid.metrics['kid_domain']:.3f} vs "
                    f"{rows[0].metrics['kid_domain']:.3f}, {kid_gap(rows[0], by_kid)})")
        lines.append(f"- MNIST `{model}`: lowest fid_domain **{rows[0].label}**; ranking by fid_domain: {ranking}. "
                     f"{kid_note}. Lowest class KL: **{min(rows, key=lambda r: r.metrics['class_kl_domain']).label}"
                     f"**; all 10 classes covered by {sum(r.metrics['classes_covered_domain'] == 10 for r in rows)} "
                     f"of {len(rows)} rows.")
        stuck = [r.label for r in rows if r.metrics["classes_covered_domain"] <= 2]
        if stuck:
            lines.append(f"  - 2 classes covered or fewer after {budget} batches (to the domain classifier these "
                         f"samples do not look like the dataset's classes yet): {', '.join(stuck)}.")
        named = {r.label: r for r in rows}
        for base, other in (("bce", "bce + diffaugment"), ("hinge + SN", "hinge + SN + diffaugment")):
            if base in named and other in named:
                lines.append(f"  - DiffAugment on MNIST `{model}`: {compare(named[base], named[other])}.")
    failed = [r for r in mnist + folder if r.status != "ok"]
    for r in failed:
        lines.append(f"- `{r.model}` {r.label}: {r.status}")
    done = {r.label: r for r in folder if r.status == "ok"}
    if "bce" in done and "bce + diffaugment" in done:
        a, b = done["bce"], done["bce + diffaugment"]
        winner = "DiffAugment wins" if b.metrics["fid_domain"] < a.metrics["fid_domain"] else "DiffAugment loses"
        lines.append(f"- Small data ({FOLDER_MODEL}, image folder): {winner} on fid_domain. {compare(a, b)}.")
    return lines or ["(no row finished)"]


def write_report(path: Path, args: argparse.Namespace, results: list[Result], folder_info: dict | None,
                 total_seconds: float, loads: str) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mnist = [r for r in results if r.section == "mnist"]
    folder = [r for r in results if r.section == "folder"]
    references = sorted({f"{r.metrics['extractor']} vs {r.metrics['reference']}" for r in results if r.status == "ok"})
    command = " ".join(["python -m benchmarks.bench_quality", *sys.argv[1:]])
    lines = [
        "# Sample quality per GAN objective at a fixed budget",
        "",
        "Which objective gives the best samples for the same training budget, measured with the project's own entry "
        "points: `src.train` with the objective's overrides (every other setting is the default: Adam 2e-4, betas "
        "(0.5, 0.999), n_critic 1, batch 64, EMA generator on, seed 42), then `src.evaluate` on the EMA generator. "
        "Every row trains the same number of batches, so the comparison is the objective alone, at a short budget: "
        "it says which objective gets furthest in that budget, not which is best when trained to convergence.",
        "",
        f"- command: `make bench-quality` = `{command}`",
        f"- machine: {cores} CPU cores (nproc), {cpu_model()}, CPU only; torch {torch.__version__}, "
        f"lightning {lightning.__version__}; 1-minute load average {loads} (other jobs share the CPU)",
        f"- date: {datetime.date.today().isoformat()}; this invocation took {total_seconds / 60:.0f} min in all",
        *([f"- budget: `max_batches={args.budget}` for every MNIST row (batch 64: {args.budget * 64:,} real images, "
           f"{args.budget * 64 / 60_000:.2f} epochs of MNIST)"] if mnist else []),
        *([f"- small-data budget: `max_batches={args.folder_budget}` for both folder rows"] if folder else []),
        f"- quality: `python -m src.evaluate ckpt_path=<run> num_samples={args.samples}`: {args.samples} samples of "
        "the EMA generator (the default `model.sample_with_ema=true`)",
        "- wgan + gp: the critic has no BatchNorm (`model.discriminator.batch_norm=false`, as in the WGAN-GP paper: "
        "a per-sample gradient penalty is not defined through batch statistics); every other row keeps the "
        "default D, BatchNorm included, also with spectral norm. wgan + gp here keeps n_critic 1 and Adam (0.5, "
        "0.999) like the other rows, not the paper's 5 critic steps and (0, 0.9) (`experiment=wgan_gp`)",
        "- metrics (domain extractor, see docs/quality.md): fid_domain and kid_domain are FID/KID on the "
        "dataset classifier's 64-d features (lower is better; not comparable with Inception FIDs from papers); "
        "classes covered = classes the samples give at least 10% of their real share; class KL = KL of the "
        "samples' predicted class histogram to the real one (lower is better)",
        "- reference: " + "; ".join(references),
        "- train s: wall seconds of the whole `src.train` process (start-up, data, checkpoints and sample grids "
        "included); eval s: the whole `src.evaluate` process (the first one per dataset also computes and caches "
        "the real statistics); load: the mean 1-minute load average while `src.train` ran (the run's own 2 threads "
        "account for about 2, anything above is other jobs on the same 2 cores, which slows the run several-fold); "
        + ("`*`: a row kept from an earlier invocation of the same command (`--reuse`); "
           if any(r.reused for r in results) else "")
        + "each command in the tables also got `hydra.run.dir=<work-dir>/runs/<row>` (where the "
        "run goes, nothing else)",
        "",
    ]
    if mnist:
        lines += [f"## MNIST, {args.budget} batches of 64", "", *table(mnist), ""]
    if folder and folder_info:
        per_class = ", ".join(f"{k} {v}" for k, v in folder_info["per_class"].items())
        lines += [
            f"## Small data: {folder_info['count']:,} Fashion-MNIST images in a folder, {args.folder_budget} "
            "batches of 64",
            "",
            f"`data=folder data.path=<scratch>/images data.channels=1 model={FOLDER_MODEL}`: the first "
            f"{folder_info['count']:,} Fashion-MNIST training images (Debian's dataset-fashion-mnist) written as PNGs "
            f"in one subfolder per class ({per_class}); {args.folder_budget} batches = "
            f"{args.folder_budget * 64 / folder_info['count']:.1f} epochs over them. `{FOLDER_MODEL}` because the "
            "images are 28x28 (no resize) and it trains ~3x faster than `dcgan` here. Domain classifier: "
            "the Fashion-MNIST classifier at 28px (`python -m src.train_classifier "
            f"data=fashion_mnist model={FOLDER_MODEL}`, trained on all 60,000 images, rather than one trained on "
            "the folder's own 2,700: `src.train_classifier data=folder` can, holding out `data.test_share`), copied "
            "to the folder's `classifiers/imagefolder_28_1.pt` where `src.evaluate` looks for it (test accuracy "
            f"{folder_info['accuracy']}). The reference statistics are those of the {folder_info['count']:,} "
            "training images themselves (src.evaluate's default, `metrics.split=train`): a generator that copied "
            "them would score well, so these numbers measure fit to the small set, not generalisation.",
            "",
            *table(folder),
            "",
        ]
    lines += ["## What wins (generated from the numbers above)", "", *verdicts(mnist, folder, args.budget), "",
              "## Caveats", "",
              "- One seed (42) per row and one evaluation noise seed: a different seed can reorder rows whose numbers "
              "are close. The ± on KID is the spread over its 100 random subsets of the same samples (the "
              "estimator's noise), not the spread over training seeds, so \"clear\" in \"What wins\" means clear "
              "of the estimator's noise only.",
              "- A short, fixed budget and the project's default optimiser for every objective (no per-row tuning, "
              "on purpose). Objectives that are usually run with other settings (WGAN-GP with 5 critic steps and "
              "betas (0, 0.9), SNGAN with n_critic 5) are handicapped here, and slower-starting objectives may "
              "overtake at longer budgets.",
              "- Wall times are indicative only: the 2 cores were shared with other jobs (test suites) during the "
              "run, see the load average above. Per batch, WGAN-GP pays for the gradient penalty's double "
              "backward and DiffAugment for its transforms on both real and fake images.",
              "- Domain metrics rank runs on one dataset; they are not Inception FIDs and say nothing across "
              "datasets (MNIST vs the folder rows use different classifiers and references).",
              ""]
    old = path.read_text() if path.is_file() else ""
    kept = old[old.index(EMA_SECTION):] if EMA_SECTION in old else ""  # make bench-ema's section stays
    path.write_text("\n".join(lines) + ("\n" + kept if kept else ""))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=600, help="max_batches of every MNIST row")
    parser.add_argument("--models", default="dcgan,dcgan28", help="comma-separated models for the MNIST rows")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {', '.join(ROWS)}")
    parser.add_argument("--samples", type=int, default=5000, help="num_samples of src.evaluate")
    parser.add_argument("--reuse", action="store_true",
                        help="keep rows already measured by the same command (<work-dir>/runs/<row>.result.json)")
    parser.add_argument("--skip-folder", action="store_true", help="leave out the small-data (image folder) rows")
    parser.add_argument("--skip-mnist", action="store_true", help="only the small-data rows")
    parser.add_argument("--folder-images", type=int, default=3000, help="Fashion-MNIST images in the folder")
    parser.add_argument("--folder-budget", type=int, default=1000, help="max_batches of the folder rows")
    parser.add_argument("--work-dir", default=str(ROOT / "outputs" / "bench_quality"),
                        help="runs, logs and the image folder (outputs/ is git-ignored)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "quality.md"))
    parser.add_argument("--json", default=None, help="raw results (default: <work-dir>/results.json)")
    args = parser.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if unknown := [r for r in rows if r not in ROWS]:
        parser.error(f"unknown rows {unknown}: choose from {', '.join(ROWS)}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    work = Path(args.work_dir).resolve()
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if not args.skip_folder and not (FASHION_SOURCE / "train-images-idx3-ubyte.gz").is_file():
        sys.exit(f"the small-data rows need Fashion-MNIST in {FASHION_SOURCE}: run `make data-fashion` "
                 "(apt-get install dataset-fashion-mnist), or pass --skip-folder")

    start, load_before = time.perf_counter(), os.getloadavg()[0]
    results: list[Result] = []
    if not args.skip_mnist:
        for model in models:
            size = 28 if model == "dcgan28" else 32
            ensure_classifier(["data=mnist", f"model={model}"], classifier_path(ROOT / "data", "MNIST", size, 1), logs)
        for model in models:
            for row in rows:
                label, extra = ROWS[row]
                overrides = [f"model={model}", "data=mnist", f"max_batches={args.budget}", *extra]
                results.append(train_and_evaluate(Result("mnist", model, label, overrides, ""),
                                                  work / "runs" / f"{model}_{row}", args.samples, args.reuse))
    folder_info = None
    if not args.skip_folder:
        images = work / "fashion_folder" / "images"
        per_class = write_fashion_folder(images, args.folder_images)
        target = folder_classifier(images, logs)
        accuracy = torch.load(target, map_location="cpu", weights_only=True)["info"]["test_accuracy"]
        folder_info = {"count": args.folder_images, "per_class": per_class, "accuracy": f"{accuracy:.1%}"}
        for row, (label, extra) in FOLDER_ROWS.items():
            overrides = [f"model={FOLDER_MODEL}", "data=folder", f"data.path={images}", "data.channels=1",
                         f"max_batches={args.folder_budget}", *extra]
            results.append(train_and_evaluate(Result("folder", FOLDER_MODEL, label, overrides, ""),
                                              work / "runs" / row, args.samples, args.reuse))
    total = time.perf_counter() - start
    loads = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    raw = Path(args.json) if args.json else work / "results.json"
    raw.write_text(json.dumps({"args": vars(args), "total_seconds": total, "folder": folder_info,
                               "results": [vars(r) for r in results]}, indent=2))
    write_report(Path(args.out), args, results, folder_info, total, loads)
    print(f"total {total / 60:.1f} min; raw results in {raw}")


if __name__ == "__main__":
    main()
