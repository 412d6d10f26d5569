"""The Optuna sweeper runs real trials and minimises the metric that src.train returns."""

import json
import re
from pathlib import Path

import pytest
import yaml

from src.data.synthetic import write_mnist
from src.run.compose import compose_config
from src.train_classifier import train_classifier
from tests.conftest import run_cli
from tests.test_metrics_pipeline import SMALL, write_class_patterns

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the sweeps extra is not installed")


def classified_data(tmp_path: Path) -> Path:
    """MNIST files with learnable classes and their domain classifier at mlp_gan's size."""
    data_dir = tmp_path / "data"
    write_class_patterns(data_dir)
    train_classifier(compose_config("train_classifier", [
        "model=mlp_gan", f"paths.data_dir={data_dir}", "data.num_workers=0", "classifier.width=4", "epochs=2",
        "batch_size=30"]))
    return data_dir


@pytest.mark.slow  # starts a process
def test_optuna_runs_two_trials_on_the_returned_domain_fid(tmp_path: Path) -> None:
    data_dir = classified_data(tmp_path)
    sweep = tmp_path / "sweep"
    result = run_cli(
        "src.train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2", "model=mlp_gan", "model.generator.width=8", "max_batches=2",
        "metrics.every_n_batches=2", *SMALL, "data.batch_size=8", "data.num_workers=0", "~logger",
        "trainer.enable_progress_bar=false", "~callbacks.progress_bar", f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"model.lr_g", "model.lr_d", "model.n_critic"}
    assert best["best_value"] > 0  # an FID between generated and real features
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())  # each job folder named by its own overrides,
    assert [name.split("_", 1)[0] for name in jobs] == ["0", "1"]  # these cut to 120 characters + a hash of them all
    assert all(len(name) == 2 + 120 and re.match(rf"{i}_model\.lr_g=[\d.e-]+,model\.lr_d=", name)  # searched first
               for i, name in enumerate(jobs)) and jobs[0][-8:] != jobs[1][-8:]


def only_sweep(cwd: Path) -> Path:
    """The one sweep folder a command typed in `cwd` made at its default place (outputs/multirun/<date>/<time>)."""
    (sweep,) = (cwd / "outputs" / "multirun").glob("*/*")
    return sweep


@pytest.mark.slow
def test_a_failed_job_is_recorded_and_the_other_jobs_still_run(tmp_path) -> None:
    """CIFAR-10 is not on this machine: job 0 fails with its one line, job 1 trains, the summary has both, and the
    sweep's exit status says a job failed. Typed as a user types it: data and outputs in their default folders."""
    write_mnist(tmp_path / "data")
    result = run_cli("src.train", "-m", "model=mlp_gan", "model.generator.width=8", "data=cifar10,mnist",
                     "max_batches=2", "data.batch_size=8", "data.num_workers=0", "~logger", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    sweep = only_sweep(tmp_path)
    records = json.loads((sweep / "summary.json").read_text())
    assert [(r["job"], r["status"]) for r in records] == [(0, "FAILED"), (1, "COMPLETED")]
    assert "CIFAR-10" in records[0]["result"] and "\n" not in records[0]["result"]
    job = Path(records[1]["folder"])  # named by the job's overrides, where data and outputs live left out
    assert job.parent == sweep.resolve() and job.name.startswith("1_") and "data=mnist" in job.name
    assert (job / "generator.pt").is_file()
    assert "| 0 | cifar10 | FAILED | " in (sweep / "summary.md").read_text()  # the swept key's value first
    assert "Error: 1 of 2 jobs failed (jobs 0): see outputs/multirun/" in result.stderr
    # job 1 ran in the process job 0 ran in: its first batch is timed from its own start, not the command's
    assert re.search(r"\[done\] 2 batches of max_batches=2, this session .*, first batch [\d.]+ s after its job "
                     r"started: ", result.stdout)
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr


@pytest.mark.slow
def test_a_sweep_puts_its_swept_keys_first_and_compares_quality(tmp_path: Path) -> None:
    """Job names, summary.md and the HPARAMS table lead with what the sweep varies; with the dataset's domain
    classifier in place each job measures metrics.monitor at its end, summary.md's quality column. Run by joblib's
    launcher, each job in a worker process that starts its own DataLoader workers, in the default folders."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="the sweeps extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    classified_data(tmp_path)  # in <cwd>/data, where the command looks by default
    result = run_cli("src.train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=mlp_gan",
                     "model.generator.width=8", "max_batches=2", "model.lr_g=1e-4,2e-4", *SMALL, "data.batch_size=8",
                     "data.num_workers=1", "~callbacks.progress_bar", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning: Callback" not in result.stderr
    sweep = only_sweep(tmp_path)
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert [name.split(",")[0] for name in jobs] == ["0_model.lr_g=0.0001", "1_model.lr_g=0.0002"]
    table = (sweep / "summary.md").read_text().splitlines()
    assert table[0] == "| job | model.lr_g | status | fid_domain | result | other overrides |"
    for line, lr in zip(table[2:4], ("0.0001", "0.0002"), strict=True):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[:3] == [cells[0], lr, "COMPLETED"] and float(cells[3]) > 0 and "model.lr_g" not in cells[5]
    records = json.loads((sweep / "summary.json").read_text())
    assert records[0]["quality"]["metrics/fid_domain"] == pytest.approx(float(table[2].split("|")[4]), rel=1e-5)
    events = EventAccumulator(str(next((sweep / jobs[0] / "tensorboard").rglob("events.out.*")).parent)).Reload()
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/experiment"]).experiment
    assert experiment.hparam_infos[0].name == "model.lr_g"
