"""`make bench-mirror`: an RGB folder trained with and without `data.mirror=true`, 2 seeds each
-> benchmarks/quality.md, section "Mirror", and the four fixed-noise grids side by side in docs/mirror_grids.png.

The folder is bench_alpha's: `--icons` transparent 32 px icons in four shape classes (src/data/synthetic.py
write_icon_folder), composited on white as a viewer sees them, scored by their own domain classifier
(`python -m src.train_classifier data=folder data.path=<icons> model.image_size=32`). Each run is
`python -m src.train model=dcgan data=folder data.path=<icons> max_batches=<budget> seed=<s> [data.mirror=true]`
(defaults otherwise), then `python -m src.evaluate ckpt_path=<run> num_samples=<samples>`.
Run: python -m benchmarks.bench_mirror [--budget 800] [--seeds 1,2] [--reuse]
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

from benchmarks.bench_alpha import SHOWN, icon_classifier, side_by_side, train_and_score
from benchmarks.bench_data import cpu_model
from benchmarks.sections import write_section
from src.data.synthetic import ICON_SHAPES, write_icon_folder

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Mirror: data.mirror=true on an RGB folder"
PICTURE = ROOT / "docs" / "mirror_grids.png"


def jobs(seeds: list[int]) -> list[tuple[str, int]]:
    """(mirror, seed) in the order the grids are shown: mirror off for every seed, then on."""
    return [(mirror, seed) for mirror in ("false", "true") for seed in seeds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=800, help="batches of 64 per run")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--icons", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=10_000, help="src.evaluate's samples per run")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, 1 thread each")
    parser.add_argument("--reuse", action="store_true", help="keep runs already scored")
    parser.add_argument("--work-dir", default=str(ROOT / "outputs" / "bench_mirror"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "quality.md"))
    args = parser.parse_args()
    start = time.perf_counter()
    work = Path(args.work_dir).resolve()
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    icons = work / "icons"
    if not icons.is_dir():
        write_icon_folder(icons, per_class=args.icons // len(ICON_SHAPES), size=32)
    icon_classifier(icons, logs)

    os.environ["OMP_NUM_THREADS"] = "1"
    seeds = [int(s) for s in args.seeds.split(",")]
    todo = jobs(seeds)

    def one(job: tuple[str, int]) -> dict:
        mirror, seed = job
        overrides = ["model=dcgan", "data=folder", f"data.path={icons}", f"max_batches={args.budget}", f"seed={seed}",
                     *(["data.mirror=true"] if mirror == "true" else [])]
        return train_and_score(f"mirror={mirror} seed={seed}", overrides, ROOT,
                               work / "runs" / f"mirror_{mirror}_seed{seed}", args.samples, args.reuse)

    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(one, todo))
    results = dict(zip(todo, done, strict=True))
    (work / "results.json").write_text(json.dumps(done, indent=2))
    write_section(Path(args.out), SECTION, report(results, args, (time.perf_counter() - start) / 60, work))


def report(results: dict[tuple[str, int], dict], args: argparse.Namespace, minutes: float, work: Path) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        SECTION, "",
        f"- command: `make bench-mirror ARGS=\"{' '.join(sys.argv[1:])}\"`; this invocation took {minutes:.0f} min",
        f"- machine: {cores} CPU cores, {cpu_model()}, CPU only, shared with other engineers' jobs while it ran; torch "
        f"{torch.__version__}, lightning {lightning.__version__}; date {datetime.date.today().isoformat()}",
        f"- folder: bench_alpha's {args.icons:,} transparent 32 px icons, four shape classes "
        f"({', '.join(ICON_SHAPES)}) in random colours, composited on white; the runs: "
        "`python -m src.train model=dcgan data=folder "
        f"data.path=<icons> max_batches={args.budget} seed=<seed> [data.mirror=true]`, {args.jobs} runs at a time, "
        "1 thread each",
        f"- quality: `python -m src.evaluate ckpt_path=<run> num_samples={args.samples}` with the icons' own domain "
        "classifier (`python -m src.train_classifier data=folder data.path=<icons> model.image_size=32`)",
        "",
        "| data.mirror | seed | fid_domain | kid_domain | precision | recall | balanced | covered | train min |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (mirror, seed), r in results.items():
        values = (" | ".join(format(r["metrics"][k], d) for k, d in SHOWN) if r.get("status") == "ok"
                  else r.get("status", "?") + " |" * (len(SHOWN) - 1))
        lines.append(f"| {mirror} | {seed} | {values} | {r.get('train_seconds', 0) / 60:.1f} |")
    grids = [work / "runs" / f"mirror_{m}_seed{s}" / "samples" / f"batch_{args.budget:07d}.png" for m, s in results]
    if all(g.is_file() for g in grids):
        side_by_side(grids, PICTURE)
        order = ", ".join(f"mirror={m} seed {s}" for m, s in results)
        lines += ["", f"![Fixed-noise samples at batch {args.budget}, left to right: {order}]"
                  f"(../{PICTURE.relative_to(ROOT)})"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
