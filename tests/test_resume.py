"""Crash and resume: a killed run, resumed, ends exactly where an uninterrupted run of the same seed ends."""

import io
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from src.core.checkpoint_files import newest_checkpoint
from src.core.errors import UserError
from src.data.synthetic import write_mnist
from src.run.compose import compose_config
from src.train import train
from tests.conftest import run_cli

BATCHES = 12  # 64 images / batch 8 = 8 batches per epoch: the budget crosses one epoch end
# Besides the default BCE: an objective with state of its own in every part (spectral-norm vectors, lazy R1 every
# other batch, DiffAugment's random draws, a learning-rate schedule, fake labels of a conditional GAN): all of it must
# resume exactly too.
OBJECTIVES = {"bce": (), "hinge_sn_diffaugment_r1_decay_conditional": (
    "loss=hinge", "model.spectral_norm=true", "augment=diffaugment", "regularizer=r1", "regularizer.every=2",
    "scheduler=linear_decay", "model.conditional=true")}
# Per-item loading (image folders, data.in_memory=false) with worker processes kept between epochs: the loader must
# not draw from the global random stream when a new epoch starts, or a resumed run's noise drifts from the straight one.
PER_ITEM = ("data.in_memory=false", "data.num_workers=1")


def tiny(data_dir: Path, every: int) -> list[str]:
    return ["model=mlp_gan", "model.generator.width=8", f"max_batches={BATCHES}", f"checkpoint_every_n_batches={every}",
            "data.batch_size=8", "data.num_workers=0", f"paths.data_dir={data_dir}", "sample_every_n_batches=4",
            "report_every_n_batches=4", "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
            "trainer.enable_model_summary=false", "trainer.log_every_n_steps=2"]  # logs between checkpoints


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard shows: events read in file order, a SessionLog.START purging later steps."""
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in ("loss/g", "loss/d")}


def loss_g_steps(event_file: Path) -> list[int]:
    """The raw steps of loss/g in one event file, duplicates included."""
    return [e.step for e in EventFileLoader(str(event_file)).Load() for v in e.summary.value if v.tag == "loss/g"]


def assert_same_end(a: Path, b: Path) -> None:
    """Bitwise: weights, buffers (fixed noise, BatchNorm statistics), both optimizers, counters."""
    ca, cb = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True) for r in (a, b))
    assert ca["global_step"] == cb["global_step"] == BATCHES and ca["epoch"] == cb["epoch"]
    torch.testing.assert_close(ca["state_dict"], cb["state_dict"], rtol=0, atol=0)
    torch.testing.assert_close(ca["optimizer_states"], cb["optimizer_states"], rtol=0, atol=0)
    assert ca.get("lr_schedulers") == cb.get("lr_schedulers")
    assert scalars(a) == scalars(b)
    # every logging step once (Lightning logs batch n at step n - 1)
    assert [step for step, _ in scalars(b)["loss/g"]] == list(range(1, BATCHES, 2))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    write_mnist(path)
    return path


@pytest.fixture(scope="module")
def uninterrupted_runs(data_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """The uninterrupted run of each objective, trained once when a test first asks for it."""
    runs: dict[str, Path] = {}

    def get(objective: str) -> Path:
        if objective not in runs:
            runs[objective] = tmp_path_factory.mktemp(f"uninterrupted_{objective}")
            extra = PER_ITEM if objective == "per_item" else OBJECTIVES[objective]
            train(compose_config("train", [*tiny(data_dir, 3), *extra], runs[objective]))
        return runs[objective]

    return get


@pytest.fixture
def uninterrupted(uninterrupted_runs) -> Path:
    return uninterrupted_runs("bce")


def test_same_seed_gives_the_same_losses_on_cpu(data_dir: Path, uninterrupted: Path, tmp_path: Path) -> None:
    train(compose_config("train", [*tiny(data_dir, 3), "max_batches=4"], tmp_path))
    first = scalars(tmp_path)
    assert len(first["loss/g"]) == 2  # the means of batches 1-2 and 3-4
    assert first == {tag: values[:2] for tag, values in scalars(uninterrupted).items()}


@pytest.mark.parametrize("loading", ["in_memory", "per_item"])
def test_resume_after_a_crash_at_an_epoch_end_is_exact(
    data_dir: Path, uninterrupted_runs, tmp_path: Path, loading: str
) -> None:
    # checkpoints after batches 4 and 8 (the epoch's last batch), then the crash
    overrides = [*tiny(data_dir, 4), *(PER_ITEM if loading == "per_item" else ())]
    cfg = compose_config("train", overrides, tmp_path)
    with open_dict(cfg):
        cfg.callbacks.crash = {"_target_": "tests.killer.CrashAfterBatch", "batch": 10}
    with pytest.raises(RuntimeError, match="simulated crash after batch 10"):
        train(cfg)
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    train(compose_config("train", [*overrides, f"resume={tmp_path}"], tmp_path))
    assert_same_end(uninterrupted_runs("bce" if loading == "in_memory" else "per_item"), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_killed_run_resumed_mid_epoch_ends_like_the_uninterrupted_one(
    data_dir: Path, uninterrupted_runs, tmp_path: Path, objective: str
) -> None:
    run = tmp_path / "run"
    killed = run_cli("src.train", *tiny(data_dir, 3), *OBJECTIVES[objective], f"hydra.run.dir={run}",
                     "+callbacks.killer._target_=tests.killer.KillAfterBatch", "+callbacks.killer.batch=5")
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL, mid-epoch, 2 batches after a checkpoint
    assert newest_checkpoint(run / "checkpoints")[1] == 3  # the checkpoint of batch 3

    resumed = run_cli("src.train", f"resume={run}")  # nothing else: the run's own overrides are used again
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())[0] == "model=mlp_gan"  # kept
    assert len(list((run / ".hydra").glob("resume_*/overrides.yaml"))) == 1

    killed_file, resumed_file = sorted((run / "tensorboard").glob("events.out.tfevents.*"))
    assert loss_g_steps(killed_file) == [1, 3]  # step 3 came after the checkpoint: TensorBoard must drop it
    assert loss_g_steps(resumed_file) == list(range(3, BATCHES, 2))
    start = next(e for e in EventFileLoader(str(resumed_file)).Load() if e.HasField("session_log"))
    assert start.session_log.status == start.session_log.START and start.step == 3
    assert_same_end(uninterrupted_runs(objective), run)


def test_a_finished_run_trained_longer_ends_like_one_run_of_the_longer_budget(
    data_dir: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    overrides = tiny(data_dir, 3)
    train(compose_config("train", [*overrides, "max_batches=5"], tmp_path))  # ends mid-epoch: 8 batches an epoch
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    loop = last["loops"]["fit_loop"]
    assert last["global_step"] == 5 and last["epoch"] == 0 and loop["epoch_progress"]["current"]["completed"] == 0
    assert not (tmp_path / "samples" / "epoch_000.png").exists()  # epoch 0 is not over
    train(compose_config("train", [*overrides, f"resume={tmp_path}"], tmp_path))  # max_batches=12 given again
    assert_same_end(uninterrupted, tmp_path)
    grids = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))  # every 4 batches, epoch 0, both ends
    assert grids == ["batch_0000000.png", "batch_0000004.png", "batch_0000005.png", "batch_0000008.png",
                     "batch_0000012.png", "epoch_000.png"]


def test_n_critic_can_change_when_a_run_continues(data_dir: Path, tmp_path: Path) -> None:
    # The loop counts batches, not optimizer steps: a run trained with one D step a batch goes on with three.
    overrides = [*tiny(data_dir, 2), "max_batches=2"]
    train(compose_config("train", overrides, tmp_path))
    train(compose_config("train", [*overrides, f"resume={tmp_path}", "max_batches=5", "model.n_critic=3"], tmp_path))
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 5 and last["hyper_parameters"]["n_critic"] == 3
    adam_steps = [int(state["step"]) for state in last["optimizer_states"][1]["state"].values()]
    assert set(adam_steps) == {2 * 1 + 3 * 3}  # D: one step in each of batches 1-2, three in each of 3-5


def test_unreadable_checkpoints_are_named_when_resume_skips_them(data_dir: Path, tmp_path: Path, logged) -> None:
    overrides = [*tiny(data_dir, 0), "max_batches=9"]  # epoch_000.ckpt at batch 8, last.ckpt at 9
    train(compose_config("train", overrides, tmp_path))
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # truncated
    logged()
    train(compose_config("train", [*overrides, f"resume={tmp_path}", "max_batches=10"], tmp_path))
    assert "[resume] skipped unreadable last.ckpt (RuntimeError): continuing from epoch_000.ckpt (batch 8)" in logged()

    for path in (tmp_path / "checkpoints").glob("*.ckpt"):
        path.write_bytes(b"")
    with pytest.raises(UserError, match=r"holds no readable checkpoint in .*checkpoints \(unreadable: epoch_000.ckpt "
                                        r"\(empty\), last.ckpt \(empty\)\): start a new run"):
        train(compose_config("train", [*overrides, f"resume={tmp_path}", "max_batches=12"], tmp_path))


def test_a_finished_run_whose_final_files_are_missing_writes_them_on_resume(data_dir: Path, tmp_path: Path,
                                                                           logged) -> None:
    overrides = [*tiny(data_dir, 3), "max_batches=4"]
    train(compose_config("train", overrides, tmp_path))
    written = {name: (tmp_path / name).read_bytes() for name in ("generator.pt", "discriminator.pt")}
    last = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    for name in written:  # a stop while the run wrote them
        (tmp_path / name).unlink()
    logged()
    train(compose_config("train", [*overrides, f"resume={tmp_path}"], tmp_path))
    assert "but its generator.pt and discriminator.pt are missing: writing its final files" in logged()
    for name, data in written.items():  # the same weights: nothing was trained
        again, before = torch.load(tmp_path / name, weights_only=True), torch.load(io.BytesIO(data), weights_only=True)
        assert again.keys() == before.keys() and all(torch.equal(again[k], before[k]) for k in before), name
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == last
