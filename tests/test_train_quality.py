"""End to end: latents from `cryoscape train` separate two conformations (slow)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import simulate_particles

from cryoscape.cli.main import main as cli


@pytest.mark.slow
def test_two_classes_separate_in_z(tmp_path):
    """D=32, 2000 images, SNR 1, CTF on: k-means (2) on z recovers the classes (ARI > 0.9)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    star, labels = simulate_particles(tmp_path / "sim", n=2000, D=32, snr=1.0, psize_A=3.0, seed=0)
    out = tmp_path / "run"
    rc = cli(
        [
            "train",
            str(star),
            "-o",
            str(out),
            "--zdim",
            "8",
            "-n",
            "10",
            "--enc-width",
            "128",
            "--dec-width",
            "128",
            "--batch-size",
            "32",
            "--lr",
            "1e-3",
            "--threads",
            "2",
        ]
    )
    assert rc == 0
    z = np.load(out / "z.npy")
    pred = KMeans(2, n_init=10, random_state=0).fit_predict(z)
    assert adjusted_rand_score(labels, pred) > 0.9
