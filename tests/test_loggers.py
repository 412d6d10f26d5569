"""Every logger of conf/logger/ runs a few batches offline through the real CLI and writes its files where the run
folder keeps them; sample grids reach the loggers that take images; the run's settings and final metrics reach
TensorBoard's HPARAMS tab; a resumed run's CSV rows stay whole; a missing optional package is one line."""

import csv
import sys
import threading
from pathlib import Path

import pytest
import yaml
from omegaconf import open_dict
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from src.callbacks.loggers import instantiate_loggers
from src.core.errors import UserError
from src.data.synthetic import write_mnist
from src.run.compose import compose_config, group_options
from src.train import train
from tests.conftest import run_cli

TINY = ["model=mlp_gan", "model.generator.width=8", "model.discriminator.width=8", "max_batches=2",
        "data.batch_size=8", "data.num_workers=0", "sample_every_n_batches=1", "report_every_n_batches=1",
        "trainer.log_every_n_steps=1", "~callbacks.progress_bar", "trainer.enable_model_summary=false"]
# Checked by the tests below; tensorboard alone by tests/test_train.py and tests/test_resume.py.
TESTED = {"tensorboard", "csv", "many", "wandb", "mlflow"}


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    write_mnist(path)
    return path


def train_with(logger: str, run: Path, data: Path, *overrides: str) -> Path:
    done = run_cli("src.train", f"logger={logger}", *TINY, f"paths.data_dir={data}", f"hydra.run.dir={run}",
                   *overrides)
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def test_every_logger_config_is_tested() -> None:
    assert set(group_options("logger")) == TESTED, "a new conf/logger/ file needs a test here"


@pytest.mark.slow  # starts a process
def test_many_writes_tensorboard_and_csv_and_the_hparams_table(mnist_dir: Path, tmp_path: Path) -> None:
    run = train_with("many", tmp_path / "run", mnist_dir)

    with (run / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {"loss/g", "loss/d", "step"} <= set(rows[0])
    assert [int(r["step"]) for r in rows if r["loss/g"]] == [0, 1]  # batch n at step n - 1
    assert sorted(p.name for p in (run / "samples").glob("*.png"))  # CSV takes no images: the grids are here

    # The run's settings under their override names, each once: model.loss is ${loss}, so only loss (its option).
    for folder in ("csv", "tensorboard"):
        settings = yaml.safe_load((run / folder / "hparams.yaml").read_text())
        assert settings["model.lr_g"] == 2e-4 and settings["loss"] == "bce" and "loss._target_" not in settings
        assert settings["max_batches"] == 2 and "model.loss._target_" not in settings
        assert not any(k.startswith(("paths.", "logger.", "callbacks.")) for k in settings)

    events = EventAccumulator(str(run / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("loss/g")] == [0, 1]
    grids = events.Images("samples/fixed_noise")
    assert [e.step for e in grids] == [0, 1, 2]  # start, 2 batches (epoch not over)
    # The PNG is encoded once: TensorBoard holds the file's bytes, one channel for MNIST.
    assert grids[-1].encoded_image_string == (run / "samples" / "batch_0000002.png").read_bytes()
    with Image.open(run / "samples" / "batch_0000002.png") as picture:
        assert picture.mode == "L" and (picture.width, picture.height) == (grids[-1].width, grids[-1].height)
    hparams = events.PluginTagToContent(metadata.PLUGIN_NAME)
    experiment = metadata.parse_experiment_plugin_data(hparams[metadata.EXPERIMENT_TAG])
    assert {"loss/g", "loss/d"} <= {m.name.tag for m in experiment.metric_infos}  # their values: the curves' last
    assert "model.lr_g" in {h.name for h in experiment.hparam_infos}
    started = metadata.parse_session_start_info_plugin_data(hparams[metadata.SESSION_START_INFO_TAG]).hparams
    assert started["model.lr_g"].number_value == pytest.approx(2e-4)
    assert started["model.conditional"].string_value == "false"
    assert started["loss"].string_value == "bce"


@pytest.mark.slow  # starts a process
def test_wandb_runs_offline_in_each_run_folder_of_a_sweep(mnist_dir: Path, tmp_path: Path) -> None:
    """Two jobs in one process (Hydra's basic launcher): each gets its own wandb run, not the first job's."""
    done = run_cli("src.train", "-m", "logger=wandb", *TINY, f"paths.data_dir={mnist_dir}",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", "seed=1,2")
    assert done.returncode == 0 and "Error" not in done.stderr, done.stderr[-3000:]
    wandb_runs = sorted((tmp_path / "sweep").glob("*/wandb/offline-run-*"))
    assert len({run.parent.parent for run in wandb_runs}) == len(wandb_runs) == 2
    for wandb_run in wandb_runs:
        (record,) = wandb_run.glob("run-*.wandb")
        data = record.read_bytes()
        assert b"model.lr_g" in data and b"loss/g" in data  # the settings (its config) and the curves
        grids = list((wandb_run / "files" / "media" / "images" / "samples").glob("fixed_noise_*.png"))
        assert grids, "the sample grids did not reach wandb"


@pytest.mark.slow  # starts a process
def test_mlflow_keeps_a_file_store_in_the_run_folder(mnist_dir: Path, tmp_path: Path) -> None:
    run = train_with("mlflow", tmp_path / "run", mnist_dir)
    (store,) = (p.parent for p in (run / "mlruns").glob("*/*/meta.yaml"))
    assert (store / "params" / "model.lr_g").read_text() == "0.0002"
    steps = [int(line.split()[2]) for line in (store / "metrics" / "loss" / "g").read_text().splitlines()]
    assert steps == [0, 1]
    assert list((store / "artifacts" / "images").glob("samples~fixed_noise+step+2+*.png"))


def test_mlflow_is_written_only_from_the_training_thread(mnist_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """MLflow's file store reads a run's metric files when it first stores an artifact; from another thread, it read
    one the training thread had just created as malformed and the run failed (src/callbacks/loggers.image_loggers)."""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
    from mlflow.store.tracking.file_store import FileStore

    threads = set()

    def recording(original):
        def recorded(*args, **kwargs):
            threads.add(threading.get_ident())
            return original(*args, **kwargs)
        return recorded

    for cls, name in [(FileStore, "_get_run_info"), (LocalArtifactRepository, "log_artifact")]:
        monkeypatch.setattr(cls, name, recording(getattr(cls, name)))

    train(compose_config("train", [*TINY, "logger=mlflow", f"paths.data_dir={mnist_dir}"], tmp_path))
    assert len(list(tmp_path.glob("mlruns/*/*/artifacts/images/samples~fixed_noise+step+*.png"))) == 3  # it stored
    assert threads == {threading.get_ident()}


def test_mlflow_tracking_uri_by_override(tmp_path: Path) -> None:
    elsewhere = tmp_path / "store"
    cfg = compose_config("train", ["logger=mlflow", f"logger.mlflow.tracking_uri=file:{elsewhere}"], tmp_path / "run")
    (logger,) = instantiate_loggers(cfg.logger)
    logger.log_metrics({"loss/g": 1.0}, step=3)
    assert list(elsewhere.glob("*/*/metrics/loss/g")) and not (tmp_path / "run" / "mlruns").exists()


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_resumed_run_keeps_its_csv_rows_once(mnist_dir: Path, tmp_path: Path) -> None:
    overrides = [*TINY, "logger=csv", "max_batches=4", "checkpoint_every_n_batches=2", f"paths.data_dir={mnist_dir}"]
    cfg = compose_config("train", overrides, tmp_path)
    with open_dict(cfg):
        cfg.callbacks.crash = {"_target_": "tests.killer.CrashAfterBatch", "batch": 3}
    with pytest.raises(RuntimeError, match="simulated crash after batch 3"):
        train(cfg)
    train(compose_config("train", [*overrides, f"resume={tmp_path}"], tmp_path))  # from the checkpoint of batch 2

    with (tmp_path / "csv" / "metrics.csv").open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r["loss/g"]]
    assert steps == [0, 1, 2, 3]  # batch 3's row of the crashed process dropped, logged again once


@pytest.mark.parametrize(("logger", "package"), [("wandb", "wandb"), ("mlflow", "mlflow")])
def test_missing_package_is_one_line_naming_the_extra(logger: str, package: str, tmp_path: Path, mnist_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # `import <package>` fails as if it were not installed
    cfg = compose_config("train", [*TINY, f"logger={logger}", f"paths.data_dir={mnist_dir}"], tmp_path)
    with pytest.raises(UserError) as caught:
        train(cfg)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"logger={logger} needs the {package} package: pip install -e '.[loggers]'")
