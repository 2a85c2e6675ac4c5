"""Geometry keeps full precision inside autocast (bf16) regions: mixed precision is for layers."""

from __future__ import annotations

import numpy as np
import torch

from cryoscape.fourier.precision import geom_matmul
from cryoscape.fourier.shift import phase_ramp
from cryoscape.fourier.slicing import rotate_lattice
from cryoscape.geometry import random_rotations
from cryoscape.model.posenc import make_encoding


def _bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_plain_matmul_under_autocast_is_bf16_which_is_why_geometry_avoids_it():
    a, b = torch.randn(8, 3), torch.randn(3, 5)
    with _bf16():
        assert (a @ b).dtype == torch.bfloat16
        assert geom_matmul(a, b).dtype == torch.float32
    assert torch.allclose(geom_matmul(a, b), a @ b)
    assert geom_matmul(a.double(), b).dtype == torch.float64


def test_rotated_lattice_phase_ramp_and_encoding_identical_with_and_without_autocast():
    g = torch.Generator().manual_seed(0)
    D = 128
    freqs = torch.rand(500, 2, generator=g) - 0.5
    rot = torch.as_tensor(random_rotations(4, np.random.default_rng(1)), dtype=torch.float32)
    shifts = torch.randn(4, 2, generator=g) * 6
    coords = rotate_lattice(freqs, rot)
    ramp = phase_ramp(freqs, shifts)
    enc = make_encoding("gaussian", D, 8, 0.5)
    e = enc(coords)
    with _bf16():
        assert torch.equal(rotate_lattice(freqs, rot), coords)
        assert torch.equal(phase_ramp(freqs, shifts), ramp)
        assert torch.equal(enc(coords), e)


def test_bf16_would_have_moved_edge_frequencies_by_a_sizeable_fraction_of_a_voxel():
    """Why this matters: the error bf16 makes at the edge of a 128 px box (regression guard)."""
    D = 128
    freqs = torch.tensor([[0.5, 0.5]])
    rot = torch.as_tensor(random_rotations(64, np.random.default_rng(2)), dtype=torch.float32)
    exact = rotate_lattice(freqs, rot)
    with _bf16():
        rough = freqs @ rot[:, :2, :]
    err_vox = float((rough.float() - exact).abs().max()) * D
    assert err_vox > 0.05  # what the plain product would have cost
    shifts = torch.tensor([[12.3, 9.7]])
    ramp = phase_ramp(freqs, shifts)
    with _bf16():
        angle = -2 * torch.pi * (shifts @ freqs.T)
    ramp_bf16 = torch.polar(torch.ones(1, 1), angle.float())
    assert float((ramp_bf16 - ramp).abs().max()) > 0.01  # what a bf16 phase would have cost
