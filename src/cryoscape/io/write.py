"""Writing particle sets: dispatch on the output extension, cryoDRGN pickles, atomic files.

Every writer goes through :mod:`cryoscape.io.atomic` so an interrupted run never leaves a
half-written star/cs/pkl that a later run would trust.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.atomic import atomic_write_bytes
from cryoscape.io.particles import ParticleSet

WRITABLE = (".star", ".cs")
__all__ = ["WRITABLE", "write_particles", "write_cryodrgn_poses", "write_cryodrgn_ctf", "write_index"]


def write_particles(pset: ParticleSet, path: str | os.PathLike) -> None:
    """Write ``pset`` as RELION 3.1 ``.star`` or cryoSPARC ``.cs``, chosen by the extension."""
    ext = Path(path).suffix.lower()
    if ext == ".star":
        from cryoscape.io.star import write_star

        write_star(pset, path)
    elif ext == ".cs":
        from cryoscape.io.cs import write_cs

        write_cs(pset, path)
    else:
        raise InputError(
            f"unknown extension {ext or '(none)'!r} for particle output; use one of {', '.join(WRITABLE)}", path
        )


def write_cryodrgn_poses(pset: ParticleSet, path: str | os.PathLike) -> None:
    """cryoDRGN pose pickle: (rot (N,3,3) float32, trans (N,2) float32 fraction of the box)."""
    from cryoscape.io.cryodrgn import poses_to_cryodrgn, save_pickle

    if pset.rotations is None:
        raise InputError("no poses to write", pset.source)
    save_pickle(poses_to_cryodrgn(pset), path)


def write_cryodrgn_ctf(pset: ParticleSet, path: str | os.PathLike) -> None:
    """cryoDRGN CTF pickle: (N, 9) float32, see ``CRYODRGN_CTF_COLUMNS``."""
    from cryoscape.io.cryodrgn import ctf_to_cryodrgn, save_pickle

    if pset.ctf is None:
        raise InputError("no CTF parameters to write", pset.source)
    save_pickle(ctf_to_cryodrgn(pset), path)


def write_index(ind: np.ndarray, path: str | os.PathLike) -> None:
    """An index selection as ``.pkl`` (cryoDRGN) or ``.npy``: int64 particle indices."""
    ind = np.asarray(ind, np.int64).reshape(-1)
    if Path(path).suffix.lower() == ".npy":
        import io

        buf = io.BytesIO()
        np.save(buf, ind)
        atomic_write_bytes(path, buf.getvalue())
    else:
        from cryoscape.io.cryodrgn import save_pickle

        save_pickle(ind, path)
