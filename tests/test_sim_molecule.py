"""The built-in demo molecule: chirality, hinge motion, removable domain, box fit."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cryoscape.sim import molecule
from cryoscape.sim.molecule import (
    CORE,
    EXTRA,
    HINGED,
    demo_atoms,
    demo_volume,
    demo_volumes,
)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _mirror(vol: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Reflect through the box centre (index D//2) along ``axes``."""
    return np.roll(np.flip(vol, axes), 1, axes)


@pytest.fixture(scope="module")
def vol0() -> np.ndarray:
    return demo_volume(0.0)


def test_shape_deterministic_and_fast(vol0):
    assert vol0.shape == (64, 64, 64) and vol0.dtype == np.float32
    start = time.perf_counter()
    again = demo_volume(0.0)
    assert time.perf_counter() - start < 1.0
    np.testing.assert_array_equal(vol0, again)
    assert molecule.default_psize_A(64) == 3.0 and molecule.default_psize_A(128) == 1.5


def test_chiral(vol0):
    # every improper sign flip (3 single-axis mirrors and the inversion) is clearly different
    for axes in [(0,), (1,), (2,), (0, 1, 2)]:
        assert _corr(vol0, _mirror(vol0, axes)) < 0.6
    # sanity: the mirror helper is exact for a mirror-symmetric object
    sym = vol0 + _mirror(vol0, (2,))
    assert _corr(sym, _mirror(sym, (2,))) == pytest.approx(1.0, abs=1e-6)


def test_size_and_fits_in_box():
    for t in (0.0, 1.0):
        xyz, w, _ = demo_atoms(t)
        diam = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1).max()
        assert 80.0 < diam < 125.0
        for D in (64, 128):  # nothing clipped at either default sampling
            assert demo_volume(t, D=D).sum() == pytest.approx(w.sum(), rel=1e-4)


def test_hinge_is_rigid_and_monotonic():
    ts = np.linspace(0, 1, 6)
    atoms = [demo_atoms(t) for t in ts]
    xyz0, _, dom = atoms[0]
    moving = dom == HINGED
    centroids = np.array([a[0][moving].mean(0) for a in atoms])
    travel = np.linalg.norm(centroids - centroids[0], axis=1)
    assert np.all(np.diff(travel) > 0) and travel[-1] > 15.0  # Å
    for xyz, _, _ in atoms[1:]:
        np.testing.assert_allclose(xyz[~moving], xyz0[~moving])  # the rest stays put
        d0 = np.linalg.norm(xyz0[moving][:50, None] - xyz0[moving][None, :50], axis=-1)
        d1 = np.linalg.norm(xyz[moving][:50, None] - xyz[moving][None, :50], axis=-1)
        np.testing.assert_allclose(d1, d0, atol=1e-9)  # rigid
    # the rendered maps follow: correlation with t=0 falls as t grows
    vols = demo_volumes([0.0, 0.5, 1.0])
    assert 1.0 > _corr(vols[0], vols[1]) > _corr(vols[0], vols[2])
    angle = np.deg2rad(molecule.hinge_angle_deg(1.0))
    assert angle == pytest.approx(np.deg2rad(molecule.DEFAULT_MAX_ANGLE_DEG))


def test_removable_domain_changes_mass():
    _xyz, w, dom = demo_atoms(0.3)
    _xyz_less, _w_less, dom_less = demo_atoms(0.3, with_extra_domain=False)
    assert EXTRA not in dom_less and set(np.unique(dom)) == {CORE, HINGED, EXTRA}
    full, less = demo_volume(0.3), demo_volume(0.3, with_extra_domain=False)
    assert full.sum() - less.sum() == pytest.approx(w[dom == EXTRA].sum(), rel=1e-4)
    assert w[dom == EXTRA].sum() > 0.15 * w.sum()
    diff = full - less
    assert diff.min() > -1e-5  # removing a domain only takes density away


def test_same_molecule_at_finer_sampling():
    # D=128 at half the pixel size is the same object: same mass, same centre of mass in Å
    def com_A(vol: np.ndarray, psize_A: float) -> np.ndarray:
        idx = np.argwhere(np.ones(vol.shape, bool))[:, ::-1] - len(vol) // 2  # (x, y, z)
        return (idx * vol.reshape(-1, 1)).sum(0) / vol.sum() * psize_A

    a, b = demo_volume(0.5, D=64), demo_volume(0.5, D=128)
    assert a.sum() == pytest.approx(b.sum(), rel=1e-4)
    np.testing.assert_allclose(com_A(a, 3.0), com_A(b, 1.5), atol=0.05)
    np.testing.assert_allclose(com_A(a, 3.0), 0.0, atol=0.05)  # centred at t = 0.5
