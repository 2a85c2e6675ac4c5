"""Per-particle values to colour the latent plot by: clusters, |z|, latent dimensions and every
numeric column of the run's original star/cs file.

Every column holds one value per particle of the run (rows of ``z.npy``), float64; values of a
particle file are taken at the file rows the run used (its ``--ind``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: Integer-valued columns with at most this many distinct values are drawn as categories.
MAX_CATEGORIES = 40
#: Latent dimensions offered one by one up to this zdim (beyond, |z| and PCs say more).
MAX_Z_COLUMNS = 16


@dataclass
class Column:
    """``values: (N,)`` float64 in run order, or computed on first use by ``compute``."""

    id: str  # stable name used by the page, e.g. "file:rlnDefocusU"
    label: str  # what the user reads
    kind: str  # "categorical" or "continuous"
    values: np.ndarray | None = None
    compute: Callable[[], np.ndarray] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self) -> np.ndarray:
        """The values, computing them once (thread-safe: concurrent requests wait)."""
        with self._lock:
            if self.values is None:
                assert self.compute is not None, f"column {self.id}: neither values nor compute"
                self.values = np.asarray(self.compute(), np.float64)
            return self.values

    def describe(self) -> dict:
        return {"id": self.id, "label": self.label, "kind": self.kind}


def kind_of(values: np.ndarray) -> str:
    """ "categorical" for few distinct integer values (classes, groups, clusters), else "continuous"."""
    finite = values[np.isfinite(values)]
    if finite.size and np.all(finite == np.round(finite)) and len(np.unique(finite)) <= MAX_CATEGORIES:
        return "categorical"
    return "continuous"


def latent_columns(z: np.ndarray) -> list[Column]:
    """|z| and, for small latent spaces, each dimension ``z[i]``."""
    cols = [Column("latent:norm", "|z|", "continuous", np.linalg.norm(z, axis=1).astype(np.float64))]
    if z.shape[1] <= MAX_Z_COLUMNS:
        cols += [Column(f"latent:z{i}", f"z[{i}]", "continuous", z[:, i].astype(np.float64)) for i in range(z.shape[1])]
    return cols


def _numeric(a: np.ndarray) -> np.ndarray | None:
    a = np.asarray(a)
    if a.ndim != 1 or a.dtype.kind not in "biuf":
        return None
    return a.astype(np.float64)


def _file_column(cid: str, label: str, values: np.ndarray, rows: np.ndarray) -> Column | None:
    v = values[rows]
    finite = v[np.isfinite(v)]
    if finite.size == 0 or finite.min() == finite.max():  # constant: colours nothing
        return None
    return Column(cid, label, kind_of(v), v)


def file_columns(pset, rows: np.ndarray) -> list[Column]:
    """Numeric, non-constant columns of a star (``rlnDefocusU``...) or cs file
    (``ctf/df1_A``, ``alignments3D/class``...) at file ``rows: (N,)``."""
    cols: list[Column | None] = []  # None: a constant column
    raw = pset.info.cs_rows if pset.source_format == "cs" else None
    if raw is not None:
        for name in raw.dtype.names:
            if name == "uid" or name.startswith("rln_optics/") or (v := _numeric(raw[name])) is None:
                continue
            label = name.removeprefix("rln/_")
            cols.append(_file_column(f"file:{name}", label, v, rows))
    elif pset.metadata is not None:
        for name in pset.metadata.columns:
            v = _numeric(pset.metadata[name].to_numpy())
            if v is not None:
                cols.append(_file_column(f"file:{name.lstrip('_')}", name.lstrip("_"), v, rows))
    return [c for c in cols if c is not None]
