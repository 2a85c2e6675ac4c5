"""Training data: the half-plane lattice, centring/normalisation, ParticleData and its errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import simulate_particles, two_class_volumes

from cryoscape.data.dataset import (
    ParticleData,
    check_trainable,
    estimate_data_norm,
    particle_data,
)
from cryoscape.data.preprocess import Preprocessor, half_plane
from cryoscape.errors import InputError
from cryoscape.fourier.fft import fft2c
from cryoscape.fourier.project import Projector
from cryoscape.geometry import random_rotations
from cryoscape.io.load import load_particles


@pytest.fixture(scope="module")
def star(tmp_path_factory):
    path, _labels = simulate_particles(tmp_path_factory.mktemp("sim"), n=64, D=16)
    return path


def test_half_plane_holds_each_hermitian_pair_once():
    D = 16
    hp = half_plane(D)
    k = hp.freqs * D  # integer lattice units
    assert torch.all((k[:, 1] > 0) | ((k[:, 1] == 0) & (k[:, 0] >= 0)))
    assert torch.all(k.norm(dim=1) < D / 2)
    pts = {tuple(p) for p in k.round().int().tolist()}
    neg = {(-a, -b) for a, b in pts}
    assert pts & neg == {(0, 0)}  # only DC is its own partner
    full = {(x, y) for x in range(-8, 8) for y in range(-8, 8) if x * x + y * y < 64}
    assert pts | neg == full
    # index addresses the same points on the centred grid
    grid = torch.arange(D * D)
    assert torch.equal(hp.index, grid[hp.index])
    assert torch.allclose(((hp.index % D) - D // 2).float() / D, hp.freqs[:, 0])


def test_preprocessor_centres_shifted_particles_and_normalises():
    D = 16
    vol = torch.from_numpy(two_class_volumes(D)[0])
    rot = torch.from_numpy(random_rotations(4, np.random.default_rng(1))).float()
    shift = torch.tensor([[1.5, -2.0], [0.0, 0.0], [-0.7, 0.3], [2.0, 2.0]])
    proj = Projector(vol)
    pre = Preprocessor(D, norm_std=3.0)
    enc_s, _data_s = pre(proj.project(rot, shift), shift)
    enc_0, data_0 = pre(proj.project(rot), torch.zeros(4, 2))
    assert torch.allclose(enc_s, enc_0, atol=1e-3 * enc_0.abs().max())
    # data is the windowed image's transform on the half plane, divided by norm_std
    x = pre.centred(proj.project(rot), torch.zeros(4, 2))
    assert torch.allclose(data_0, fft2c(x).reshape(4, -1)[:, pre.half.index] / 3.0)
    assert torch.allclose(enc_0, x * D / 3.0)
    # sign flips everything
    enc_m, data_m = Preprocessor(D, 3.0, sign=-1.0)(proj.project(rot), torch.zeros(4, 2))
    assert torch.allclose(enc_m, -enc_0) and torch.allclose(data_m, -data_0)


def test_norm_gives_unit_mean_square(star):
    data = particle_data(load_particles(star, images="require"))
    mean, std = estimate_data_norm(data, 1.0, seed=0)
    assert mean == 0.0 and std > 0
    _, y = Preprocessor(data.D, std)(data.images, data.shifts_px)
    assert float(y.abs().square().mean()) == pytest.approx(1.0, rel=1e-4)
    # encoder input has unit mean-square too (Parseval)
    enc, _ = Preprocessor(data.D, std)(data.images, data.shifts_px)
    assert 0.3 < float(enc.square().mean()) < 1.5


def test_particle_data_matches_star_in_input_order(star):
    pset = load_particles(star, images="require")
    data = particle_data(pset)
    assert len(data) == 64 and data.D == 16 and data.psize_A == pytest.approx(4.0)
    assert data.images.dtype == torch.float32 and data.images.shape == (64, 16, 16)
    assert np.allclose(data.rotations.numpy(), pset.rotations, atol=1e-5)
    assert np.allclose(data.shifts_px.numpy(), pset.shifts_A / 4.0, atol=1e-5)
    assert np.allclose(data.ctf.numpy(), pset.ctf.as_array())
    assert np.array_equal(data.images.numpy(), pset.images[np.arange(64)])


def test_lazy_batches_equal_in_memory(star):
    pset = load_particles(star, images="require")
    mem, lazy = particle_data(pset), particle_data(pset, lazy=True)
    assert lazy.lazy and not mem.lazy
    order = np.random.default_rng(0).permutation(64)
    for workers in (0, 1):
        got = list(lazy.batches(order, 10, num_workers=workers))
        want = list(mem.batches(order, 10))
        assert len(got) == len(want) == 7
        for (gi, gx), (wi, wx) in zip(got, want):
            assert torch.equal(gi, wi) and torch.equal(gx, wx)


def test_missing_poses_or_ctf_are_input_errors(star):
    pset = load_particles(star, images="require")
    with pytest.raises(InputError, match="training needs poses"):
        check_trainable(dataclasses.replace(pset, rotations=None), use_ctf=True)
    no_ctf = dataclasses.replace(pset, ctf=None)
    with pytest.raises(InputError, match="--no-ctf"):
        check_trainable(no_ctf, use_ctf=True)
    assert particle_data(no_ctf, use_ctf=False).ctf is None
    with pytest.raises(InputError, match="images"):
        check_trainable(dataclasses.replace(pset, images=None), use_ctf=True)


def test_missing_shifts_mean_zero_shift(star):
    pset = dataclasses.replace(load_particles(star, images="require"), shifts_A=None)
    data: ParticleData = particle_data(pset)
    assert torch.all(data.shifts_px == 0)
