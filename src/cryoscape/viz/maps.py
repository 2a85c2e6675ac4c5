"""Static pictures of maps: three orthogonal projections, for reports without a 3D viewer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryoscape.viz._mpl import pyplot, save


def plot_projections(vol: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Sums of ``vol: (D, D, D)`` [z, y, x] along z, y and x side by side, as a small PNG."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(6, 2.2), dpi=80)
    for ax, axis, name in zip(axes, (0, 1, 2), ("along z (x→, y↑)", "along y (x→, z↑)", "along x (y→, z↑)")):
        ax.imshow(vol.sum(axis), origin="lower", cmap="gray")
        ax.set(xticks=[], yticks=[], title=name)
        ax.title.set_fontsize(7)
    if title:
        fig.suptitle(title, fontsize=8)
    return save(fig, path)
