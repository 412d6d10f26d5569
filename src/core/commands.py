"""Commands the project prints for a user to paste (resume=, ckpt_path=): one home for how a value is written so that
bash passes it whole and Hydra parses it back to the same string, whatever the path holds (`=`, `,`, spaces,
quotes, non-ASCII: a sweep job's folder is named by its overrides)."""

import re
import shlex

PLAIN = re.compile(r"[A-Za-z0-9_./:+@%-]+")  # what Hydra's override grammar takes unquoted, as it is


def override_key(override: str) -> str:
    """The key an override sets (`+key=...`, `~key` and `key=...` alike)."""
    return override.split("=", 1)[0].lstrip("+~")


def override(key: str, value: object) -> str:
    """key=value as one shell word: quoted for Hydra when the value holds anything else, then for bash."""
    text = str(value)
    if not PLAIN.fullmatch(text):
        text = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return shlex.quote(f"{key}={text}")
