"""`make bench-budgets`: what a CPU training budget buys on an RGB folder with classes -> benchmarks/quality.md,
section "What a CPU budget buys on an RGB folder", and docs/rgb_folder_budgets.png.

One default run, `python -m src.train data=folder data.path=<icons>` (what a user types), on the `--icons`
transparent colour icons of `make bench-alpha` (src/data/synthetic.py write_icon_folder: four shapes in random colours,
one class per shape), trained in stages to each of `--budgets` batches: `max_batches=<b>`, then `resume=<run>
max_batches=<next>` (a resume continues exactly, docs/resume.md); after each stage its newest checkpoint is kept as
checkpoints/budget_<b>.ckpt. At each budget: the run's fixed-noise grid samples/batch_<b>.png, `python -m
src.evaluate ckpt_path=<that checkpoint> num_samples=<--samples>` with the folder's own domain classifier (`python -m
src.train_classifier data=folder data.path=<icons>`, trained first), and the wall time of the stages so far.
`--train-minutes` passes max_minutes to every stage (it counts the run's training time across resumes): the stage it
stops is scored at the batch it reached. `--phase score` scores what is trained so far (while training goes on).
Run: python -m benchmarks.bench_budgets [--budgets 500,1000,2000] [--samples 2000] [--train-minutes M]
[--phase all|train|score]
"""

import argparse
import datetime
import json
import os
import shutil
import sys
from pathlib import Path

import lightning
import torch
from PIL import Image, ImageDraw

from benchmarks.bench_data import cpu_model
from benchmarks.bench_quality import ensure_classifier, last_line, run
from benchmarks.sections import write_section
from src.core.checkpoint_files import newest_checkpoint
from src.data.folder import store_dir
from src.data.synthetic import write_icon_folder
from src.metrics.classifier import classifier_path, load_classifier

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SECTION = "## What a CPU budget buys on an RGB folder"
PICTURE = ROOT / "docs" / "rgb_folder_budgets.png"
SHOWN = (("fid_domain", ".2f"), ("kid_domain", ".3f"), ("precision_domain", ".3f"), ("recall_domain", ".3f"),
         ("classes_covered_domain", ".0f"), ("classes_balanced_domain", ".0f"), ("class_kl_domain", ".3f"))


def budget_checkpoint(run_dir: Path, batches: int) -> Path:
    return run_dir / "checkpoints" / f"budget_{batches:07d}.ckpt"


def train_stages(icons: Path, run_dir: Path, budgets: list[int], minutes: float | None, logs: Path) -> list[dict]:
    """Train the default run to each budget in turn (a stage resumes the previous one; kept checkpoints are not
    trained again). With `minutes`, every stage gets max_minutes=<minutes>, which counts the run's training time
    across resumes: the stage it stops is recorded at the batch it reached, and no later stage runs. Returns per
    stage: batches, its command, wall seconds and mean load average."""
    record = logs / "stages.json"
    stages = [s for s in (json.loads(record.read_text()) if record.is_file() else [])
              if budget_checkpoint(run_dir, s["batches"]).is_file()]
    for batches in budgets:
        if stages and (stages[-1]["batches"] >= batches or stages[-1].get("cut")):
            continue
        overrides = ["data=folder", f"data.path={icons}", f"max_batches={batches}",
                     *([f"max_minutes={minutes:g}"] if minutes else [])]
        if not stages:
            shutil.rmtree(run_dir, ignore_errors=True)
            cmd = [PY, "-m", "src.train", *overrides, f"hydra.run.dir={run_dir}"]
        else:
            cmd = [PY, "-m", "src.train", *overrides, f"resume={run_dir}"]
        print(f"training to batch {batches}: {' '.join(cmd[1:])}", flush=True)
        log = logs / f"train_{batches:07d}.log"
        code, seconds, load = run(cmd, log)
        found = newest_checkpoint(run_dir / "checkpoints")
        if code != 0 or found is None:
            sys.exit(f"training to batch {batches} failed: {last_line(log)} (log: {log})")
        reached = found[1]
        shutil.copyfile(found[0], budget_checkpoint(run_dir, reached))
        stages.append({"batches": reached, "command": "python -m src.train " + " ".join(cmd[3:]),
                       "seconds": seconds, "load": load, "cut": reached < batches})
        record.write_text(json.dumps(stages, indent=2))
        print(f"  batch {reached} after {seconds:.0f} s, load average {load:.1f}", flush=True)
    return stages


def evaluate(run_dir: Path, batches: int, samples: int, logs: Path) -> dict:
    """src.evaluate on the checkpoint kept at this budget (its metrics JSON is reused when already written)."""
    out = logs / f"metrics_{batches:07d}_{samples}.json"
    if not out.is_file():
        log = logs / f"evaluate_{batches:07d}.log"
        print(f"evaluating batch {batches} on {samples} samples ...", flush=True)
        code, seconds, _ = run([PY, "-m", "src.evaluate", f"ckpt_path={budget_checkpoint(run_dir, batches)}",
                                f"num_samples={samples}", "device=cpu", f"output={out}"], log)
        if code != 0 or not out.is_file():
            sys.exit(f"evaluating batch {batches} failed: {last_line(log)} (log: {log})")
        print(f"  {seconds:.0f} s", flush=True)
    return {row["metric"]: float(row["value"]) for row in json.loads(out.read_text())["rows"]}


def labelled_grids(grids: dict[int, Path], out: Path) -> Path:
    """The fixed-noise grids side by side (twice their size, pixels kept sharp), each under a caption naming its
    budget."""
    images = {b: (i := Image.open(p).convert("RGB")).resize((2 * i.width, 2 * i.height), Image.NEAREST)
              for b, p in grids.items()}
    width, height = max(i.width for i in images.values()), max(i.height for i in images.values())
    gap, caption = 16, 32
    picture = Image.new("RGB", (len(images) * (width + gap) - gap, height + caption), "white")
    draw = ImageDraw.Draw(picture)
    for k, (batches, image) in enumerate(images.items()):
        x = k * (width + gap)
        draw.text((x + 4, 4), f"{batches:,} batches", fill="black", font_size=24)
        picture.paste(image, (x, caption))
    picture.save(out, optimize=True)
    return out


def icon_classifier(icons: Path, logs: Path) -> Path:
    """The icons' domain classifier, trained as a user would (`src.train_classifier data=folder data.path=...`)."""
    path = classifier_path(Path(store_dir(str(ROOT / "data"), str(icons))), "image folder", 32, 3)
    ensure_classifier(["data=folder", f"data.path={icons}"], path, logs)
    return path


def score(args: argparse.Namespace, budgets: list[int], icons: Path, run_dir: Path, logs: Path) -> None:
    """Evaluate every budget trained so far, then write the section and the picture."""
    accuracy = load_classifier(icon_classifier(icons, logs))[1].get("test_accuracy")
    stages = json.loads((logs / "stages.json").read_text()) if (logs / "stages.json").is_file() else []
    trained = [s for s in stages if budget_checkpoint(run_dir, s["batches"]).is_file()]
    rows, wall = [], 0.0
    for stage in trained:
        wall += stage["seconds"]
        rows.append({**stage, "wall": wall, "metrics": evaluate(run_dir, stage["batches"], args.samples, logs),
                     "grid": run_dir / "samples" / f"batch_{stage['batches']:07d}.png"})
    missing = [b for b in budgets if b not in {s["batches"] for s in trained}]
    early = {b: run_dir / "samples" / f"batch_{b:07d}.png" for b in args.early_grids}
    grids = {**{b: p for b, p in early.items() if p.is_file()}, **{r["batches"]: r["grid"] for r in rows}}
    grids = {b: p for b, p in sorted(grids.items()) if p.is_file()}
    picture = labelled_grids(grids, PICTURE) if grids else None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    loads = ", ".join(f"{r['load']:.1f}" for r in rows)
    lines = [
        SECTION, "",
        f"- command: `make bench-budgets ARGS=\"{' '.join(sys.argv[1:])}\"`; date {datetime.date.today().isoformat()}",
        f"- machine: {cores} CPU cores, {cpu_model()}, CPU only; torch {torch.__version__}, lightning "
        f"{lightning.__version__}; SHARED with other jobs while it ran: mean 1-minute load average per stage "
        f"{loads} (an idle machine reads about 2 from this run alone), so the wall times are slower than an idle "
        "machine's",
        f"- data: {args.icons:,} colour icons, 32 px, four classes (one shape each: disc, ring, square, triangle) in "
        "random colours, written by src/data/synthetic.py write_icon_folder (as `make bench-alpha`)",
        "- training: one run, `python -m src.train data=folder data.path=<icons>` with defaults otherwise (dcgan, "
        "bce, 64 per batch, seed 42), trained to each budget in turn with `resume=<run> max_batches=<next>`; wall "
        "time is the stages' sum, each with its start-up",
        f"- quality: `python -m src.evaluate ckpt_path=<run>/checkpoints/budget_<batches>.ckpt "
        f"num_samples={args.samples}`, with the icons' own domain classifier (`python -m src.train_classifier "
        "data=folder data.path=<icons>`"
        + (f", test accuracy {accuracy:.1%} against a chance of 25%)" if accuracy is not None else ")"),
        "",
        "| batches | wall min | " + " | ".join(k.removesuffix("_domain") for k, _ in SHOWN) + " |",
        "| ---: | ---: | " + " | ".join("---:" for _ in SHOWN) + " |",
    ]
    for r in rows:
        cut = " (cut by --train-minutes)" if r.get("cut") else ""
        lines.append(f"| {r['batches']:,}{cut} | {r['wall'] / 60:.1f} | "
                     + " | ".join(format(r["metrics"][k], f) if k in r["metrics"] else "-" for k, f in SHOWN) + " |")
    if missing:
        lines += ["", f"Not reached: {', '.join(f'{b:,}' for b in missing)} batches (training was stopped before "
                  "them)."]
    if picture:
        unscored = [b for b in grids if b not in {r["batches"] for r in rows}]
        lines += ["", f"![The run's fixed-noise grids at {', '.join(f'{b:,}' for b in grids)} batches]"
                  f"(../{picture.relative_to(ROOT)})", "",
                  "The run's fixed-noise grids (`samples/batch_<batches>.png`), left to right"
                  + (f"; {', '.join(f'{b:,}' for b in unscored)} batches: grid only (no checkpoint kept there)"
                     if unscored else "") + "."]
    lines += ["", "Stages (each a command of its own; `--phase score` scores them later): "
              + "; ".join(f"`{r['command']}` ({r['seconds'] / 60:.1f} min)" for r in rows)]
    text = "\n".join(lines) + "\n"
    (logs / "results.json").write_text(json.dumps(rows, indent=2, default=str))
    write_section(Path(args.out), SECTION, text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="500,1000,2000", help="batches of 64, ascending")
    parser.add_argument("--icons", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=2000, help="src.evaluate's samples per budget")
    parser.add_argument("--train-minutes", type=float, default=None, help="max_minutes of training in all (the "
                        "budget it stops is reported at the batch it reached; default: no limit)")
    parser.add_argument("--early-grids", default="100", help="batches whose grid (samples/, no checkpoint: not "
                        "scored) goes in the picture too; '' for none")
    parser.add_argument("--phase", default="all", choices=("all", "train", "score"))
    parser.add_argument("--work-dir", default=str(ROOT / "outputs" / "bench_budgets"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "quality.md"))
    args = parser.parse_args()
    budgets = sorted(int(b) for b in args.budgets.split(","))
    args.early_grids = [int(b) for b in args.early_grids.split(",") if b]
    work = Path(args.work_dir).resolve()
    logs, icons, run_dir = work / "logs", work / "icons", work / "run"
    logs.mkdir(parents=True, exist_ok=True)
    if not icons.is_dir():
        write_icon_folder(icons, per_class=args.icons // 4, size=32)
    icon_classifier(icons, logs)
    if args.phase in ("all", "train"):
        train_stages(icons, run_dir, budgets, args.train_minutes, logs)
    if args.phase in ("all", "score"):
        score(args, budgets, icons, run_dir, logs)


if __name__ == "__main__":
    main()
