"""Ground-truth volumes of a simulation: the demo molecule, MRC maps or atomic models.

A :class:`VolumeBank` holds ``n_states * n_t`` volumes indexed ``state * n_t + t_bin``: ``n_t``
conformations on the grid ``t = linspace(0, 1, n_t)`` (continuous heterogeneity) for each of
``n_states`` discrete states (compositional). Demo volumes are rendered on demand so a fine
``t`` grid costs no memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cryoscape.errors import InputError

KINDS = ("continuous", "compositional", "both")


@dataclass(frozen=True)
class VolumeBank:
    """``n_states * n_t`` volumes ``(D, D, D)`` float32 ``[z, y, x]`` with voxel size ``psize_A``."""

    D: int
    psize_A: float
    n_states: int
    n_t: int
    get: Callable[[int], np.ndarray]  # index -> volume
    description: str = ""

    def __len__(self) -> int:
        return self.n_states * self.n_t

    @property
    def t(self) -> np.ndarray:
        """``(K,)`` conformational coordinate of each volume (0 when there is no motion)."""
        grid = np.linspace(0.0, 1.0, self.n_t) if self.n_t > 1 else np.zeros(1)
        return np.tile(grid, self.n_states)

    @property
    def state(self) -> np.ndarray:
        """``(K,)`` discrete state of each volume."""
        return np.repeat(np.arange(self.n_states), self.n_t)


def demo_bank(kind: str, D: int, psize_A: float, resolution_A: float, t_bins: int, max_angle_deg: float) -> VolumeBank:
    """The demo molecule. States: 0 = without the extra domain, 1 = with it.

    ``continuous``: hinge motion, extra domain present; ``compositional``: the two states at
    ``t = 0``; ``both``: every (state, t) pair.
    """
    from cryoscape.sim.molecule import demo_volume

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    n_states = 1 if kind == "continuous" else 2
    n_t = 1 if kind == "compositional" else t_bins
    grid = np.linspace(0.0, 1.0, n_t) if n_t > 1 else np.zeros(1)

    def get(k: int) -> np.ndarray:
        state, b = divmod(k, n_t)
        extra = True if kind == "continuous" else bool(state)
        return demo_volume(float(grid[b]), extra, D, psize_A, resolution_A, max_angle_deg)

    desc = f"demo molecule ({kind}, hinge 0-{max_angle_deg:g} deg, resolution {resolution_A:.2f} A)"
    return VolumeBank(D, psize_A, n_states, n_t, get, desc)


def _fixed_bank(vols: list[np.ndarray], kind: str, D: int, psize_A: float, desc: str) -> VolumeBank:
    if kind == "both":
        raise InputError("--kind both needs the demo molecule; give volumes as continuous or compositional")
    n = len(vols)
    n_states, n_t = (n, 1) if kind == "compositional" else (1, n)
    return VolumeBank(D, psize_A, n_states, n_t, lambda k: vols[k], desc)


def volume_file_bank(paths: Sequence[str | os.PathLike], kind: str, D: int | None, psize_A: float | None) -> VolumeBank:
    """Maps from MRC files, which must share one cubic box (and voxel size, unless ``psize_A`` given)."""
    from cryoscape.io.mrc import read_volume

    vols: list[np.ndarray] = []
    sizes = []
    for p in paths:
        v, ps = read_volume(p)
        if len(v) % 2:
            raise InputError(f"box {len(v)} is odd; cryoscape needs an even box", p)
        if vols and v.shape != vols[0].shape:
            raise InputError(
                f"box {len(v)} differs from {len(vols[0])} of {paths[0]}; all volumes must share one box", p
            )
        if D is not None and len(v) != D:
            raise InputError(f"box {len(v)} differs from -D {D}; volumes are not resampled", p)
        vols.append(v)
        sizes.append(ps)
    if psize_A is None:
        if min(sizes) <= 0:
            raise InputError("the header has no voxel size; give --apix", paths[sizes.index(min(sizes))])
        if max(sizes) - min(sizes) > 1e-3 * max(sizes):
            raise InputError(
                f"voxel sizes differ between volumes ({sorted(set(sizes))}); give --apix to override", paths[0]
            )
        psize_A = float(sizes[0])
    return _fixed_bank(vols, kind, len(vols[0]), psize_A, f"{len(vols)} MRC volume(s)")


def pdb_bank(
    paths: Sequence[str | os.PathLike], kind: str, D: int, psize_A: float | None, resolution_A: float | None
) -> VolumeBank:
    """Atomic models rendered with :func:`cryoscape.sim.atoms.render_atoms`.

    Each model is centred on its own centre of mass. Defaults: ``psize_A`` such that the largest
    model spans 65% of the box; ``resolution_A = 2.5 * psize_A``.
    """
    from cryoscape.sim.atoms import load_atomic_model, render_atoms

    models = [load_atomic_model(p) for p in paths]
    if psize_A is None:
        radius = max(float(np.linalg.norm(xyz, axis=1).max()) for xyz, _ in models)
        psize_A = float(np.ceil(2 * radius / (0.65 * D) * 20) / 20)
    resolution_A = 2.5 * psize_A if resolution_A is None else resolution_A
    vols = []
    for p, (xyz, w) in zip(paths, models):
        v = render_atoms(xyz, w, D, psize_A, resolution_A)
        if v.sum() < 0.99 * w.sum():
            raise InputError(f"the model does not fit in a box of {D} px of {psize_A:g} A; increase -D or --apix", p)
        vols.append(v)
    return _fixed_bank(vols, kind, D, psize_A, f"{len(vols)} atomic model(s) at {resolution_A:.2f} A")
