"""The CryoBench scorer's sampling and weighting (benchmarks/cryobench_score.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import cryobench_score as score


def test_stratified_sample_covers_every_conformation():
    vi = np.repeat(np.arange(5), [100, 10, 3, 50, 1])
    ind = score.stratified_indices(vi, 4)
    assert np.bincount(vi[ind]).tolist() == [4, 4, 3, 4, 1]
    assert np.all(np.diff(ind) > 0)


def test_per_image_weights_abundance_per_conformation_does_not():
    vi = np.repeat([0, 1], [900, 100])  # a common state mapped well, a rare one badly
    ind = np.array([0, 1, 900, 901])
    auc = np.array([0.4, 0.4, 0.1, 0.1])
    s = score.summarise(ind, auc, np.array([8.0, 8.0, np.inf, np.inf]), vi)
    assert s["perimage_auc"] == pytest.approx(0.9 * 0.4 + 0.1 * 0.1)
    assert s["perconf_auc"] == pytest.approx(0.25) and s["worstconf_auc"] == pytest.approx(0.1)
    assert s["mean_res05_A"] == 8.0 and s["conf_auc"] == {0: 0.4, 1: 0.1}


def test_time_to_reach():
    curve = [[10.0, {"ari_kmeans": 0.2}], [20.0, {"ari_kmeans": 0.9}], [30.0, {"ari_kmeans": 0.95}]]
    assert score.time_to_reach(curve, "ari_kmeans", 0.9) == 20.0
    assert score.time_to_reach(curve, "ari_kmeans", 0.99) is None
