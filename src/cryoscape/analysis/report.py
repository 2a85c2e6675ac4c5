"""One self-contained HTML report of an analysis: opens offline, nothing fetched from the web.

Pictures are embedded as base64 PNG. Maps are shown as interactive isosurfaces when plotly is
installed (its JavaScript embedded once; maps reduced to at most 32^3 voxels to keep the page
small), otherwise as static three-view projections.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Largest box of a map drawn as an isosurface (keeps the page well under 10 MB).
ISO_MAX_BOX = 32


@dataclass
class Report:
    """What goes into the page, in order: sections of figures, a table, maps, commands."""

    title: str
    notes: list[str] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, PNG)
    table_header: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    maps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (label, (D, D, D) map)
    commands: list[str] = field(default_factory=list)


def _img(png: Path, caption: str) -> str:
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def plotly_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("plotly") is not None


def shrink(vol: np.ndarray, max_box: int = ISO_MAX_BOX) -> np.ndarray:
    """``vol`` averaged over blocks so its box is at most ``max_box`` (unchanged if small)."""
    D = vol.shape[0]
    f = int(np.ceil(D / max_box))
    if f <= 1:
        return vol
    pad = (-D) % f
    v = np.pad(vol, [(0, pad)] * 3, mode="constant")
    n = v.shape[0] // f
    return v.reshape(n, f, n, f, n, f).mean(axis=(1, 3, 5))


def _isosurface_html(label: str, vol: np.ndarray, first: bool) -> str:
    import plotly.graph_objects as go

    v = shrink(vol).astype(np.float32)
    z, y, x = np.mgrid[0:v.shape[0], 0:v.shape[1], 0:v.shape[2]]
    level = float(v.mean() + 2 * v.std())
    fig = go.Figure(go.Isosurface(x=x.ravel(), y=y.ravel(), z=z.ravel(), value=v.ravel(),
                                  isomin=level, isomax=float(v.max()), surface_count=1,
                                  caps=dict(x_show=False, y_show=False, z_show=False), showscale=False))
    fig.update_layout(title=label, width=360, height=360, margin=dict(l=0, r=0, t=30, b=0))
    return fig.to_html(full_html=False, include_plotlyjs=True if first else False)


def _maps_html(maps: list[tuple[str, np.ndarray]], tmpdir: Path) -> str:
    if not maps:
        return ""
    if plotly_available():
        parts = [_isosurface_html(lbl, vol, i == 0) for i, (lbl, vol) in enumerate(maps)]
        return '<div class="maps">' + "".join(f"<div>{p}</div>" for p in parts) + "</div>"
    from cryoscape.viz.maps import plot_projections

    out = []
    for i, (lbl, vol) in enumerate(maps):
        png = plot_projections(vol, tmpdir / f"_map_{i:03d}.png", lbl)
        out.append(_img(png, lbl))
        png.unlink()
    note = "<p>Static projections (install plotly for interactive isosurfaces).</p>"
    return note + '<div class="maps">' + "".join(out) + "</div>"


_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
          "figure{display:inline-block;margin:.5em;vertical-align:top}"
          "img{max-width:520px}figcaption{font-size:.85em;color:#444}"
          "table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px}"
          ".maps>div,.maps>figure{display:inline-block}pre{background:#f4f4f4;padding:.5em}")


def write_report(rep: Report, path: str | Path) -> Path:
    """Write ``rep`` as one HTML file at ``path``."""
    path = Path(path)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(rep.title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(rep.title)}</h1>"]
    parts += [f"<p>{html.escape(n)}</p>" for n in rep.notes]
    if rep.figures:
        parts.append("<h2>Latent space and training</h2>" + "".join(_img(p, c) for c, p in rep.figures))
    if rep.table_rows:
        parts.append("<h2>Cluster centres</h2>" + _table(rep.table_header, rep.table_rows))
    if rep.maps:
        parts.append("<h2>Maps at the cluster centres</h2>" + _maps_html(rep.maps, path.parent))
    if rep.commands:
        parts.append("<h2>Reproduce</h2><pre>" + html.escape("\n".join(rep.commands)) + "</pre>")
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")
    return path
