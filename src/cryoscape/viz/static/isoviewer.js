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
