"""The real entry points, as a user runs them: one clear line for bad input, no traceback; make help lists them."""

import re
import subprocess
from pathlib import Path

import pytest

from src.run.compose import group_options
from tests.conftest import ROOT, run_cli


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=dcgan", "model.image_size=64"], "model dcgan produces 32x32 images, not 64x64: "),
        (["model.lr_g=0"], "model.lr_g must be positive, got 0: "),
        (["data.batch_size=-4"], "data.batch_size must be positive, got -4: "),
    ],
)
def test_train_reports_bad_input_in_one_line(tmp_path: Path, overrides: list[str], message: str) -> None:
    result = run_cli("src.train", *overrides, "paths.data_dir=missing", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: {message}")  # then the hint
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "seed=range(0,0)"], "seed=range(0,0) sweeps over no value, so the sweep would launch no job: "),
        (["-m", "hydra/launcher=joblibb", "seed=1,2"],
         "hydra/launcher=joblibb is not an option: did you mean hydra/launcher=joblib? (hydra/launcher: basic, "),
        (["seed=[1,"], "seed=[1, is not an override Hydra can read (no viable alternative at input '[1,'): see "),
    ],
)
def test_command_line_mistakes_get_one_line_and_leave_no_folder(tmp_path: Path, args: list[str], message: str) -> None:
    """What Hydra would answer in several lines (a sweep of no job: in none, and a folder left behind)."""
    result = run_cli("src.train", *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {message}") and len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # starts a process
def test_generate_reports_a_missing_checkpoint_in_one_line(tmp_path: Path) -> None:
    result = run_cli("src.generate", f"ckpt_path={tmp_path}/nothing.ckpt", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"Error: ckpt_path={tmp_path}/nothing.ckpt does not exist: " \
        "pass a run folder or its checkpoints/last.ckpt"


@pytest.mark.slow  # starts a process
def test_generate_rejects_a_truncated_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        "model:\n  z_dim: 100\n  generator:\n    _target_: src.networks.dcgan.Generator\n    channels: 1\n")
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04truncated")
    result = run_cli("src.generate", f"ckpt_path={run_dir}/checkpoints/last.ckpt", cwd=tmp_path)
    assert result.returncode == 2 and "is not a readable checkpoint" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # starts a process
def test_an_output_folder_hydra_cannot_create_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_cli("src.train", f"hydra.run.dir={blocker}/run", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"Error: hydra.run.dir={blocker}/run cannot be created: {blocker} is a file, " \
        "not a folder; pick another place, e.g. hydra.run.dir=outputs/my_run"


@pytest.mark.slow  # starts a process
def test_generate_without_its_checkpoint_is_one_line(tmp_path: Path) -> None:
    result = run_cli("src.generate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: ckpt_path is required: add ckpt_path=... to the command line"


@pytest.mark.slow  # starts a process
def test_make_help_lists_every_target_with_its_description() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M)
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    described = re.findall(r"^  make (\S+)\s+\S", listed, flags=re.M)
    assert sorted(described) == sorted(targets) and "train" in described and "test" in described


@pytest.mark.slow  # starts a process
def test_an_added_key_that_is_a_near_miss_is_refused_with_the_right_name(tmp_path) -> None:
    result = run_cli("src.train", "+max_batch=5", f"hydra.run.dir={tmp_path / 'run'}")
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert result.returncode == 2 and errors == [
        "Error: max_batch is not a setting (the + in +max_batch added it): did you mean max_batches? Use "
        "max_batches=... without the +"], result.stderr[-2000:]
    assert not (tmp_path / "run").exists()  # a refused command leaves no run folder behind
    nested = run_cli("src.train", "+model.lr_gg=1e-3", f"hydra.run.dir={tmp_path / 'run2'}")
    assert "did you mean model.lr_g?" in nested.stderr


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize(("module", "args", "expected"), [
    ("src.train", ["max_batch=20"], "Error: max_batch is not a setting: did you mean max_batches? (max_batches=...)"),
    ("src.train", ["model=mlp_gan", "model.lr_gg=1e-3"],
     "Error: model.lr_gg is not a setting: did you mean model.lr_g? (model.lr_g=...)"),
    ("src.generate", ["ckpt_path=x", "nsamples=5"], "Error: nsamples is not a setting: did you mean num_samples? "
                                                   "(num_samples=...)"),
    ("src.train", ["model=dcgam"], "Error: model=dcgam is not an option: did you mean model=dcgan? "
                                   f"(model: {', '.join(group_options('model'))})"),  # every conf/model/*.yaml
    ("src.train", ["loss=xyz"], f"Error: loss=xyz is not an option (loss: {', '.join(group_options('loss'))})"),
])
def test_a_key_that_does_not_exist_is_one_line_naming_the_nearest(module: str, args: list[str], expected: str,
                                                                   tmp_path) -> None:
    """Hydra's own message is six lines ending in `+max_batch=20`, a key nobody would read (thirteen for an option
    that has no file)."""
    result = run_cli(module, *args, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2 and result.stderr.strip() == expected and result.stdout == ""
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # starts a process
def test_a_run_that_fails_on_its_data_leaves_no_folder_behind(tmp_path: Path) -> None:
    result = run_cli("src.train", "data=cifar10", f"paths.data_dir={tmp_path / 'empty'}",
                     f"paths.log_dir={tmp_path / 'outputs'}", cwd=tmp_path)
    assert result.returncode == 2 and "Error: CIFAR-10 is not in " in result.stderr, result.stderr[-2000:]
    assert not list((tmp_path / "outputs").rglob("*.yaml"))  # no run folder with only its config.yaml


@pytest.mark.slow  # starts a process
def test_help_lists_the_groups_to_pick_and_says_shared_is_not_one() -> None:
    from src.run.compose import group_options

    shown = run_cli("src.train", "--help")
    assert shown.returncode == 0, shown.stderr[-2000:]
    for group in ("model", "data", "loss", "trainer"):
        assert f"{group}: {', '.join(group_options(group))}\n" in shown.stdout
    assert "(shared is not a group to pick: it holds the settings every model and data config includes)" in \
        shown.stdout
