"""`make readme-picture`: README's picture and caption from `make train`'s default run at this commit.

It runs the default job exactly as `make train` does (`python -m src.train`, no override), copies its last
fixed-noise grid to docs/default_run_samples.png, measures it with `python -m src.evaluate ckpt_path=<run>
num_samples=10000` (training the MNIST domain classifier first when it is missing), and writes docs/default_run.json:
the numbers, the wall time and the machine, and the fingerprint of the default run's trajectory that
tests/test_readme_picture.py recomputes, so a commit that changes the trajectory fails there until the picture is
remade. The caption between README's `default-run caption` markers is rewritten from that file.

The fingerprint is cheap (seconds): the default config, seed and objective trained for FINGERPRINT_BATCHES batches on
the tests' small MNIST files, each weight tensor summarised where it starts and by how far it moved.
Run: python -m benchmarks.readme_picture [--fingerprint-only]
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PICTURE = ROOT / "docs" / "default_run_samples.png"
RECORD = ROOT / "docs" / "default_run.json"
README = ROOT / "README.md"
CAPTION_START = "<!-- default-run caption: written by make readme-picture from docs/default_run.json -->"
CAPTION_END = "<!-- end of default-run caption -->"
FINGERPRINT_BATCHES = 3
# Measured on this machine: the start is exact, and how far a tensor moved agrees to 2e-3 between 1 and 2 threads
# (a BatchNorm's weights; the convs' to 1e-4); G's learning rate at 3e-4 instead of 4e-4 moves G's tensors 19-25% less,
# D's at 3e-4 moves D's 38-43% less. Biases are left out: a conv bias before a BatchNorm has a gradient of rounding
# noise, which Adam turns into full steps of either sign.
FINGERPRINT_RTOL = 1e-2
METRICS = ("fid_domain", "classes_balanced_domain", "classes_covered_domain", "class_kl_domain", "precision_domain",
           "recall_domain", "density_domain", "coverage_domain")


def fingerprint(workdir: Path, *overrides: str) -> dict[str, float]:
    """The default run on the tests' small MNIST files: each weight tensor of G and D summarised where it starts (the
    sum of its absolute values: the seed and initialisation) and by how far FINGERPRINT_BATCHES batches moved it (the
    sum of the absolute changes: rates, objective, data order), and the fixed noise. `overrides`: another
    trajectory, for tests."""
    import lightning as L
    import torch

    from src.core.instantiate import instantiate
    from src.data.synthetic import write_mnist
    from src.run.compose import compose_config
    from src.train import train

    write_mnist(workdir / "data")
    run = workdir / "run"
    cfg = compose_config("train", [f"paths.data_dir={workdir / 'data'}", f"max_batches={FINGERPRINT_BATCHES}",
                                   *overrides], run)
    L.seed_everything(cfg.seed, workers=True)  # as src.train builds the model
    start = instantiate(cfg.model).state_dict()
    train(cfg)
    end = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    summary = {"fixed_noise": float(end["fixed_noise"].double().abs().sum())}
    for name in sorted(k for k in end if k.endswith(".weight")):
        summary[f"{name} at start"] = float(start[name].double().abs().sum())
        summary[f"{name} moved"] = float((end[name].double() - start[name].double()).abs().sum())
    return summary


def fingerprint_differences(stored: dict[str, float], now: dict[str, float]) -> list[str]:
    """The tensors whose summary moved by more than FINGERPRINT_RTOL (or that appeared or went away)."""
    changed = sorted(set(stored) ^ set(now))
    changed += [name for name in sorted(set(stored) & set(now))
                if abs(stored[name] - now[name]) > FINGERPRINT_RTOL * max(abs(stored[name]), 1e-12)]
    return changed


def current_fingerprint() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return fingerprint(Path(tmp))


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "conf"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()  # what the run is made of
    return done.stdout.strip() + ("+uncommitted changes in src/ or conf/" if dirty else "")


def run(*args: str) -> str:
    """`python -m <args>` in the repository, its output shown as it comes and returned."""
    process = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        sys.stdout.write(line)
        lines.append(line)
    if process.wait() != 0:
        sys.exit(f"python -m {' '.join(args)} failed (exit {process.returncode})")
    return "".join(lines)


def train_default() -> tuple[Path, dict]:
    """make train's job, timed from the command, with the machine's load when it started."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    output = run("src.train")
    seconds = time.perf_counter() - start
    done = re.search(r"^\[done\] (\d+) batches .*?first batch ([\d.]+) s after the command: (.+)$", output, re.M)
    if done is None:
        sys.exit("the default run did not end with its [done] line: no picture made")
    batches, first, folder = int(done.group(1)), float(done.group(2)), Path(done.group(3).strip())
    return folder, {"wall_seconds": round(seconds, 1), "batches": batches, "first_batch_seconds": first,
                    "batches_per_second": round(batches / (seconds - first), 2), "load_average_before": load,
                    "cores": os.cpu_count(), "cpu": cpu_model()}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def measure(folder: Path) -> tuple[dict[str, float], dict]:
    from src.metrics.classifier import classifier_path, load_classifier

    path = classifier_path(ROOT / "data", "MNIST", 32, 1)
    if not path.is_file():
        run("src.train_classifier", "data=mnist")
    _, info = load_classifier(path)
    run("src.evaluate", f"ckpt_path={folder}", "num_samples=10000")
    rows = json.loads((folder / "metrics.json").read_text())["rows"]
    values = {row["metric"]: row["value"] for row in rows}
    return {name: values[name] for name in METRICS}, {"test_accuracy": info["test_accuracy"],
                                                       "epochs": info.get("epochs")}


def default_settings() -> dict:
    from src.run.choices import Choices
    from src.run.compose import compose_config

    cfg = compose_config("train", [])
    groups = Choices.current().groups
    return {"model": groups["model"], "data": groups["data"], "loss": groups["loss"], "max_batches": cfg.max_batches,
            "batch_size": cfg.data.batch_size, "lr_g": cfg.model.lr_g, "lr_d": cfg.model.lr_d, "seed": cfg.seed}


def rate(value: float) -> str:
    """4e-4, as the README writes learning rates."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def minutes(seconds: float) -> str:
    whole, rest = divmod(round(seconds), 60)
    return f"{whole} min {rest} s"


def caption(record: dict) -> str:
    """README's caption, every number from the record."""
    s, m, t, c = record["settings"], record["metrics"], record["timing"], record["classifier"]
    return textwrap.fill((
        f"*Fixed-noise samples at the end of `make train` (model={s['model']}, data={s['data']}, loss={s['loss']}, "
        f"{s['max_batches']} batches of {s['batch_size']}, Adam with G at {rate(s['lr_g'])} and D at "
        f"{rate(s['lr_d'])}, seed {s['seed']}; "
        f"`samples/batch_{s['max_batches']:07d}.png` of the run `make readme-picture` made at {record['commit']} on "
        f"{record['date']}). 10,000 samples (`python -m src.evaluate ckpt_path=<run> num_samples=10000`; MNIST's "
        f"domain classifier at {c['test_accuracy']:.1%} test accuracy): fid_domain {m['fid_domain']:.2f}, "
        f"{m['classes_balanced_domain']:.0f} of 10 classes at at least half their real share "
        f"(`classes_balanced_domain`; covered at a tenth: {m['classes_covered_domain']:.0f}), class KL "
        f"{m['class_kl_domain']:.3f}, precision {m['precision_domain']:.3f}, recall {m['recall_domain']:.3f}, "
        f"density {m['density_domain']:.2f}, coverage {m['coverage_domain']:.3f}. Not every cell is a digit: "
        "readers of such grids counted 8 to 20 of the 64 cells as strokes they would not name a digit. Wall time of "
        f"`make train` after install: {minutes(t['wall_seconds'])} on {t['cores']} CPU cores ({t['cpu']}, "
        f"{t['batches_per_second']:.1f} batches/s, first batch {t['first_batch_seconds']:.1f} s after the command), "
        f"with a load average of {t['load_average_before']:.1f} when it started: other jobs on the cores make it "
        "longer, and machines of one kind vary about 2x.*"
    ), width=118, break_long_words=False, break_on_hyphens=False)


def write_caption(record: dict) -> None:
    text = README.read_text()
    start, end = text.index(CAPTION_START) + len(CAPTION_START), text.index(CAPTION_END)
    README.write_text(text[:start] + "\n" + caption(record) + "\n" + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fingerprint-only", action="store_true",
                        help="record only the trajectory's fingerprint (seconds), leaving the picture and caption")
    args = parser.parse_args()
    record = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    if args.fingerprint_only:
        record |= {"fingerprint": current_fingerprint(), "fingerprint_commit": git_commit()}
        RECORD.write_text(json.dumps(record, indent=1) + "\n")
        print(f"fingerprint -> {RECORD}; the picture and caption were left as they were")
        return
    folder, timing = train_default()
    shutil.copyfile(folder / "samples" / f"batch_{timing['batches']:07d}.png", PICTURE)
    metrics, classifier = measure(folder)
    record = {"commit": git_commit(), "date": datetime.date.today().isoformat(), "run": str(folder),
              "settings": default_settings(), "metrics": metrics, "classifier": classifier, "timing": timing,
              "fingerprint": current_fingerprint()}
    record["fingerprint_commit"] = record["commit"]
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    write_caption(record)
    print(f"{PICTURE}, {RECORD} and README's caption written from {folder}: commit them together")


if __name__ == "__main__":
    main()
