"""The EMA generator follows the update training runs (constant and warm-up decay), is checkpointed and exported,
and is what sampling uses unless told otherwise."""

import numpy as np
import pytest
import torch
from torch import nn

from src.data.synthetic import write_mnist
from src.gan.ema import EMA
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


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ema")
    write_mnist(root / "data")
    cfg = compose_config("train", ["max_batches=3", "data.batch_size=8", "data.num_workers=0", "~logger",
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
def test_generate_samples_the_ema_by_default(ema_run, tmp_path, source: str, switch: list[str], prefix: str) -> None:
    generate(compose_config("generate", [f"ckpt_path={ema_run / source}", "num_samples=6", f"output_dir={tmp_path}",
                                         *switch]))
    assert np.array_equal(np.load(tmp_path / "samples.npz")["images"], expected_samples(ema_run, prefix, 6))


def test_checkpoints_from_before_the_ema_sample_raw_and_resume(ema_run, capsys) -> None:
    ckpt = torch.load(ema_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("ema.")}
    old = ema_run / "checkpoints" / "old.ckpt"
    torch.save(ckpt, old)

    _, _, _, is_ema = load_generator(old)
    assert not is_ema and "holds no EMA generator (trained without EMA): using its raw generator" in \
        capsys.readouterr().out

    cfg = compose_config("train", ["max_batches=4", "data.batch_size=8", "data.num_workers=0", "~logger",
                                   "~callbacks", f"paths.data_dir={ema_run.parent / 'data'}", f"ckpt_path={old}"],
                         ema_run.parent / "resumed")
    train(cfg)  # resumes: the EMA starts from the checkpoint's generator
    (resumed,) = (ema_run.parent / "resumed" / "checkpoints").glob("*.ckpt")
    assert int(torch.load(resumed, map_location="cpu", weights_only=True)["state_dict"]["ema.num_updates"]) == 1
