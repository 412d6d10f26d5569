"""Commands the project prints for a user to paste (resume=, ckpt_path=): one home for how a value is written so that
bash passes it whole and Hydra parses it back to the same string, whatever the path holds (`=`, `,`, spaces,
quotes, non-ASCII: a sweep job's folder is named by its overrides), and for how the command names its interpreter
so that it runs in a new shell too."""

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

PLAIN = re.compile(r"[A-Za-z0-9_./:+@%-]+")  # what Hydra's override grammar takes unquoted, as it is
# what bash still reads inside double quotes (`!`: history expansion in an interactive shell)
SPECIAL_IN_DOUBLE_QUOTES = re.compile(r'["$`\\!]')


def override_key(override: str) -> str:
    """The key an override sets (`+key=...`, `~key` and `key=...` alike)."""
    return override.split("=", 1)[0].lstrip("+~")


def hydra_quoted(text: str) -> str:
    """The inside of a single-quoted Hydra value: Hydra reads a backslash as an escape only in a run of them before
    a quote or the end, so those runs are doubled and each quote escaped; any other backslash stays as it is."""
    return re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text)


def python() -> str:
    """How a printed command names this interpreter: `python` where that name finds it (an activated environment, or
    no virtual environment at all), else its path, relative to the working folder when inside it: after `make train`
    from a shell with no environment activated, `.venv/bin/python` (that shell's `python` lacks the packages)."""
    executable = Path(sys.executable).absolute()  # not resolved: a virtual environment's python is a link
    found = shutil.which("python")
    if sys.prefix == sys.base_prefix or (found and os.path.samefile(Path(found).parent, executable.parent)):
        return "python"
    if not executable.is_relative_to(Path.cwd()):
        return shlex.quote(str(executable))
    inside = executable.relative_to(Path.cwd())
    return shlex.quote(str(inside) if inside.parent != Path(".") else f"./{inside}")  # a bare name means PATH


def command(module: str, *words: str) -> str:
    """`python -m <module> <words>` as it pastes into a new shell (python() names the interpreter)."""
    return " ".join([python(), "-m", module, *words])


def override(key: str, value: object) -> str:
    """key=value as one shell word: quoted for Hydra when the value holds anything else, then for bash, once and
    readably (`"ckpt_path='/runs/0_seed=1,lr=2'"`) unless the value holds what bash reads inside double quotes."""
    text = str(value)
    if PLAIN.fullmatch(text):
        return f"{key}={text}"
    word = f"{key}='{hydra_quoted(text)}'"
    if SPECIAL_IN_DOUBLE_QUOTES.search(text):
        return shlex.quote(word)
    return f'"{word}"'
