"""Latent-space analysis of a trained run: PCA, clustering, 2D embeddings and PC traversals.

Everything works on ``z: (N, zdim)`` float arrays of posterior means (``OUTDIR/z.npy``) and is
seeded, so the same run and seed give the same clusters in ``analyze`` and ``select``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError

#: UMAP settings of the cryoDRGN paper's figures.
UMAP_NEIGHBORS = 15
UMAP_MIN_DIST = 0.1
UMAP_MISSING = (
    "UMAP is optional and umap-learn is not installed (pip install cryoscape[umap]); using the PCA embedding instead"
)


@dataclass(frozen=True)
class PCAResult:
    """``coords: (N, k)`` PC coordinates; ``components: (k, zdim)``; ``mean: (zdim,)``."""

    coords: np.ndarray
    components: np.ndarray
    mean: np.ndarray
    explained_variance_ratio: np.ndarray  # (k,)

    def inverse(self, coords: np.ndarray) -> np.ndarray:
        """Latent codes ``(M, zdim)`` for PC coordinates ``(M, k)``."""
        return (np.asarray(coords, np.float64) @ self.components + self.mean).astype(np.float32)


@dataclass(frozen=True)
class Clustering:
    """``labels: (N,)`` cluster of each particle; ``centers: (k, zdim)``; ``centers_ind: (k,)``
    the particle whose code is nearest each centre ("on-data" centres, maps of real particles)."""

    labels: np.ndarray
    centers: np.ndarray
    centers_ind: np.ndarray
    method: str  # "kmeans" or "gmm"


def check_latents(z: np.ndarray, path=None) -> np.ndarray:
    """``z`` as ``(N, zdim)`` float32; InputError for other shapes or non-finite values."""
    z = np.asarray(z)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
        raise InputError(f"latents must be an (N, zdim) array, got shape {z.shape}", path)
    if not np.isfinite(z).all():
        raise InputError("latents contain NaN or Inf", path)
    return z.astype(np.float32, copy=False)


def pca(z: np.ndarray, n_components: int | None = None) -> PCAResult:
    """PCA of ``z`` (all ``zdim`` components by default)."""
    from sklearn.decomposition import PCA

    z = check_latents(z)
    k = min(z.shape[1], z.shape[0]) if n_components is None else min(n_components, *z.shape)
    model = PCA(n_components=k).fit(z)
    return PCAResult(
        model.transform(z).astype(np.float32),
        model.components_.astype(np.float64),
        model.mean_.astype(np.float64),
        model.explained_variance_ratio_.astype(np.float64),
    )


def nearest_on_data(z: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(M,)`` index of the row of ``z: (N, zdim)`` nearest each of ``points: (M, zdim)``."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1).fit(z)
    return nn.kneighbors(np.atleast_2d(points), return_distance=False)[:, 0].astype(np.int64)


def _check_k(z: np.ndarray, k: int) -> None:
    if k < 1 or k > len(z):
        raise InputError(f"cannot make {k} clusters from {len(z)} particles")


def kmeans(z: np.ndarray, k: int = 20, seed: int = 0) -> Clustering:
    """k-means (sklearn, ``n_init=10``, seeded) with on-data centres."""
    from sklearn.cluster import KMeans

    z = check_latents(z)
    _check_k(z, k)
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    centers = km.cluster_centers_.astype(np.float32)
    return Clustering(km.labels_.astype(np.int64), centers, nearest_on_data(z, centers), "kmeans")


def gmm(z: np.ndarray, k: int = 20, seed: int = 0) -> Clustering:
    """Gaussian mixture (full covariances, seeded); centres are the component means."""
    from sklearn.mixture import GaussianMixture

    z = check_latents(z)
    _check_k(z, k)
    g = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, reg_covar=1e-5).fit(z)
    centers = g.means_.astype(np.float32)
    return Clustering(g.predict(z).astype(np.int64), centers, nearest_on_data(z, centers), "gmm")


def cluster(z: np.ndarray, k: int, seed: int = 0, method: str = "kmeans") -> Clustering:
    """:func:`kmeans` or :func:`gmm` by name."""
    if method not in ("kmeans", "gmm"):
        raise ValueError(f"unknown clustering method {method!r}")
    return kmeans(z, k, seed) if method == "kmeans" else gmm(z, k, seed)


def umap_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def umap_embedding(z: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """``(N, 2)`` UMAP of ``z`` (15 neighbours, min_dist 0.1), or None without umap-learn."""
    if not umap_available():
        return None
    try:
        import umap
    except Exception as e:  # installed but broken (numba/llvmlite mismatch): say so in one line
        from cryoscape.errors import InputError

        raise InputError(
            f"umap-learn is installed but does not import ({type(e).__name__}: {e}); reinstall it or pass --skip-umap"
        ) from None
    # n_jobs=1: a seeded UMAP is single-threaded anyway; saying so avoids umap's warning
    reducer = umap.UMAP(n_neighbors=UMAP_NEIGHBORS, min_dist=UMAP_MIN_DIST, random_state=seed, n_jobs=1)
    return np.asarray(reducer.fit_transform(check_latents(z)), np.float32)


def embed_2d(z: np.ndarray, pc: PCAResult, seed: int = 0, use_umap: bool = True) -> tuple[np.ndarray, str]:
    """A 2D view of the codes: ``(coords (N, 2), "UMAP" or "PCA")``; PCA when UMAP is off/missing.

    A 1D latent space is shown against a zero second axis.
    """
    if use_umap and z.shape[1] > 1 and len(z) > UMAP_NEIGHBORS + 1:
        emb = umap_embedding(z, seed)
        if emb is not None:
            return emb, "UMAP"
    coords = pc.coords[:, :2]
    if coords.shape[1] < 2:
        coords = np.concatenate([coords, np.zeros_like(coords)], axis=1)
    return coords, "PCA"


def pc_traversal(pc: PCAResult, dim: int, n: int = 10, lo_pct: float = 5.0, hi_pct: float = 95.0) -> np.ndarray:
    """``(n, zdim)`` codes equally spaced along PC ``dim`` (1-based) between its ``lo_pct`` and
    ``hi_pct`` percentiles; the other PCs sit at their medians."""
    k = pc.coords.shape[1]
    if not 1 <= dim <= k:
        raise InputError(f"PC {dim} does not exist: the latent space has {k} principal component(s)")
    if n < 1:
        raise InputError(f"need at least one point along the PC, got {n}")
    lo, hi = np.percentile(pc.coords[:, dim - 1], [lo_pct, hi_pct])
    pts = np.tile(np.median(pc.coords, axis=0), (n, 1))
    pts[:, dim - 1] = np.linspace(lo, hi, n)
    return pc.inverse(pts)


@dataclass(frozen=True)
class RunLatents:
    """Latent codes of a run folder: ``z: (N, zdim)``; ``epoch`` None for an unnumbered file."""

    z: np.ndarray
    epoch: int | None
    path: Path
    kind: str  # "cryoscape" (z*.npy, maps possible) or "cryodrgn" (z*.pkl, latents only)


def _epochs(run_dir, pattern: str) -> list[int]:
    import re

    rx = re.compile(pattern)
    return sorted(int(m.group(1)) for p in run_dir.iterdir() if (m := rx.match(p.name)))


def read_run_latents(run_dir, epoch: int | None = None) -> RunLatents:
    """``z.npy`` / ``z.<epoch>.npy`` of a cryoscape run, else cryoDRGN's ``z.pkl`` / ``z.<epoch>.pkl``.

    Without ``epoch`` the final codes are used, labelled with the last numbered epoch present.
    """
    from pathlib import Path

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("run folder not found", run_dir)
    for ext, kind in ((".npy", "cryoscape"), (".pkl", "cryodrgn")):
        numbered = _epochs(run_dir, rf"^z\.(\d+)\{ext}$")
        if epoch is not None:
            path = run_dir / f"z.{epoch}{ext}"
        else:
            path = run_dir / f"z{ext}"
            if not path.is_file() and numbered:
                path = run_dir / f"z.{numbered[-1]}{ext}"
        if path.is_file():
            ep = epoch if epoch is not None else (numbered[-1] if numbered else None)
            return RunLatents(check_latents(_load_z(path), path), ep, path, kind)
    what = f"z.{epoch}.npy" if epoch is not None else "z.npy"
    raise InputError(f"no {what} (nor cryoDRGN z*.pkl): not a heterogeneous training run", run_dir)


def _load_z(path) -> np.ndarray:
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise InputError(f"cannot read latents: {e}", path) from None
    from cryoscape.io.cryodrgn import load_pickle

    return np.asarray(load_pickle(path))


def truth_scores(z: np.ndarray, t: np.ndarray | None = None, state: np.ndarray | None = None) -> dict[str, float]:
    """Latent codes scored against a simulation's ground truth (the cryoDRGN paper's metrics).

    ``spearman_pc1``: |Spearman| between PC1 of ``z`` and the continuous coordinate ``t``;
    ``ari_kmeans``: adjusted Rand index of k-means (k = number of true states) against ``state``.
    Each is computed only when its ground truth varies.
    """
    from scipy.stats import spearmanr
    from sklearn.metrics import adjusted_rand_score

    out = {}
    if t is not None and len(np.unique(t)) > 2:
        out["spearman_pc1"] = float(abs(spearmanr(pca(z, 1).coords[:, 0], t).statistic))
    if state is not None and len(np.unique(state)) > 1:
        labels = kmeans(z, len(np.unique(state)), seed=0).labels
        out["ari_kmeans"] = float(adjusted_rand_score(state, labels))
    return out


def truth_summary(z: np.ndarray, ground_truth: str | Path, kind: str) -> str:
    """One line on how well ``z`` recovers a simulated dataset's truth (its ``ground_truth.npz``):
    for a ``kind`` "continuous" set |Spearman| of PC1 with the hinge coordinate, else the adjusted
    Rand index of k-means against the states (:func:`truth_scores`)."""
    gt = np.load(ground_truth)
    if kind == "continuous":
        score = truth_scores(z, t=gt["t"])["spearman_pc1"]
        return f"|Spearman| between latent PC1 and the true hinge coordinate: {score:.3f}"
    score = truth_scores(z, state=gt["state"])["ari_kmeans"]
    return f"adjusted Rand index of k-means (k=2) on z vs the true states: {score:.3f}"
