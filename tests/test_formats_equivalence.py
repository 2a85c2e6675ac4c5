"""One dataset, three ways in: RELION star, cryoSPARC cs, and mrcs + cryoDRGN pickles.

cryoscape reads poses, shifts and CTF directly from each; all three must give the same
particles, and training with the same seed must give the same latent codes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryoscape.cli.main import main as cryoscape
from cryoscape.io.load import load_particles
from cryoscape.sim.simulate import SimConfig, simulate_dataset


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate_dataset(
        SimConfig(kind="compositional", n_particles=96, D=32, snr=1.0, astigmatism_A=800.0, seed=4, progress=False), out
    )
    return out


def _three_ways(sim: Path) -> dict[str, list[str]]:
    return {
        "star": [str(sim / "particles.star")],
        "cs": [str(sim / "particles.cs")],
        "pkl": [str(sim / "particles.mrcs"), "--poses", str(sim / "poses.pkl"), "--ctf", str(sim / "ctf.pkl")],
    }


def test_same_particles_from_star_cs_and_pickles(sim):
    star = load_particles(sim / "particles.star", images="require")
    cs = load_particles(sim / "particles.cs", images="require")
    pkl = load_particles(sim / "particles.mrcs", poses=sim / "poses.pkl", ctf=sim / "ctf.pkl", images="require")
    gt = np.load(sim / "ground_truth.npz")
    for p in (star, cs, pkl):
        assert p.n == 96 and p.box == 32
        np.testing.assert_allclose(p.rotations, gt["rotations"], atol=1e-6)
        np.testing.assert_allclose(p.shifts_A, gt["shifts_A"], atol=1e-4)
        np.testing.assert_allclose(p.ctf.as_array(), gt["ctf"], rtol=1e-6, atol=1e-3)
        np.testing.assert_allclose(p.psize_A, star.psize_A)
        np.testing.assert_array_equal(p.images[np.arange(p.n)], star.images[np.arange(star.n)])


def test_same_latents_from_star_cs_and_pickles(sim, tmp_path):
    # fp32 (--no-amp): the pickles hold float32 poses/shifts, the star float64; under bf16 autocast
    # rounding amplifies those 1e-7 differences to ~1e-3 in z after an epoch (in fp32: 4e-7)
    small = [
        "--zdim",
        "2",
        "-n",
        "1",
        "--enc-width",
        "32",
        "--enc-depth",
        "1",
        "--dec-width",
        "32",
        "--dec-depth",
        "1",
        "--batch-size",
        "16",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--no-amp",
    ]
    z = {}
    for name, inputs in _three_ways(sim).items():
        assert cryoscape(["train", *inputs, "-o", str(tmp_path / name), *small]) == 0
        z[name] = np.load(tmp_path / name / "z.npy")
    np.testing.assert_allclose(z["cs"], z["star"], atol=1e-4)
    np.testing.assert_allclose(z["pkl"], z["star"], atol=1e-4)
