"""`make bench-alpha`: image folders with transparency, trained by the code before and after compositing
(src/data/alpha.py) -> benchmarks/quality.md, section "Transparent images".

Rows, each `python -m src.train model=dcgan data=folder data.path=<folder> max_batches=<budget>` (defaults otherwise):
- the `--folder-images` Fashion-MNIST folder of bench_backbones (grayscale PNGs without alpha: nothing to composite,
  the numbers must not move), scored with Fashion-MNIST's 32 px domain classifier as there;
- a folder of `--icons` transparent 32 px icons (src/data/synthetic.py write_icon_folder: four shapes in random
  colours, RGBA, grey + alpha and palette PNGs, each hiding orange, teal or brown under its transparent pixels), scored
  with the icons' own domain classifier (`python -m src.train_classifier` on the icons as a viewer sees them).
"before" is the tree at `--before` (default: the parent of the commit that added src/data/alpha.py) checked out with
`git worktree`; "after" is this tree. Both runs are scored by this tree's `src.evaluate` (real images as a viewer
sees them) and by the hidden-colour share: the fraction of the pixels of `--samples` generated images within 24
levels (each of R, G, B) of a hidden colour, against the same share in the real images as shown and as the old
loader read them.
Run: python -m benchmarks.bench_alpha [--budget 1000] [--rows icons,fashion] [--reuse]
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lightning
import numpy as np
import torch
from PIL import Image

from benchmarks.bench_data import cpu_model
from benchmarks.bench_quality import (
    FASHION_SOURCE,
    ensure_classifier,
    folder_classifier,
    last_line,
    run,
    write_fashion_folder,
)
from benchmarks.sections import write_section
from src.data.folder import find_images, store_dir
from src.data.synthetic import HIDDEN_COLOURS, write_icon_folder
from src.metrics.classifier import classifier_path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SECTION = "## Transparent images: composited, or trained on their hidden colours"
NEAR = 24  # levels per channel: a pixel this close to a hidden colour counts as showing it
SHOWN = (("fid_domain", ".2f"), ("kid_domain", ".3f"), ("precision_domain", ".3f"), ("recall_domain", ".3f"),
         ("classes_balanced_domain", ".0f"), ("classes_covered_domain", ".0f"))


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def before_tree(rev: str, work: Path) -> Path:
    """The tree at `rev`, checked out beside the runs (reused when it is already there at that commit)."""
    tree = work / "before_tree"
    commit = git("rev-parse", rev)
    if tree.is_dir() and git("-C", str(tree), "rev-parse", "HEAD") == commit:
        return tree
    if tree.exists():
        git("worktree", "remove", "--force", str(tree))
    git("worktree", "add", "--detach", str(tree), commit)
    return tree


def hidden_share(images: np.ndarray) -> float:
    """Fraction of the pixels of uint8 N x 3 x H x W images within NEAR levels of a hidden colour."""
    pixels = torch.from_numpy(images).permute(0, 2, 3, 1).reshape(-1, 3).int()
    near = torch.zeros(len(pixels), dtype=torch.bool)
    for colour in HIDDEN_COLOURS:
        near |= (pixels - torch.tensor(colour)).abs().amax(1) <= NEAR
    return near.float().mean().item()


def folder_pixels(root: Path, composited: bool) -> np.ndarray:
    """Every image of the folder as uint8 N x 3 x H x W: as a viewer shows it (composited on white, this tree's
    loader) or as the old loader read it (`convert("RGB")`, the hidden colours kept)."""
    from src.data.alpha import flatten

    arrays = []
    for path in find_images(root):
        with Image.open(path) as image:
            shown = flatten(image, (255, 255, 255)) if composited else image
            arrays.append(np.asarray(shown.convert("RGB")).transpose(2, 0, 1))
    return np.stack(arrays)


def side_by_side(grids: list[Path], out: Path) -> Path:
    """The runs' fixed-noise grids next to each other, as one PNG for the report."""
    images = [Image.open(p).convert("RGB") for p in grids]
    picture = Image.new("RGB", (sum(i.width for i in images) + 10 * (len(images) - 1), images[0].height), "gray")
    for k, image in enumerate(images):
        picture.paste(image, (k * (image.width + 10), 0))
    picture.save(out, optimize=True)
    return out


def train_and_score(name: str, overrides: list[str], tree: Path, run_dir: Path, samples: int, reuse: bool) -> dict:
    saved = run_dir.parent / f"{run_dir.name}.result.json"
    if reuse and saved.is_file() and json.loads(saved.read_text())["overrides"] == overrides:
        print(f"[{name}] reusing {saved}", flush=True)
        return json.loads(saved.read_text())
    result: dict = {"name": name, "overrides": overrides, "tree": str(tree),
                    "command": "python -m src.train " + " ".join(overrides)}
    if run_dir.exists():
        shutil.rmtree(run_dir)
    log = run_dir.parent / f"{run_dir.name}.train.log"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"[{name}] {result['command']} (in {tree})", flush=True)
    code, result["train_seconds"], _ = run([PY, "-m", "src.train", *overrides, f"hydra.run.dir={run_dir}"], log,
                                           tree)
    if code != 0 or not (run_dir / "generator.pt").is_file():
        result["status"] = f"training failed: {last_line(log)}"
        print(f"  {result['status']} ({log})", flush=True)
        return result
    out = run_dir / "metrics_now.json"
    eval_log = run_dir.parent / f"{run_dir.name}.evaluate.log"
    code, *_ = run([PY, "-m", "src.evaluate", f"ckpt_path={run_dir}", f"num_samples={samples}", "device=cpu",
                   f"data_dir={ROOT / 'data'}", f"output={out}"], eval_log, ROOT)  # this tree's classifiers
    if code != 0:
        result["status"] = f"evaluation failed: {last_line(eval_log)}"
        print(f"  {result['status']} ({eval_log})", flush=True)
        return result
    result["metrics"] = {row["metric"]: float(row["value"]) for row in json.loads(out.read_text())["rows"]}
    gen_log = run_dir.parent / f"{run_dir.name}.generate.log"
    code, *_ = run([PY, "-m", "src.generate", f"ckpt_path={run_dir}", "num_samples=1000", "device=cpu",
                   f"output_dir={run_dir / 'bench_samples'}"], gen_log, ROOT)
    if code == 0:
        images = np.load(run_dir / "bench_samples" / "samples.npz")["images"]
        result["hidden_share"] = hidden_share(np.repeat(images, 3, 1) if images.shape[1] == 1 else images)
    result["status"] = "ok"
    saved.write_text(json.dumps(result, indent=2))
    print(f"  {name}: " + ", ".join(f"{k}={result['metrics'][k]:.4g}" for k, _ in SHOWN)
          + f", hidden share {result.get('hidden_share', float('nan')):.4f}", flush=True)
    return result


def icon_classifier(icons: Path, logs: Path) -> Path:
    """The icons' own domain classifier at 32 px (this tree's src.train_classifier, on the composited icons)."""
    path = classifier_path(Path(store_dir(str(ROOT / "data"), str(icons))), "image folder", 32, 3)
    ensure_classifier(["data=folder", f"data.path={icons}", "model.image_size=32"], path, logs)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="icons,fashion", help="icons, fashion (the Fashion-MNIST folder)")
    parser.add_argument("--budget", type=int, default=1000, help="batches of 64 per run")
    parser.add_argument("--icons", type=int, default=3000)
    parser.add_argument("--folder-images", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=10_000, help="src.evaluate's samples per run")
    parser.add_argument("--before", default=None, help="the tree before compositing (default: parent of the "
                        "commit that added src/data/alpha.py)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="keep runs already scored")
    parser.add_argument("--work-dir", default=str(ROOT / "outputs" / "bench_alpha"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "quality.md"))
    args = parser.parse_args()
    start = time.perf_counter()
    work = Path(args.work_dir).resolve()
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    rev = args.before or git("log", "--diff-filter=A", "--format=%H", "--", "src/data/alpha.py").splitlines()[-1] + "^"
    trees = {"before": before_tree(rev, work), "after": ROOT}

    folders: dict[str, tuple[str, list[str]]] = {}
    if "icons" in args.rows:
        icons = work / "icons"
        if not icons.is_dir():
            write_icon_folder(icons, per_class=args.icons // 4, size=32)
        icon_classifier(icons, logs)
        folders["icons"] = (f"{args.icons:,} transparent icons", ["data=folder", f"data.path={icons}"])
    if "fashion" in args.rows:
        if not (FASHION_SOURCE / "train-images-idx3-ubyte.gz").is_file():
            sys.exit(f"the fashion row needs {FASHION_SOURCE}: run `make data-fashion`")
        images = ROOT / "outputs" / "bench_backbones" / "fashion_folder" / "images"
        if not images.is_dir():
            write_fashion_folder(images, args.folder_images)
        folder_classifier(images, logs, "dcgan", 32)
        folders["fashion"] = (f"{args.folder_images:,}-image Fashion-MNIST folder (no alpha)",
                              ["data=folder", f"data.path={images}", "data.channels=1"])

    os.environ["OMP_NUM_THREADS"] = "1"
    jobs = [(f, t) for f in folders for t in trees]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda job: train_and_score(
            f"{job[0]} {job[1]}", ["model=dcgan", *folders[job[0]][1], f"max_batches={args.budget}"], trees[job[1]],
            work / "runs" / f"{job[0]}_{job[1]}", args.samples, args.reuse), jobs))
    results = dict(zip(jobs, done, strict=True))

    real = {}
    if "icons" in folders:
        icons = work / "icons"
        real = {"shown": hidden_share(folder_pixels(icons, True)), "read": hidden_share(folder_pixels(icons, False))}
    minutes = (time.perf_counter() - start) / 60
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        SECTION, "",
        f"- command: `make bench-alpha ARGS=\"{' '.join(sys.argv[1:])}\"`; this invocation took {minutes:.0f} min",
        *(["- runs kept from an earlier invocation (`--reuse`): the time above is this invocation's only; the "
            "train min column is each run's own"] if args.reuse else []),
        f"- machine: {cores} CPU cores, {cpu_model()}, CPU only; torch {torch.__version__}, lightning "
        f"{lightning.__version__}; date {datetime.date.today().isoformat()}",
        f"- before: the tree at `{git('rev-parse', '--short', rev)}` (`convert(\"RGB\")` keeps what a file hides under "
        "its transparent pixels); after: this tree (composited on `data.background=white`); the same command, seed "
        f"42, {args.budget} batches of 64, {args.jobs} runs at a time, 1 thread each",
        f"- quality: this tree's `python -m src.evaluate ckpt_path=<run> num_samples={args.samples}` for both (the "
        "real images as a viewer sees them); the icons' domain classifier is their own (`python -m "
        "src.train_classifier data=folder data.path=<icons> model.image_size=32`), the Fashion folder's is "
        "Fashion-MNIST's 32 px one, as in the ResNet table",
        f"- hidden share: pixels within {NEAR} levels (each of R, G, B) of a hidden colour (orange, teal, brown) in "
        "1,000 samples of `python -m src.generate`"
        + (f"; in the real icons as a viewer sees them {real['shown']:.4f}, as the old loader read them "
           f"{real['read']:.4f}" if real else ""),
        "",
        "| folder | code | fid_domain | kid_domain | precision | recall | balanced | covered | hidden share | "
        "train min |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (folder, tree), r in results.items():
        values = (" | ".join(format(r["metrics"][k], d) for k, d in SHOWN) if r.get("status") == "ok"
                  else r.get("status", "?") + " |" * (len(SHOWN) - 1))
        share = f"{r['hidden_share']:.4f}" if "hidden_share" in r else "-"
        lines.append(f"| {folders[folder][0]} | {tree} | {values} | {share} | {r.get('train_seconds', 0) / 60:.1f} |")
    lines += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in {r["command"]: r for r in done}.values())]
    icons = [results.get(("icons", t), {}) for t in ("before", "after")]
    if all(r.get("status") == "ok" for r in icons):
        before, after = icons
        picture = side_by_side([work / "runs" / f"icons_{t}" / "samples" / f"batch_{args.budget:07d}.png"
                                for t in ("before", "after")], ROOT / "docs" / "transparent_icons_before_after.png")
        lines += ["", f"Reading: trained on what the old loader read, the icons' GAN draws their hidden colours "
                  f"(hidden share {before['hidden_share']:.4f} against {real['shown']:.4f} in the icons as shown) and "
                  f"scores fid_domain {before['metrics']['fid_domain']:.2f}; composited, "
                  f"{after['metrics']['fid_domain']:.2f} with a hidden share of {after['hidden_share']:.4f}. The "
                  "plain folder's rows are the same before and after: an image without transparency is untouched.",
                  "", f"![Fixed-noise samples at batch {args.budget}: before (left), after (right)]"
                  f"(../{picture.relative_to(ROOT)})"]
    text = "\n".join(lines) + "\n"
    (work / "results.json").write_text(json.dumps(done, indent=2))
    write_section(Path(args.out), SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
