"""PCA, clustering, PC traversals and reading run latents, on synthetic codes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cryoscape.analysis import latent
from cryoscape.errors import InputError


def clustered(n_per: int = 60, k: int = 4, zdim: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 5, (k, zdim))
    truth = np.repeat(np.arange(k), n_per)
    return (means[truth] + rng.normal(0, 0.1, (len(truth), zdim))).astype(np.float32), truth


def test_pca_recovers_dominant_direction_and_inverts():
    rng = np.random.default_rng(1)
    direction = np.array([3.0, 4.0, 0, 0, 0]) / 5
    z = (rng.normal(0, 3, (500, 1)) * direction + rng.normal(0, 0.05, (500, 5)) + 2).astype(np.float32)
    pc = latent.pca(z)
    assert pc.explained_variance_ratio[0] > 0.99
    assert abs(abs(pc.components[0] @ direction) - 1) < 1e-3
    np.testing.assert_allclose(pc.explained_variance_ratio.sum(), 1, atol=1e-6)
    np.testing.assert_allclose(pc.inverse(pc.coords), z, atol=1e-4)


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_clusters_match_truth_and_centres_are_on_data(method):
    z, truth = clustered()
    cl = latent.cluster(z, 4, seed=0, method=method)
    # each found cluster is exactly one true cluster
    for c in range(4):
        assert len(np.unique(truth[cl.labels == c])) == 1
    # on-data centres: real particle indices, each the nearest particle to its centre
    assert cl.centers_ind.dtype == np.int64
    for c, i in zip(cl.centers, cl.centers_ind):
        d = np.linalg.norm(z - c, axis=1)
        assert d[i] == d.min()
        assert cl.labels[i] == cl.labels[np.argmin(d)]
    assert latent.kmeans(z, 4, seed=0).labels.tolist() == latent.kmeans(z, 4, seed=0).labels.tolist()


def test_too_many_clusters_is_input_error():
    with pytest.raises(InputError):
        latent.kmeans(np.zeros((3, 2), np.float32), 5)


def test_pc_traversal_spans_5th_to_95th_percentile():
    rng = np.random.default_rng(2)
    z = rng.normal(0, [5, 1, 0.2], (2000, 3)).astype(np.float32)
    pc = latent.pca(z)
    path = latent.pc_traversal(pc, 1, 7)
    coords = (path - pc.mean) @ pc.components.T
    lo, hi = np.percentile(pc.coords[:, 0], [5, 95])
    np.testing.assert_allclose(coords[:, 0], np.linspace(lo, hi, 7), atol=1e-4)
    np.testing.assert_allclose(coords[:, 1:], np.tile(np.median(pc.coords[:, 1:], 0), (7, 1)), atol=1e-4)
    with pytest.raises(InputError):
        latent.pc_traversal(pc, 4)


def test_embed_2d_falls_back_to_pca_without_umap():
    z, _ = clustered()
    pc = latent.pca(z)
    emb, name = latent.embed_2d(z, pc, use_umap=False)
    assert name == "PCA" and emb.shape == (len(z), 2)
    np.testing.assert_array_equal(emb, pc.coords[:, :2])


def test_read_run_latents_cryoscape_and_cryodrgn(tmp_path):
    z = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "z.3.npy", z)
    np.save(tmp_path / "z.1.npy", z * 0)
    r = latent.read_run_latents(tmp_path)
    assert r.epoch == 3 and r.kind == "cryoscape" and np.array_equal(r.z, z)
    assert latent.read_run_latents(tmp_path, 1).z.sum() == 0
    with pytest.raises(InputError, match=r"z.7.npy"):
        latent.read_run_latents(tmp_path, 7)
    drgn = tmp_path / "drgn"
    drgn.mkdir()
    for e in (4, 9):
        with open(drgn / f"z.{e}.pkl", "wb") as f:
            pickle.dump(z + e, f)
    r = latent.read_run_latents(drgn)
    assert r.kind == "cryodrgn" and r.epoch == 9 and np.array_equal(r.z, z + 9)


def test_truth_scores_against_known_ground_truth():
    from cryoscape.analysis.latent import truth_scores

    rng = np.random.default_rng(0)
    t = rng.uniform(0, 1, 500)
    z = np.column_stack([3 * t, 0.01 * rng.standard_normal(500)])  # z encodes t along one axis
    assert truth_scores(z, t=t)["spearman_pc1"] == pytest.approx(1.0, abs=1e-3)
    assert truth_scores(rng.standard_normal((500, 2)), t=t)["spearman_pc1"] < 0.2
    state = rng.integers(0, 2, 500)
    zs = np.column_stack([5.0 * state, np.zeros(500)]) + 0.1 * rng.standard_normal((500, 2))
    assert truth_scores(zs, state=state) == {"ari_kmeans": pytest.approx(1.0)}
    assert truth_scores(zs, t=np.zeros(500), state=np.zeros(500)) == {}  # nothing varies: no score
