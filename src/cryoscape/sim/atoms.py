"""Atomic models -> density maps: point atoms rendered as Gaussians on the volume grid.

Resolution rule (the one UCSF Chimera's ``molmap`` uses by default): each atom is a 3D Gaussian
with ``sigma = resolution_A / (pi * sqrt(2))``, so its Fourier transform has fallen to ``1/e``
of its peak at the spatial frequency ``1 / resolution_A``.

Each voxel receives the Gaussian's integral over that voxel (a product of 1D ``erf``
differences), not its value at the centre: the map then sums exactly to the total weight even
when ``sigma`` is below a voxel, and stays free of the aliasing point sampling would give.
Volumes are ``(D, D, D)`` float32 ``[z, y, x]``; the voxel with index ``D//2`` on each axis is
the origin of the atomic coordinates. Values are weight per voxel (``vol.sum() == weights.sum()``
for a model that fits in the box).
"""

from __future__ import annotations

import math
import os

import numpy as np

from cryoscape.errors import InputError

#: Atoms beyond this many sigmas from a voxel contribute nothing (their share is < 1e-7).
_CUTOFF_SIGMAS = 5.5
#: Atoms rendered per vectorised block: bounds the (block, w, w, w) temporary.
_BLOCK_VOXELS = 4_000_000


def sigma_from_resolution(resolution_A: float) -> float:
    """Gaussian sigma in Å for a map at ``resolution_A`` (molmap's rule, see module docstring)."""
    return resolution_A / (math.pi * math.sqrt(2.0))


def _axis_weights(u_px: np.ndarray, sigma_px: float, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Voxel-integrated 1D Gaussian weights around positions ``u_px: (M,)`` in voxel index units.

    Returns ``(idx: (M, w) int, wts: (M, w))`` with ``w = 2 * half + 1``; each row sums to 1.
    """
    from scipy.special import erf

    base = np.rint(u_px).astype(np.int64)
    idx = base[:, None] + np.arange(-half, half + 1)[None, :]
    edges = (idx - u_px[:, None])[..., None] + np.array([-0.5, 0.5])
    cdf = erf(edges / (sigma_px * math.sqrt(2.0)))
    wts = 0.5 * (cdf[..., 1] - cdf[..., 0])
    # renormalise: the truncated tails are < 1e-7, this makes the integral exact anyway
    return idx, wts / wts.sum(axis=1, keepdims=True)


def render_atoms(
    xyz_A: np.ndarray, weights: np.ndarray | None, D: int, psize_A: float, resolution_A: float
) -> np.ndarray:
    """Render point atoms as Gaussians on the ``(D, D, D)`` float32 ``[z, y, x]`` grid.

    Args:
        xyz_A: ``(M, 3)`` atom positions ``(x, y, z)`` in Å relative to the box centre.
        weights: ``(M,)`` per-atom weight (e.g. atomic number); None for all ones.
        D: box size in voxels.
        psize_A: voxel size in Å.
        resolution_A: target resolution; ``sigma = resolution_A / (pi * sqrt(2))``.
    Parts of atoms that fall outside the box are dropped (the map then sums to less).
    """
    xyz_A = np.asarray(xyz_A, np.float64).reshape(-1, 3)
    w_atom = np.ones(len(xyz_A)) if weights is None else np.asarray(weights, np.float64).ravel()
    if len(w_atom) != len(xyz_A):
        raise ValueError(f"{len(w_atom)} weights for {len(xyz_A)} atoms")
    if resolution_A <= 0 or psize_A <= 0:
        raise ValueError(f"resolution_A and psize_A must be positive, got {resolution_A}, {psize_A}")
    sigma_px = sigma_from_resolution(resolution_A) / psize_A
    half = max(1, math.ceil(_CUTOFF_SIGMAS * sigma_px))
    w = 2 * half + 1
    u_px = xyz_A / psize_A + D // 2  # (M, 3) voxel index units, columns (x, y, z)
    flat = np.zeros(D * D * D, np.float64)
    block = max(1, _BLOCK_VOXELS // w**3)
    for start in range(0, len(xyz_A), block):
        sl = slice(start, start + block)
        _splat_block(flat, u_px[sl], w_atom[sl], sigma_px, half, D)
    return flat.reshape(D, D, D).astype(np.float32)


def _splat_block(flat: np.ndarray, u_px: np.ndarray, w_atom: np.ndarray, sigma_px: float, half: int, D: int) -> None:
    """Add the separable Gaussians of a block of atoms ``u_px: (m, 3)`` into ``flat: (D**3,)``."""
    (ix, wx), (iy, wy), (iz, wz) = (_axis_weights(u_px[:, a], sigma_px, half) for a in range(3))
    # out-of-box voxels get weight 0 and a harmless in-range index
    for idx, wts in ((ix, wx), (iy, wy), (iz, wz)):
        outside = (idx < 0) | (idx >= D)
        wts[outside] = 0.0
        idx[outside] = 0
    vals = w_atom[:, None, None, None] * wz[:, :, None, None] * wy[:, None, :, None] * wx[:, None, None, :]
    lin = (iz[:, :, None, None] * D + iy[:, None, :, None]) * D + ix[:, None, None, :]
    flat += np.bincount(lin.ravel(), weights=vals.ravel(), minlength=flat.size)


def load_atomic_model(
    path: str | os.PathLike, *, keep_hydrogens: bool = False, keep_waters: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Atoms of the first model of a PDB/mmCIF file, centred on their centre of mass.

    Returns ``(xyz_A: (M, 3) x, y, z in Å, weights: (M,) atomic numbers)``. Waters and hydrogens
    are skipped unless asked for; the centre of mass uses atomic masses (occupancy ignored).
    """
    try:
        import gemmi
    except ImportError:
        raise InputError("reading atomic models needs gemmi: pip install cryoscape[pdb]", path) from None
    if not os.path.isfile(path):
        raise InputError("file not found", path)
    try:
        st = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError) as e:
        raise InputError(f"cannot parse as PDB/mmCIF: {e}", path) from None
    if not keep_waters:
        st.remove_waters()
    if not keep_hydrogens:
        st.remove_hydrogens()
    if len(st) == 0:
        raise InputError("no models (no ATOM/HETATM records) in the file", path)
    xyz, z, mass = [], [], []
    for cra in st[0].all():
        p = cra.atom.pos
        xyz.append((p.x, p.y, p.z))
        z.append(cra.atom.element.atomic_number)
        mass.append(cra.atom.element.weight)
    if not xyz:
        raise InputError("the model has no atoms (after removing waters/hydrogens)", path)
    xyz_A, mass_arr = np.asarray(xyz, np.float64), np.asarray(mass, np.float64)
    # unknown elements have no mass; fall back to the plain centroid if nothing has one
    com = (xyz_A * mass_arr[:, None]).sum(0) / mass_arr.sum() if mass_arr.sum() > 0 else xyz_A.mean(0)
    return xyz_A - com, np.asarray(z, np.float64)
