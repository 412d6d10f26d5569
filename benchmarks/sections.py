"""benchmarks/*.md files written a section at a time: a bench replaces its own `## ` section and keeps the rest."""

import re
from pathlib import Path


def write_section(path: Path, header: str, section: str) -> None:
    """Replace the section that starts with `header` (up to the next `## ` heading) by `section`, or append it."""
    text = path.read_text() if path.is_file() else ""
    if header in text:
        text = re.sub(rf"{re.escape(header)}\n.*?(?=\n## |\Z)", lambda _: section.rstrip("\n") + "\n", text,
                      flags=re.S)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    path.write_text(text)
