"""Known checksums of raw dataset files: a damaged file is named, with how to restore it, before it is decoded.

Only a file of the original's exact size is compared with the original's md5: one of another size is not that file
(a small test set, your own subset) and is not judged; a truncated IDX file fails torchvision's own size check.
"""

import hashlib
from functools import lru_cache
from pathlib import Path

from src.core.errors import UserError


@lru_cache(maxsize=64)
def _md5(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def md5_of(path: Path) -> str:
    """The file's md5, computed once per version of the file (size and modification time) in this process."""
    stat = path.stat()
    return _md5(Path(path).resolve(), stat.st_size, stat.st_mtime_ns)


def verify_known(folder: Path, known: dict[str, tuple[int, str]], restore: str) -> None:
    """known: file name -> (size, md5) of the original; `restore` says how to get a good copy back."""
    for name, (size, md5) in known.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            continue
        digest = md5_of(path)
        if digest != md5:
            raise UserError(f"{path} is damaged (md5 {digest}, the original's is {md5}): {restore}")
