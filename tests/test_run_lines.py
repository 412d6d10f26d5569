"""Lines a run prints that must be true of what it leaves (#37 item 7)."""

import re
from pathlib import Path

import pytest

from src.train import train
from tests.conftest import run_cli


@pytest.mark.slow
def test_a_run_refused_while_it_sets_up_names_no_config_file_it_then_removes(tmp_path: Path) -> None:
    images = tmp_path / "images" / "a"
    images.mkdir(parents=True)
    for i in range(4):
        (images / f"{i}.png").write_text("not an image")
    run = tmp_path / "run"
    refused = run_cli("src.train", "model=mlp_gan", "data=folder", f"data.path={images.parent}", "~logger",
                      f"paths.data_dir={tmp_path / 'data'}", "data.num_workers=0", "max_batches=1",
                      f"hydra.run.dir={run}")
    assert refused.returncode == 2 and "can be read by PIL" in refused.stderr, refused.stderr[-2000:]
    assert not run.exists() and "every setting" not in refused.stdout, refused.stdout


def draws_of_the_bar(text: str) -> list[str]:
    return [part for part in re.split(r"[\r\n]", text) if re.match(r"Epoch \d+: ", part)]


def test_the_bar_places_each_epoch_in_the_whole_budget(train_cfg, capsys) -> None:
    # 64 images in batches of 8: 8 batches an epoch, so batch 11 of the budget is batch 3 of epoch 1
    cfg = train_cfg("model=mlp_gan", "max_batches=3", "trainer.log_every_n_steps=1")
    train(cfg)
    capsys.readouterr()
    train(train_cfg("model=mlp_gan", "max_batches=11", "trainer.log_every_n_steps=1", f"resume={cfg.paths.output_dir}"))
    draws = draws_of_the_bar(capsys.readouterr().out)
    placed = [(int(e), int(n), int(b)) for e, n, b in
              (re.search(r"Epoch (\d+): .*? (\d+)/\d+ .*batch=(\d+)/11\b", d).groups() for d in draws if "batch=" in d)]
    assert placed[-1] == (1, 3, 11) and all(b == 8 * e + n for e, n, b in placed), draws
    assert re.search(r"batch=11/11, left=00:00\b", draws[-1]), draws[-1]
    # the resumed bar's speed counts this session's batches only (it once started at 406003.51it/s)
    rates = [float(r) for d in draws for r in re.findall(r"([\d.]+)it/s", d)]
    assert "?it/s" in draws[0] and rates and max(rates) < 10_000, draws


def test_the_time_left_follows_max_minutes_when_it_comes_first(train_cfg, capsys) -> None:
    train(train_cfg("model=mlp_gan", "max_batches=100000", "max_minutes=0.02", "trainer.log_every_n_steps=1"))
    draws = [d for d in draws_of_the_bar(capsys.readouterr().out) if "left=" in d]
    left = [int(m) * 60 + int(s) for d in draws for m, s in re.findall(r"left=(\d\d):(\d\d)", d)]
    assert left and max(left) <= 2 and all("batch=" in d and "/100000" in d for d in draws), draws
