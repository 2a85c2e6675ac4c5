"""Reading pickles without running foreign code.

cryoDRGN exchanges poses, CTF parameters, indices, latents and labels as pickles, and a pickle
is a program: ``pickle.load`` of a crafted file imports and calls anything it names (``os.system``
included). This unpickler resolves only the few numpy names an array needs; everything else a
pickle may build (tuples, lists, dicts, numbers, strings, bytes) needs no name at all. So a
pickle that names any other callable is refused before anything is called. Every fixture pickle
written by cryoDRGN (``../shared/fixtures/*.pkl``) needs nothing more. Arrays of Python objects
are refused too: they are not data that cryoscape reads.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from cryoscape.errors import InputError

#: (module, name) pairs a pickle of plain numpy arrays and scalars refers to (numpy 1.x and 2.x).
ALLOWED = frozenset(
    {
        *((m, "_reconstruct") for m in ("numpy.core.multiarray", "numpy._core.multiarray")),
        *((m, "scalar") for m in ("numpy.core.multiarray", "numpy._core.multiarray")),
        *((m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles, via _latin1 below
    }
)
#: Nesting deeper than this is not a cryoDRGN file (and would exhaust the checker's stack).
_MAX_DEPTH = 32


class UnsafePickle(pickle.UnpicklingError):
    """The pickle names a callable outside :data:`ALLOWED`."""


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, limited to their encodings (a
    codec name is otherwise looked up, i.e. imported, by name)."""
    if encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UnsafePickle(f"asks for text encoding {encoding!r}")
    return text.encode(encoding)


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _latin1
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickle(f"refers to {module}.{name}")

    def persistent_load(self, _pid: Any) -> Any:
        raise UnsafePickle("uses persistent ids")


def _check(obj: Any, depth: int = 0) -> None:
    """Only plain containers, numbers, strings and numeric arrays; no object arrays."""
    if depth > _MAX_DEPTH:
        raise pickle.UnpicklingError(f"nested deeper than {_MAX_DEPTH} levels")
    if isinstance(obj, (np.ndarray, np.generic)):
        if obj.dtype.hasobject:
            raise UnsafePickle("holds an array of Python objects")
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _check(x, depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check(k, depth + 1)
            _check(v, depth + 1)
    elif not (obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray))):
        raise UnsafePickle(f"holds a {type(obj).__name__}")


def loads(data: bytes) -> Any:
    """Unpickle ``data`` admitting only numpy arrays/scalars, tuples, lists, dicts and numbers.

    Raises :class:`pickle.UnpicklingError` (:class:`UnsafePickle` for a refused name) or whatever
    a malformed stream makes the unpickler raise; callers turn these into an InputError.
    """
    obj = _Restricted(io.BytesIO(data)).load()
    _check(obj)
    return obj


def load_pickle(path: str | os.PathLike) -> Any:
    """The object in the pickle at ``path``; InputError for a missing, unreadable, malformed or
    unsafe file (a refused pickle has run nothing)."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not a pickle file", path)
    if not path.exists():
        raise InputError("file not found", path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path) from None
    try:
        return loads(data)
    except UnsafePickle as e:
        raise InputError(
            f"refused: the pickle {e}, which cryoscape does not load (only numpy arrays, "
            "tuples, lists, dicts and numbers); nothing in it was run",
            path,
        ) from None
    except RecursionError:
        raise InputError("not a readable pickle (nested too deeply)", path) from None
    except Exception as e:  # any unpickling failure means "not a pickle we can use"
        first = str(e).splitlines()[0] if str(e) else ""
        raise InputError(f"not a readable pickle ({type(e).__name__}{': ' + first if first else ''})", path) from None
