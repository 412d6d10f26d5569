"""What a run prints and what its train.log keeps: the choices at the start, the loss lines, a closing summary whose
commands work, and none of the third-party noise."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from src.core.layout import run_name_suffix
from tests.conftest import FAST, ROOT, child_env, data_overrides, run_cli


@pytest.fixture(scope="module")
def printed_run(tmp_path_factory) -> tuple[Path, str, str]:
    """A finished mlp_gan run started from the command line: its folder, stdout and stderr."""
    from src.data.synthetic import write_mnist

    root = tmp_path_factory.mktemp("console")
    write_mnist(root / "data")
    done = run_cli("src.train", *FAST, "model=mlp_gan", "model.generator.width=8", f"paths.data_dir={root / 'data'}",
                   *data_overrides("mnist", root / "data"), f"paths.log_dir={root / 'outputs'}", "name=smoke test")
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (root / "outputs").glob("*/*")  # outputs/<date>/<time>_<name>
    return run, done.stdout, done.stderr


@pytest.mark.slow  # starts a process
def test_train_log_holds_the_console_lines(printed_run) -> None:
    run, stdout, _ = printed_run
    log = (run / "train.log").read_text()
    for line in ("[config] model=mlp_gan", "set on the command line: max_batches=2", "Step 1: Generator loss: ",
                 "[done] 2 batches of max_batches=2, this session ", "GPU available: "):
        assert line in log and line in stdout, line
    # the file adds when and where each line came from; the console shows the bare message
    assert re.search(r"^\[\d{4}-\d\d-\d\d [\d:,]+\]\[src\.callbacks\.loss_printer\]\[INFO\] Step 1:", log, re.M)
    assert not re.search(r"^\[\d{4}-", stdout, re.M)


@pytest.mark.slow  # starts a process
def test_the_console_shows_choices_not_the_whole_config_and_no_known_noise(printed_run) -> None:
    run, stdout, stderr = printed_run
    assert f"[config] every setting: {run / 'config.yaml'}" in stdout
    assert "_target_" not in stdout and "lr_g" not in stdout  # the full tree (~180 lines) is in config.yaml only
    for noise in ("💡 Tip", "litlogger", "LeafSpec", "max_steps", "transfer_batch_to_device", "logging interval",
                  "exists and is not empty", "UserWarning"):
        assert noise not in stdout + stderr + (run / "train.log").read_text(), noise
    # Lightning's stop line names its step counter, which counts batches here: it says so
    for text in (stdout, (run / "train.log").read_text()):
        assert "`Trainer.fit` stopped: `max_batches=2` reached." in text


@pytest.mark.slow  # starts a process
def test_the_closing_summary_names_the_files_and_its_commands_work(printed_run, tmp_path) -> None:
    run, stdout, _ = printed_run
    summary = stdout[stdout.index("[done]"):]
    assert "generator.pt" in summary and "checkpoints/last.ckpt" in summary and "training_progress.gif" in summary
    assert f"TensorBoard {run / 'tensorboard'}" in summary
    sample = re.search(r"sample it: +python -m src\.generate (.+)$", summary, re.M).group(1).split()
    done = run_cli("src.generate", *sample, f"output_dir={tmp_path}")
    assert done.returncode == 0 and (tmp_path / "samples.npz").is_file(), done.stderr[-2000:]
    more = re.search(r"train more: +python -m src\.train (.+)$", summary, re.M).group(1)
    assert more == f"resume={run} max_batches=<more than 2>"


@pytest.mark.slow  # starts a process
def test_a_run_without_checkpoints_suggests_no_resume(tmp_path) -> None:
    from src.data.synthetic import write_mnist

    write_mnist(tmp_path / "data")
    done = run_cli("src.train", "debug=fdr", "model=mlp_gan", "model.generator.width=8", "data.batch_size=8",
                   f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = done.stdout[done.stdout.index("[done]"):]
    assert "resume=" not in summary and "no checkpoint was saved: this run can't be continued" in summary


@pytest.mark.slow  # starts a process
def test_a_refused_command_says_why_on_stderr_only(tmp_path) -> None:
    done = run_cli("src.train", "max_batches=0", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2 and done.stderr.startswith("Error: max_batches") and done.stdout == ""


@pytest.mark.slow  # starts a process
def test_a_run_is_named_by_name_and_a_sweep_job_by_its_overrides(printed_run) -> None:
    run, _, _ = printed_run
    assert run.name.endswith("_smoke-test") and "\nname: smoke test\n" in (run / "config.yaml").read_text()
    assert run_name_suffix("wide lr/2") == "_wide-lr-2" and run_name_suffix(None) == ""
    assert run_name_suffix(None, "data=mnist,model.lr_g=0.001") == "_data=mnist,model.lr_g=0.001"
    long_a, long_b = (run_name_suffix(None, "x" * 200 + end) for end in "ab")
    assert len(long_a) == len(long_b) == 121 and long_a[:112] == long_b[:112] and long_a != long_b


@pytest.mark.slow  # starts a process
def test_printed_commands_paste_into_bash_for_any_run_folder(tmp_path) -> None:
    from src.data.synthetic import write_mnist

    write_mnist(tmp_path / "data")
    run = tmp_path / "multirun" / "0_max_batches=2,model.lr_g=0.0001 ü"  # a sweep job's folder, and more
    done = run_cli("src.train", *FAST, "model=mlp_gan", "model.generator.width=8",
                   f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir='{run}'")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = done.stdout[done.stdout.index("[done]"):]
    assert f"-m src.generate \"ckpt_path='{run}'\" num_samples=64" in summary  # quoted once, readably
    sample = re.search(r"sample it: +python (-m src\.generate .+)$", summary, re.M).group(1)
    more = re.search(r"train more: +python (-m src\.train .+)$", summary, re.M).group(1)
    # the resumed run reads the data the run recorded (paths.data_dir above)
    for pasted in (f"{sample} output_dir={tmp_path / 'samples'}", more.replace("<more than 2>", "3")):
        result = subprocess.run(["bash", "-c", f"{sys.executable} {pasted}"], cwd=ROOT, capture_output=True,
                                text=True, env=child_env(), timeout=300)
        assert result.returncode == 0, (pasted, result.stderr[-2000:])
    assert (tmp_path / "samples" / "samples.npz").is_file()
    assert "[done] 3 batches of max_batches=3" in result.stdout


@pytest.mark.slow
def test_printed_commands_run_in_a_shell_without_the_environment(tmp_path) -> None:
    """`make train` runs .venv/bin/python from a shell where `python` is not it (no environment activated): the
    commands the run prints name the interpreter, relative to the folder it ran in, and work pasted there."""
    from src.data.synthetic import write_mnist

    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests run outside a virtual environment: `python` is the interpreter wherever it is found")
    write_mnist(tmp_path / "data")
    bare = child_env(PATH="/usr/bin:/bin")  # a new shell: no venv on PATH
    done = subprocess.run([sys.executable, "-m", "src.train", *FAST, "model=mlp_gan", "model.generator.width=8",
                           f"paths.data_dir={tmp_path / 'data'}", f"paths.log_dir={tmp_path / 'outputs'}"],
                          cwd=ROOT, env=bare, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    interpreter = Path(sys.executable).absolute()
    shown = str(interpreter.relative_to(ROOT)) if interpreter.is_relative_to(ROOT) else str(interpreter)
    sample = re.search(r"sample it: +(.+)$", done.stdout, re.M).group(1)
    assert sample.startswith(f"{shown} -m src.generate ")
    pasted = subprocess.run(["bash", "-c", f"{sample} output_dir={tmp_path / 'samples'}"], cwd=ROOT, env=bare,
                            capture_output=True, text=True, timeout=300)
    assert pasted.returncode == 0, (sample, pasted.stderr[-2000:])
    assert (tmp_path / "samples" / "samples.npz").is_file()


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize("value", ["/runs/0_seed=1,lr=2 ü", "/runs/it's", '/runs/say "hi"', "/runs/$HOME", "/runs/`id`",
                                   "/runs/back\\slash", "/runs/end\\", "/runs/\\'both", "/runs/wow!",
                                   "/runs/plain"])
def test_a_printed_override_reaches_hydra_whole_through_bash(value: str) -> None:
    """What bash makes of a printed key=value is what Hydra parses back to the same string; readable (double quotes
    around Hydra's single ones) where bash would read nothing inside them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from src.core.commands import override

    word = override("ckpt_path", value)
    argv = subprocess.run(["bash", "-c", f"printf '%s\\0' {word}"], capture_output=True, text=True, check=True)
    (pasted,) = argv.stdout.split("\0")[:-1]
    assert OverridesParser.create().parse_override(pasted).value() == value
    if not re.search(r'["$`\\!]', value) and value != "/runs/plain":
        assert word.startswith("\"ckpt_path='") and word.endswith("'\"")
