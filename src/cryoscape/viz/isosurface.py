"""Isosurfaces of maps for web pages: a triangle mesh in Å and a tiny offline viewer for it.

:func:`surface_mesh` turns a ``(D, D, D)`` [z, y, x] map into a :class:`Mesh` (marching cubes);
:data:`VIEWER_JS` draws such a mesh on a 2D canvas (no WebGL, no libraries, works in headless
and remote browsers) and :func:`viewer_html` embeds one mesh in a page. Used by the analysis
report and the dashboard; the JavaScript API is ``cryoscapeIsoViewer(canvas, mesh, opts)``.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass

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
        d = {"verts": np.round(self.verts.astype(np.float64), decimals).ravel().tolist(),
             "faces": self.faces.astype(np.int64).ravel().tolist(),
             "normals": np.round(self.normals.astype(np.float64), 2).ravel().tolist(),
             "level": float(f"{self.level:.6g}")}
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Mesh:
        """The mesh :meth:`to_json` wrote (floats rounded as written)."""
        d = json.loads(text)
        return cls(np.asarray(d["verts"], np.float32).reshape(-1, 3),
                   np.asarray(d["faces"], np.int32).reshape(-1, 3),
                   np.asarray(d["normals"], np.float32).reshape(-1, 3), float(d["level"]))


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


def surface_mesh(vol: np.ndarray, level: float | None = None, max_box: int = 64,
                 psize_A: float = 1.0) -> Mesh:
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
    return Mesh(verts_A[:, ::-1].astype(np.float32), faces.astype(np.int32),
                np.ascontiguousarray(normals[:, ::-1], np.float32), level)


def viewer_html(mesh: Mesh, label: str, width: int = 360, height: int = 360) -> str:
    """A ``<canvas class="iso-canvas">`` showing ``mesh``, with its label as ``data-label``.

    The page must include :data:`VIEWER_JS` once, before this fragment (see :func:`viewer_script`).
    """
    data = mesh.to_json().replace("</", "<\\/")  # cannot close the script element early
    lab = html.escape(label, quote=True)
    return (f'<canvas class="iso-canvas" data-label="{lab}" width="{int(width)}" height="{int(height)}" '
            f'title="{lab}: drag to rotate, wheel to zoom"></canvas>'
            f"<script>cryoscapeIsoViewer(document.currentScript.previousElementSibling, {data});</script>")


def viewer_script() -> str:
    """:data:`VIEWER_JS` in a ``<script>`` element, to put once in a page's head."""
    return f"<script>{VIEWER_JS}</script>"


VIEWER_JS = r"""
/* cryoscape isosurface viewer: a triangle mesh on a 2D canvas, no WebGL, no libraries.
   cryoscapeIsoViewer(canvas, mesh, opts) -> {setMesh(mesh), redraw(), view() -> {rotation, zoom}}
   mesh: {verts: [x,y,z,...] (A), faces: [i,j,k,...], normals: [nx,ny,nz,...] (optional)},
   or that object as JSON text (Mesh.to_json())
   opts: {color: "#5b8fc9" or [r,g,b], background: "#ffffff", radius: A (default: from the
   first mesh, then kept so maps can be compared), rotation: 9 numbers (row-major)}.
   Screen: x right, y up, z towards the viewer: a right-handed map is shown right-handed. */
function cryoscapeIsoViewer(canvas, mesh, opts) {
  opts = opts || {};
  var ctx = canvas.getContext("2d");
  var bg = opts.background || "#ffffff";
  var rgb = parseColor(opts.color || "#5b8fc9");
  var light = unit([-0.35, 0.45, 1.0]);  // from the upper left, in front
  var R = (opts.rotation || [1, 0, 0, 0, 1, 0, 0, 0, 1]).slice();
  var zoom = 1, radius = opts.radius || 0, m = null, pending = false;
  var css = canvas.cryoscapeCss || [canvas.width, canvas.height];  // a second viewer on it: same size
  var w = css[0], h = css[1], dpr = window.devicePixelRatio || 1;  // CSS pixels
  canvas.cryoscapeCss = css; canvas.style.width = w + "px"; canvas.style.height = h + "px";
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);  // sharp on HiDPI

  function parseColor(c) {
    if (Array.isArray(c)) return c;
    var n = parseInt(c.replace("#", ""), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  function unit(v) {
    var n = Math.hypot(v[0], v[1], v[2]) || 1;
    return [v[0] / n, v[1] / n, v[2] / n];
  }
  function prepare(mesh) {  // typed arrays, face normals (outward) and the mesh's extent
    var v = Float32Array.from(mesh.verts || []), f = Uint32Array.from(mesh.faces || []);
    var nf = f.length / 3, fn = new Float32Array(f.length);
    for (var t = 0; t < nf; t++) {
      var a = 3 * f[3 * t], b = 3 * f[3 * t + 1], c = 3 * f[3 * t + 2];
      var n;
      if (mesh.normals && mesh.normals.length === v.length) {  // smooth: mean of vertex normals
        var N = mesh.normals;
        n = unit([N[a] + N[b] + N[c], N[a + 1] + N[b + 1] + N[c + 1], N[a + 2] + N[b + 2] + N[c + 2]]);
      } else {  // flat: counter-clockwise seen from outside
        var ux = v[b] - v[a], uy = v[b + 1] - v[a + 1], uz = v[b + 2] - v[a + 2];
        var wx = v[c] - v[a], wy = v[c + 1] - v[a + 1], wz = v[c + 2] - v[a + 2];
        n = unit([uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx]);
      }
      fn[3 * t] = n[0]; fn[3 * t + 1] = n[1]; fn[3 * t + 2] = n[2];
    }
    var dist = new Float32Array(v.length / 3);
    for (var i = 0; i < dist.length; i++) dist[i] = Math.hypot(v[3 * i], v[3 * i + 1], v[3 * i + 2]);
    dist.sort();  // frame the 99th percentile: a few specks of noise far out do not shrink the map
    return {v: v, f: f, fn: fn, nf: nf, r: dist.length ? dist[Math.floor(0.99 * (dist.length - 1))] : 0};
  }
  function draw() {
    pending = false;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = bg; ctx.fillRect(0, 0, w, h);
    if (!m || m.nf === 0) {
      ctx.fillStyle = "#888"; ctx.font = "13px sans-serif"; ctx.textAlign = "center";
      ctx.fillText("no surface at this level", w / 2, h / 2);
      return;
    }
    var s = zoom * 0.48 * Math.min(w, h) / (radius || m.r || 1), v = m.v, f = m.f, nv = v.length / 3;
    var p = new Float32Array(v.length);  // rotated: view = R * vertex
    for (var i = 0; i < nv; i++) {
      var x = v[3 * i], y = v[3 * i + 1], z = v[3 * i + 2];
      p[3 * i] = R[0] * x + R[1] * y + R[2] * z;
      p[3 * i + 1] = R[3] * x + R[4] * y + R[5] * z;
      p[3 * i + 2] = R[6] * x + R[7] * y + R[8] * z;
    }
    var order = [], depth = new Float32Array(m.nf), shade = new Float32Array(m.nf), zmin = Infinity, zmax = -Infinity;
    for (var t = 0; t < m.nf; t++) {
      var nx = m.fn[3 * t], ny = m.fn[3 * t + 1], nz = m.fn[3 * t + 2];
      var vz = R[6] * nx + R[7] * ny + R[8] * nz;
      if (vz < -0.05) continue;  // faces away from the viewer (hidden on a closed surface)
      var vx = R[0] * nx + R[1] * ny + R[2] * nz, vy = R[3] * nx + R[4] * ny + R[5] * nz;
      shade[t] = Math.max(0, vx * light[0] + vy * light[1] + vz * light[2]);
      depth[t] = p[3 * f[3 * t] + 2] + p[3 * f[3 * t + 1] + 2] + p[3 * f[3 * t + 2] + 2];
      zmin = Math.min(zmin, depth[t]); zmax = Math.max(zmax, depth[t]);
      order.push(t);
    }
    order.sort(function (a, b) { return depth[a] - depth[b]; });  // far first (painter's)
    var cx = w / 2, cy = h / 2, span = (zmax - zmin) || 1;
    ctx.lineWidth = 0.6; ctx.lineJoin = "round";
    for (var k = 0; k < order.length; k++) {
      var t = order[k], a = 3 * f[3 * t], b = 3 * f[3 * t + 1], c = 3 * f[3 * t + 2];
      var fog = 0.75 + 0.25 * (depth[t] - zmin) / span;  // nearer is brighter: depth cue
      var g = (0.22 + 0.78 * shade[t]) * fog;
      var col = "rgb(" + Math.round(rgb[0] * g) + "," + Math.round(rgb[1] * g) + "," + Math.round(rgb[2] * g) + ")";
      ctx.fillStyle = col; ctx.strokeStyle = col;  // the stroke hides seams between triangles
      ctx.beginPath();
      ctx.moveTo(cx + s * p[a], cy - s * p[a + 1]);
      ctx.lineTo(cx + s * p[b], cy - s * p[b + 1]);
      ctx.lineTo(cx + s * p[c], cy - s * p[c + 1]);
      ctx.closePath(); ctx.fill(); ctx.stroke();
    }
  }
  function redraw() { if (!pending) { pending = true; requestAnimationFrame(draw); } }
  function rotate(ax, ay) {  // small rotations about the screen's y then x axes, applied after R
    var cxa = Math.cos(ax), sxa = Math.sin(ax), cya = Math.cos(ay), sya = Math.sin(ay);
    var Q = [cya, 0, sya, sxa * sya, cxa, -sxa * cya, -cxa * sya, sxa, cxa * cya], N = [];
    for (var r = 0; r < 3; r++) for (var c = 0; c < 3; c++)
      N.push(Q[3 * r] * R[c] + Q[3 * r + 1] * R[3 + c] + Q[3 * r + 2] * R[6 + c]);
    R = N;
  }
  var last = null;
  canvas.style.touchAction = "none";
  canvas.addEventListener("pointerdown", function (e) {
    last = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", function (e) {
    if (!last) return;
    rotate((e.clientY - last[1]) * 0.01, (e.clientX - last[0]) * 0.01);
    last = [e.clientX, e.clientY]; redraw();
  });
  canvas.addEventListener("pointerup", function () { last = null; });
  canvas.addEventListener("pointercancel", function () { last = null; });
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault(); zoom = Math.min(20, Math.max(0.1, zoom * Math.exp(-0.0015 * e.deltaY))); redraw();
  }, {passive: false});

  function load(mesh) {
    if (typeof mesh === "string") mesh = JSON.parse(mesh);  // Mesh.to_json() text is fine too
    m = prepare(mesh || {});
    if (!radius && m.r) radius = m.r;  // keep the first scale: maps in a series stay comparable
  }
  function setMesh(mesh) { load(mesh); redraw(); }
  load(mesh);
  draw();  // on screen at once, before any interaction or animation frame
  return {setMesh: setMesh, redraw: redraw, view: function () { return {rotation: R.slice(), zoom: zoom}; }};
}
"""
