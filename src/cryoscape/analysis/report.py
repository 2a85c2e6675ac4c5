"""One self-contained HTML report of an analysis: opens offline, nothing fetched from the web.

Pictures are embedded as base64 PNG. Maps are embedded as isosurface meshes
(:mod:`cryoscape.viz.isosurface`) drawn by its small JavaScript viewer on 2D canvases: no
WebGL, no external script, so the page works in any browser, headless or remote.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from cryoscape.io.atomic import atomic_write_bytes
from cryoscape.viz.isosurface import Mesh, viewer_html, viewer_script

#: Size of each map's viewer on the page, CSS pixels.
VIEWER_PX = 320


@dataclass
class Report:
    """What goes into the page, in order: sections of figures, a table, maps, commands."""

    title: str
    notes: list[str] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, PNG)
    table_header: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    maps: list[tuple[str, Mesh]] = field(default_factory=list)  # (label, isosurface in Å)
    commands: list[str] = field(default_factory=list)


def _img(png: Path, caption: str) -> str:
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _maps_html(maps: list[tuple[str, Mesh]]) -> str:
    """One viewer per map, each captioned with its label and contour level."""
    out = []
    for label, mesh in maps:
        cap = f"{label} (level {mesh.level:.3g})"
        out.append(
            f"<figure>{viewer_html(mesh, label, VIEWER_PX, VIEWER_PX)}"
            f"<figcaption>{html.escape(cap)}</figcaption></figure>"
        )
    note = (
        "<p>Isosurfaces (x right, y up, z towards you at first; true hand): drag to rotate, "
        "wheel to zoom. Level: the lower of mean + 2 std and Otsu's threshold of each map.</p>"
    )
    return note + '<div class="maps">' + "".join(out) + "</div>"


_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
    "figure{display:inline-block;margin:.5em;vertical-align:top}"
    "img{max-width:100%}figcaption{font-size:.85em;color:#444}"
    "table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px}"
    "canvas.iso-canvas{border:1px solid #ddd;cursor:grab;display:block}pre{background:#f4f4f4;padding:.5em}"
)


def write_report(rep: Report, path: str | Path) -> Path:
    """Write ``rep`` as one HTML file at ``path``."""
    path = Path(path)
    head = viewer_script() if rep.maps else ""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(rep.title)}</title>"
        f"<style>{_STYLE}</style>{head}</head><body><h1>{html.escape(rep.title)}</h1>"
    ]
    parts += [f"<p>{html.escape(n)}</p>" for n in rep.notes]
    if rep.figures:
        parts.append("<h2>Latent space and training</h2>" + "".join(_img(p, c) for c, p in rep.figures))
    if rep.table_rows:
        parts.append("<h2>Cluster centres</h2>" + _table(rep.table_header, rep.table_rows))
    if rep.maps:
        parts.append("<h2>Maps at the cluster centres</h2>" + _maps_html(rep.maps))
    if rep.commands:
        parts.append("<h2>Reproduce</h2><pre>" + html.escape("\n".join(rep.commands)) + "</pre>")
    parts.append("</body></html>")
    atomic_write_bytes(path, "".join(parts).encode("utf-8"))
    return path
