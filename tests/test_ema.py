"""The EMA generator follows the update training runs (constant and warm-up decay, start), samples with BatchNorm
statistics of its own weights, is checkpointed and exported, and is what sampling uses unless told otherwise."""

import numpy as np
import pytest
import torch
from torch import nn

from src.core.instantiate import instantiate
from src.data.synthetic import write_mnist
from src.gan.ema import EMA, recompute_batchnorm_statistics
from src.gan.sampling import sample_in_batches
from src.generate import generate
from src.run.checkpoints import load_generator
from src.run.compose import compose_config
from src.train import train


def run_updates(ema: EMA, model: nn.Linear, values: list[float]) -> None:
    for value in values:
        with torch.no_grad():
            model.weight.fill_(value)
            model.running.fill_(value)
        ema.update(model)


def toy(start: float) -> nn.Linear:
    model = nn.Linear(1, 1, bias=False)
    model.register_buffer("running", torch.zeros(1))
    with torch.no_grad():
        model.weight.fill_(start)
    return model


def test_constant_decay_matches_the_closed_form() -> None:
    model, d, values = toy(2.0), 0.9, [1.0, -3.0, 0.5, 4.0, 2.5]
    ema = EMA(model, decay=d, warmup=False)
    run_updates(ema, model, values)
    k = len(values)
    expected = d**k * 2.0 + sum((1 - d) * d ** (k - i) * v for i, v in enumerate(values, start=1))
    assert ema.module.weight.item() == pytest.approx(expected, rel=1e-6)
    assert ema.module.running.item() == values[-1]  # buffers are copied, not averaged
    assert int(ema.num_updates) == k and not ema.module.weight.requires_grad


def test_warmup_decay_follows_its_schedule() -> None:
    model, values = toy(2.0), [1.0, -3.0, 0.5]
    ema = EMA(model, decay=0.999, warmup=True)
    run_updates(ema, model, values)
    expected = 2.0
    for t, v in enumerate(values):
        d = min(0.999, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * v
    assert ema.module.weight.item() == pytest.approx(expected, rel=1e-6)
    assert int(ema.num_updates) == len(values)


@pytest.mark.parametrize(("done", "decay"), [(0, 0.1), (890, 0.99), (8991, 0.999), (10**6, 0.999)])
def test_warmup_decay_after_many_updates(done: int, decay: float) -> None:
    """The decay of update number done + 1 is min(0.999, (1 + done) / (10 + done)): 0.99 after 890 updates."""
    model = toy(1.0)
    ema = EMA(model, decay=0.999, warmup=True)
    ema.num_updates.fill_(done)  # as a resumed checkpoint sets it
    run_updates(ema, model, [0.0])  # ema = d * 1 + (1 - d) * 0 = d
    assert ema.module.weight.item() == pytest.approx(decay, rel=1e-6)


# The EMA is off by default; these runs turn it on, averaging from the first batch.
EMA_ON = ["model.ema_decay=0.999", "model.ema_start=0"]


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ema")
    write_mnist(root / "data")
    cfg = compose_config("train", ["max_batches=3", "data.batch_size=8", "data.num_workers=0", "~logger", *EMA_ON,
                                   "sample_every_n_batches=3", f"paths.data_dir={root / 'data'}"], root / "out")
    train(cfg)
    return root / "out"


def test_checkpoint_holds_the_ema_and_generator_pt_is_it(ema_run) -> None:
    state = torch.load(ema_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert int(state["ema.num_updates"]) == 3
    ema = {k.removeprefix("ema.module."): v for k, v in state.items() if k.startswith("ema.module.")}
    raw = {k.removeprefix("generator."): v for k, v in state.items() if k.startswith("generator.")}
    assert ema.keys() == raw.keys() and any(not torch.equal(ema[k], raw[k]) for k in ema)
    exported = torch.load(ema_run / "generator.pt", weights_only=True)
    exported_raw = torch.load(ema_run / "generator_raw.pt", weights_only=True)
    assert exported.keys() == ema.keys() and exported_raw.keys() == raw.keys() and len(ema) > 0
    assert all(torch.equal(exported[k], ema[k]) for k in ema) and all(torch.equal(exported_raw[k], raw[k]) for k in raw)


def expected_samples(run, prefix: str, n: int) -> np.ndarray:
    generator, cfg, _, _ = load_generator(run, use_ema=False)
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    generator.load_state_dict({k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)})
    return torch.cat(list(sample_in_batches(generator, n, cfg.model.z_dim, n, torch.device("cpu"), 0))).numpy()


@pytest.mark.parametrize(("source", "switch", "prefix"), [
    ("checkpoints/last.ckpt", [], "ema.module."), (".", [], "ema.module."),
    ("checkpoints/last.ckpt", ["use_ema=false"], "generator."), (".", ["use_ema=false"], "generator.")])
def test_generate_samples_the_ema_when_the_run_kept_one(ema_run, tmp_path, source: str, switch: list[str],
                                                        prefix: str) -> None:
    generate(compose_config("generate", [f"ckpt_path={ema_run / source}", "num_samples=6", f"output_dir={tmp_path}",
                                         *switch]))
    assert np.array_equal(np.load(tmp_path / "samples.npz")["images"], expected_samples(ema_run, prefix, 6))


def test_checkpoints_from_before_the_ema_sample_raw_and_resume(ema_run, logged) -> None:
    ckpt = torch.load(ema_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("ema.")}
    old = ema_run / "checkpoints" / "old.ckpt"
    torch.save(ckpt, old)

    _, _, _, is_ema = load_generator(old)
    assert not is_ema and "holds no EMA generator (trained without EMA): using its raw generator" in \
        logged()

    cfg = compose_config("train", ["max_batches=4", "data.batch_size=8", "data.num_workers=0", "~logger", *EMA_ON,
                                   "~callbacks", f"paths.data_dir={ema_run.parent / 'data'}", f"ckpt_path={old}"],
                         ema_run.parent / "resumed")
    train(cfg)  # resumes: the EMA starts from the checkpoint's generator
    (resumed,) = (ema_run.parent / "resumed" / "checkpoints").glob("*.ckpt")
    assert int(torch.load(resumed, map_location="cpu", weights_only=True)["state_dict"]["ema.num_updates"]) == 1


def small_bn_generator() -> nn.Sequential:
    """Two BatchNorm layers, the second fed by the first: its statistics depend on the first's normalisation."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3), nn.BatchNorm1d(3))


def test_recomputed_statistics_are_those_of_a_cumulative_train_mode_pass() -> None:
    """What BigGAN's standing statistics are: train-mode forwards with momentum=None, here without leaving eval mode."""
    generator = small_bn_generator()
    noise = [torch.randn(16, 4, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    reference = small_bn_generator()
    for bn in (reference[1], reference[4]):
        bn.reset_running_stats()
        bn.momentum = None
    reference.train()
    with torch.no_grad():
        for z in noise:
            reference(z)

    generator.train()
    recompute_batchnorm_statistics(generator, noise)
    assert generator.training  # the caller's mode is kept
    for ours, theirs in ((generator[1], reference[1]), (generator[4], reference[4])):
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_var, theirs.running_var)
        assert int(ours.num_batches_tracked) == 5
    first = generator[0](torch.cat(noise))
    assert torch.allclose(generator[1].running_mean, first.mean(0), atol=1e-5)  # 5 equal batches: the plain mean


def test_the_ema_gets_statistics_of_its_own_weights_without_touching_the_training_rng(ema_run) -> None:
    cfg = compose_config("train", ["model=dcgan", "model.generator.width=8", *EMA_ON])
    gan = instantiate(cfg.model)
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.mul_(1.5)  # the trained G moves; the EMA follows a little
    gan.ema.update(gan.generator)
    copied = {k: v.clone() for k, v in gan.ema.module.named_buffers() if "running" in k}
    rng = torch.get_rng_state()
    first = {k: v.clone() for k, v in gan.sampling_generator.named_buffers() if "running" in k}
    assert torch.equal(torch.get_rng_state(), rng)  # a private noise generator: training draws stay as they were
    assert any(not torch.equal(first[k], copied[k]) for k in copied)  # no longer the live G's statistics
    gan._ema_statistics_fresh = False
    again = {k: v.clone() for k, v in gan.sampling_generator.named_buffers() if "running" in k}
    assert all(torch.equal(first[k], again[k]) for k in first)  # the same noise every time: deterministic


def test_ema_start_follows_the_model_then_averages() -> None:
    model = toy(2.0)
    ema = EMA(model, decay=0.9, warmup=False, start=2)
    run_updates(ema, model, [1.0, -3.0])
    assert ema.module.weight.item() == -3.0  # before the start it is a copy
    run_updates(ema, model, [5.0])
    assert ema.module.weight.item() == pytest.approx(0.9 * -3.0 + 0.1 * 5.0)
