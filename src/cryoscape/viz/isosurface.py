"""Isosurfaces of maps for web pages: a triangle mesh in Å and a tiny offline viewer for it.

:func:`surface_mesh` turns a ``(D, D, D)`` [z, y, x] map into a :class:`Mesh` (marching cubes);
the viewer, ``static/isoviewer.js`` beside this module (:func:`viewer_js`), draws such a mesh on a
2D canvas (no WebGL, no libraries, works in headless and remote browsers) and :func:`viewer_html`
embeds one mesh in a page. Used by the analysis report and the dashboard; the JavaScript API is
``cryoscapeIsoViewer(canvas, mesh, opts)``.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

#: Standard deviations above the mean of the default level for sparse maps (see default_level).
LEVEL_K_STD = 2.0


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh in Å, centred on the box centre, axes (x, y, z) = (last, middle, first
    array axis), so a right-handed map stays right-handed on screen.

    ``verts: (V, 3) float32`` Å; ``faces: (F, 3) int32`` counter-clockwise seen from outside
    (``cross(v1 - v0, v2 - v0)`` points outward); ``normals: (V, 3) float32`` unit, outward
    (towards lower density); ``level`` the density of the surface.
    """

    verts: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    level: float

    @property
    def empty(self) -> bool:
        return len(self.faces) == 0

    def to_json(self) -> str:
        """Compact JSON for pages: flat lists ``verts`` (Å, rounded to 1/640 of the mesh's extent
        or finer: a tenth of a voxel across 64 voxels), ``faces`` (vertex indices), ``normals``
        (2 decimals) and ``level``. About 170 kB for a 64^3 map of the demo molecule."""
        step = float(np.max(np.ptp(self.verts, axis=0))) / 640 if len(self.verts) else 0.1
        decimals = max(1, math.ceil(-math.log10(max(step, 1e-6))))
        d = {
            "verts": np.round(self.verts.astype(np.float64), decimals).ravel().tolist(),
            "faces": self.faces.astype(np.int64).ravel().tolist(),
            "normals": np.round(self.normals.astype(np.float64), 2).ravel().tolist(),
            "level": float(f"{self.level:.6g}"),
        }
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Mesh:
        """The mesh :meth:`to_json` wrote (floats rounded as written)."""
        d = json.loads(text)
        return cls(
            np.asarray(d["verts"], np.float32).reshape(-1, 3),
            np.asarray(d["faces"], np.int32).reshape(-1, 3),
            np.asarray(d["normals"], np.float32).reshape(-1, 3),
            float(d["level"]),
        )


def shrink(vol: np.ndarray, max_box: int = 64) -> np.ndarray:
    """``vol`` averaged over ``f x f x f`` blocks, ``f = ceil(D / max_box)``, so its box is at
    most ``max_box`` (returned unchanged if already small); the far edges are zero-padded to a
    multiple of ``f``. Keeps the mean density; block ``i`` covers voxels ``i*f .. i*f + f - 1``."""
    f = _shrink_factor(vol.shape, max_box)
    if f <= 1:
        return vol
    v = np.pad(vol, [(0, (-n) % f) for n in vol.shape], mode="constant")
    a, b, c = (n // f for n in v.shape)
    return v.reshape(a, f, b, f, c, f).mean(axis=(1, 3, 5))


def _shrink_factor(shape: tuple[int, ...], max_box: int) -> int:
    return max(1, math.ceil(max(shape) / max(1, max_box)))


def default_level(vol: np.ndarray) -> float:
    """The lower of ``mean + 2 std`` and Otsu's threshold of ``vol``'s voxel values.

    Why: a map of one molecule is mostly solvent. When the molecule fills a small part of the
    box (our demo molecule: ~1 % of the voxels), the histogram has no second mode for Otsu to
    find and Otsu's level sits inside the protein (too little is shown), while ``mean + 2 std``
    encloses about the molecular volume (the ground-truth demo maps: 1.3x the volume of its
    atoms; the generated maps: the same within 20 %) and stays above the solvent noise of
    generated maps (their std is mostly the molecule's). When the molecule fills a large part
    of the box (a tight box: 10-30 %), ``mean + 2 std`` climbs into or above the protein
    density and the histogram is bimodal, which is what Otsu's level is for. Both rules scale
    with the map, so arbitrary decoder units do not matter.
    """
    from skimage.filters import threshold_otsu

    v = np.asarray(vol, np.float64)
    k_std = float(v.mean() + LEVEL_K_STD * v.std())
    if v.max() <= v.min():
        return k_std
    return min(k_std, float(threshold_otsu(v)))


def empty_mesh(level: float = 0.0) -> Mesh:
    """A mesh with no triangles (the viewer says "no surface")."""
    z = np.zeros((0, 3), np.float32)
    return Mesh(z, np.zeros((0, 3), np.int32), z.copy(), float(level))


def surface_mesh(vol: np.ndarray, level: float | None = None, max_box: int = 64, psize_A: float = 1.0) -> Mesh:
    """Isosurface of ``vol: (D, D, D)`` [z, y, x] at ``level`` (default :func:`default_level`)
    as a :class:`Mesh` in Å around the box centre (voxel ``D//2`` on each axis).

    Boxes larger than ``max_box`` are block-averaged first (:func:`shrink`); ``psize_A`` is the
    voxel size of ``vol``. A level outside the map's range gives an empty mesh; a map with NaN
    or Inf raises ValueError.
    """
    from skimage.measure import marching_cubes

    vol = np.asarray(vol)
    if vol.ndim != 3:
        raise ValueError(f"a map must be 3D, got shape {vol.shape}")
    if not np.isfinite(vol).all():
        raise ValueError("the map contains NaN or Inf: no isosurface")
    f = _shrink_factor(vol.shape, max_box)
    small = shrink(vol, max_box).astype(np.float32)
    level = default_level(small) if level is None else float(level)
    if not small.min() < level < small.max():
        return empty_mesh(level)
    verts, faces, normals, _ = marching_cubes(small, level)
    # block centre (i*f + (f-1)/2) in voxels of vol, then from the box centre, in Å
    centre = np.array([n // 2 for n in vol.shape], np.float64)
    verts_A = (verts * f + (f - 1) / 2 - centre) * psize_A
    # skimage's triangles turn clockwise seen from outside in (z, y, x); the mirror to (x, y, z)
    # makes them counter-clockwise, as Mesh promises
    return Mesh(
        verts_A[:, ::-1].astype(np.float32),
        faces.astype(np.int32),
        np.ascontiguousarray(normals[:, ::-1], np.float32),
        level,
    )


def viewer_html(mesh: Mesh, label: str, width: int = 360, height: int = 360) -> str:
    """A ``<canvas class="iso-canvas">`` showing ``mesh``, with its label as ``data-label``.

    The page must include :func:`viewer_js` once, before this fragment (see :func:`viewer_script`).
    """
    data = mesh.to_json().replace("</", "<\\/")  # cannot close the script element early
    lab = html.escape(label, quote=True)
    return (
        f'<canvas class="iso-canvas" data-label="{lab}" width="{int(width)}" height="{int(height)}" '
        f'title="{lab}: drag to rotate, wheel to zoom"></canvas>'
        f"<script>cryoscapeIsoViewer(document.currentScript.previousElementSibling, {data});</script>"
    )


@cache
def viewer_js() -> str:
    """The viewer's JavaScript, package data ``cryoscape/viz/static/isoviewer.js``: it defines
    ``cryoscapeIsoViewer(canvas, mesh, opts)`` (its API is in the file's first comment)."""
    return (resources.files("cryoscape.viz") / "static" / "isoviewer.js").read_text(encoding="utf-8")


def viewer_script() -> str:
    """:func:`viewer_js` in a ``<script>`` element, to put once in a page's head."""
    return f"<script>{viewer_js()}</script>"
