"""cryoscape states: the number of states from the codes, and per-state maps and subsets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoscape.analysis.states import choose_k, plot_evidence

WEIGHTS = np.array([0.03, 0.08, 0.16, 0.28, 0.45])


def _mixture(seed: int, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Five skewed (non-Gaussian) clusters of unequal size, 3% to 45%, in 4 dimensions."""
    rng = np.random.default_rng(seed)
    lab = rng.choice(5, n, p=WEIGHTS)
    centres = 4.0 * np.vstack([np.zeros(4), np.eye(4)])[rng.permutation(5)]  # 4 apart at least
    spread = rng.uniform(0.5, 1.5, (5, 4))
    z = centres[lab] + rng.normal(0, 0.5, (n, 4)) * spread[lab] + 0.3 * rng.exponential(1, (n, 4))
    return z, lab


@pytest.mark.slow  # 2-15 s a seed on a busy 2-core machine
@pytest.mark.parametrize("seed", range(5))
def test_choose_k_finds_five_unequal_states(seed):
    z, lab = _mixture(seed)
    sc = choose_k(z, kmax=6, seed=seed)
    assert sc.k == 5
    # states come biggest first and match the true groups
    counts = np.bincount(sc.labels)
    assert (np.diff(counts) <= 0).all()
    agree = max(np.mean(sc.labels[lab == t] == np.bincount(sc.labels[lab == t]).argmax()) for t in range(5))
    assert agree > 0.9


def test_fixed_k_and_evidence_plot(tmp_path):
    z, _ = _mixture(0, 600)
    sc = choose_k(z, kmax=3, k=4, n_init=1)
    assert sc.k == 4 and len(sc.ks) == 4 and len(sc.means) == 4
    plot_evidence(tmp_path / "ev.png", sc)
    assert (tmp_path / "ev.png").stat().st_size > 1000


def test_states_end_to_end_writes_maps_and_reimportable_subsets(tmp_path):
    import starfile
    from helpers import train_tiny_run

    from cryoscape.cli.main import main as cli
    from cryoscape.io.load import load_particles
    from cryoscape.io.mrc import read_volume

    run = train_tiny_run(tmp_path, 200)
    out = tmp_path / "states"
    assert cli(["states", str(run), "-o", str(out), "--k", "2", "--kmax", "3", "--threads", "1"]) == 0
    summary = json.loads((out / "states.json").read_text())
    assert summary["k"] == 2 and len(summary["bic"]) == 3
    assert sum(s["n"] for s in summary["states"]) + summary["junk"]["n_junk"] == 200
    for name in ("report.md", "report.html", "states_evidence.png", "junk_scores.png", "junk_scores.txt"):
        assert (out / name).is_file()
    source = load_particles(tmp_path / "sim" / "particles.star", images="skip")
    for s in summary["states"]:
        folder = out / f"state_{s['state']:02d}"
        for name in ("backproject.mrc", "backproject_half1.mrc", "backproject_half2.mrc", "decoder.mrc"):
            vol, psize = read_volume(folder / name)
            assert vol.shape == (16, 16, 16) and psize == pytest.approx(4.0)
        assert np.isfinite(s["res_0143_A"])
        # the star re-reads with a RELION-format reader, the cs round-trips to the same particles
        sub = out / "subsets" / f"state_{s['state']:02d}"
        star = starfile.read(sub.with_suffix(".star"))
        assert len(star["particles"]) == s["n"]
        rows = np.load(sub.with_suffix(".pkl"), allow_pickle=True)
        cs = load_particles(sub.with_suffix(".cs"), images="skip")
        np.testing.assert_allclose(cs.rotations, source.subset(rows).rotations, atol=1e-5)
        np.testing.assert_allclose(cs.ctf.as_array(), source.subset(rows).ctf.as_array(), rtol=1e-5)
