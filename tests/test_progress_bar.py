"""The progress bar counts batches to the budget, whatever n_critic is (Lightning's counter counts batches here),
shows the losses the module logged, and neither it nor the model summary prints lines that mislead (a bar without
its total, FLOPs of 0, Lightning's own time-limit line)."""

import re
from pathlib import Path

import pytest

from src.data.synthetic import write_mnist
from src.train import train
from tests.conftest import FAST, run_cli


def test_the_last_epoch_is_sized_in_batches(train_cfg, capsys) -> None:
    # 64 images in batches of 8: 8 batches an epoch; 11 batches = a whole epoch, then 3 of the next. With n_critic 2 a
    # batch is 3 optimizer steps: a bar counting steps would size the second epoch 8 (min(8, 33 - 24)) and end early.
    train(train_cfg("model=mlp_gan", "model.n_critic=2", "max_batches=11", "trainer.log_every_n_steps=1"))
    bars = capsys.readouterr().out
    last = {epoch: (done, total) for epoch, done, total in re.findall(r"Epoch (\d+): +\d+%\S* +(\d+)/(\d+)", bars)}
    assert last == {"0": ("8", "8"), "1": ("3", "3")}
    assert re.search(r"Epoch 1: 100%.*loss/g=-?\d+\.\d{3}, loss/d=-?\d+\.\d{3}", bars)


def test_a_run_resumed_mid_epoch_shows_its_epoch_and_total(train_cfg, tmp_path, capsys) -> None:
    # 8 batches an epoch: stopped after batch 3, resumed to batch 6, the bar reads "Epoch 0" and ends at 6/6
    cfg = train_cfg("model=mlp_gan", "max_batches=3")
    train(cfg)
    capsys.readouterr()
    train(train_cfg("model=mlp_gan", "max_batches=6", f"resume={cfg.paths.output_dir}"))
    bars = capsys.readouterr().out
    assert not re.search(r"[1-9]\d*/\?", bars), bars[-500:]  # Lightning's bar had no total: "Training: 3/?"
    assert re.findall(r"Epoch (\d+): +\d+%\S* +(\d+)/(\d+)", bars)[-1] == ("0", "6", "6"), bars[-500:]


def bar_draws(text: str) -> list[str]:
    """Each line and each redraw of a progress bar, in order, as a console without a terminal received them."""
    return [part for part in re.split(r"[\r\n]", text) if part.strip()]


@pytest.fixture(scope="module")
def printed_run(tmp_path_factory) -> str:
    """What `python -m src.train` printed for a 2-batch mlp_gan run."""
    root = tmp_path_factory.mktemp("printed")
    write_mnist(root / "data")
    done = run_cli("src.train", *FAST, "model=mlp_gan", f"paths.data_dir={root / 'data'}",
                   f"hydra.run.dir={root / 'run'}")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_the_model_summary_has_no_flops_line(printed_run: str) -> None:
    """Lightning counts FLOPs only for a module with an example input, which a GAN module has not: they read 0."""
    assert "FLOPs" not in printed_run and "Flops" not in printed_run
    assert re.search(r"^0 \| generator +\| Generator +\| [\d.]+ [KM]? *\| train$", printed_run, re.M), printed_run
    assert re.search(r"^[\d.]+ [KM] +Total params$", printed_run, re.M)


@pytest.mark.slow
def test_the_bar_is_first_drawn_with_its_epoch_and_total(printed_run: str) -> None:
    bars = [draw for draw in bar_draws(printed_run) if re.match(r"(Training|Epoch \d+):", draw)]
    assert not any("/?" in draw or draw.startswith("Training") for draw in bars), bars[:3]
    assert re.match(r"Epoch 0: +0%.* 0/2 ", bars[0]), bars[0]


@pytest.mark.slow
def test_a_max_minutes_stop_is_said_once_and_the_bar_ends_on_its_true_count(tmp_path: Path) -> None:
    """Lightning's `Time limit reached ... Signaling Trainer to stop.` is not shown (the run's own line says it), and
    the bar is not redrawn for it: after the last loss line it is drawn once by that line, once when it reaches its
    epoch's end, once when it closes, showing the batches of the last epoch really done."""
    write_mnist(tmp_path / "data")  # 64 images: 8 batches of 8 an epoch
    done = run_cli("src.train", *FAST, "model=mlp_gan", "max_batches=100000", "max_minutes=0.05",
                   "sample_every_n_batches=100000", f"paths.data_dir={tmp_path / 'data'}",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "Time limit reached" not in output and "Signaling Trainer to stop" not in output
    batches = int(re.search(r"^\[stopped\] (\d+) batches of max_batches=100000", done.stdout, re.M).group(1))
    draws = bar_draws(done.stdout)
    last_loss = max(i for i, draw in enumerate(draws) if draw.startswith(f"Step {batches}: "))
    stopped = next(i for i, draw in enumerate(draws) if draw.startswith("stopped at batch "))
    after = draws[last_loss + 1:stopped]
    epoch, count, total = map(int, re.match(r"Epoch (\d+): .* (\d+)/(\d+) ", after[-1]).groups())
    assert (epoch, count, total) == ((batches - 1) // 8, batches - 8 * ((batches - 1) // 8), 8), after
    assert all(draw.startswith(f"Epoch {epoch}: ") for draw in after)
    assert len(after) <= (3 if count == total else 2), after
