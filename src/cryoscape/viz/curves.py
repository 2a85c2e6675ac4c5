"""Line plots of a run: training losses per epoch and per-image FSC against ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryoscape.viz._mpl import pyplot, save


def plot_losses(rows: list[dict], path: str | Path) -> Path | None:
    """Loss, reconstruction error and KL per epoch from ``log.csv`` rows; None if no rows."""
    if not rows:
        return None
    plt = pyplot()
    epochs = [r["epoch"] for r in rows]
    keys = [k for k in ("loss", "mse", "kl") if k in rows[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), dpi=110, squeeze=False)
    for ax, k in zip(axes[0], keys):
        ax.plot(epochs, [r[k] for r in rows], "o-", ms=3)
        ax.set(xlabel="epoch", title=k)
    return save(fig, path)


def plot_perimage_fsc(freqs: np.ndarray, curves: np.ndarray, psize_A: float, path: str | Path) -> Path:
    """Every per-image FSC curve (faint) and their mean against frequency in 1/Å."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.4), dpi=110)
    f = freqs / psize_A
    for c in curves:
        ax.plot(f, c, color="grey", lw=0.4, alpha=0.3)
    ax.plot(f, curves.mean(0), color="tab:red", lw=2, label=f"mean of {len(curves)}")
    ax.axhline(0.5, color="k", lw=0.7, ls="--")
    ax.set(xlabel="spatial frequency (1/Å)", ylabel="FSC vs ground truth", ylim=(-0.1, 1.05), xlim=(0, f[-1]))
    ax.legend(frameon=False)
    return save(fig, path)
