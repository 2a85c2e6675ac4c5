"""Matplotlib with the Agg backend, imported only when a plot is made (keeps --help fast)."""

from __future__ import annotations

from pathlib import Path

from cryoscape.io.atomic import save_figure


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (works without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG and free it."""
    plt = pyplot()
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)
    return Path(path)
