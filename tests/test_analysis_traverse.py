"""Straight lines and the nearest-neighbour graph traversal on a synthetic 1D manifold in 8D."""

from __future__ import annotations

import numpy as np
import pytest

from cryoscape.analysis import traverse
from cryoscape.errors import InputError


def curve(n: int = 1000, noise: float = 5e-4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A helix-like curve in the first 3 of 8 dimensions, shuffled; returns (z, t)."""
    rng = np.random.default_rng(seed)
    t = rng.permutation(np.linspace(0, 3, n))
    z = np.zeros((n, 8))
    z[:, 0], z[:, 1], z[:, 2] = np.cos(t), np.sin(t), t
    return (z + rng.normal(0, noise, z.shape)).astype(np.float32), t


def test_line_endpoints_and_spacing():
    a, b = np.zeros(4), np.arange(4.0)
    pts = traverse.line(a, b, 5)
    np.testing.assert_allclose(pts[0], a)
    np.testing.assert_allclose(pts[-1], b)
    np.testing.assert_allclose(np.diff(pts, axis=0), np.tile(b / 4, (4, 1)), atol=1e-6)


def test_threshold_gives_mean_degree_five_and_at_most_ten():
    z, _ = curve()
    g = traverse.neighbor_graph(z)
    assert abs(g.degree.mean() - 5) <= 1
    assert g.degree.max() <= 10
    assert g.graph.nnz == g.degree.sum()
    assert np.all(g.graph.data <= g.threshold)
    rng = np.random.default_rng(3)
    g2 = traverse.neighbor_graph(rng.normal(size=(3000, 8)))  # clumpy data: still ~5 on average
    assert abs(g2.degree.mean() - 5) <= 1 and g2.degree.max() <= 10


def test_graph_path_follows_curve_monotonically():
    z, t = curve()
    a, b = int(np.argmin(t)), int(np.argmax(t))
    path = traverse.graph_traversal(z, [a, b])
    assert path.indices[0] == a and path.indices[-1] == b
    assert np.all(np.diff(t[path.indices]) > 0)  # along the curve, never back
    np.testing.assert_array_equal(path.z, z[path.indices])
    assert np.all(path.step_lengths <= path.threshold + 1e-6)  # every step is a graph edge
    assert len(path.indices) > 10  # it walks the data, not a single jump


def test_graph_path_through_middle_anchor():
    z, t = curve()
    order = np.argsort(t)
    anchors = [int(order[0]), int(order[700]), int(order[300])]  # out and back
    path = traverse.graph_traversal(z, anchors)
    assert int(order[700]) in path.indices.tolist()
    turn = path.indices.tolist().index(int(order[700]))
    assert np.all(np.diff(t[path.indices[: turn + 1]]) > 0)
    assert np.all(np.diff(t[path.indices[turn:]]) < 0)


def test_disconnected_anchors_raise_clear_error():
    z, _ = curve(200)
    far = z.copy()
    far[100:, 0] += 100  # two pieces far apart
    with pytest.raises(InputError, match="not connected"):
        traverse.graph_traversal(far, [0, 150])


def test_duplicate_codes_still_link():
    """Identical codes (zero-length edges) must stay edges, not vanish from the sparse graph."""
    z, t = curve(600)
    z = np.concatenate([z, z[:300]])  # every other code twice
    t = np.concatenate([t, t[:300]])
    a, b = int(np.argmin(t)), int(np.argmax(t))
    path = traverse.graph_traversal(z, [a, b])
    assert path.indices[-1] == b and np.all(np.diff(t[path.indices]) >= 0)
    g = traverse.neighbor_graph(z)
    assert g.degree.max() <= 10 and np.all(g.graph.data > 0)
