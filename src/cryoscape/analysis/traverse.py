"""Paths through latent space: straight lines and the cryoDRGN paper's graph traversal.

The graph traversal stays on the data: particles are nodes, each linked to its nearest
neighbours closer than a distance threshold, and the shortest path (Dijkstra) between anchor
particles visits only codes that real particles have. The graph is sparse (at most
``max_neighbors`` links per node), so 10^5-10^6 particles are fine.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError

DEFAULT_AVG_NEIGHBORS = 5
DEFAULT_MAX_NEIGHBORS = 10


def line(z_start: np.ndarray, z_end: np.ndarray, n: int = 10) -> np.ndarray:
    """``(n, zdim)`` float32 codes evenly spaced from ``z_start`` to ``z_end`` (both included)."""
    a, b = np.asarray(z_start, np.float64).ravel(), np.asarray(z_end, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"end points differ in length: {a.shape} vs {b.shape}")
    if n < 2:
        raise InputError(f"a line needs at least 2 points, got {n}")
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1 - t) * a + t * b).astype(np.float32)


@dataclass(frozen=True)
class LatentGraph:
    """``graph``: (N, N) sparse CSR of edge lengths (a link i->j for each neighbour j of i within
    ``threshold``); ``degree: (N,)`` links per node (<= max_neighbors)."""

    graph: object  # scipy.sparse.csr_matrix
    threshold: float
    degree: np.ndarray


def neighbor_graph(
    z: np.ndarray, avg_neighbors: float = DEFAULT_AVG_NEIGHBORS, max_neighbors: int = DEFAULT_MAX_NEIGHBORS
) -> LatentGraph:
    """Link each code to its ``max_neighbors`` nearest codes closer than a threshold chosen so
    the mean number of links per node is ``avg_neighbors``.

    The mean degree at threshold ``t`` is the number of k-NN distances ``<= t`` over N, so the
    binary search over the sorted k-NN distances lands on their ``avg_neighbors * N``-th
    smallest value; it is taken directly with a partial sort.
    """
    from scipy.sparse import csr_matrix
    from sklearn.neighbors import NearestNeighbors

    z = np.asarray(z, np.float32)
    n = len(z)
    k = min(max_neighbors, n - 1)
    if k < 1 or avg_neighbors <= 0:
        raise InputError(f"need at least 2 particles and avg_neighbors > 0 for a graph (have {n})")
    dist, ind = NearestNeighbors(n_neighbors=k + 1, n_jobs=-1).fit(z).kneighbors(z)
    dist, ind = _drop_self(dist, ind, k)
    flat = dist.ravel()
    rank = int(np.clip(round(avg_neighbors * n), 1, flat.size)) - 1
    threshold = float(np.partition(flat, rank)[rank])
    keep = dist <= threshold
    rows = np.repeat(np.arange(n), k)[keep.ravel()]
    # csgraph reads stored zeros as missing edges: duplicate codes get a tiny positive length.
    weights = np.maximum(dist[keep], np.finfo(np.float32).tiny)
    graph = csr_matrix((weights, (rows, ind[keep])), shape=(n, n))
    return LatentGraph(graph, threshold, keep.sum(1))


def _drop_self(dist: np.ndarray, ind: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each node from its own neighbour list (not always column 0 when codes repeat)."""
    n = len(ind)
    is_self = ind == np.arange(n)[:, None]
    no_self = ~is_self.any(1)
    is_self[no_self, -1] = True  # a duplicate pushed self out of the list: drop the farthest
    keep = ~is_self
    return dist[keep].reshape(n, k), ind[keep].reshape(n, k)


@dataclass(frozen=True)
class GraphPath:
    """``indices: (M,)`` particles visited in order; ``z: (M, zdim)`` their codes;
    ``step_lengths: (M-1,)`` distances between consecutive codes."""

    indices: np.ndarray
    z: np.ndarray
    step_lengths: np.ndarray
    threshold: float


def _segment(graph, a: int, b: int, threshold: float) -> list[int]:
    """Shortest path a -> b through the (undirected) graph as node indices, a and b included."""
    from scipy.sparse.csgraph import dijkstra

    dist, pred = dijkstra(graph, directed=False, indices=a, return_predecessors=True)
    if not np.isfinite(dist[b]):
        raise InputError(
            f"anchors {a} and {b} are not connected in the nearest-neighbour graph "
            f"(threshold {threshold:.4g}); choose other anchors or raise --avg-neighbors"
        )
    path = [b]
    while path[-1] != a:
        path.append(int(pred[path[-1]]))
    return path[::-1]


def graph_traversal(
    z: np.ndarray,
    anchors: list[int] | np.ndarray,
    avg_neighbors: float = DEFAULT_AVG_NEIGHBORS,
    max_neighbors: int = DEFAULT_MAX_NEIGHBORS,
) -> GraphPath:
    """The shortest on-data path through ``anchors`` (particle indices, in order)."""
    z = np.asarray(z, np.float32)
    anchors = [int(a) for a in anchors]
    if len(anchors) < 2:
        raise InputError("a graph traversal needs at least two anchors")
    bad = [a for a in anchors if not 0 <= a < len(z)]
    if bad:
        raise InputError(f"anchor {bad[0]} is not a particle index (0..{len(z) - 1})")
    g = neighbor_graph(z, avg_neighbors, max_neighbors)
    path = [anchors[0]]
    for a, b in itertools.pairwise(anchors):
        path += _segment(g.graph, a, b, g.threshold)[1:]
    ind = np.asarray(path, np.int64)
    steps = np.linalg.norm(np.diff(z[ind].astype(np.float64), axis=0), axis=1)
    return GraphPath(ind, z[ind], steps, g.threshold)


@dataclass(frozen=True)
class PathSpec:
    """Which path ``cryoscape traverse`` takes (exactly one of ``pc``, ``line``, ``graph``,
    ``kmeans_anchors``)."""

    pc: int | None = None  # along principal component K (1-based)
    line: tuple[int, int] | None = None  # straight line between particles I and J
    graph: tuple[int, ...] | None = None  # graph path through these anchor particles
    kmeans_anchors: int | None = None  # graph path through the particles nearest K k-means centres
    n: int = 10  # points on a pc or line path
    avg_neighbors: float = DEFAULT_AVG_NEIGHBORS
    max_neighbors: int = DEFAULT_MAX_NEIGHBORS
    seed: int = 0


@dataclass(frozen=True)
class LatentPath:
    """Codes along a path; graph paths also give their particles, anchors and link threshold."""

    z: np.ndarray  # (M, zdim) codes in path order
    indices: np.ndarray | None = None  # (M,) particles on a graph path
    anchors: tuple[int, ...] = ()
    threshold: float | None = None


def path_codes(spec: PathSpec, z: np.ndarray, origin: str | os.PathLike | None = None) -> LatentPath:
    """The path ``spec`` describes through the codes ``z: (N, zdim)`` (of the run ``origin``,
    named in errors). K-means anchors are ordered along PC1 so the path sweeps the main motion
    instead of zig-zagging."""
    from cryoscape.analysis import latent

    if spec.pc is not None:
        return LatentPath(latent.pc_traversal(latent.pca(z), spec.pc, spec.n))
    if spec.line is not None:
        i, j = spec.line
        for a in (i, j):
            if not 0 <= a < len(z):
                raise InputError(f"particle {a} does not exist (0..{len(z) - 1})", origin)
        return LatentPath(line(z[i], z[j], spec.n))
    if spec.kmeans_anchors is not None:
        cl = latent.kmeans(z, spec.kmeans_anchors, spec.seed)
        pc1 = latent.pca(z, 1).coords[cl.centers_ind, 0]
        anchors = [int(a) for a in cl.centers_ind[np.argsort(pc1)]]
    else:
        anchors = [int(a) for a in spec.graph or ()]
    if spec.max_neighbors < 1:
        raise InputError(f"--max-neighbors must be >= 1, got {spec.max_neighbors}")
    path = graph_traversal(z, anchors, spec.avg_neighbors, spec.max_neighbors)
    return LatentPath(path.z, path.indices, tuple(anchors), path.threshold)


def run_path(spec: PathSpec, run_dir: str | os.PathLike, epoch: int | None = None, maps: bool = True) -> LatentPath:
    """The path ``spec`` describes through the codes of a trained run (``z.npy``, or
    ``z.<epoch>.npy``); ``maps``: the run must be able to make maps (a cryoscape run)."""
    from cryoscape.analysis.latent import read_run_latents

    run_dir = Path(run_dir)
    lat = read_run_latents(run_dir, epoch)
    if maps and (lat.kind != "cryoscape" or not (run_dir / "config.yaml").is_file()):
        raise InputError(
            "cannot make maps: no cryoscape config.yaml and weights here (a cryoDRGN "
            "run?); pass --skip-maps to write the path alone",
            run_dir,
        )
    return path_codes(spec, lat.z, run_dir)


def write_path(
    path: LatentPath,
    outdir: str | os.PathLike,
    run_dir: str | os.PathLike,
    epoch: int | None = None,
    device: str | None = None,
    maps: bool = True,
) -> str:
    """``outdir/z.path.txt`` (codes in path order), ``path_ind.txt`` (particles, graph paths) and,
    with ``maps``, the run's maps ``vol_0000.mrc ...`` at the codes; returns what was written, in words."""
    from cryoscape.analysis.pipeline import open_maps, write_maps
    from cryoscape.io.atomic import save_text_array
    from cryoscape.io.runlock import run_lock

    outdir = Path(outdir)
    with run_lock(outdir, "traverse"):
        save_text_array(outdir / "z.path.txt", path.z, fmt="%.6f")
        if path.indices is not None:
            save_text_array(outdir / "path_ind.txt", path.indices, fmt="%d")
        msg = f"{len(path.z)} codes in {outdir / 'z.path.txt'}"
        if maps:
            paths = write_maps(open_maps(Path(run_dir), epoch, device), path.z, outdir)
            msg += f", {len(paths)} maps vol_0000.mrc ... in {outdir}"
    return msg
