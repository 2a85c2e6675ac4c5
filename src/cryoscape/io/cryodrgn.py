"""cryoDRGN pickles: poses ``(rot, trans)``, the N x 9 CTF array and index selections.

cryoDRGN's ``rot`` is exactly cryoscape's RELION matrix ``A``; its ``trans`` is the shift as a
fraction of the box (``shift_px / D``), same sign as ``_rlnOriginXAngst`` (see
docs/conventions.md). Every loader validates shapes so a wrong pickle fails with one line, and
reads through :mod:`.safe_pickle`, so a crafted pickle cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.atomic import atomic_write_bytes
from cryoscape.io.particles import CRYODRGN_CTF_COLUMNS, ParticleSet
from cryoscape.io.safe_pickle import load_pickle  # the only way cryoscape reads a pickle

__all__ = [
    "load_pickle",
    "save_pickle",
    "read_poses",
    "read_ctf",
    "read_index",
    "trans_to_shifts_A",
    "cryodrgn_poses",
    "poses_to_cryodrgn",
    "ctf_to_cryodrgn",
]


def save_pickle(obj, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    pickle.dump(obj, buf, protocol=4)
    atomic_write_bytes(path, buf.getvalue())


def _array(x, path: Path, what: str) -> np.ndarray:
    try:
        a = np.asarray(x)
        if a.dtype.kind not in "biuf":
            raise TypeError(a.dtype)  # text, complex, objects, bytes: not what cryoDRGN writes
        a = a.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{what} is not a numeric array", path) from None
    if not np.isfinite(a).all():
        raise InputError(f"{what} contains NaN or Inf", path)
    return a


def read_poses(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """(rot (N, 3, 3), trans (N, 2) fraction of box, or None for a bare rotation pickle)."""
    path = Path(path)
    obj = load_pickle(path)
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        rot, trans = _array(obj[0], path, "rotations"), _array(obj[1], path, "translations")
    elif isinstance(obj, np.ndarray):
        rot, trans = _array(obj, path, "rotations"), None
    else:
        raise InputError(
            f"expected a cryoDRGN pose pickle (rot, trans) or a rotation array, got {type(obj).__name__}", path
        )
    if rot.ndim != 3 or rot.shape[1:] != (3, 3):
        raise InputError(f"rotations have shape {rot.shape}, expected (N, 3, 3)", path)
    if trans is not None and trans.shape != (len(rot), 2):
        raise InputError(f"translations have shape {trans.shape}, expected ({len(rot)}, 2)", path)
    err = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max() if len(rot) else 0.0
    if err > 1e-3:
        raise InputError(f"rotations are not orthonormal (|R R^T - I| up to {err:.3g})", path)
    return rot, trans


def read_ctf(path: str | os.PathLike) -> np.ndarray:
    """cryoDRGN CTF array (N, 9) float64, columns ``CRYODRGN_CTF_COLUMNS``."""
    path = Path(path)
    obj = load_pickle(path)
    a = _array(obj, path, "CTF parameters")
    if a.ndim != 2 or a.shape[1] != len(CRYODRGN_CTF_COLUMNS):
        raise InputError(f"CTF array has shape {a.shape}, expected (N, 9): {', '.join(CRYODRGN_CTF_COLUMNS)}", path)
    return a


def read_index(path: str | os.PathLike) -> np.ndarray:
    """Particle indices (int64, 1-D, in the given order) from a ``.pkl`` or ``.npy`` file."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        if path.is_dir():
            raise InputError("is a folder, not an index file", path)
        if not path.is_file():
            raise InputError("file not found", path)
        try:
            obj = np.load(path, allow_pickle=False)
        except Exception as e:  # numpy raises several kinds for non-npy content
            raise InputError(f"not a readable .npy file ({type(e).__name__}: {e})", path) from None
    else:
        obj = load_pickle(path)
    try:
        a = np.asarray(obj)
    except ValueError:  # ragged nesting
        raise InputError("expected a 1-D array of integer indices, got a ragged nesting", path) from None
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"expected a 1-D array of integer indices, got {a.dtype} {a.shape}", path)
    return a.astype(np.int64)


def trans_to_shifts_A(trans: np.ndarray, box: int, psize_A: np.ndarray) -> np.ndarray:
    """cryoDRGN fractional shifts (N, 2) -> Å (N, 2): ``trans * D * psize``."""
    return np.asarray(trans, np.float64) * box * np.asarray(psize_A)[:, None]


def cryodrgn_poses(rot: np.ndarray, shift_px: np.ndarray, box: int) -> tuple[np.ndarray, np.ndarray]:
    """cryoDRGN's pose pair: (rot (N,3,3) float32, trans (N,2) float32 = shift_px / box)."""
    return np.asarray(rot, np.float32), (np.asarray(shift_px) / box).astype(np.float32)


def poses_to_cryodrgn(pset: ParticleSet) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cryodrgn_poses` of ``pset``; zero trans without shifts."""
    if pset.box <= 0:
        raise InputError("box size unknown: pass -D/--box", pset.source)
    shifts = np.zeros((pset.n, 2)) if pset.shifts_A is None else pset.shifts_A / pset.psize_A[:, None]
    return cryodrgn_poses(np.asarray(pset.rotations, np.float32), shifts, pset.box)


def ctf_to_cryodrgn(pset: ParticleSet) -> np.ndarray:
    """The (N, 9) float32 CTF array cryoDRGN reads."""
    if pset.box <= 0:
        raise InputError("box size unknown: pass -D/--box", pset.source)
    if pset.ctf is None:
        raise InputError("no CTF parameters", pset.source)
    return pset.ctf.to_cryodrgn(pset.box, pset.psize_A)
