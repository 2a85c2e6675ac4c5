"""The built-in demo molecule: a chiral, protein-like pseudo-atomic model with a hinge and a
removable domain, generated procedurally (no download) and deterministically.

Three helical-bundle domains built from right-handed alpha helices (3.6 residues per turn,
1.5 Å rise, two pseudo-atoms per residue: backbone and side-chain centroid) joined by loops:

* ``CORE`` — a 6-helix left-twisted bundle, 51 Å long, fixed;
* ``HINGED`` — a 5-helix bundle on top of the core that rotates rigidly about a hinge axis by
  ``theta(t) = t * max_angle_deg`` for the conformational coordinate ``t`` in [0, 1]
  (continuous heterogeneity);
* ``EXTRA`` — a 4-helix bundle on the core's side, present or absent (compositional).

The molecule is 110-120 Å across (about two thirds of the default box, 64 px of 3 Å)
and has no mirror symmetry: twisted bundles, helix handedness and a non-planar domain layout all
make it chiral. Coordinates are in Å in a frame fixed for every ``t``, with the origin at the
centre of mass of the complete molecule at ``t = 0.5``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from cryoscape.geometry import rotvec_to_matrix
from cryoscape.sim.atoms import render_atoms

CORE, HINGED, EXTRA = 0, 1, 2
#: Default hinge opening at ``t = 1``, degrees.
DEFAULT_MAX_ANGLE_DEG = 50.0
DEFAULT_D = 64
_SEED = 20240607  # fixed: the demo molecule is the same everywhere

_RISE_A, _TURN_DEG, _R_BACKBONE_A, _R_SIDE_A = 1.5, 100.0, 2.3, 3.6
_W_BACKBONE = 27.0  # N + CA + C + O atomic numbers
# hinge pivot and axis in the pre-centring frame (Å)
_HINGE_POINT = np.array([6.0, 2.0, 29.0])
_HINGE_AXIS = np.array([0.25, -1.0, -0.15]) / np.linalg.norm([0.25, -1.0, -0.15])


def default_psize_A(D: int) -> float:
    """Voxel size that keeps the box 192 Å wide: 3 Å at ``D = 64``, 1.5 Å at ``D = 128``."""
    return 3.0 * DEFAULT_D / D


def default_resolution_A(psize_A: float) -> float:
    """Rendering resolution for the demo: 2.5 voxels (7.5 Å at 3 Å/px)."""
    return 2.5 * psize_A


def _frame(axis: np.ndarray) -> np.ndarray:
    """``(3, 3)`` right-handed orthonormal rows ``(e1, e2, e3)`` with ``e3`` along ``axis``."""
    e3 = axis / np.linalg.norm(axis)
    ref = np.array([1.0, 0.0, 0.0]) if abs(e3[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(ref, e3)
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(e3, e1), e3])


def _helix(p0: np.ndarray, p1: np.ndarray, phase_deg: float, rng: np.random.Generator):
    """Right-handed alpha helix from ``p0`` to ``p1`` (Å): ``(xyz: (2R, 3), weights: (2R,))``."""
    length = float(np.linalg.norm(p1 - p0))
    n_res = max(2, int(length / _RISE_A))
    e1, e2, e3 = _frame(p1 - p0)
    ang = np.deg2rad(phase_deg + _TURN_DEG * np.arange(n_res))
    along = p0 + np.arange(n_res)[:, None] * _RISE_A * e3
    radial = np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2  # counter-clockwise up e3
    xyz = np.concatenate([along + _R_BACKBONE_A * radial, along + _R_SIDE_A * radial])
    w = np.concatenate([np.full(n_res, _W_BACKBONE), rng.uniform(8.0, 48.0, n_res)])
    return xyz, w


def _loop(a: np.ndarray, b: np.ndarray, bulge: np.ndarray, rng: np.random.Generator):
    """Loop residues (3.8 Å apart) on a quadratic arc from ``a`` to ``b`` bowed along ``bulge``."""
    n = max(2, int(np.linalg.norm(b - a) / 3.8) + 2)
    s = np.linspace(0, 1, n)[1:-1, None]
    xyz = (1 - s) * a + s * b + 4 * s * (1 - s) * bulge + rng.normal(0, 0.4, (len(s), 3))
    return xyz, np.full(len(s), _W_BACKBONE + 20.0)


def _bundle(
    n_helix: int, length_A: float, radius_A: float, twist_deg: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up-down bundle of helices about local +z, centred at 0, each rod tilted by the twist."""
    parts = []
    prev_end = None
    for k in range(n_helix):
        phi = 2 * np.pi * k / n_helix
        lo = np.deg2rad(-twist_deg / 2) + phi
        hi = np.deg2rad(twist_deg / 2) + phi
        bottom = np.array([radius_A * np.cos(lo), radius_A * np.sin(lo), -length_A / 2])
        top = np.array([radius_A * np.cos(hi), radius_A * np.sin(hi), length_A / 2])
        p0, p1 = (bottom, top) if k % 2 == 0 else (top, bottom)
        if prev_end is not None:
            out = (prev_end + p0) / 2 * np.array([1.0, 1.0, 0.0])
            parts.append(
                _loop(
                    prev_end, p0, out / max(np.linalg.norm(out), 1e-6) * 4 + np.sign(p0[2]) * np.array([0, 0, 3.0]), rng
                )
            )
        parts.append(_helix(p0, p1, phase_deg=rng.uniform(0, 360), rng=rng))
        prev_end = p1
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _place(xyz: np.ndarray, axis: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Move a bundle built about local +z so its axis is ``axis`` and its centre ``centre``."""
    return xyz @ _frame(axis) + centre


@lru_cache(maxsize=1)
def _base_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xyz_A: (M, 3), weights: (M,), domain: (M,))`` at ``t = 0``, before centring."""
    rng = np.random.default_rng(_SEED)
    dir_b = np.array([0.75, 0.2, 0.65]) / np.linalg.norm([0.75, 0.2, 0.65])
    core_xyz, core_w = _bundle(6, 51.0, 10.0, -35.0, rng)
    b_xyz, b_w = _bundle(5, 42.0, 8.5, -30.0, rng)
    c_xyz, c_w = _bundle(4, 33.0, 7.5, -25.0, rng)
    core = _place(core_xyz, np.array([0.0, 0.0, 1.0]), np.zeros(3))
    hinged = _place(b_xyz, dir_b, _HINGE_POINT + 27.0 * dir_b)
    extra = _place(c_xyz, np.array([0.35, 0.3, 0.9]), np.array([-17.0, 25.0, -12.0]))
    link_xyz, link_w = _loop(np.array([7.0, 0.0, 26.0]), _HINGE_POINT + 6.0 * dir_b, np.array([2.0, -3.0, 0.0]), rng)
    parts = [(core, core_w, CORE), (hinged, b_w, HINGED), (link_xyz, link_w, HINGED), (extra, c_w, EXTRA)]
    xyz = np.concatenate([p[0] for p in parts])
    w = np.concatenate([p[1] for p in parts])
    dom = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    return xyz, w, dom


def hinge_angle_deg(t: float, max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG) -> float:
    """Rotation of the hinged domain at conformational coordinate ``t`` in [0, 1]."""
    return float(t) * max_angle_deg


@lru_cache(maxsize=1)
def _centre_A(max_angle_deg: float) -> np.ndarray:
    xyz, w, _dom = _pose_atoms(0.5, max_angle_deg)
    return (xyz * w[:, None]).sum(0) / w.sum()


def _pose_atoms(t: float, max_angle_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xyz, w, dom = _base_model()
    rot = rotvec_to_matrix(np.deg2rad(hinge_angle_deg(t, max_angle_deg)) * _HINGE_AXIS)
    xyz = xyz.copy()
    moving = dom == HINGED
    xyz[moving] = (xyz[moving] - _HINGE_POINT) @ rot.T + _HINGE_POINT
    return xyz, w, dom


def demo_atoms(
    t: float = 0.0, with_extra_domain: bool = True, max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo-atoms of the demo molecule at coordinate ``t``.

    Returns ``(xyz_A: (M, 3) x, y, z in Å from the box centre, weights: (M,), domain: (M,))``
    with ``domain`` one of :data:`CORE`, :data:`HINGED`, :data:`EXTRA`.
    """
    if not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    xyz, w, dom = _pose_atoms(t, max_angle_deg)
    xyz = xyz - _centre_A(max_angle_deg)
    keep = np.ones(len(w), bool) if with_extra_domain else dom != EXTRA
    return xyz[keep], w[keep].copy(), dom[keep].copy()


def demo_volume(
    t: float = 0.0,
    with_extra_domain: bool = True,
    D: int = DEFAULT_D,
    psize_A: float | None = None,
    resolution_A: float | None = None,
    max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG,
) -> np.ndarray:
    """The demo molecule's ``(D, D, D)`` float32 ``[z, y, x]`` density at coordinate ``t``.

    Defaults: ``psize_A = 3 * 64 / D`` (:func:`default_psize_A`) and ``resolution_A = 2.5 * psize_A``.
    """
    psize_A = default_psize_A(D) if psize_A is None else psize_A
    resolution_A = default_resolution_A(psize_A) if resolution_A is None else resolution_A
    xyz, w, _ = demo_atoms(t, with_extra_domain, max_angle_deg)
    return render_atoms(xyz, w, D, psize_A, resolution_A)


def demo_volumes(
    ts: Iterable[float],
    with_extra_domain: bool = True,
    D: int = DEFAULT_D,
    psize_A: float | None = None,
    resolution_A: float | None = None,
    max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG,
) -> np.ndarray:
    """``(K, D, D, D)`` float32 demo volumes, one per coordinate in ``ts``."""
    return np.stack([demo_volume(t, with_extra_domain, D, psize_A, resolution_A, max_angle_deg) for t in ts])
