"""Pictures of latent space: density in 2D (PCA or UMAP), cluster centres, explained variance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryoscape.viz._mpl import pyplot, save


def plot_density(
    coords: np.ndarray, path: str | Path, axis_name: str = "PC", centers: np.ndarray | None = None, title: str = ""
) -> Path:
    """Hexbin density of ``coords: (N, 2)``; ``centers: (k, 2)`` marked and numbered 0..k-1."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=110)
    if np.ptp(coords[:, 1]) > 0:
        hb = ax.hexbin(coords[:, 0], coords[:, 1], gridsize=50, bins="log", mincnt=1, cmap="viridis")
        fig.colorbar(hb, ax=ax, label="particles (log)")
        ax.set(ylabel=f"{axis_name}2")
    else:  # a 1D latent: a histogram says more than a flat hexbin
        ax.hist(coords[:, 0], bins=100, color="tab:blue")
        ax.set(ylabel="particles")
    if centers is not None:
        y = centers[:, 1] if np.ptp(coords[:, 1]) > 0 else np.zeros(len(centers))
        ax.scatter(centers[:, 0], y, c="red", s=18, edgecolors="white", linewidths=0.5)
        for i, (a, b) in enumerate(zip(centers[:, 0], y)):
            ax.annotate(str(i), (a, b), fontsize=7, color="red", xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel=f"{axis_name}1", title=title)
    return save(fig, path)


def plot_explained_variance(ratio: np.ndarray, path: str | Path) -> Path:
    """Bar chart of the explained variance ratio per PC, with the cumulative curve."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=110)
    k = np.arange(1, len(ratio) + 1)
    ax.bar(k, ratio, color="tab:blue", label="per PC")
    ax.plot(k, np.cumsum(ratio), "o-", color="tab:orange", ms=3, label="cumulative")
    ax.set(xlabel="principal component", ylabel="explained variance ratio", ylim=(0, 1.05), xticks=k)
    ax.legend(frameon=False)
    return save(fig, path)


def plot_pc_histograms(pc_coords: np.ndarray, path: str | Path, n_pc: int = 4) -> Path:
    """Histograms of the first ``n_pc`` PC coordinates (shows multi-modality along each PC)."""
    plt = pyplot()
    n = min(n_pc, pc_coords.shape[1])
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.4), dpi=110, squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.hist(pc_coords[:, i], bins=80, color="tab:blue")
        ax.set(xlabel=f"PC{i + 1}", yticks=[])
    return save(fig, path)
