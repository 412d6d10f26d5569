"""Overrides given on resume: optimizer settings take effect on the restored optimizers (one line says so), and what
a continuing run cannot change is refused in one line, before anything is written."""

from pathlib import Path

import pytest
import torch

from src.data.synthetic import write_mnist
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    write_mnist(path)
    return path


def common(data_dir: Path) -> list[str]:
    return ["model=mlp_gan", "model.generator.width=8", f"paths.data_dir={data_dir}", "data.batch_size=8",
            "data.num_workers=0", "~callbacks.progress_bar"]


def trained(data_dir: Path, run: Path, *extra: str) -> Path:
    made = run_cli("src.train", *common(data_dir), "max_batches=2", f"hydra.run.dir={run}", *extra)
    assert made.returncode == 0, made.stderr[-3000:]
    return run / "checkpoints" / "last.ckpt"


def groups(checkpoint: Path) -> list[dict]:
    states = torch.load(checkpoint, map_location="cpu", weights_only=True)["optimizer_states"]
    return [state["param_groups"][0] for state in states]


@pytest.mark.slow  # starts a process
def test_learning_rate_and_betas_given_on_resume_take_effect(data_dir: Path, tmp_path: Path) -> None:
    last = trained(data_dir, tmp_path / "run")
    resumed = run_cli("src.train", f"resume={tmp_path / 'run'}", "max_batches=3", "model.lr_g=1e-3",
                      "optimizer.discriminator.betas=[0.0,0.9]")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert ("[resume] the configured optimizer settings replace the saved ones: optimizer_g lr 0.0002 -> 0.001, "
            "optimizer_d betas (0.5, 0.999) -> (0.0, 0.9)") in resumed.stdout + resumed.stderr
    g, d = groups(last)
    assert g["lr"] == 1e-3 and tuple(g["betas"]) == (0.5, 0.999)
    assert d["lr"] == 2e-4 and tuple(d["betas"]) == (0.0, 0.9)
    again = run_cli("src.train", f"resume={tmp_path / 'run'}", "max_batches=4")  # the run now has them: no line
    assert again.returncode == 0 and "[resume] the configured optimizer" not in again.stdout + again.stderr


@pytest.mark.slow  # starts a process
def test_a_resume_says_the_runs_own_choices(data_dir: Path, tmp_path: Path) -> None:
    trained(data_dir, tmp_path / "run", "loss=lsgan")
    resumed = run_cli("src.train", f"resume={tmp_path / 'run'}", "max_batches=3", "augment=diffaugment")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    config = [line for line in (resumed.stdout + resumed.stderr).splitlines() if line.startswith("[config] ")]
    assert config[0].startswith("[config] model=mlp_gan loss=lsgan regularizer=none augment=diffaugment "), config
    assert config[1] == (f"[config] set on the command line: model.generator.width=8 paths.data_dir={data_dir} "
                         f"data.batch_size=8 data.num_workers=0 ~callbacks.progress_bar resume={tmp_path / 'run'} "
                         "max_batches=3"), config


@pytest.mark.slow  # starts a process
def test_a_scheduled_rate_is_rescaled_where_it_stands(data_dir: Path, tmp_path: Path) -> None:
    last = trained(data_dir, tmp_path / "run", "scheduler=linear_decay")
    # the restored schedule goes on from where it stands, from the new base rate
    resumed = run_cli("src.train", f"resume={tmp_path / 'run'}", "max_batches=3", "model.lr_d=4e-4")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "optimizer_d lr 0.0002 -> 0.0004" in resumed.stdout + resumed.stderr
    assert groups(last)[1]["initial_lr"] == 4e-4


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize(("override", "message"), [
    ("seed=7", "seed can't change when a run continues (the random streams continue from the checkpoint): the run "
               "has seed=42, this command seed=7"),
    ("data.batch_size=4", "data.batch_size can't change when a run continues (the data order continues mid-epoch "
                          "from the checkpoint)"),
])
def test_what_a_run_cannot_change_is_refused_in_one_line(data_dir: Path, tmp_path: Path, override: str,
                                                        message: str) -> None:
    last = trained(data_dir, tmp_path / "run")
    before = last.read_bytes()
    refused = run_cli("src.train", f"resume={tmp_path / 'run'}", "max_batches=3", override)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("Error: ")]
    assert refused.returncode != 0 and len(errors) == 1 and message in errors[0], refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr and last.read_bytes() == before


@pytest.mark.slow  # starts a process
def test_resuming_a_finished_run_says_so_and_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained(data_dir, run)
    files = {p: p.read_bytes() for p in (run / "generator.pt", run / "config.yaml", run / "checkpoints" / "last.ckpt")}
    again = run_cli("src.train", f"resume={run}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert (f"[resume] {run} has trained 2 batches, max_batches=2: nothing to do, no file changed; train it longer "
            f"with python -m src.train resume={run} max_batches=<more than 2>") in again.stdout
    assert "max_steps" not in again.stdout + again.stderr
    assert all(path.read_bytes() == data for path, data in files.items())


@pytest.mark.slow  # starts a process
def test_a_refused_or_failed_resume_changes_nothing_a_later_resume_reads(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained(data_dir, run)
    config, records = (run / "config.yaml").read_text(), sorted((run / ".hydra").iterdir())
    refused = run_cli("src.train", f"resume={run}", "max_batches=4", "seed=7")
    assert refused.returncode != 0 and "seed can't change" in refused.stderr
    # fails before its first save with another loss and rate: the run's checkpoints were trained with BCE
    failed = run_cli("src.train", f"resume={run}", "max_batches=4", "loss=lsgan", "model.lr_g=1e-3",
                     "checkpoint_every_n_batches=0", "+callbacks.crash._target_=tests.killer.CrashAfterBatch",
                     "+callbacks.crash.batch=3", "+callbacks.crash.in_resumed_run=true")
    assert failed.returncode != 0 and "simulated crash after batch 3" in failed.stdout + failed.stderr
    nothing_to_do = run_cli("src.train", f"resume={run}")
    assert nothing_to_do.returncode == 0 and "nothing to do" in nothing_to_do.stdout
    assert (run / "config.yaml").read_text() == config and sorted((run / ".hydra").iterdir()) == records

    resumed = run_cli("src.train", f"resume={run}", "max_batches=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3 and last["hyper_parameters"]["loss"] == "BCE()"
    assert groups(run / "checkpoints" / "last.ckpt")[0]["lr"] == 2e-4  # not the failed command's 1e-3
    assert "_target_: src.gan.losses.BCE" in (run / "config.yaml").read_text()
    assert len(sorted((run / ".hydra").glob("resume_*"))) == 1  # this resume's record only
