"""The documentation's commands as written: every `python -m src.<cli> ...` in README and the docs/ pages it links
(code blocks and inline) composes with the app's configs, so a renamed key, option or group can't leave a command in
them that fails on a fresh clone. Placeholders (<run>, <dataset>, ...) stand for a value a user picks; they are
replaced by one that exists. Their links lead to files and headings that exist."""

import re
import shlex
from pathlib import Path

import pytest

from src.run.compose import compose_config
from tests.conftest import ROOT

CONFIGS = {"src.train": "train", "src.generate": "generate", "src.evaluate": "evaluate",
           "src.train_classifier": "train_classifier", "src.prepare_data": "prepare_data"}
# A placeholder's stand-in, by key (the rest take a plain string, which a path or name key accepts).
STAND_INS = {"data": "mnist", "model": "dcgan", "model.image_size": "32", "max_batches": "5000"}


DOCUMENTATION = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documentation_text() -> str:
    """README and its docs/ pages: the reference README moved there (#37 item 8) is checked as README was."""
    return "\n".join(path.read_text() for path in DOCUMENTATION)


def readme_commands() -> list[str]:
    text = documentation_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    inline = re.findall(r"`(python -m src\.[^`]+)`", text)
    commands = [line.split(" #")[0].strip() for line in lines + inline]
    return sorted({c for c in commands if re.match(r"python -m src\.\w", c) and not c.endswith("...")})


def overrides_of(command: str) -> tuple[str, list[str]]:
    """(config name, overrides) of a README command, placeholders replaced and a sweep's lists cut to one value."""
    words = shlex.split(re.sub(r"<[^>]*>", "<x>", command))  # a placeholder's words may hold quotes
    module, args = words[2], words[3:]
    multirun = "-m" in args
    overrides = []
    skip = False
    for arg in args:
        if skip or arg in ("-m", "--cfg"):
            skip = arg == "--cfg"  # its value (job, hydra, all) follows
            continue
        key, _, value = arg.partition("=")
        if "<" in value or value == "...":
            value = STAND_INS.get(key.lstrip("+~"), "x")
        if multirun and "," in value and not value.startswith("["):
            value = value.split(",")[0]
        overrides.append(f"{key}={value}" if _ else key)
    return CONFIGS[module], overrides


def test_readme_has_commands_for_every_cli() -> None:
    used = {c.split()[2] for c in readme_commands()}
    assert used == set(CONFIGS)


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_composes(command: str) -> None:
    name, overrides = overrides_of(command)
    compose_config(name, overrides)  # raises on an unknown key, option or group


@pytest.mark.slow  # starts a process
def test_the_cpu_only_install_in_readme_installs_torch_from_that_index_first() -> None:
    import subprocess

    command = re.search(r"`make install (TORCH_INDEX=\S+)`", documentation_text()).group(1)
    planned = subprocess.run(["make", "-n", "-B", "install", command], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    pips = [line for line in planned if " -m pip install " in line]
    index = command.split("=", 1)[1]
    assert pips[0].endswith(f"torch torchvision --index-url {index}") and "-e '.[" in pips[1], planned


def anchors(path: Path) -> set[str]:
    """The #fragments GitHub gives a markdown file's headings."""
    headings = [line.lstrip("#").strip() for line in path.read_text().splitlines() if re.match(r"#+ ", line)]
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def relative_links(path: Path) -> list[str]:
    return [target for target in re.findall(r"\]\((\S+?)\)", path.read_text()) if not re.match(r"[a-z]+:", target)]


def test_readme_links_every_docs_page() -> None:
    linked = {(ROOT / target.split("#")[0]).resolve() for target in relative_links(ROOT / "README.md")}
    assert set(DOCUMENTATION[1:]) - linked == set()


@pytest.mark.parametrize("path", DOCUMENTATION, ids=lambda path: path.name)
def test_links_lead_to_files_and_headings_that_exist(path: Path) -> None:
    broken = []
    for target in relative_links(path):
        file, _, fragment = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (fragment and linked.suffix == ".md" and fragment not in anchors(linked)):
            broken.append(target)
    assert not broken
