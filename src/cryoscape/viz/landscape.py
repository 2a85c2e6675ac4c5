"""Pictures of the volume landscape and of the latent free-energy-like surface."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cryoscape.viz._mpl import pyplot, save

#: Free energies above this are drawn in one colour: the sparse outskirts say little.
G_CAP = 8.0


def plot_volume_pcs(
    coords: np.ndarray, labels: np.ndarray, path: str | Path, main_path: np.ndarray | None = None
) -> Path:
    """Maps on volume PC1 vs PC2 (``coords: (M, k)``) coloured by cluster, the main path drawn."""
    plt = pyplot()
    from matplotlib.colors import ListedColormap

    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=110)
    y = coords[:, 1] if coords.shape[1] > 1 else np.zeros(len(coords))
    if main_path is not None and len(main_path) > 1:
        ax.plot(coords[main_path, 0], y[main_path], "-", color="0.6", lw=1, zorder=1, label="main path")
        ax.legend(frameon=False, fontsize=8)
    k = int(labels.max()) + 1
    cmap = ListedColormap(plt.get_cmap("tab10").colors[:k]) if k <= 10 else "viridis"
    sc = ax.scatter(coords[:, 0], y, c=labels, cmap=cmap, s=16, vmin=-0.5, vmax=k - 0.5, zorder=2)
    fig.colorbar(sc, ax=ax, label="cluster", ticks=range(k))
    ax.set(xlabel="volume PC1", ylabel="volume PC2", title=f"{len(coords)} sampled maps")
    return save(fig, path)


def plot_free_energy(
    x: np.ndarray, y: np.ndarray, g: np.ndarray, path: str | Path, paths: Sequence[tuple[str, np.ndarray]] = ()
) -> Path:
    """Filled contours of ``g: (len(y), len(x))`` on latent PC1-PC2, with ``paths`` ((name, (P, 2))) drawn."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.5), dpi=110)
    cf = ax.contourf(x, y, np.minimum(g, G_CAP), levels=np.linspace(0, G_CAP, 17), cmap="magma")
    fig.colorbar(cf, ax=ax, label="-log(density / max)")
    for name, p in paths:
        ax.plot(p[:, 0], p[:, 1] if p.shape[1] > 1 else 0 * p[:, 0], "-", lw=1.5, label=name)
    if paths:
        ax.legend(frameon=False, fontsize=8)
    ax.set(xlabel="PC1", ylabel="PC2", title="latent density (not a physical free energy)")
    return save(fig, path)


def plot_profiles(profiles: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """Free energy against fraction of each path travelled; ``profiles``: (name, s, g)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    for name, s, g in profiles:
        ax.plot(s / max(s[-1], 1e-12), g, "-o", ms=2, label=name)
    ax.set(xlabel="fraction of the path", ylabel="-log(density / max)", title="latent density along paths")
    ax.legend(frameon=False, fontsize=8)
    return save(fig, path)
