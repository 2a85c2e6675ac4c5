"""Fourier-slice projection against an independent real-space projector.

The real-space reference implements the convention of :mod:`cryoscape.geometry` directly:
``image(x, y) = sum_z V(A.T @ (x, y, z))`` with volume index [z, y, x] and coordinates relative
to index ``D//2``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import real_space_project

from cryoscape.fourier.project import Projector
from cryoscape.geometry import euler_to_matrix, random_rotations


def gaussian_blobs(D: int, n: int, seed: int, sigma_px: tuple[float, float] = (2.0, 3.5)) -> np.ndarray:
    """A smooth random ``(D, D, D)`` density: ``n`` Gaussians within ``D/5`` of the centre."""
    rng = np.random.default_rng(seed)
    r = np.arange(D) - D // 2
    z, y, x = np.meshgrid(r, r, r, indexing="ij")
    vol = np.zeros((D, D, D))
    for _ in range(n):
        c = rng.uniform(-D / 5, D / 5, 3)
        s = rng.uniform(*sigma_px)
        vol += rng.uniform(0.5, 1.5) * np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) / (2 * s * s))
    return vol


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    return gaussian_blobs(48, 12, seed=3)


@pytest.mark.parametrize("oversample, min_corr, max_rel_err", [(2, 0.9999, 0.02), (1, 0.998, 0.10)])
def test_slice_matches_real_space_projection(
    blobs: np.ndarray, oversample: int, min_corr: float, max_rel_err: float
) -> None:
    rot = random_rotations(4, np.random.default_rng(7))
    ref = real_space_project(blobs, rot)
    got = Projector(torch.tensor(blobs), oversample=oversample).project(torch.tensor(rot)).double().numpy()
    for g, r in zip(got, ref):
        assert _corr(g, r) > min_corr
        assert np.abs(g - r).max() / np.abs(r).max() < max_rel_err


def test_identity_pose_is_sum_over_z(blobs: np.ndarray) -> None:
    """At oversample 2 the identity slice hits grid nodes only, so without gridding it is exact."""
    got = Projector(torch.tensor(blobs), gridding=False).project(torch.eye(3)[None])[0].double().numpy()
    ref = blobs.sum(axis=0)
    assert np.abs(got - ref).max() / ref.max() < 1e-5
    # gridding pre-divides by the sinc^2 envelope, which on-grid samples do not need: a small bias
    gridded = Projector(torch.tensor(blobs)).project(torch.eye(3)[None])[0].double().numpy()
    assert 1e-3 < np.abs(gridded - ref).max() / ref.max() < 0.05


def _blob_at(D: int, xyz: tuple[float, float, float], sigma_px: float = 1.5) -> torch.Tensor:
    r = torch.arange(D, dtype=torch.float64) - D // 2
    z, y, x = torch.meshgrid(r, r, r, indexing="ij")
    d2 = (x - xyz[0]) ** 2 + (y - xyz[1]) ** 2 + (z - xyz[2]) ** 2
    return torch.exp(-d2 / (2 * sigma_px**2))


def _peak(img: torch.Tensor) -> tuple[int, int]:
    """(row, col) = (y, x) index of the maximum."""
    D = img.shape[-1]
    i = int(img.argmax())
    return i // D, i % D


@pytest.mark.parametrize("euler", [(90.0, 0.0, 0.0), (0.0, 0.0, 90.0)])
def test_rotation_about_z_moves_x_blob_to_minus_y(euler: tuple[float, float, float]) -> None:
    """rot or psi = 90 deg gives A = Rz(-90): volume +x maps to image -y, i.e. row D//2 - d."""
    D, d = 32, 8
    a = euler_to_matrix(np.array(euler))
    assert np.allclose(a @ [1, 0, 0], [0, -1, 0])
    img = Projector(_blob_at(D, (d, 0, 0))).project(torch.tensor(a)[None])[0]
    assert _peak(img) == (D // 2 - d, D // 2)
    ident = Projector(_blob_at(D, (d, 0, 0))).project(torch.eye(3)[None])[0]
    assert _peak(ident) == (D // 2, D // 2 + d)


def test_tilt_90_brings_z_into_x() -> None:
    """tilt = 90 deg: A = Ry(-90) maps volume +z to image -x (column D//2 - d)."""
    D, d = 32, 8
    a = euler_to_matrix(np.array([0.0, 90.0, 0.0]))
    target = a @ [0, 0, d]
    assert np.allclose(target, [-d, 0, 0])
    img = Projector(_blob_at(D, (0, 0, d))).project(torch.tensor(a)[None])[0]
    assert _peak(img) == (D // 2 + round(target[1]), D // 2 + round(target[0]))


@pytest.mark.parametrize("oversample", [1, 2])
def test_centred_delta_stays_at_centre(oversample: int) -> None:
    D = 24
    vol = torch.zeros(D, D, D)
    vol[D // 2, D // 2, D // 2] = 1
    rot = torch.tensor(random_rotations(6, np.random.default_rng(0)))
    img = Projector(vol, oversample=oversample).project(rot)
    for im in img:
        assert _peak(im) == (D // 2, D // 2)
        assert im[D // 2, D // 2] > 0.85 * im.sum()  # the slice is flat up to Nyquist: a sharp peak
        # real volume, centred delta: the image is point-symmetric about D//2
        flipped = torch.roll(im.flip(0, 1), shifts=(1, 1), dims=(0, 1))
        assert torch.allclose(im, flipped, atol=1e-5)


def test_projection_preserves_mass(blobs: np.ndarray) -> None:
    """The DC term of every slice is the volume's sum: images keep the total density.

    Only without gridding correction: the correction raises the volume's sum (by ~4% for this
    volume at oversample 2), and the DC sample is on a grid node where no correction is due.
    """
    rot = torch.tensor(random_rotations(5, np.random.default_rng(1)))
    img = Projector(torch.tensor(blobs), gridding=False).project(rot)
    assert torch.allclose(img.double().sum(dim=(1, 2)), torch.full((5,), blobs.sum(), dtype=torch.float64), rtol=1e-4)
