"""The volume-space landscape of a run: many maps sampled on the data, PCA of the maps, clusters.

Latent PCs say where particles sit in the encoder's space; they need not follow the maps. Here
the maps themselves are compared (as in cryoDRGN's ``analyze_landscape``): ``M`` k-means centres
of ``z`` (on-data: each centre is a real particle's code) are decoded at a small box, masked by
the union of their thresholded densities, and their PCA gives *volume PCs*. Clustering the
volume-PC coordinates groups maps that look alike, and a nearest-neighbour graph in that space
answers "do the maps form one connected path?" (:func:`path_check`).

Everything but :func:`sample_maps` works on plain arrays, so it is tested on synthetic maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryoscape.errors import InputError


@dataclass(frozen=True)
class LandscapeConfig:
    """How the landscape is made (see ``cryoscape landscape --help``)."""

    n_maps: int = 200  # k-means centres of z decoded as maps
    box: int = 32  # box of those maps (Fourier crop of the decoder's lattice)
    n_pcs: int = 10  # volume PCs kept, used for clustering and the graph
    n_clusters: int = 5  # agglomerative (Ward) clusters of the maps in volume-PC space
    mask: str = "union"  # "union" of thresholded maps, or "mean": auto_mask of the mean map
    dilate_px: float = 3.0  # mask growth and soft edge, in voxels of the small box
    n_neighbors: int = 5  # links per map in the path-check graph
    n_per_pc: int = 5  # maps from -2 to +2 standard deviations along each volume PC written
    batch: int = 8  # latents per decoder pass
    seed: int = 0

    def check(self) -> None:
        """InputError for settings that cannot work."""
        if self.n_maps < 3:
            raise InputError(f"--n-maps must be at least 3, got {self.n_maps}")
        if self.box < 8 or self.box % 2:
            raise InputError(f"--box must be even and at least 8, got {self.box}")
        for name in ("n_pcs", "n_clusters", "n_neighbors", "n_per_pc"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.mask not in ("union", "mean"):
            raise InputError(f"--mask must be 'union' or 'mean', got {self.mask!r}")


@dataclass(frozen=True)
class VolumePCA:
    """PCA of masked maps. ``mask: (D, D, D)`` weights in [0, 1]; ``coords: (M, k)`` volume-PC
    coordinates of the maps; ``components: (k, V)`` and ``mean: (V,)`` over the ``V`` voxels
    where the mask is positive; ``labels: (M,)`` cluster of each map."""

    mask: np.ndarray
    coords: np.ndarray
    components: np.ndarray
    mean: np.ndarray
    explained_variance: np.ndarray  # (k,) variance along each PC
    explained_variance_ratio: np.ndarray  # (k,)
    labels: np.ndarray

    def volume(self, coords: np.ndarray) -> np.ndarray:
        """The masked map ``(D, D, D)`` at volume-PC coordinates ``coords: (k,)`` (0 outside the mask)."""
        out = np.zeros(self.mask.size, np.float32)
        out[self.mask.ravel() > 0] = self.mean + np.asarray(coords, np.float64) @ self.components
        return out.reshape(self.mask.shape)

    def along_pc(self, pc: int, n: int = 5, sigmas: float = 2.0) -> np.ndarray:
        """``(n, D, D, D)`` maps from -``sigmas`` to +``sigmas`` standard deviations along PC ``pc`` (1-based)."""
        steps = np.linspace(-sigmas, sigmas, n) if n > 1 else np.zeros(1)
        sd = np.sqrt(self.explained_variance[pc - 1])
        coords = np.zeros((n, len(self.explained_variance)))
        coords[:, pc - 1] = steps * sd
        return np.stack([self.volume(c) for c in coords])


def landscape_mask(maps: np.ndarray, psize_A: float, how: str = "union", dilate_px: float = 3.0) -> np.ndarray:
    """``(D, D, D)`` soft mask of ``maps: (M, D, D, D)``: the union of each map thresholded at half
    its 99.99th percentile (so a part present in only some maps stays in), or ``"mean"``: the
    automatic mask of the mean map; grown by ``dilate_px`` voxels with a soft edge as wide."""
    from cryoscape.analysis.fsc import auto_mask, soft_mask

    grow_A = dilate_px * psize_A
    if how == "mean":
        return auto_mask(maps.mean(0), psize_A, grow_A, grow_A)
    levels = 0.5 * np.percentile(maps.reshape(len(maps), -1), 99.99, axis=1)
    core = (maps >= levels[:, None, None, None]).any(0)
    return soft_mask(core, psize_A, grow_A, grow_A)


def volume_pca(maps: np.ndarray, mask: np.ndarray, n_pcs: int = 10, n_clusters: int = 5) -> VolumePCA:
    """PCA of ``maps: (M, D, D, D)`` weighted by ``mask`` and Ward clustering of the first
    ``n_pcs`` coordinates (``n_clusters`` capped at M)."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.decomposition import PCA

    M = len(maps)
    sel = mask.ravel() > 0
    x = maps.reshape(M, -1)[:, sel].astype(np.float64) * mask.ravel()[sel]
    k = max(1, min(n_pcs, M - 1, int(sel.sum())))
    p = PCA(n_components=k, svd_solver="full").fit(x)
    coords = p.transform(x)
    n_cl = min(n_clusters, M)
    labels = np.zeros(M, np.int64) if n_cl < 2 else AgglomerativeClustering(n_cl, linkage="ward").fit_predict(coords)
    return VolumePCA(
        mask.astype(np.float32),
        coords.astype(np.float32),
        p.components_.astype(np.float32),
        p.mean_.astype(np.float32),
        p.explained_variance_.astype(np.float64),
        p.explained_variance_ratio_.astype(np.float64),
        np.asarray(labels, np.int64),
    )


def cluster_means(maps: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(K, D, D, D)`` mean of the (unmasked) maps of each cluster 0..K-1."""
    return np.stack([maps[labels == c].mean(0) for c in range(int(labels.max()) + 1)])


@dataclass(frozen=True)
class PathCheck:
    """Is the set of maps one connected path? ``order: (M,)`` graph distance of each map from one
    end of the main path (NaN outside the largest component); ``path``: maps on the main path
    (between the two ends of the graph's longest shortest path), end to end."""

    n_components: int
    largest_fraction: float  # maps in the largest component / M
    path: np.ndarray
    order: np.ndarray
    spearman: float | None  # |Spearman| of ``order`` against the reference, in the largest component
    n_neighbors: int


def knn_graph(coords: np.ndarray, n_neighbors: int):
    """Symmetric ``(M, M)`` sparse graph linking each point to its ``n_neighbors`` nearest, by distance."""
    from scipy.sparse import csr_matrix
    from sklearn.neighbors import NearestNeighbors

    M = len(coords)
    k = min(n_neighbors, M - 1)
    dist, ind = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(coords)
    rows = np.repeat(np.arange(M), k)
    # stored zeros read as missing links: identical maps get a tiny positive length
    w = np.maximum(dist[:, 1:].ravel(), np.finfo(np.float32).tiny)
    g = csr_matrix((w, (rows, ind[:, 1:].ravel())), shape=(M, M))
    return g.maximum(g.T)


def path_check(coords: np.ndarray, reference: np.ndarray | None = None, n_neighbors: int = 5) -> PathCheck:
    """Connected components of the k-NN graph of ``coords: (M, k)`` and its main path.

    The main path runs between the ends of the largest component found by a double sweep
    (farthest node from any node, then farthest from that); every map of the component is
    ordered by its graph distance from the first end, and that order is compared with
    ``reference: (M,)`` (e.g. latent PC1 or a simulation's true coordinate) by |Spearman|.
    """
    from scipy.sparse.csgraph import connected_components, dijkstra
    from scipy.stats import spearmanr

    coords = np.asarray(coords, np.float64)
    M = len(coords)
    if M < 2:
        raise InputError(f"a path check needs at least 2 maps, got {M}")
    g = knn_graph(coords, n_neighbors)
    n_comp, comp = connected_components(g, directed=False)
    main = np.flatnonzero(comp == np.bincount(comp).argmax())
    d0 = dijkstra(g, directed=False, indices=int(main[0]))
    a = int(main[np.argmax(d0[main])])
    da, pred = dijkstra(g, directed=False, indices=a, return_predecessors=True)
    b = int(main[np.argmax(da[main])])
    path = [b]
    while path[-1] != a:
        path.append(int(pred[path[-1]]))
    order = np.full(M, np.nan)
    order[main] = da[main]
    rho = None
    if reference is not None and len(main) > 2 and np.ptp(np.asarray(reference)[main]) > 0:
        rho = float(abs(spearmanr(order[main], np.asarray(reference)[main]).statistic))
    return PathCheck(int(n_comp), len(main) / M, np.asarray(path[::-1], np.int64), order, rho, int(n_neighbors))


def sample_maps(run, z: np.ndarray, cfg: LandscapeConfig):
    """k-means centres of ``z: (N, zdim)`` and their maps at ``cfg.box``.

    Returns ``(clustering, maps: (M, box, box, box) float32, psize_A)``: the maps are made at the
    on-data centres (``clustering.centers_ind``), in the data's units, at the pixel size of the
    smaller box.
    """
    from cryoscape.analysis.latent import kmeans
    from cryoscape.analysis.volumes import generate_volumes

    D = run.model.cfg.D
    box = min(cfg.box, D)
    n = min(cfg.n_maps, len(z))
    cl = kmeans(z, n, cfg.seed)
    # Filled in place: keeping each new map as its own allocation pins the heap between the
    # decoder's freed activations (tune_cpu_allocator keeps them there), 7.7 GB instead of 0.9
    # GB for 200 maps.
    maps = np.empty((n, box, box, box), np.float32)
    for i, vol in enumerate(generate_volumes(run.model, z[cl.centers_ind], box, cfg.batch, scale=run.norm_std)):
        maps[i] = vol
    return cl, maps, (run.psize_A or 1.0) * D / box
