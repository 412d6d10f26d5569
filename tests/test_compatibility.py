"""Runs made by earlier versions keep working: run folders written by main at 3f56ba1 and 551185a (tests/assets, see
their README.md) still resume through `python -m src.train resume=...` and still sample through
`python -m src.generate`."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from src.data.synthetic import write_mnist
from tests.conftest import run_cli

OLD_RUN = Path(__file__).parent / "assets" / "run_from_main_3f56ba1"
RUN_551185A = Path(__file__).parent / "assets" / "run_from_main_551185a"


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy of the old run folder: the tests write into it."""
    return Path(shutil.copytree(OLD_RUN, tmp_path / "old_run"))


def test_the_asset_is_the_run_its_readme_describes() -> None:
    ckpt = torch.load(OLD_RUN / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 6 and "global_step_counts_batches" not in ckpt  # 3 batches, 2 optimizer steps each
    overrides = yaml.safe_load((OLD_RUN / ".hydra" / "overrides.yaml").read_text())
    assert "model=dcgan" in overrides and "paths.data_dir=/tmp/oldrun/data" in overrides


@pytest.mark.slow  # starts a process
def test_an_old_run_resumes_with_its_own_overrides(old_run: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_mnist(data_dir)  # the run's recorded paths.data_dir (/tmp/oldrun/data) is gone: point it here
    old_generator = torch.load(old_run / "generator.pt", weights_only=True)

    result = run_cli("src.train", f"resume={old_run}", "max_batches=5", f"paths.data_dir={data_dir}",
                     "trainer.enable_progress_bar=false", "~callbacks.progress_bar", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # The EMA was on by default when it was made and is off now, and dcgan's lr_g was 2e-4: the run keeps what it was
    # trained with.
    assert ("[resume] keeping what this run was trained with where today's defaults differ: model.lr_g=0.0002, "
            "model.ema_decay=0.999") in result.stdout

    ckpt = torch.load(old_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    # 5 batches: the old checkpoint counted optimizer steps (6 = 3 batches), today's count batches
    assert ckpt["global_step"] == 5 and int(ckpt["state_dict"]["ema.num_updates"]) == 5
    # It went on from batch 3 rather than starting again: of the grids every 2 batches (the run's
    # sample_every_n_batches=2; the asset has none) only batch 4's was made, then the last batch's; a new run would
    # make 0, 2, 4 and 5.
    grids = {p.name for p in (old_run / "samples").glob("batch_*.png")}
    assert grids == {"batch_0000004.png", "batch_0000005.png"}
    # The run's own overrides were used again: dcgan with model.generator.width=4 (the checkpoint fits it).
    assert yaml.safe_load((old_run / "config.yaml").read_text())["model"]["generator"]["width"] == 4
    assert len(list((old_run / ".hydra").glob("resume_*/overrides.yaml"))) == 1

    generator = torch.load(old_run / "generator.pt", weights_only=True)  # rewritten: the EMA of the resumed run
    ema = {k.removeprefix("ema.module."): v for k, v in ckpt["state_dict"].items() if k.startswith("ema.module.")}
    assert generator.keys() == ema.keys() == old_generator.keys() and len(ema) > 0
    assert all(torch.equal(generator[k], ema[k]) for k in ema)
    assert any(not torch.equal(generator[k], old_generator[k]) for k in generator)


@pytest.mark.slow  # starts a process
def test_an_old_run_samples_from_its_folder_and_from_its_checkpoint(old_run: Path, tmp_path: Path) -> None:
    samples = {}
    for name, source in (("folder", old_run), ("checkpoint", old_run / "checkpoints" / "last.ckpt")):
        out = tmp_path / name
        result = run_cli("src.generate", f"ckpt_path={source}", "num_samples=10", "batch_size=4", "seed=3",
                         f"output_dir={out}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        samples[name] = np.load(out / "samples.npz")["images"]
        assert samples[name].dtype == np.uint8 and samples[name].shape == (10, 1, 32, 32)
        assert samples[name].std() > 0 and (out / "samples.png").is_file()
    # The folder's generator.pt is the EMA generator of last.ckpt: the same seed gives the same images.
    assert np.array_equal(samples["folder"], samples["checkpoint"])


@pytest.mark.slow  # starts a process
def test_a_default_that_changed_keeps_the_runs_value_unless_given_now(tmp_path: Path) -> None:
    """A run records its settings in config.yaml; resuming after a default changed keeps the recorded value (as if
    model.lr_d had been 1e-4 by default when the run was made), and a value given on the command line still wins."""
    data_dir = tmp_path / "data"
    write_mnist(data_dir)
    run = tmp_path / "run"
    common = [f"paths.data_dir={data_dir}", "data.batch_size=8", "data.num_workers=0", "~callbacks.progress_bar"]
    made = run_cli("src.train", "model=mlp_gan", "model.generator.width=8", "max_batches=2", *common,
                   f"hydra.run.dir={run}")
    assert made.returncode == 0, made.stderr[-3000:]
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    recorded["model"]["lr_d"] = 1e-4
    (run / "config.yaml").write_text(yaml.safe_dump(recorded))

    def hparams() -> dict:
        return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["hyper_parameters"]

    resumed = run_cli("src.train", f"resume={run}", "max_batches=3", *common)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "today's defaults differ: model.lr_d=0.0001" in resumed.stdout and hparams()["lr_d"] == 1e-4
    given = run_cli("src.train", f"resume={run}", "max_batches=4", "model.lr_d=3e-4", *common)
    assert given.returncode == 0, given.stderr[-3000:]
    assert "today's defaults differ" not in given.stdout and hparams()["lr_d"] == 3e-4


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize("payload", [torch.zeros(3), [1, 2], "hello"], ids=["tensor", "list", "str"])
def test_a_generator_file_that_holds_no_weights_is_one_line(old_run: Path, payload: object) -> None:
    torch.save(payload, old_run / "generator.pt")
    result = run_cli("src.generate", f"ckpt_path={old_run / 'generator.pt'}", "num_samples=4")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"Error: {old_run / 'generator.pt'} holds a {type(payload).__name__}, not a generator's weights" \
        in result.stderr


@pytest.mark.slow  # starts a process
def test_a_generator_with_non_finite_weights_is_refused_in_one_line(old_run: Path) -> None:
    weights = torch.load(old_run / "generator.pt", weights_only=True)
    first = next(k for k, t in weights.items() if t.is_floating_point())
    weights[first] = torch.full_like(weights[first], float("nan"))
    torch.save(weights, old_run / "generator.pt")
    result = run_cli("src.generate", f"ckpt_path={old_run / 'generator.pt'}", "num_samples=4")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"Error: {old_run / 'generator.pt'} holds non-finite weights ({first}): sample from a checkpoint" \
        in result.stderr
    assert not (old_run / "samples.png").exists()


@pytest.mark.slow
def test_a_run_of_main_551185a_resumes_with_its_state(tmp_path: Path) -> None:
    """Its checkpoint holds what 551185a's GAN module and callbacks saved (EMA, ADA's p, the logging interval's sums
    after batch 3, the loss line's sums): resumed to 6 batches it logs what 551185a logged (its README.md)."""
    run = Path(shutil.copytree(RUN_551185A, tmp_path / "run"))
    data_dir = tmp_path / "data"
    write_mnist(data_dir)
    result = run_cli("src.train", f"resume={run}", "max_batches=6", f"paths.data_dir={data_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Step 4: Generator loss: 0.600, discriminator loss: 0.698" in result.stdout

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 6 and int(ckpt["state_dict"]["ema.num_updates"]) == 6
    assert float(ckpt["state_dict"]["augment.p"]) > 0  # ADA's p went on from the saved one
    with (run / "csv" / "metrics.csv").open(newline="") as f:
        rows = {int(row["step"]): row for row in csv.DictReader(f)}
    assert sorted(rows) == [3, 5]  # batch 4 and 6: batch 3's sums came back, the interval was not started again
    assert float(rows[3]["loss/g"]) == pytest.approx(0.6000944375991821, abs=1e-6)
    assert float(rows[3]["loss/d"]) == pytest.approx(0.6981915831565857, abs=1e-6)
    assert float(rows[5]["loss/g"]) == pytest.approx(0.6001013517379761, abs=1e-6)
