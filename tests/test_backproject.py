"""Backprojection recovers the volume that made noise-free projections (poses, shifts and CTF agree)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from helpers import ctf_params, smooth_volume

from cryoscape.analysis.fsc import fsc
from cryoscape.errors import InputError
from cryoscape.fourier.project import Projector
from cryoscape.geometry import random_rotations
from cryoscape.io.particles import ParticleSet
from cryoscape.recon.backproject import (
    BackprojectConfig,
    PosedStack,
    backproject,
    posed_stack,
    reconstruct_halves,
    split_halves,
)
from cryoscape.recon.insert import FourierAccumulator, half_lattice

D, N, PSIZE_A = 32, 3000, 3.5
NYQ_08 = 0.8 * 0.5  # 0.8 x Nyquist in cycles/px


@pytest.fixture(scope="module")
def sim() -> dict:
    rng = np.random.default_rng(0)
    vol = smooth_volume(D, rng)
    rot = random_rotations(N, rng).astype(np.float32)
    shifts = rng.uniform(-3, 3, (N, 2)).astype(np.float32)
    ctf = ctf_params(N, rng)
    proj = Projector(torch.from_numpy(vol))
    t = lambda a: torch.from_numpy(a)
    with_ctf = proj.project(t(rot), t(shifts), t(ctf), PSIZE_A).numpy()
    no_ctf = proj.project(t(rot), t(shifts), None, PSIZE_A).numpy()
    return dict(vol=vol, rot=rot, shifts=shifts, ctf=ctf, with_ctf=with_ctf, no_ctf=no_ctf)


def fsc_to_08_nyquist(truth: np.ndarray, rec: np.ndarray) -> np.ndarray:
    freqs, curve = fsc(truth, rec)
    return curve[(freqs > 0) & (freqs <= NYQ_08 + 1e-9)]


def test_recovers_volume_with_ctf(sim):
    stack = PosedStack(sim["with_ctf"], sim["rot"], sim["shifts"], sim["ctf"], PSIZE_A, D)
    rec = backproject(stack)
    assert fsc_to_08_nyquist(sim["vol"], rec).min() >= 0.9
    # amplitude, not just shape: as an exact inversion (interpolation envelope divided out, no
    # Wiener shrinkage, no window) the least-squares scale is within a few % (reg biases by ~1%)
    rec = backproject(stack, BackprojectConfig(gridding=True, wiener=False, window=False))
    scale = float((rec * sim["vol"]).sum() / (sim["vol"] ** 2).sum())
    assert scale == pytest.approx(1.0, abs=0.05)


def test_recovers_volume_without_ctf(sim):
    rec = backproject(PosedStack(sim["no_ctf"], sim["rot"], sim["shifts"], None, PSIZE_A, D))
    assert fsc_to_08_nyquist(sim["vol"], rec).min() >= 0.9


def test_wrong_shift_sign_is_clearly_worse(sim):
    good = backproject(PosedStack(sim["no_ctf"], sim["rot"], sim["shifts"], None, PSIZE_A, D))
    bad = backproject(PosedStack(sim["no_ctf"], sim["rot"], -sim["shifts"], None, PSIZE_A, D))
    fsc_good, fsc_bad = fsc_to_08_nyquist(sim["vol"], good), fsc_to_08_nyquist(sim["vol"], bad)
    assert fsc_bad.mean() < 0.5 < fsc_good.mean()


def test_wrong_pose_convention_is_clearly_worse(sim):
    rot_t = sim["rot"].transpose(0, 2, 1).copy()
    bad = backproject(PosedStack(sim["no_ctf"], rot_t, sim["shifts"], None, PSIZE_A, D))
    curve = fsc_to_08_nyquist(sim["vol"], bad)
    assert curve.mean() < 0.7 and curve[-4:].max() < 0.5  # vs >= 0.9 in every shell with A


def test_invert_flips_the_map(sim):
    stack = PosedStack(-sim["with_ctf"], sim["rot"], sim["shifts"], sim["ctf"], PSIZE_A, D)
    rec = backproject(stack, BackprojectConfig(invert=True))
    assert fsc_to_08_nyquist(sim["vol"], rec).min() >= 0.9
    plain = backproject(stack)
    assert np.corrcoef(plain.ravel(), sim["vol"].ravel())[0, 1] < -0.9


def test_batch_size_does_not_matter(sim):
    stack = PosedStack(sim["with_ctf"][:300], sim["rot"][:300], sim["shifts"][:300], sim["ctf"][:300], PSIZE_A, D)
    a = backproject(stack, BackprojectConfig(batch_size=7))
    b = backproject(stack, BackprojectConfig(batch_size=1000))
    np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max())


def test_half_maps_and_full_map(sim):
    stack = PosedStack(sim["with_ctf"], sim["rot"], sim["shifts"], sim["ctf"], PSIZE_A, D)
    which = split_halves(N, seed=1)
    rec = reconstruct_halves(stack, BackprojectConfig(), which)
    assert rec.half1.shape == rec.full.shape == (D, D, D)
    for half in (rec.half1, rec.half2):
        assert fsc_to_08_nyquist(sim["vol"], half).min() >= 0.8
    # the full map pools both halves' grids, so it is at least as good as either half
    assert fsc_to_08_nyquist(sim["vol"], rec.full).mean() >= fsc_to_08_nyquist(sim["vol"], rec.half1).mean()
    assert not np.allclose(rec.half1, rec.half2)


def test_split_halves():
    a, b = split_halves(101, seed=3), split_halves(101, seed=3)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0, 1} and abs(int(a.sum()) - 50) <= 1
    assert not np.array_equal(a, split_halves(101, seed=4))
    np.testing.assert_array_equal(split_halves(4, 0, np.array([1, 2, 2, 1])), [0, 1, 1, 0])
    with pytest.raises(InputError, match="RandomSubset"):
        split_halves(3, 0, np.array([1, 2, 3]))


def test_friedel_half_lattice_covers_the_disc():
    _index, freqs, mult = half_lattice(8)
    r = np.linalg.norm(freqs.numpy(), axis=1) * 8
    assert r.max() < 4 and mult[r == 0].item() == 0.5 and (mult[r > 0] == 1).all()
    # every point of the full disc except the origin is either in the half or its negation is
    full = {(x, y) for y in range(-4, 4) for x in range(-4, 4) if x * x + y * y < 16 and (x, y) != (0, 0)}
    half = {tuple(p) for p in np.rint(freqs.numpy() * 8).astype(int).tolist()} - {(0, 0)}
    assert half.isdisjoint({(-x, -y) for x, y in half})
    assert half | {(-x, -y) for x, y in half} == full


def test_central_delta_inserts_a_flat_transform():
    """A point at the box centre has F = 1 everywhere; any pose must rebuild the point."""
    img = np.zeros((200, 16, 16), np.float32)
    img[:, 8, 8] = 1.0
    rot = random_rotations(200, np.random.default_rng(5)).astype(np.float32)
    acc = FourierAccumulator(16)
    index, freqs, mult = half_lattice(16)
    f = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(torch.from_numpy(img), dim=(-2, -1))), dim=(-2, -1))
    acc.insert(f.reshape(200, -1)[:, index], freqs, torch.from_numpy(rot), None, mult)
    vol = acc.reconstruct(reg=0.0).numpy()
    assert np.unravel_index(vol.argmax(), vol.shape) == (8, 8, 8)
    num, weight, _ = acc.grids()
    ok = weight > 1e-3
    np.testing.assert_allclose((num[ok] / weight[ok]).real.numpy(), 1.0, atol=1e-5)
    np.testing.assert_allclose((num[ok] / weight[ok]).imag.numpy(), 0.0, atol=1e-5)


def _pset(n: int, **kw) -> ParticleSet:
    return ParticleSet(box=D, psize_A=np.full(n, PSIZE_A), **kw)


def test_posed_stack_errors(sim):
    with pytest.raises(InputError, match="needs poses"):
        posed_stack(_pset(4, images=sim["no_ctf"][:4]))
    with pytest.raises(InputError, match="no CTF"):
        posed_stack(_pset(4, images=sim["no_ctf"][:4], rotations=sim["rot"][:4]))
    with pytest.raises(InputError, match="no images"):
        posed_stack(_pset(4, rotations=sim["rot"][:4]), use_ctf=False)
    stack = posed_stack(
        _pset(4, images=sim["no_ctf"][:4], rotations=sim["rot"][:4], shifts_A=sim["shifts"][:4] * PSIZE_A),
        use_ctf=False,
    )
    np.testing.assert_allclose(stack.shifts_px, sim["shifts"][:4], rtol=1e-6)
    assert stack.ctf is None and stack.psize_A == PSIZE_A


def test_cryodrgn_hand_poses_reproject_held_out_images(fixtures_dir):
    """cryoDRGN's pickled rotations are A: a map from 80 images predicts the other 20; A.T does not."""
    from cryoscape.io.mrc import open_stack

    imgs = np.asarray(open_stack(fixtures_dir / "hand.mrcs"), np.float32)
    with open(fixtures_dir / "hand_rot.pkl", "rb") as f:
        rot = np.asarray(pickle.load(f), np.float32)

    def held_out_corr(r: np.ndarray) -> float:
        vol = backproject(PosedStack(imgs[:80], r[:80], None, None, 1.0, 64), BackprojectConfig(use_ctf=False))
        pred = Projector(torch.from_numpy(vol)).project(torch.from_numpy(r[80:])).numpy()
        return float(np.mean([np.corrcoef(p.ravel(), i.ravel())[0, 1] for p, i in zip(pred, imgs[80:])]))

    assert held_out_corr(rot) > 0.97
    assert held_out_corr(rot.transpose(0, 2, 1).copy()) < 0.85


def test_noisy_half_map_fsc_predicts_the_true_fsc(sim):
    """With noise, the gold-standard FSC gives the map-vs-truth FSC via C = sqrt(2 F / (1 + F))."""
    rng = np.random.default_rng(11)
    noisy = sim["with_ctf"] + 3 * sim["with_ctf"].std() * rng.standard_normal(sim["with_ctf"].shape).astype(np.float32)
    stack = PosedStack(noisy, sim["rot"], sim["shifts"], sim["ctf"], PSIZE_A, D)
    rec = reconstruct_halves(stack, BackprojectConfig(), split_halves(N, seed=0))
    _, half = fsc(rec.half1, rec.half2)
    _, truth = fsc(rec.full, sim["vol"])
    predicted = np.sqrt(np.clip(2 * half / (1 + half), 0, None))
    informative = (half > 0.3) & (half < 0.95)
    assert informative.sum() >= 3
    np.testing.assert_allclose(predicted[informative], truth[informative], atol=0.06)
