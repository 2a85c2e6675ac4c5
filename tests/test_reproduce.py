"""cryoscape reproduce: half-set agreement scores, the particle assignment, and the command end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoscape.analysis.reproduce import (
    agreeing,
    best_fit,
    chance_agreement,
    match_states,
    mode_agreement,
    rv_coefficient,
    variability_modes,
)


def _maps(rng: np.random.Generator, n_modes: int, noise: float, m: int = 12, D: int = 12, modes=None):
    """Maps at m centres: a mean map, moved along ``modes`` (new random ones if None) by random
    amounts, plus this half's own noise."""
    base = np.abs(rng.normal(0, 1, (D, D, D))) + 1.0
    if modes is None:
        modes = rng.normal(0, 1, (n_modes, D, D, D))
    coef = rng.normal(0, 1, (m, len(modes)))
    return base + np.tensordot(coef, modes, 1) + noise * rng.normal(0, 1, (m, D, D, D)), modes


@pytest.mark.parametrize("seed", range(3))
def test_rv_high_when_both_halves_learn_the_same_changes_and_low_for_noise(seed):
    rng = np.random.default_rng(seed)
    a, modes = _maps(rng, 2, 0.3)
    b, _ = _maps(rng, 2, 0.3, modes=modes)  # same two changes, other amounts, own noise
    (ma, wa), (mb, wb) = variability_modes(a), variability_modes(b)
    assert rv_coefficient(ma, wa, mb, wb) > 0.6  # < 1: 12 draws put different weights on the two
    assert (mode_agreement(ma[:2], mb[:2]) > 0.75).all()  # the plane is shared, whatever its axes
    a, _ = _maps(rng, 0, 1.0)
    b, _ = _maps(rng, 0, 1.0)
    (ma, wa), (mb, wb) = variability_modes(a), variability_modes(b)
    assert rv_coefficient(ma, wa, mb, wb) < 0.1


def test_a_change_of_overall_scale_is_not_heterogeneity():
    rng = np.random.default_rng(0)
    base = np.abs(rng.normal(0, 1, (10, 10, 10))) + 1.0
    scales = rng.uniform(0.5, 1.5, 8)[:, None, None, None]
    a = scales * base + 0.01 * rng.normal(0, 1, (8, 10, 10, 10))
    b = scales[::-1] * base + 0.01 * rng.normal(0, 1, (8, 10, 10, 10))
    (ma, wa), (mb, wb) = variability_modes(a), variability_modes(b)
    assert rv_coefficient(ma, wa, mb, wb) < 0.2  # both halves vary in scale only: nothing shared remains
    zero = np.zeros((3, 4, 4, 4))
    (m0, w0) = variability_modes(zero)
    assert rv_coefficient(m0, w0, m0, w0) == 0.0 and not w0.any()


def test_match_states_is_blind_to_label_names():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 500)
    b = np.array([2, 0, 3, 1])[a]
    m = match_states(a, b)
    assert m.ari == pytest.approx(1.0) and m.jaccard == [1.0] * 4
    assert sorted(m.pairs) == [(0, 2), (1, 0), (2, 3), (3, 1)]
    assert agreeing(a, b, m).all()
    c = rng.integers(0, 3, 500)  # unrelated, fewer states in B
    m = match_states(a, c)
    assert len(m.pairs) == 3 and abs(m.ari) < 0.05 and max(m.jaccard) < 0.4
    assert abs(agreeing(a, c, m).mean() - chance_agreement(a, c, m)) < 0.06
    assert not agreeing(a, c, m)[a == next(s for s in range(4) if s not in dict(m.pairs))].any()  # unmatched


def test_best_fit_picks_the_projection_that_explains_the_image_whatever_its_scale():
    rng = np.random.default_rng(0)
    K, B, D = 3, 40, 16
    proj = rng.normal(0, 1, (K, B, D, D))
    truth = rng.integers(0, K, B)
    images = 0.5 * proj[truth, np.arange(B)] + 7.0 + 0.3 * rng.normal(0, 1, (B, D, D))  # scaled, offset
    assert (best_fit(images, proj, np.ones((D, D), bool)) == truth).all()
    assert (best_fit(-images, proj, np.ones((D, D), bool)) >= 0).all()  # no fit with a positive gain: still an index


TINY = ["--enc-width", "16", "--dec-width", "16", "--enc-depth", "1", "--dec-depth", "1", "--threads", "1"]


def _star_with_subsets(tmp_path, n: int = 240):
    """A two-class 16 px set whose star carries RELION's random subsets (1, 2 in blocks of 3)."""
    import starfile
    from helpers import simulate_particles

    star, _ = simulate_particles(tmp_path / "sim", n=n, D=16)
    blocks = starfile.read(star, always_dict=True)
    subset = (np.arange(n) // 3) % 2 + 1
    blocks["particles"]["rlnRandomSubset"] = subset
    starfile.write(blocks, star, overwrite=True)
    return star, subset


def test_reproduce_end_to_end_follows_relions_split_and_writes_every_output(tmp_path, capsys):
    from cryoscape.cli.main import main as cli
    from cryoscape.io.cryodrgn import read_index
    from cryoscape.io.mrc import read_volume

    star, subset = _star_with_subsets(tmp_path)
    out = tmp_path / "repro"
    assert cli(["reproduce", str(star), "-o", str(out), "--zdim", "2", "-n", "1", "--kmax", "3", *TINY]) == 0
    for h in (1, 2):
        np.testing.assert_array_equal(read_index(out / f"half{h}_ind.pkl"), np.flatnonzero(subset == h))
        assert len(np.load(out / f"half{h}" / "z.npy")) == np.sum(subset == h)
    comp = out / "compare"
    s = json.loads((comp / "reproduce.json").read_text())
    assert 0.0 <= s["map_agreement"] <= 1.0 and s["reproduced"] == (s["map_agreement"] >= s["threshold"])
    assert s["n_particles"] == [120, 120] and s["compared"] in ("states", "centres")
    assert 0.0 <= s["particle_agreement"] <= 1.0 and 0.0 <= s["chance_agreement"] <= 1.0
    csv = np.loadtxt(comp / "particles.csv", delimiter=",", skiprows=1, dtype=np.int64)
    np.testing.assert_array_equal(np.sort(csv[:, 0]), np.arange(240))  # every particle once
    np.testing.assert_array_equal(csv[:, 1], subset[csv[:, 0]])  # in the half RELION put it in
    assert abs(csv[:, 4].mean() - s["particle_agreement"]) < 1e-9
    for st in s["states"]:
        vol, psize = read_volume(comp / f"state_{st['state']:02d}_half1.mrc")
        assert vol.shape == (16, 16, 16) and psize == pytest.approx(4.0)
        assert (comp / f"state_{st['state']:02d}_half2.mrc").is_file() and 0 <= st["jaccard"] <= 1
    assert (comp / "agreement.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "map agreement" in printed and ("NOT reproduced" in printed) == (not s["reproduced"])


def test_reproduce_refuses_what_it_cannot_compare(tmp_path, capsys):
    from helpers import train_tiny_run

    from cryoscape.analysis.reproduce_run import CompareConfig, compare_halves
    from cryoscape.cli.main import main as cli
    from cryoscape.errors import InputError

    star, _ = _star_with_subsets(tmp_path, 60)
    assert cli(["reproduce", str(star), "-o", str(tmp_path / "r0"), "--zdim", "0", "-n", "1", *TINY]) != 0
    assert "--zdim must be at least 1" in capsys.readouterr().err
    run = train_tiny_run(tmp_path, 80)  # the same particles twice
    with pytest.raises(InputError, match="share 80 particles"):
        compare_halves(run, run, tmp_path / "cmp", CompareConfig())
