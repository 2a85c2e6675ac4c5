"""Density of the latent codes as a free-energy-like surface: ``G = -log(density / max density)``.

This is a density of the *latent embedding*, not a physical free energy: the encoder may
stretch or squeeze regions of conformational space, the KL prior pulls codes towards the
origin, and particle picking and classification shape which states are present at all. It is
useful to see where particles pile up (wells, G near 0) and which regions are sparsely
populated (barriers, high G) along a path; read energies in kT only with all of that in mind.

A Gaussian kernel density estimate (scipy, Scott's bandwidth) is fitted to the first ``dims``
principal components of ``z`` (2 by default, so the PC1-PC2 surface and the profiles along
paths report the same function), on at most ``max_points`` seeded codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cryoscape.analysis.latent import PCAResult

#: Codes used to fit the density (a KDE's cost grows with points x evaluations).
MAX_POINTS = 20000


@dataclass(frozen=True)
class LatentDensity:
    """A KDE in the first ``dims`` PCs of ``z``; ``log_max``: log density at its densest code."""

    pca: PCAResult
    kde: Any  # scipy.stats.gaussian_kde
    dims: int
    log_max: float

    def free_energy(self, z: np.ndarray) -> np.ndarray:
        """``(P,)`` ``-log(density / max)`` at codes ``z: (P, zdim)`` (0 at the densest code)."""
        pcs = (np.asarray(z, np.float64) - self.pca.mean) @ self.pca.components[: self.dims].T
        return self.free_energy_pcs(pcs)

    def free_energy_pcs(self, pcs: np.ndarray) -> np.ndarray:
        """``(P,)`` the same at PC coordinates ``pcs: (P, dims)``."""
        return np.maximum(self.log_max - self.kde.logpdf(np.asarray(pcs, np.float64).T), 0.0)


def latent_density(pc: PCAResult, dims: int = 2, max_points: int = MAX_POINTS, seed: int = 0) -> LatentDensity:
    """Fit the KDE to the PC coordinates in ``pc`` (``dims`` capped at the number of PCs)."""
    from scipy.stats import gaussian_kde

    dims = max(1, min(dims, pc.coords.shape[1]))
    x = pc.coords[:, :dims].astype(np.float64)
    if len(x) > max_points:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))]
    kde = gaussian_kde(x.T)
    probe = x if len(x) <= 2000 else x[:: len(x) // 2000]
    return LatentDensity(pc, kde, dims, float(kde.logpdf(probe.T).max()))


@dataclass(frozen=True)
class Surface:
    """``g: (len(y), len(x))`` free energy on the PC1 (``x``) by PC2 (``y``) grid."""

    x: np.ndarray
    y: np.ndarray
    g: np.ndarray


def pc12_surface(dens: LatentDensity, grid: int = 80, pad: float = 0.1) -> Surface:
    """The free energy on a ``grid`` x ``grid`` PC1-PC2 grid spanning the 0.5-99.5th percentiles
    (widened by ``pad`` of the span). A 1D density is shown as constant along PC2."""
    c = dens.pca.coords
    axes = []
    for i in range(2):
        col = c[:, i] if i < c.shape[1] else np.zeros(len(c))
        lo, hi = np.percentile(col, [0.5, 99.5])
        w = max(hi - lo, 1e-6) * pad
        axes.append(np.linspace(lo - w, hi + w, grid))
    xx, yy = np.meshgrid(*axes)
    pts = np.column_stack([xx.ravel(), yy.ravel()])[:, : dens.dims]
    if dens.dims > 2:  # the remaining PCs at their medians: a slice, said in the plot title
        rest = np.tile(np.median(c[:, 2 : dens.dims], 0), (len(pts), 1))
        pts = np.column_stack([pts, rest])
    return Surface(axes[0], axes[1], dens.free_energy_pcs(pts).reshape(grid, grid))


@dataclass(frozen=True)
class Profile:
    """The free energy along a path of codes: ``s: (P,)`` distance travelled in latent units."""

    name: str
    s: np.ndarray
    g: np.ndarray
    z: np.ndarray  # (P, zdim)


def profile(dens: LatentDensity, name: str, z: np.ndarray) -> Profile:
    """The free energy at each code of the path ``z: (P, zdim)``, against distance along it."""
    z = np.asarray(z, np.float64)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(z, axis=0), axis=1))])
    return Profile(name, s, dens.free_energy(z), z.astype(np.float32))
