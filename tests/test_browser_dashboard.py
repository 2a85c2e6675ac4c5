"""`cryoscape dashboard` in a real headless chromium: plot, hover thumbnail, click -> isosurface,
mouse-drawn lasso -> selection files on disk; screenshot kept with CRYOSCAPE_KEEP_SCREENSHOTS."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from browser import canvas_stats, keep_artifact, open_page
from helpers import make_run, serving

from cryoscape.dashboard.state import DashboardState
from cryoscape.io.cryodrgn import read_index
from cryoscape.io.load import load_particles

N, D, SHOWN = 160, 24, 100

pytestmark = pytest.mark.slow
pytest.importorskip("plotly", reason="the dashboard needs plotly (pip install cryoscape[dashboard])")
pytest.importorskip("skimage", reason="the dashboard's maps need scikit-image (pip install cryoscape[dashboard])")

THUMB_SHOWN = """() => { const i = document.getElementById('thumb');
                         return !i.hidden && i.complete && i.naturalWidth > 0; }"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("browser"), n=N, D=D, epochs=2)[0]


def point_centre(page, i: int) -> tuple[float, float]:
    box = page.locator("#plot .scatterlayer .point").nth(i).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def hover(page, x: float, y: float) -> None:
    """Arrive at (x, y) the way a hand does, so plotly has its hover data before a click."""
    page.mouse.move(x - 15, y)
    page.mouse.move(x, y, steps=5)
    time.sleep(0.2)


def draw_lasso(page, frac: float = 0.3) -> None:
    """A circle of radius ``frac`` of the plot height around the plot's centre, drawn with the mouse."""
    page.evaluate("Plotly.relayout('plot', {dragmode: 'lasso'})")
    bb = page.locator("#plot .nsewdrag").first.bounding_box()
    cx, cy, r = bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2, frac * bb["height"]
    page.mouse.move(cx + r, cy)
    page.mouse.down()
    for k in range(1, 49):
        t = 2 * math.pi * k / 48
        page.mouse.move(cx + r * math.cos(t), cy + r * math.sin(t), steps=2)
    page.mouse.up()


def test_dashboard_in_a_real_browser(run, tmp_path):
    from matplotlib.path import Path as MplPath

    state = DashboardState(run, max_points=SHOWN)
    with serving(state) as url, open_page(url, width=1400, height=900) as page:
        page.wait_for_function("window.cryoscapeDashboard && window.cryoscapeDashboard.ready", timeout=60000)
        print(f"page ready {page.evaluate('window.cryoscapeDashboard.readyMs'):.0f} ms after navigation")
        assert page.locator("#plot .scatterlayer .point").count() == SHOWN  # SVG points drawn
        page.select_option("#color-by", "file:rlnClassNumber")  # a column of the star file
        page.wait_for_function("window.cryoscapeDashboard.colour.column === 'file:rlnClassNumber'")
        assert page.locator("#plot .legend .traces").count() == 2  # classes 1 and 2

        x, y = point_centre(page, 3)
        hover(page, x, y)
        page.wait_for_function(THUMB_SHOWN, timeout=20000)
        assert "particle" in page.text_content("#particle-info")

        page.mouse.down()
        page.mouse.up()
        page.wait_for_function("window.cryoscapeDashboard.lastMap !== null", timeout=60000)
        page.wait_for_timeout(300)  # the viewer draws on the next animation frame too
        iso = canvas_stats(page, "#iso")[0]
        assert iso["filled"] > 0.02, iso  # the isosurface covers part of the canvas
        last = page.evaluate("window.cryoscapeDashboard.lastMap")
        assert (run / "dashboard" / "maps" / last["name"]).is_file()
        assert page.is_visible("#map-download")

        draw_lasso(page)
        page.wait_for_function("window.cryoscapeDashboard.selCount > 0", timeout=20000)
        poly = np.array(page.evaluate("window.cryoscapeDashboard.polygon"))
        count = page.evaluate("window.cryoscapeDashboard.selCount")
        inside = np.flatnonzero(MplPath(poly).contains_points(state.embedding("pca").coords))
        assert count == len(inside)  # every particle inside, drawn or not
        page.fill("#sel-name", "lasso1")
        page.click("#save-sel")
        page.wait_for_function("window.cryoscapeDashboard.lastSaved !== null", timeout=20000)
        assert "lasso1.star" in page.text_content("#sel-result")
        # everything the page fetched (scripts, fetch() calls, images) came from this server
        requested = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        assert len(requested) > 5 and all(u.startswith(url) for u in requested), requested
        page.mouse.move(5, 5)
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=shot)
        keep_artifact(shot)
    out = run / "dashboard" / "selections" / "lasso1"
    np.testing.assert_array_equal(read_index(out / "lasso1.pkl"), inside)
    assert load_particles(out / "lasso1.star", images="skip").n == len(inside)
    assert load_particles(out / "lasso1_complement.star", images="skip").n == N - len(inside)
