// cryoscape dashboard page: latent plot (plotly, SVG scatter), hover thumbnails, click -> map,
// lasso -> selection saved by the server. Talks only to the local server (api/*).
"use strict";

(function () {
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#8ca252", "#e7ba52", "#7b4173",
    "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"];
  const $ = (id) => document.getElementById(id);
  // What the page is showing; exposed for tests and for curious users in the console.
  const st = window.cryoscapeDashboard = {
    ready: false, readyMs: null, info: null, coords: null, colour: null, polygon: null, selCount: 0,
    viewer: null, mapRequest: 0, hoverTimer: null, lastMap: null, lastSaved: null,
  };

  async function getJSON(url, opts) {
    const r = await fetch(url, opts);
    let data;
    try { data = await r.json(); } catch (e) { throw new Error(`${url}: ${r.status} ${r.statusText}`); }
    if (!r.ok) throw new Error(data.error || `${r.status} ${r.statusText}`);
    return data;
  }

  function postJSON(url, body) {
    return getJSON(url, {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)});
  }

  function setStatus(el, text, cls) {
    el.textContent = text;
    el.className = "status" + (cls ? " " + cls : "");
  }

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(4);
  }

  function fillControls(info) {
    $("run-info").textContent = `${info.run} · ${info.latents} · ${info.n} particles · zdim ${info.zdim}`;
    for (const e of info.embeddings) $("embedding").add(new Option(e.label, e.id));
    for (const c of info.columns) $("color-by").add(new Option(c.label, c.id));
    $("color-by").value = info.default_column;
    $("shown-note").textContent = info.shown < info.n
      ? `${info.shown} of ${info.n} particles drawn (a random subset); selections use all of them.`
      : `All ${info.n} particles drawn.`;
    if (!info.can_map) setStatus($("map-status"), info.map_note, "bad");
    if (!info.has_images) $("particle-info").textContent = "No particle images (see the warnings).";
    if (info.warnings.length) {
      $("warnings").hidden = false;
      for (const w of info.warnings) {
        const li = document.createElement("li");
        li.textContent = w;
        $("warning-list").appendChild(li);
      }
    }
  }

  function categoricalTraces(coords, colour) {
    const groups = new Map(colour.categories.map((c) => [c, []]));
    colour.values.forEach((v, i) => { if (groups.has(v)) groups.get(v).push(i); });
    const traces = [];
    let k = 0;
    for (const [cat, idx] of groups) {
      traces.push({  // the legend counts every particle of the category, drawn or not
        type: "scatter", mode: "markers", name: `${fmt(cat)} (${colour.counts[k]})`,
        x: idx.map((i) => coords.x[i]), y: idx.map((i) => coords.y[i]),
        customdata: idx.map((i) => coords.index[i]),
        marker: {size: markerSize(coords), color: PALETTE[k % PALETTE.length], opacity: 0.75},
        hovertemplate: `particle %{customdata}<br>${colour.label}: ${fmt(cat)}<extra></extra>`,
      });
      k++;
    }
    return traces;
  }

  function continuousTrace(coords, colour) {
    return {
      type: "scatter", mode: "markers", name: colour.label, showlegend: false,
      x: coords.x, y: coords.y, customdata: coords.index, text: colour.values.map(fmt),
      marker: {size: markerSize(coords), color: colour.values, colorscale: "Viridis", opacity: 0.8,
        colorbar: {title: {text: colour.label, side: "top"}, thickness: 14}},
      hovertemplate: `particle %{customdata}<br>${colour.label}: %{text}<extra></extra>`,
    };
  }

  function markerSize(coords) {
    const n = coords.index.length;
    return n > 10000 ? 3 : n > 2000 ? 4 : 6;
  }

  function clickedTrace() {
    return {type: "scatter", mode: "markers", name: "map shown", x: [], y: [], hoverinfo: "skip",
      showlegend: false, marker: {size: 16, symbol: "circle-open", color: "#000", line: {width: 2.5}}};
  }

  async function redraw() {
    const emb = $("embedding").value, col = $("color-by").value;
    setStatus($("plot-status"), "Loading…");
    const [coords, colour] = await Promise.all([
      getJSON(`api/coords?embedding=${encodeURIComponent(emb)}`),
      getJSON(`api/color?column=${encodeURIComponent(col)}`)]);
    st.coords = coords;
    st.colour = colour;
    const traces = colour.kind === "categorical" ? categoricalTraces(coords, colour)
      : [continuousTrace(coords, colour)];
    traces.push(clickedTrace());
    const layout = {
      dragmode: "lasso", hovermode: "closest", uirevision: emb,
      margin: {l: 55, r: 10, t: 36, b: 45},  // the toolbar sits above the legend
      xaxis: {title: {text: coords.axes[0]}, zeroline: false},
      yaxis: {title: {text: coords.axes[1]}, zeroline: false},
      legend: {title: {text: colour.label}, itemsizing: "constant"},
    };
    // no logo, no "share" or "edit in chart studio" buttons: the page never leaves this machine
    await Plotly.react("plot", traces, layout, {displaylogo: false, responsive: true,
      showLink: false, showSendToCloud: false, showEditInChartStudio: false,
      modeBarButtonsToRemove: ["toImage", "sendDataToCloud", "editInChartStudio"]});
    clearSelection();
    setStatus($("plot-status"), `${coords.index.length} of ${coords.n} particles drawn. ` +
      "Hover for the image, click for the map, drag to lasso.");
  }

  function clearSelection() {
    st.polygon = null;
    st.selCount = 0;
    setStatus($("sel-count"), "Nothing selected.");
    $("save-sel").disabled = true;
  }

  function plotHasSelection() {
    const sel = $("plot").layout.selections;
    return Array.isArray(sel) && sel.length > 0;
  }

  async function onSelected(ev) {
    // plotly also sends an empty "selected" event on every click; the lasso is still there then
    if (!ev && plotHasSelection()) return;
    let poly = null;
    if (ev && ev.lassoPoints) poly = ev.lassoPoints.x.map((x, i) => [x, ev.lassoPoints.y[i]]);
    else if (ev && ev.range) {
      const [x0, x1] = ev.range.x, [y0, y1] = ev.range.y;
      poly = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
    }
    if (!poly || poly.length < 3) { clearSelection(); return; }
    st.polygon = poly;
    try {
      const res = await postJSON("api/lasso", {embedding: $("embedding").value, polygon: poly});
      st.selCount = res.count;
      setStatus($("sel-count"), `${res.count} of ${res.n} particles selected.`);
      $("save-sel").disabled = res.count === 0;
    } catch (e) {
      setStatus($("sel-count"), e.message, "bad");
    }
  }

  async function saveSelection() {
    if (!st.polygon) return;
    $("save-sel").disabled = true;
    setStatus($("sel-result"), "Saving…");
    try {
      const res = await postJSON("api/select", {name: $("sel-name").value.trim(),
        embedding: $("embedding").value, polygon: st.polygon});
      st.lastSaved = res;
      setStatus($("sel-result"), `Saved ${res.count} particles (complement: ${res.complement}) to ` +
        `${res.folder}:`, "ok");
      const ul = document.createElement("ul");
      for (const f of res.files) {
        const li = document.createElement("li");
        li.textContent = f.split("/").pop();
        ul.appendChild(li);
      }
      $("sel-result").appendChild(ul);
      $("sel-name").value = nextName(res.name);
    } catch (e) {
      setStatus($("sel-result"), e.message, "bad");
    } finally {
      $("save-sel").disabled = !st.polygon;
    }
  }

  function nextName(name) {
    const m = name.match(/^(.*?)(\d+)$/);
    return m ? m[1] + (parseInt(m[2], 10) + 1) : name + "2";
  }

  function onHover(ev) {
    const p = ev && ev.points && ev.points[0];
    if (!p || p.customdata === undefined) return;
    clearTimeout(st.hoverTimer);
    st.hoverTimer = setTimeout(() => showParticle(p.customdata), 60);
  }

  async function showParticle(index) {
    if (st.info.has_images) {
      const img = $("thumb");
      img.onload = () => { img.hidden = false; };
      img.src = `api/thumbnail?index=${index}`;
    }
    try {
      const d = await getJSON(`api/particle?index=${index}`);
      const rows = [["particle", d.index], ["file row", d.file_row], ["z", d.z.map(fmt).join(", ")]];
      for (const [k, v] of Object.entries(d.values).slice(0, 12)) rows.push([k, fmt(v)]);
      const table = document.createElement("table");
      for (const [k, v] of rows) {
        const tr = table.insertRow();
        tr.insertCell().textContent = k;
        tr.insertCell().textContent = v;
      }
      $("particle-info").replaceChildren(table);
    } catch (e) {
      $("particle-info").textContent = e.message;
    }
  }

  async function onClick(ev) {
    const p = ev && ev.points && ev.points[0];
    if (!p || p.customdata === undefined || !st.info.can_map) return;
    const req = ++st.mapRequest;
    const plot = $("plot");
    Plotly.restyle(plot, {x: [[p.x]], y: [[p.y]]}, [plot.data.length - 1]);
    setStatus($("map-status"), `Making the map at particle ${p.customdata}'s code…`);
    try {
      const res = await postJSON("api/map", {index: p.customdata});
      if (req !== st.mapRequest) return;  // a later click is on its way
      if (st.viewer) st.viewer.setMesh(res.mesh);
      else st.viewer = cryoscapeIsoViewer($("iso"), res.mesh, {});
      st.lastMap = res;
      setStatus($("map-status"), `Particle ${res.index}: ${res.D}³ map at ${fmt(res.psize_A)} Å/px ` +
        `(${res.seconds.toFixed(2)} s).`, "ok");
      const a = $("map-download");
      a.href = res.url;
      a.download = res.name;
      a.textContent = `Download .mrc (${res.name})`;
      a.hidden = false;
    } catch (e) {
      if (req === st.mapRequest) setStatus($("map-status"), e.message, "bad");
    }
  }

  async function main() {
    try {
      st.info = await getJSON("api/info");
      fillControls(st.info);
      await redraw();
      const plot = $("plot");
      plot.on("plotly_hover", onHover);
      plot.on("plotly_click", onClick);
      plot.on("plotly_selected", onSelected);
      plot.on("plotly_deselect", clearSelection);
      $("embedding").addEventListener("change", () => redraw().catch(showFatal));
      $("color-by").addEventListener("change", () => redraw().catch(showFatal));
      $("save-sel").addEventListener("click", saveSelection);
      st.readyMs = performance.now();  // since navigation started: the page's load time
      st.ready = true;
    } catch (e) {
      showFatal(e);
    }
  }

  function showFatal(e) {
    setStatus($("plot-status"), `Error: ${e.message}`, "bad");
  }

  main();
})();
