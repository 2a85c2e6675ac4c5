"""The analysis report in a real headless browser: plots load, every map's isosurface is drawn
and turns when dragged, nothing errs, nothing is fetched; the viewer shows the true hand."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from browser import canvas_stats, keep_artifact, next_frame, open_page

pytest.importorskip("skimage")


def fake_run_report(tmp_path: Path, monkeypatch) -> Path:
    """``cryoscape analyze``'s pipeline on a fake run (3 clusters of codes, a training log) whose
    maps are the demo molecule's ground truth at three hinge angles (no model to train)."""
    from cryoscape.analysis import pipeline
    from cryoscape.analysis.latent import read_run_latents
    from cryoscape.sim.molecule import demo_volume
    from cryoscape.viz.isosurface import surface_mesh

    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(c, 0.3, (100, 4)) for c in (-3, 0, 3)]).astype(np.float32)
    np.save(run / "z.npy", z)
    (run / "log.csv").write_text("epoch,loss,mse,kl\n0,2.0,1.5,0.5\n1,1.2,1.0,0.2\n2,1.0,0.9,0.1\n")

    def fake_maps(cfg, run_dir, lat, outdir, res):
        meshes = [surface_mesh(demo_volume(t, D=64), psize_A=3.0) for t in (0.0, 0.5, 1.0)]
        return pipeline.MapResults(centre_maps=meshes)

    monkeypatch.setattr(pipeline, "map_steps", fake_maps)
    out = tmp_path / "analysis"
    out.mkdir()
    cfg = pipeline.AnalyzeConfig(ksample=3, skip_umap=True)
    pipeline.run_analysis(cfg, run, read_run_latents(run), out)
    return out / "report.html"


def test_report_in_browser(tmp_path, monkeypatch):
    report = fake_run_report(tmp_path, monkeypatch)
    text = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)  # nothing from the web
    assert "http://" not in text and "https://" not in text
    with open_page(report) as page:
        shot = tmp_path / "report.png"
        page.screenshot(path=shot, full_page=True)
        keep_artifact(shot)
        assert shot.stat().st_size > 10_000

        assert all(u.startswith(("file:", "data:")) for u in page.cryoscape_requests), page.cryoscape_requests
        assert "cryoscape analysis of" in page.inner_text("h1")
        h2 = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
        assert h2 == ["Latent space and training", "Cluster centres", "Maps at the cluster centres", "Reproduce"]
        assert page.eval_on_selector_all("table tr", "rows => rows.length") == 4  # header + 3 centres
        assert "cryoscape analyze" in page.inner_text("pre")

        imgs = page.eval_on_selector_all("img", "els => els.map(i => [i.alt, i.complete, i.naturalWidth])")
        assert len(imgs) == 4, imgs  # PCA, explained variance, PC histograms, losses
        assert all(done and w > 100 for _, done, w in imgs), imgs

        stats = canvas_stats(page, ".iso-canvas")
        assert [s["label"] for s in stats] == [f"kmeans3 centre {i}" for i in range(3)]
        for s in stats:  # the molecule covers a good part of each view, centred
            assert 0.08 < s["filled"] < 0.7, s
            assert 0.3 < s["cx"] < 0.7 and 0.3 < s["cy"] < 0.7, s
        assert len({s["checksum"] for s in stats}) == 3  # three different maps

        canvas = page.locator(".iso-canvas").first
        canvas.scroll_into_view_if_needed()  # the mouse acts inside the viewport only
        box = canvas.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 60, y + 30, steps=6)
        page.mouse.up()
        next_frame(page)
        turned = canvas_stats(page, ".iso-canvas")
        assert turned[0]["checksum"] != stats[0]["checksum"] and turned[0]["filled"] > 0.05
        assert [s["checksum"] for s in turned[1:]] == [s["checksum"] for s in stats[1:]]

        page.mouse.wheel(0, -400)  # zoom in: the molecule covers more of the canvas
        next_frame(page)
        assert canvas_stats(page, ".iso-canvas")[0]["filled"] > 1.2 * turned[0]["filled"]


def _triangle(centre, normal, size=3.0) -> dict:
    """One triangle around ``centre`` (x, y, z in Å) in the x-y plane, with the given normals."""
    c = np.asarray(centre, float)
    verts = np.array([c + (-size, -size, 0), c + (size, -size, 0), c + (0, size, 0)])
    return {"verts": verts.ravel().tolist(), "faces": [0, 1, 2], "normals": list(normal) * 3}


def test_viewer_shows_x_right_y_up_and_z_towards_the_viewer(tmp_path):
    import json

    from cryoscape.viz.isosurface import viewer_script

    near = _triangle((0, 0, 5), (0, 0, 1), 4)  # faces the light: bright
    far = _triangle((0, 0, -5), (0.7, -0.7, 0.14), 8)  # turned from the light: dark, behind
    scenes = {
        "x": _triangle((8, 0, 0), (0, 0, 1)),
        "y": _triangle((0, 8, 0), (0, 0, 1)),
        # near listed first: only depth sorting puts it on top
        "z": {k: near[k] + far[k] for k in ("verts", "normals")} | {"faces": [0, 1, 2, 3, 4, 5]},
        "empty": {"verts": [], "faces": []},
    }
    body = "".join(
        f'<canvas class="t" data-label="{k}" width="200" height="200"></canvas>'
        f"<script>cryoscapeIsoViewer(document.currentScript.previousElementSibling, "
        f"{json.dumps(v)}, {{radius: 10}});</script>"
        for k, v in scenes.items()
    )
    page_path = tmp_path / "viewer.html"
    page_path.write_text(f"<!DOCTYPE html><html><head>{viewer_script()}</head><body>{body}</body></html>")
    with open_page(page_path) as page:
        stats = {s["label"]: s for s in canvas_stats(page, "canvas.t")}
        assert stats["x"]["cx"] > 0.8 and abs(stats["x"]["cy"] - 0.5) < 0.1  # +x is right
        assert stats["y"]["cy"] < 0.2 and abs(stats["y"]["cx"] - 0.5) < 0.1  # +y is up
        assert stats["empty"]["filled"] > 0  # says "no surface" rather than nothing
        # where both triangles overlap the near one (bright) is seen: +z points at the viewer
        centre, outside = page.evaluate("""() => {
            const c = document.querySelectorAll('canvas.t')[2], g = c.getContext('2d');
            const px = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
            return [px(c.width / 2, c.height / 2), px(c.width / 2, c.height * 0.85)];
        }""")
        assert sum(centre) > 1.8 * sum(outside) and sum(outside) > 0, (centre, outside)
