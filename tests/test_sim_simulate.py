"""`cryoscape simulate`: files, agreement between formats, SNR, exact forward model, labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cryoscape.cli.main import main as cli
from cryoscape.errors import InputError
from cryoscape.io.cryodrgn import read_ctf, read_poses
from cryoscape.io.load import load_particles
from cryoscape.io.mrc import open_stack, read_volume, write_volume
from cryoscape.sim import sampling
from cryoscape.sim.molecule import demo_volume
from cryoscape.sim.simulate import SimConfig, simulate_dataset

D, N = 32, 200
BASE = dict(D=D, n_particles=N, t_bins=5, progress=False, astigmatism_A=800.0, seed=3)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    out = tmp_path_factory.mktemp("noisy")
    simulate_dataset(SimConfig(snr=0.1, **BASE), out)
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    simulate_dataset(SimConfig(snr=float("inf"), **BASE), out)
    return out


def test_files_and_formats_agree(noisy):
    for name in (
        "particles.mrcs",
        "particles.star",
        "particles.cs",
        "poses.pkl",
        "ctf.pkl",
        "ground_truth.npz",
        "simulation.json",
        "gt_volumes/vol_000.mrc",
        "gt_volumes/vol_004.mrc",
    ):
        assert (noisy / name).is_file(), name
    gt = np.load(noisy / "ground_truth.npz")
    rec = json.loads((noisy / "simulation.json").read_text())
    psize = rec["psize_A"]
    assert rec["config"]["seed"] == 3 and rec["box"] == D and rec["n_particles"] == N
    for fname in ("particles.star", "particles.cs"):
        p = load_particles(noisy / fname)
        assert p.n == N and p.box == D and p.apix == pytest.approx(psize)
        np.testing.assert_allclose(p.rotations, gt["rotations"], atol=1e-6)
        np.testing.assert_allclose(p.shifts_A, gt["shifts_A"], atol=1e-4)
        np.testing.assert_allclose(p.ctf.as_array(), gt["ctf"], rtol=1e-6, atol=1e-4)
        np.testing.assert_array_equal(p.images[:5], open_stack(noisy / "particles.mrcs")[:5])
    rot, trans = read_poses(noisy / "poses.pkl")
    np.testing.assert_allclose(rot, gt["rotations"], atol=1e-6)
    np.testing.assert_allclose(trans * D * psize, gt["shifts_A"], atol=1e-4)
    ctf = read_ctf(noisy / "ctf.pkl")
    np.testing.assert_allclose(ctf[:, 2:9], gt["ctf"][:, :7], rtol=1e-6)
    assert (ctf[:, 0] == D).all() and np.allclose(ctf[:, 1], psize)
    assert np.abs(gt["shifts_A"] / psize).max() <= D / 16 + 1e-9  # default --shift-max
    assert (gt["ctf"][:, 0] - gt["ctf"][:, 1]).max() <= 800.0
    vol, vpsize = read_volume(noisy / "gt_volumes" / "vol_004.mrc")
    assert vpsize == pytest.approx(psize)
    np.testing.assert_array_equal(vol, demo_volume(1.0, D=D))


def test_snr_matches_request(noisy, clean):
    signal = np.asarray(open_stack(clean / "particles.mrcs"), np.float64)
    noise = np.asarray(open_stack(noisy / "particles.mrcs"), np.float64) - signal
    assert abs(noise.mean()) < 0.02 * noise.std()
    assert signal.var() / noise.var() == pytest.approx(0.1, rel=0.1)
    rec = json.loads((noisy / "simulation.json").read_text())
    assert rec["noise_sigma"] == pytest.approx(noise.std(), rel=0.02)
    assert rec["measured_snr"] == pytest.approx(signal.var() / rec["noise_sigma"] ** 2, rel=1e-3)


def test_noise_free_images_are_the_forward_model(clean):
    from cryoscape.fourier.project import Projector

    gt = np.load(clean / "ground_truth.npz")
    rec = json.loads((clean / "simulation.json").read_text())
    images = open_stack(clean / "particles.mrcs")
    k = int(gt["volume_index"][0])
    idx = np.flatnonzero(gt["volume_index"] == k)[:8]
    vol, psize = read_volume(clean / "gt_volumes" / f"vol_{k:03d}.mrc")
    proj = Projector(torch.from_numpy(vol))
    expect = proj.project(
        torch.from_numpy(gt["rotations"][idx]).float(),
        torch.from_numpy(gt["shifts_A"][idx] / psize).float(),
        torch.from_numpy(gt["ctf"][idx]).float(),
        psize,
    ).numpy()
    scale = np.abs(expect).max()
    np.testing.assert_allclose(images[idx], expect, atol=1e-5 * scale)
    assert rec["noise_sigma"] == 0 and rec["config"]["snr"] == "inf"
    assert gt["t"][0] == pytest.approx(gt["volume_t"][k])


@pytest.mark.parametrize("dist", ["uniform", "cooperative", "noncontiguous"])
def test_t_distributions(dist):
    t = sampling.sample_t(dist, 20000, np.random.default_rng(0))
    assert t.min() >= 0 and t.max() <= 1
    hist = np.histogram(t, bins=10, range=(0, 1))[0] / len(t)
    if dist == "uniform":
        np.testing.assert_allclose(hist, 0.1, atol=0.015)
    elif dist == "cooperative":
        assert hist[0] + hist[1] > 0.4 and hist[8] + hist[9] > 0.4 and hist[4] + hist[5] < 0.01
    else:
        assert hist[2] + hist[3] + hist[6] + hist[7] < 0.01  # gaps between the clusters
        for lo in (0, 4, 8):
            assert hist[lo : lo + 2].sum() == pytest.approx(1 / 3, abs=0.03)


def test_compositional_from_volumes_and_cli(tmp_path):
    a, b = demo_volume(0.0, True, D=D), demo_volume(0.0, False, D=D)
    write_volume(tmp_path / "a.mrc", a, 6.0)
    write_volume(tmp_path / "b.mrc", b, 6.0)
    out = tmp_path / "out"
    rc = cli(
        [
            "simulate",
            str(tmp_path / "a.mrc"),
            str(tmp_path / "b.mrc"),
            "-n",
            "400",
            "--proportions",
            "1",
            "3",
            "--snr",
            "inf",
            "--no-ctf",
            "--shift-max",
            "0",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    gt = np.load(out / "ground_truth.npz")
    assert "t" not in gt and np.array_equal(gt["state"], gt["volume_index"])
    assert np.mean(gt["state"] == 1) == pytest.approx(0.75, abs=0.07)
    np.testing.assert_array_equal(read_volume(out / "gt_volumes" / "vol_001.mrc")[0], b)
    assert not (out / "ctf.pkl").exists() and load_particles(out / "particles.star").ctf is None
    # without CTF, an image integrates to its volume's mass (up to the projector's gridding
    # correction, which scales the zero frequency by a few %): constant per state, right ratio
    sums = open_stack(out / "particles.mrcs").sum((1, 2), dtype=np.float64)
    s_a, s_b = sums[gt["state"] == 0], sums[gt["state"] == 1]
    assert np.ptp(s_a) < 1e-4 * s_a[0] and np.ptp(s_b) < 1e-4 * s_b[0]
    assert s_b[0] / s_a[0] == pytest.approx(b.sum() / a.sum(), rel=0.01)
    assert s_a[0] == pytest.approx(a.sum(), rel=0.05)


def test_poses_from_file_and_both_kind(noisy, tmp_path):
    out = tmp_path / "both"
    cfg = SimConfig(
        **{**BASE, "n_particles": 150},
        kind="both",
        poses_path=str(noisy / "poses.pkl"),
        proportions=(0.5, 0.5),
        snr=1.0,
    )
    simulate_dataset(cfg, out)
    gt, ref = np.load(out / "ground_truth.npz"), np.load(noisy / "ground_truth.npz")
    np.testing.assert_allclose(gt["rotations"], ref["rotations"][:150], atol=1e-6)
    np.testing.assert_allclose(gt["shifts_A"], ref["shifts_A"][:150], atol=1e-4)
    np.testing.assert_array_equal(gt["volume_index"], gt["state"] * 5 + np.rint(gt["t"] * 4))
    assert len(list((out / "gt_volumes").glob("vol_*.mrc"))) == 10


def test_bad_input_is_one_line(tmp_path, capsys):
    assert cli(["simulate", "-o", str(tmp_path / "x")]) == 2
    assert "give exactly one of" in capsys.readouterr().err
    assert cli(["simulate", "--demo", str(tmp_path / "v.mrc"), "-o", str(tmp_path / "x")]) == 2
    assert cli(["simulate", str(tmp_path / "missing.mrc"), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("cryoscape simulate: error: ") and "missing.mrc" in err[-1]
    with pytest.raises(InputError):
        SimConfig(snr=0.0)
    assert (
        cli(
            [
                "simulate",
                "--demo",
                "--kind",
                "compositional",
                "--proportions",
                "1",
                "2",
                "3",
                "-n",
                "10",
                "-D",
                "16",
                "-o",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )


def test_pdb_source(tmp_path):
    pytest.importorskip("gemmi")
    from helpers import TINY_PDB

    (tmp_path / "m.pdb").write_text(TINY_PDB)
    out = tmp_path / "pdb"
    assert (
        cli(
            [
                "simulate",
                "--pdb",
                str(tmp_path / "m.pdb"),
                "-D",
                "16",
                "--apix",
                "1.0",
                "--resolution",
                "3",
                "-n",
                "20",
                "--snr",
                "inf",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    vol, psize = read_volume(out / "gt_volumes" / "vol_000.mrc")
    assert psize == 1.0 and vol.sum() == pytest.approx(7 + 6 + 6 + 8, rel=1e-4)
    assert (
        cli(
            [
                "simulate",
                "--pdb",
                str(tmp_path / "m.pdb"),
                "-D",
                "16",
                "--apix",
                "0.1",
                "-n",
                "20",
                "-o",
                str(tmp_path / "small"),
            ]
        )
        == 2
    )  # does not fit in the box


def test_bfactor_spread_hidden_and_exact_counts(tmp_path):
    """Per-particle B-factors are drawn in the range, damp the images, are kept in the ground
    truth and (hidden) written as 0 to the metadata; --exact-counts balances t bins and states."""
    out = tmp_path / "spread"
    assert (
        cli(
            [
                "simulate",
                "--demo",
                "-D",
                "16",
                "-n",
                "103",
                "--t-bins",
                "10",
                "--exact-counts",
                "--bfactor",
                "1000",
                "--bfactor-max",
                "4000",
                "--hide-bfactor",
                "--snr",
                "inf",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    gt = np.load(out / "ground_truth.npz")
    b = gt["bfactor_A2"]
    assert b.min() >= 1000 and b.max() <= 4000 and np.ptp(b) > 2000
    np.testing.assert_array_equal(gt["ctf"][:, 7], b)
    assert sorted(np.bincount(gt["volume_index"], minlength=10)) == [10] * 7 + [11] * 3
    assert (load_particles(out / "particles.star").ctf.bfactor_A2 == 0).all()
    rec = json.loads((out / "simulation.json").read_text())
    assert rec["config"]["bfactor_max_A2"] == 4000 and rec["bfactor_range_A2"] == [b.min(), b.max()]
    # the same seed without the spread: same poses and defoci, less damping of the high frequencies
    ref = tmp_path / "flat"
    assert (
        cli(
            [
                "simulate",
                "--demo",
                "-D",
                "16",
                "-n",
                "103",
                "--t-bins",
                "10",
                "--exact-counts",
                "--snr",
                "inf",
                "-o",
                str(ref),
            ]
        )
        == 0
    )
    g0 = np.load(ref / "ground_truth.npz")
    np.testing.assert_array_equal(g0["ctf"][:, :7], gt["ctf"][:, :7])
    hi = np.fft.fft2(open_stack(out / "particles.mrcs")[:])[:, 4:12, 4:12]
    hi0 = np.fft.fft2(open_stack(ref / "particles.mrcs")[:])[:, 4:12, 4:12]
    assert np.abs(hi).sum() < 0.8 * np.abs(hi0).sum()
    states = sampling.exact_states([1, 2, 7], 101, np.random.default_rng(0))
    assert np.bincount(states).tolist() == [10, 20, 71]
    with pytest.raises(InputError):
        SimConfig(exact_counts=True, dist="cooperative")
    with pytest.raises(InputError):
        SimConfig(bfactor_A2=100, bfactor_max_A2=50)
