"""Junk: simulated junk is recorded in the ground truth, and the junk score finds empty picks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoscape.analysis.junk import junk_scores, robust_z
from cryoscape.sim import SimConfig, simulate_dataset
from cryoscape.sim.junk import JUNK_KINDS, sample_junk


def test_sample_junk_shares_kinds_equally():
    kind = sample_junk(1000, 0.06, np.random.default_rng(0))
    assert (kind > 0).sum() == 60
    assert np.bincount(kind, minlength=4)[1:].tolist() == [20, 20, 20]


def test_simulate_junk_ground_truth_and_images(tmp_path):
    cfg = SimConfig(kind="compositional", n_particles=60, D=16, snr=1.0, junk_fraction=0.3, progress=False)
    simulate_dataset(cfg, tmp_path)
    gt = np.load(tmp_path / "ground_truth.npz")
    kind = gt["junk_kind"]
    assert (gt["junk"] == (kind > 0)).all() and gt["junk"].sum() == 18
    rec = json.loads((tmp_path / "simulation.json").read_text())
    assert rec["junk_counts"] == {name: 6 for name in JUNK_KINDS[1:]}
    # the same seed without junk draws the same poses: junk has its own random stream
    simulate_dataset(SimConfig(kind="compositional", n_particles=60, D=16, snr=1.0, progress=False), tmp_path / "clean")
    clean = np.load(tmp_path / "clean" / "ground_truth.npz")
    np.testing.assert_array_equal(clean["rotations"], gt["rotations"])
    from cryoscape.io.images import ImageSource

    imgs = ImageSource.from_file(tmp_path / "particles.mrcs")[np.arange(60)]
    sigma = rec["noise_sigma"]
    # empty picks hold the noise only; real particles more
    assert np.var(imgs[kind == 1]) == pytest.approx(sigma**2, rel=0.15)
    assert np.var(imgs[kind == 0]) > 1.5 * sigma**2


def test_robust_z_ignores_a_few_outliers():
    x = np.r_[np.random.default_rng(0).normal(5, 2, 1000), [100.0] * 30]
    z = robust_z(x)
    assert abs(np.median(z)) < 0.1 and (z[-30:] > 20).all()


def test_junk_score_flags_the_outlying_amplitudes():
    rng = np.random.default_rng(1)
    n = 2000
    power = rng.uniform(50, 200, n)
    amp = 1 + rng.normal(size=n) / np.sqrt(2 * power)
    amp[:50] = rng.normal(size=50) / np.sqrt(2 * power[:50])  # empty picks: nothing of the model
    js = junk_scores(amp, rng.normal(1, 0.03, n), power)
    assert js.junk[:50].mean() > 0.95 and js.junk[50:].mean() < 0.005


@pytest.mark.slow
def test_junk_score_separates_empty_picks_on_a_trained_run(tmp_path):
    import starfile

    from cryoscape.analysis.junk import score_run, write_junk
    from cryoscape.analysis.run_data import load_run_data
    from cryoscape.cli.main import main as cli

    cfg = SimConfig(kind="compositional", n_particles=400, D=32, snr=1.0, junk_fraction=0.1, progress=False, seed=1)
    star = simulate_dataset(cfg, tmp_path / "sim")
    run = tmp_path / "run"
    net = ["--enc-width", "32", "--dec-width", "32", "--enc-depth", "1", "--dec-depth", "2", "--threads", "1"]
    assert cli(["train", str(star), "-o", str(run), "--zdim", "2", "-n", "12", *net]) == 0
    js = score_run(load_run_data(run))
    kind = np.load(tmp_path / "sim" / "ground_truth.npz")["junk_kind"]
    noise, real = js.junk[kind == 1], js.junk[kind == 0]
    assert noise.mean() >= 0.8  # recall on empty picks (0.93 measured)
    assert real.mean() <= 0.05  # false alarms among real particles (0.02 measured)
    assert all(p.is_file() for p in write_junk(tmp_path / "out", js))
    # select --junk writes the same split as keep/junk subsets
    sel = tmp_path / "sel"
    assert cli(["select", str(run), "--junk", "-o", str(sel)]) == 0
    kept = np.load(sel / "keep.pkl", allow_pickle=True)
    np.testing.assert_array_equal(kept, np.flatnonzero(~js.junk))
    assert len(starfile.read(sel / "junk.star")["particles"]) == js.junk.sum()
    assert (sel / "junk_scores.png").is_file()
