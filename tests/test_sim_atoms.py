"""Rendering point atoms as Gaussians and reading atomic models."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import TINY_PDB

from cryoscape.errors import InputError
from cryoscape.sim.atoms import load_atomic_model, render_atoms, sigma_from_resolution

D, PSIZE = 32, 2.0


def _com_index(vol: np.ndarray) -> np.ndarray:
    """Centre of mass as (x, y, z) voxel indices."""
    grids = np.meshgrid(*[np.arange(s) for s in vol.shape], indexing="ij")  # z, y, x
    return np.array([(g * vol).sum() / vol.sum() for g in grids[::-1]])


@pytest.mark.parametrize("pos_A", [(0.0, 0.0, 0.0), (3.3, -2.1, 5.7), (-10.9, 7.25, -4.4)])
def test_single_atom_integral_and_centre(pos_A):
    vol = render_atoms(np.array([pos_A]), np.array([6.0]), D, PSIZE, resolution_A=5.0)
    assert vol.shape == (D, D, D) and vol.dtype == np.float32
    assert vol.sum() == pytest.approx(6.0, rel=1e-5)
    expected = np.asarray(pos_A) / PSIZE + D // 2
    # sub-voxel sigma (0.56 px): binning biases the mean by ~exp(-2 pi^2 sigma^2) px at most
    np.testing.assert_allclose(_com_index(vol), expected, atol=2e-3)


def test_axes_not_swapped():
    vol = render_atoms(np.array([[8.0, 0.0, 0.0]]), None, D, PSIZE, 4.0)
    z, y, x = np.unravel_index(vol.argmax(), vol.shape)
    assert (x, y, z) == (D // 2 + 4, D // 2, D // 2)
    vol = render_atoms(np.array([[0.0, -6.0, 10.0]]), None, D, PSIZE, 4.0)
    z, y, x = np.unravel_index(vol.argmax(), vol.shape)
    assert (x, y, z) == (D // 2, D // 2 - 3, D // 2 + 5)


def test_width_follows_resolution_rule():
    # voxel-integrated Gaussian: variance = sigma^2 + 1/12 px^2 (box filter) per axis
    res = 8.0
    vol = render_atoms(np.zeros((1, 3)), None, D, PSIZE, res)
    x = np.arange(D) - D // 2
    var_x = (vol.sum((0, 1)) * x**2).sum() / vol.sum()
    sigma_px = sigma_from_resolution(res) / PSIZE
    assert var_x == pytest.approx(sigma_px**2 + 1 / 12, rel=1e-3)
    assert sigma_from_resolution(res) == pytest.approx(res / (np.pi * np.sqrt(2)))


def test_many_atoms_sum_and_outside_dropped():
    rng = np.random.default_rng(0)
    xyz = rng.normal(0, 6, (5000, 3))
    w = rng.uniform(1, 8, 5000)
    vol = render_atoms(xyz, w, D, PSIZE, 4.0)
    assert vol.sum() == pytest.approx(w.sum(), rel=1e-5)
    outside = render_atoms(np.array([[500.0, 0, 0]]), None, D, PSIZE, 4.0)
    assert outside.sum() == 0.0


def test_load_atomic_model(tmp_path):
    pytest.importorskip("gemmi")
    path = tmp_path / "tiny.pdb"
    path.write_text(TINY_PDB)
    xyz, w = load_atomic_model(path)
    assert w.tolist() == [7, 6, 6, 8]  # hydrogen and water skipped, weights = atomic numbers
    masses = np.array([14.007, 12.011, 12.011, 15.999])
    np.testing.assert_allclose((xyz * masses[:, None]).sum(0) / masses.sum(), 0, atol=1e-3)
    _xyz_h, w_h = load_atomic_model(path, keep_hydrogens=True, keep_waters=True)
    assert sorted(w_h.tolist()) == [1, 6, 6, 7, 8, 8]
    # relative geometry kept: N-CA bond length
    assert np.linalg.norm(xyz[0] - xyz[1]) == pytest.approx(1.4600, abs=1e-3)


def test_load_atomic_model_errors(tmp_path, monkeypatch):
    pytest.importorskip("gemmi")
    with pytest.raises(InputError, match="not found"):
        load_atomic_model(tmp_path / "missing.pdb")
    bad = tmp_path / "bad.cif"
    bad.write_text("this is not a structure\n")
    with pytest.raises(InputError):
        load_atomic_model(bad)
    monkeypatch.setitem(sys.modules, "gemmi", None)
    with pytest.raises(InputError, match=r"pip install cryoscape\[pdb\]"):
        load_atomic_model(bad)
