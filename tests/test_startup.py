"""Start-up: what answers without training imports neither torch nor Lightning, a run imports only the optional
packages its config uses, the typo check composes the config only when the files can't rule a typo out, and a run
says how long after the command its first batch ended."""

import ast
import subprocess
import sys
import time

import pytest
from omegaconf import OmegaConf

import src.run.cli as cli
from src.run.compose import FileKeys, compose_config, group_options
from tests.conftest import FAST, ROOT, child_env, data_overrides

# Runs a CLI as `python -m` would, then prints which of the named modules it imported (on the last line).
IMPORTED = """
import runpy, sys
sys.argv = [{module!r}, *{args!r}]
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit:
    pass
print("imported:", sorted(m for m in {watched!r} if m in sys.modules))
"""


def imported(module: str, args: list[str], watched: tuple[str, ...], cwd=ROOT) -> list[str]:
    snippet = IMPORTED.format(module=module, args=args, watched=watched)
    done = subprocess.run([sys.executable, "-c", snippet], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=child_env())
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("imported:"), done.stderr[-2000:]
    return ast.literal_eval(last.removeprefix("imported:"))


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"], ["model=mlp_gan", "--cfg", "job"]],
                         ids=["help", "cfg", "cfg with an override"])
def test_what_answers_without_training_imports_neither_torch_nor_lightning(args: list[str]) -> None:
    assert imported("src.train", args, ("torch", "lightning")) == []


@pytest.mark.slow  # starts a process
def test_a_refused_typo_imports_neither_torch_nor_lightning(tmp_path) -> None:
    assert imported("src.train", ["max_batch=3", f"hydra.run.dir={tmp_path}"], ("torch", "lightning")) == []


@pytest.mark.slow  # starts a process
def test_a_run_imports_no_optional_package_its_config_does_not_use(tmp_path) -> None:
    from src.data.synthetic import write_mnist

    write_mnist(tmp_path / "data")
    args = [*FAST, "model=mlp_gan", "model.generator.width=8", f"paths.data_dir={tmp_path / 'data'}",
            *data_overrides("mnist", tmp_path / "data"), f"hydra.run.dir={tmp_path / 'run'}"]
    found = imported("src.train", args, ("lightning", "wandb", "mlflow", "optuna"))
    assert found == ["lightning"] and (tmp_path / "run" / "generator.pt").is_file()


def every_key(config_name: str, overrides: list[str]) -> set[str]:
    """Every dotted key of the composed config, inner ones included (a list is one leaf)."""
    def walk(node: object, prefix: str) -> set[str]:
        keys = {prefix} if prefix else set()
        for key, child in node.items() if isinstance(node, dict) else []:
            keys |= walk(child, f"{prefix}.{key}" if prefix else str(key))
        return keys

    return walk(OmegaConf.to_container(compose_config(config_name, overrides), resolve=False), "")


@pytest.mark.parametrize("option", [f"{group}={option}" for group in ("model", "data", "logger", "trainer", "metrics",
                                                                        "scheduler", "optimizer", "debug", "experiment")
                                    for option in group_options(group)])
def test_the_typo_check_trusts_no_key_the_composed_config_lacks(option: str) -> None:
    """Every key the files show is one the composed config has, also for every leaf name moved under every other
    parent (model.max_batches, model.generator.lr_g, ...)."""
    keys = every_key("train", [option])
    leaves = {key.rsplit(".", 1)[-1] for key in keys}
    parents = {key.rsplit(".", 1)[0] for key in keys if "." in key}
    candidates = keys | leaves | {f"{parent}.{leaf}" for parent in parents for leaf in leaves}
    group, _, choice = option.partition("=")
    shown = FileKeys.read("train", {group: choice})
    trusted = {key for key in candidates if shown is not None and shown.defines(key)}
    assert trusted <= keys, sorted(trusted - keys)[:5]
    if not option.startswith(("experiment=", "debug=")):  # these reshape the config: the check composes instead
        assert {"max_batches", "seed", "model.lr_g", "data.batch_size", "trainer.max_steps"} <= trusted


@pytest.mark.parametrize(("overrides", "composes"), [
    (["max_batches=1", "model=mlp_gan", "model.generator.width=8", "data.batch_size=8"], False),
    (["model=dcgan64", "data=cifar10", "trainer=cpu", "logger=csv"], False),
    (["max_batch=20"], True),
    (["model=dcgam"], True),
    (["experiment=sngan", "model.lr_g=1e-3"], True),
])
def test_the_typo_check_composes_only_when_the_files_cannot_rule_a_typo_out(monkeypatch, overrides, composes) -> None:
    calls = []
    monkeypatch.setattr(cli, "compose_config", lambda *args: calls.append(args) or compose_config(*args))
    try:
        cli.refuse_unknown_keys("train", overrides)
    except SystemExit as stop:  # the two typos: one line, status 2 (tests/test_cli.py checks the lines)
        assert stop.code == 2
    assert bool(calls) == composes


@pytest.mark.slow  # starts a process
def test_start_up_pauses_the_collector_then_freezes_what_it_made_once() -> None:
    """Once only: a second job of a sweep must not freeze (and so never free) what the first one left."""
    snippet = ("import gc; from src.run.cli import pause_gc, resume_gc; pause_gc(); paused = not gc.isenabled(); "
               "resume_gc(); frozen = gc.get_freeze_count(); kept = [[] for _ in range(1000)]; resume_gc(); "
               "print(paused, gc.isenabled(), frozen > 0, gc.get_freeze_count() == frozen)")
    done = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "True", "True"]


@pytest.mark.slow  # starts a process
def test_seconds_since_start_counts_from_the_command() -> None:
    snippet = "import time; time.sleep(1); import src.run.summary as s; print(s.seconds_since_start())"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True, check=True)
    took = time.perf_counter() - start
    assert 1 <= float(done.stdout) <= took


def test_the_closing_line_says_when_the_first_batch_ended(train_cfg, logged) -> None:
    from src.train import train

    train(train_cfg("model=mlp_gan", "model.generator.width=8", "~logger", "trainer.enable_progress_bar=false",
                    "~callbacks.progress_bar"))
    done = next(line for line in logged().splitlines() if line.startswith("[done]"))
    assert " s after the command: " in done and ", first batch " in done
