"""Datasets' pickles read without running their code: the unpickler builds numpy arrays (and the dicts, lists,
tuples, strings and numbers pickle makes by itself) and refuses every other global a crafted file could name."""

import pickle
from typing import BinaryIO

# numpy's array builders: _reconstruct + ndarray + dtype (protocols 0-4; a Python 3 protocol-2 pickle spells the
# arrays' bytes with _codecs.encode, str -> bytes), _frombuffer (protocol 5). numpy 2 moved numpy.core to numpy._core.
ARRAY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                 ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                 ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class RefusedGlobal(ValueError):
    """The pickle named a global other than numpy's array builders (the message is its module.name): it is not the
    dataset's file, and nothing it asked for was called."""


class ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in ARRAY_GLOBALS:
            raise RefusedGlobal(f"{module}.{name}")
        return super().find_class(module, name)


def load_arrays(file: BinaryIO) -> object:
    """Python 2's pickles too (CIFAR-10's): their byte strings are read as latin-1, as numpy expects."""
    return ArraysOnly(file, encoding="latin1").load()
