"""Every loss, penalty, spectral norm, DiffAugment, optimizer and schedule trains through src.train, logs what it
should, and keeps its state across checkpoints; misuses are one line."""

import json
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.run.compose import compose_config, group_options
from src.train import train
from tests.conftest import run_cli, small_widths


def scalar_tags(run: Path) -> set[str]:
    return set(EventAccumulator(str(run / "tensorboard")).Reload().Tags()["scalars"])


@pytest.mark.parametrize("loss", group_options("loss"))
def test_every_loss_trains_and_logs_raw_logits(train_cfg, loss: str) -> None:
    cfg = train_cfg("model=mlp_gan", f"loss={loss}", "~callbacks.progress_bar")
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor([metrics["loss/g"], metrics["loss/d"]])).all()
    tags = scalar_tags(Path(cfg.paths.output_dir))
    assert {"loss/g", "loss/d", "D/real", "D/fake"} <= tags
    assert ("D(x)" in tags) == (loss == "bce")  # probabilities mean something only for BCE's logits
    hparams = torch.load(Path(cfg.paths.output_dir) / "checkpoints/last.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["loss"] == repr(instantiate(cfg.loss))  # the configured loss, as conf/loss/<loss>.yaml makes it


@pytest.mark.parametrize("regularizer", [r for r in group_options("regularizer") if r != "none"])
def test_every_penalty_trains_and_is_logged_when_due(train_cfg, regularizer: str) -> None:
    cfg = train_cfg("model=dcgan", f"regularizer={regularizer}", "regularizer.every=2", "max_batches=3",
                    "model.discriminator.batch_norm=false", "~callbacks.progress_bar")
    train(cfg)
    events = EventAccumulator(str(Path(cfg.paths.output_dir) / "tensorboard")).Reload()
    values = [e.value for e in events.Scalars(f"loss/{regularizer}")]
    assert values and all(v > 0 for v in values)


@pytest.mark.parametrize("model", group_options("model"))
def test_spectral_norm_and_diffaugment_train_every_model(train_cfg, model: str) -> None:
    cfg = train_cfg(f"model={model}", *small_widths(model), "model.spectral_norm=true", "augment=diffaugment",
                    "~logger", "~callbacks")
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["loss/d"]))
    (ckpt,) = (Path(cfg.paths.output_dir) / "checkpoints").glob("*.ckpt")
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert any(k.startswith("discriminator.") and k.endswith("parametrizations.weight.original") for k in state)
    assert not any(k.startswith("generator.") and "parametrizations" in k for k in state)  # SN is D's only


@pytest.mark.parametrize("scheduler", ["linear_decay", "cosine"])
def test_schedules_reach_zero_at_the_budget_and_are_checkpointed(train_cfg, scheduler: str) -> None:
    cfg = train_cfg("model=mlp_gan", f"scheduler={scheduler}", "max_batches=4", "optimizer=adamw",
                    "~callbacks.progress_bar")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    lrs = [e.value for e in EventAccumulator(str(run / "tensorboard")).Reload().Scalars("lr/d")]
    assert lrs[0] == pytest.approx(2e-4) and lrs == sorted(lrs, reverse=True) and lrs[-1] > 0
    ckpt = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert [s["last_epoch"] for s in ckpt["lr_schedulers"]] == [4, 4]
    assert all(group["lr"] == pytest.approx(0, abs=1e-12) for opt in ckpt["optimizer_states"]
               for group in opt["param_groups"])
    assert ckpt["optimizer_states"][0]["param_groups"][0]["weight_decay"] == 0.01  # AdamW's, from optimizer=adamw


def test_betas_per_network_and_grad_clipping(train_cfg) -> None:
    cfg = train_cfg("model=mlp_gan", "optimizer.discriminator.betas=[0.0,0.9]", "model.grad_clip_norm=1e-6",
                    "~logger", "~callbacks")
    gan_before = instantiate(cfg.model).generator.state_dict()
    train(cfg)
    ckpt = torch.load(next((Path(cfg.paths.output_dir) / "checkpoints").glob("*.ckpt")), weights_only=True)
    g_group, d_group = (opt["param_groups"][0] for opt in ckpt["optimizer_states"])
    assert tuple(g_group["betas"]) == (0.5, 0.999) and tuple(d_group["betas"]) == (0.0, 0.9)
    # A clip norm of 1e-6 leaves Adam's normalised steps unchanged but must not fail; the G weights still move.
    moved = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("generator.") and k.endswith("weight")}
    assert any(not torch.equal(v, gan_before[k.removeprefix("generator.")]) for k, v in moved.items())


@pytest.mark.parametrize(("overrides", "expected"), [
    (["trainer.gradient_clip_val=0.5"], "trainer.gradient_clip_val=0.5 does not apply under manual optimization: "
                                        "use model.grad_clip_norm=0.5 instead"),
    (["scheduler=cosine", "max_batches=null"], "a learning-rate schedule runs over max_batches, which is null"),
    (["model.grad_clip_norm=-1"], "model.grad_clip_norm must be positive, got -1"),
    (["augment=diffaugment", "augment.policy=[color,rotate]"], "rotate"),
    (["regularizer=r1", "regularizer.every=0"], "regularizer.every must be a positive integer"),
    (["model=mlp_gan", "model.discriminator.batch_norm=true"], "mlp_gan's discriminator has no BatchNorm"),
])
def test_objective_misuse_is_one_line(train_cfg, overrides: list[str], expected: str) -> None:
    with pytest.raises(UserError) as caught:
        train(train_cfg(*overrides))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_presets_compose_for_every_model() -> None:
    for model in group_options("model"):
        for preset, (loss, n_critic) in {"sngan": ("Hinge", 5), "wgan_gp": ("Wasserstein", 5),
                                         "lsgan": ("LSGAN", 1)}.items():
            cfg = compose_config("train", [f"experiment={preset}", f"model={model}"])
            assert cfg.model.loss._target_.endswith(loss) and cfg.model.n_critic == n_critic, (preset, model)


@pytest.mark.slow  # starts a process
def test_a_loss_sweep_completes_with_its_summary(tmp_path: Path, data_dir: Path) -> None:
    result = run_cli("src.train", "-m", "loss=bce,hinge,lsgan", "model=mlp_gan", "model.generator.width=8",
                     "max_batches=2", "data.batch_size=8", "data.num_workers=0", "~logger",
                     "trainer.enable_progress_bar=false", "~callbacks.progress_bar", f"paths.data_dir={data_dir}",
                     f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    records = json.loads((tmp_path / "sweep/summary.json").read_text())
    assert [r["overrides"].split()[0] for r in records] == ["loss=bce", "loss=hinge", "loss=lsgan"]
    assert all(r["status"] == "COMPLETED" for r in records)
