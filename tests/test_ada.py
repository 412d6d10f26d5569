"""ADA (augment=ada, src/gan/ada.py): p follows the sign of D's real logits toward the target, the transforms are
applied with probability p from draws that don't depend on p, and p is logged, checkpointed and resumed exactly."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.data.synthetic import write_mnist
from src.gan.ada import AdaptiveAugment
from src.gan.augment import DiffAugment
from src.run.checkpoints import require_fits
from src.run.compose import CONF_DIR, compose_config
from src.train import train


def logits(r_t: float, n: int = 64) -> torch.Tensor:
    """n logits whose mean sign is r_t (n * (1 + r_t) / 2 of them positive)."""
    positive = round(n * (1 + r_t) / 2)
    return torch.cat([torch.full((positive,), 3.0), torch.full((n - positive,), -3.0)])


# --- the controller -----------------------------------------------------------------------------------------------


def test_p_rises_above_the_target_falls_below_and_clamps() -> None:
    ada = AdaptiveAugment(speed_images=1000, interval=1)
    for _ in range(3):
        ada.observe(logits(0.9))  # D sure of the reals: more augmentation
    assert ada.p.item() == pytest.approx(3 * 64 / 1000)
    ada.observe(logits(0.0))  # below the target: less
    assert ada.p.item() == pytest.approx(2 * 64 / 1000)
    for _ in range(5):
        ada.observe(logits(-0.5))
    assert ada.p.item() == 0  # clamped at 0
    for _ in range(20):
        ada.observe(logits(1.0))
    assert ada.p.item() == 1  # clamped at 1
    ada.observe(logits(0.6, n=10))  # exactly on target: stays
    assert ada.p.item() == 1


def test_p_moves_every_interval_by_the_images_judged_over_speed() -> None:
    ada = AdaptiveAugment(speed_images=3200, interval=4)
    for step in range(1, 8):
        ada.observe(logits(0.8, n=20))
        assert ada.p.item() == pytest.approx(0.0 if step < 4 else 80 / 3200)  # moved after step 4 only
    assert ada.tally.tolist() == [3 * 16, 3 * 20, 3]  # steps 5-7 count toward the next adjustment
    ada.observe(logits(-0.8, n=20))  # the interval's r_t: (3 * 16 - 16) / 80 = 0.4, below the target
    assert ada.p.item() == pytest.approx(0.0, abs=1e-7) and ada.tally.tolist() == [0, 0, 0]
    assert ada.last_r_t.item() == pytest.approx(-0.8)  # what is logged: the last step's r_t


def test_the_adjustment_is_the_mean_sign_over_the_interval_not_the_last_step() -> None:
    ada = AdaptiveAugment(speed_images=6400, interval=2)
    ada.observe(logits(1.0))
    ada.observe(logits(0.4))  # alone below 0.6, but the interval's mean is 0.7: p rises by 128 / 6400
    assert ada.p.item() == pytest.approx(0.02)
    ada.observe(logits(1.0))
    ada.observe(logits(0.0))  # mean 0.5: falls
    assert ada.p.item() == pytest.approx(0.0, abs=1e-7)


def test_settings_are_checked_and_recorded() -> None:
    for bad, key in [({"target": 1.5}, "augment.target"), ({"speed_images": 0}, "augment.speed_images"),
                     ({"interval": 0}, "augment.interval"), ({"initial_p": 2}, "augment.initial_p"),
                     ({"policy": "color,zoom"}, "unknown transform zoom")]:
        with pytest.raises(UserError, match=key):
            AdaptiveAugment(**bad)
    ada = instantiate(OmegaConf.load(CONF_DIR / "augment/ada.yaml"))
    assert repr(ada) == ("AdaptiveAugment(policy='color,translation,cutout', target=0.6, speed_images=100000, "
                         "interval=4, initial_p=0.0)")
    assert ada.p.item() == 0 and set(ada.state_dict()) == {"p", "tally"}


def _observe_in_process(rank: int, init_file: str, results: str) -> None:
    """One of two gloo processes: rank 0's reals all called real (r_t = 1), rank 1's 0.4 of them (0.4): together
    0.7, above the target, so p rises on both, though rank 1 alone would lower it."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        ada = AdaptiveAugment(speed_images=1000, interval=1, initial_p=0.5)
        ada.observe(logits(1.0 if rank == 0 else 0.4, n=10))
        torch.save({"p": ada.p, "r_t": ada.last_r_t}, f"{results}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_processes_adjust_p_from_every_process_images(tmp_path: Path) -> None:
    results = str(tmp_path / "p")
    torch.multiprocessing.spawn(_observe_in_process, args=(str(tmp_path / "init"), results), nprocs=2)
    for rank in (0, 1):
        seen = torch.load(f"{results}.{rank}", weights_only=True)
        assert seen["p"].item() == pytest.approx(0.5 + 20 / 1000)  # both processes' 20 images
        assert seen["r_t"].item() == pytest.approx(0.7)


# --- the augmentation ---------------------------------------------------------------------------------------------


def test_p_0_is_the_identity_and_p_1_is_diffaugment_after_the_same_draws() -> None:
    x = torch.rand(16, 3, 12, 12, requires_grad=True)
    torch.manual_seed(0)
    out = AdaptiveAugment(initial_p=0.0)(x)
    assert torch.equal(out, x)
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # no transform in the gradient either

    torch.manual_seed(0)
    out = AdaptiveAugment(initial_p=1.0)(x)
    torch.manual_seed(0)
    torch.rand(3, 16, 1, 1, 1)  # ADA's masks
    assert torch.equal(out, DiffAugment()(x))


def test_each_transform_goes_on_each_image_with_probability_p() -> None:
    torch.manual_seed(0)
    x = torch.ones(4000, 1, 8, 8)
    out = AdaptiveAugment("cutout", initial_p=0.3)(x)
    cut = (out == 0).flatten(1).any(1).float().mean().item()
    assert cut == pytest.approx(0.3, abs=0.03)


def test_the_random_draws_do_not_depend_on_p() -> None:
    x = torch.rand(8, 3, 12, 12)
    after = []
    for p in (0.0, 0.37, 1.0):
        torch.manual_seed(0)
        AdaptiveAugment(initial_p=p)(x)
        after.append(torch.rand(4))  # what the run draws next
    assert all(torch.equal(a, after[0]) for a in after)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_shape_dtype_and_memory_format_are_kept(channels_last: bool, dtype: torch.dtype) -> None:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.rand(6, 3, 12, 12).to(dtype).contiguous(memory_format=fmt)
    ada = AdaptiveAugment(initial_p=0.5)
    out = ada(x)
    assert out.shape == x.shape and out.dtype == dtype and out.is_contiguous(memory_format=fmt)
    ada.observe(torch.randn(6).to(dtype))
    assert ada.p.dtype == torch.float32 and ada.tally.dtype == torch.long


# --- through src.train ------------------------------------------------------------------------------------------

BATCHES = 9
# p moves by 32 / 256 every 4 batches of 8, up while any real image gets a positive logit (target -1)
ADA = ["augment=ada", "augment.speed_images=256", "augment.interval=4", "augment.target=-1"]


def tiny(data_dir: Path, *extra: str) -> list[str]:
    return ["model=mlp_gan", "model.generator.width=8", f"max_batches={BATCHES}", "checkpoint_every_n_batches=3",
            "data.batch_size=8", "data.num_workers=0", f"paths.data_dir={data_dir}", "sample_every_n_batches=100",
            "report_every_n_batches=100", "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
            "trainer.enable_model_summary=false", "trainer.log_every_n_steps=2", "metrics.every_n_batches=0", *extra]


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    write_mnist(path, n_train=64)
    return path


@pytest.fixture(scope="module")
def straight(mnist: Path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("straight")
    train(compose_config("train", tiny(mnist, *ADA), run))
    return run


def last(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


def test_a_run_logs_p_and_checkpoints_it(straight: Path) -> None:
    ckpt = last(straight)
    p = ckpt["state_dict"]["augment.p"]
    assert 0 < p <= 1 and ckpt["state_dict"]["augment.tally"][2] == BATCHES % 4  # adjusted twice, 1 step counted
    assert ckpt["hyper_parameters"]["augment"].startswith("AdaptiveAugment(policy='color,translation,cutout'")
    events = EventAccumulator(str(straight / "tensorboard")).Reload()
    logged_p = [e.value for e in events.Scalars("augment/p")]
    assert len(logged_p) == BATCHES // 2 and logged_p[0] == 0 and logged_p[-1] > 0  # 0 until the first adjustment
    assert all(-1 <= e.value <= 1 for e in events.Scalars("augment/r_t"))


def test_resume_is_exact_for_weights_and_p(mnist: Path, straight: Path, tmp_path: Path) -> None:
    train(compose_config("train", tiny(mnist, *ADA, "max_batches=5"), tmp_path))  # stops mid-interval
    assert last(tmp_path)["state_dict"]["augment.tally"][2] == 1
    train(compose_config("train", tiny(mnist, *ADA, f"resume={tmp_path}"), tmp_path))
    a, b = last(straight), last(tmp_path)
    assert b["global_step"] == BATCHES
    torch.testing.assert_close(a["state_dict"], b["state_dict"], rtol=0, atol=0)  # augment.p and tally included
    torch.testing.assert_close(a["optimizer_states"], b["optimizer_states"], rtol=0, atol=0)


def test_a_checkpoint_without_ada_resumes_with_it(mnist: Path, tmp_path: Path, logged) -> None:
    train(compose_config("train", tiny(mnist, "max_batches=3"), tmp_path))
    logged()
    train(compose_config("train", tiny(mnist, *ADA, "max_batches=7", f"resume={tmp_path}"), tmp_path))
    assert "note: the checkpoint was trained with NoAugment(), so AdaptiveAugment(" in logged()
    assert last(tmp_path)["state_dict"]["augment.p"] > 0  # adjusted after batch 7, the 4th D step of this session


def test_a_checkpoint_with_ada_loads_without_it(straight: Path, logged) -> None:
    """What resume=<ADA run> augment=none does before training: the checks, the module's hook, Lightning's strict
    load."""
    ckpt = last(straight)
    gan = instantiate(compose_config("train", tiny(straight, "augment=none")).model)
    require_fits(ckpt, gan, straight, "resume")
    logged()
    gan.on_load_checkpoint(ckpt)
    assert logged() == ("note: the checkpoint's augmentation state (it was trained with AdaptiveAugment(policy="
                        "'color,translation,cutout', target=-1, speed_images=256, interval=4, initial_p=0.0)) is "
                        "dropped: NoAugment() keeps none")
    gan.load_state_dict(ckpt["state_dict"])  # strict
