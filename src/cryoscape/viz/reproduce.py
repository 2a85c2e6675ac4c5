"""Pictures of how well two half-set runs agree (``cryoscape reproduce``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryoscape.viz._mpl import pyplot, save


def plot_agreement(path: str | Path, la: np.ndarray, lb: np.ndarray, summary: dict) -> Path:
    """Left: the cosines between the halves' leading variability modes against the threshold;
    right: every particle's state under the half-1 maps against the half-2 maps (a reproduced
    partition is one bright cell per row)."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4), dpi=110)
    cos = summary["mode_cosines"]
    ax1.bar(np.arange(1, len(cos) + 1), cos, color="0.35")
    ax1.axhline(summary["threshold"], color="C3", ls="--", label=f"threshold {summary['threshold']}")
    ax1.set(ylim=(0, 1), xlabel="principal angle", ylabel="cosine", title="half-1 vs half-2 map changes")
    ax1.set_xticks(np.arange(1, len(cos) + 1))
    ax1.legend(frameon=False, fontsize=8)
    table = np.zeros((int(la.max()) + 1, int(lb.max()) + 1))
    np.add.at(table, (la, lb), 1)
    im = ax2.imshow(table / max(1.0, table.sum()), cmap="viridis")
    fig.colorbar(im, ax=ax2, label="share of particles")
    ax2.set(
        xlabel="state by half-2 maps",
        ylabel="state by half-1 maps",
        title=f"ARI {summary['ari']:.2f}, particles agreeing {summary['particle_agreement']:.2f}",
    )
    return save(fig, path)
