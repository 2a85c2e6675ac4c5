"""Open a page in a real headless browser for tests (Debian's chromium driven by Playwright).

Usage in a test::

    from browser import open_page

    def test_page(tmp_path):
        with open_page(tmp_path / "report.html") as page:   # skips if no browser
            page.screenshot(path=tmp_path / "shot.png", full_page=True)
            assert page.evaluate("document.title") == "..."
        # leaving the block fails the test if the page logged a console error or threw

``open_page`` takes a file path or a URL (``http://127.0.0.1:PORT/`` for a local server). The
browser is started with flags that keep it off the network (no updates, sync or background
requests: this machine's closed network refuses them) and without a GPU, so the page is drawn
in software, as on CI. Set ``CRYOSCAPE_CHROMIUM`` to use another chromium binary.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the test artefacts go when ``CRYOSCAPE_KEEP_SCREENSHOTS`` is set.
ARTIFACTS = Path(__file__).resolve().parent / "_artifacts"


def chromium_path() -> str | None:
    """The chromium binary: ``$CRYOSCAPE_CHROMIUM``, else chromium on PATH or /usr/bin."""
    for cand in (
        os.environ.get("CRYOSCAPE_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ):
        if cand and Path(cand).is_file():
            return cand
    return None


def _require_browser() -> str:
    """The chromium path; skips the test (with the reason) when Playwright or chromium is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser test: the playwright Python package is not installed (pip install playwright)")
    exe = chromium_path()
    if exe is None:
        pytest.skip("browser test: no chromium binary (apt-get install chromium, or set CRYOSCAPE_CHROMIUM)")
    return exe


@contextmanager
def open_page(
    target: str | os.PathLike, width: int = 1200, height: int = 900, allow_errors: bool = False
) -> Iterator[object]:
    """A Playwright ``Page`` with ``target`` (a file path or URL) loaded.

    Console errors and uncaught page errors are collected in ``page.cryoscape_errors`` and the
    URLs of all requests in ``page.cryoscape_requests``; unless ``allow_errors``, leaving the
    block fails the test when there are errors.
    """
    exe = _require_browser()
    from playwright.sync_api import sync_playwright

    url = str(target)
    if "://" not in url:
        url = Path(target).resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.cryoscape_errors = errors
            page.cryoscape_requests = []  # every URL the page asked for, in order
            page.on("request", lambda r: page.cryoscape_requests.append(r.url))
            page.goto(url, wait_until="load")
            yield page
            if errors and not allow_errors:
                pytest.fail("the page reported errors:\n" + "\n".join(errors))
        finally:
            browser.close()


def keep_artifact(path: str | os.PathLike) -> Path | None:
    """Copy ``path`` into ``tests/_artifacts/`` when ``CRYOSCAPE_KEEP_SCREENSHOTS`` is set."""
    if not os.environ.get("CRYOSCAPE_KEEP_SCREENSHOTS"):
        return None
    ARTIFACTS.mkdir(exist_ok=True)
    return Path(shutil.copy(path, ARTIFACTS / Path(path).name))


def next_frame(page) -> None:
    """Wait until the page has drawn two more animation frames (redraws have landed)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def canvas_stats(page, selector: str = "canvas") -> list[dict]:
    """For each canvas matching ``selector``: ``width``, ``height`` (device pixels), ``label``
    (``data-label``), ``filled`` (fraction of pixels that differ from the top-left one, the
    background), ``cx``, ``cy`` (centroid of those pixels as fractions of the width and height,
    y down) and ``checksum`` (changes when the picture does)."""
    return page.evaluate(
        """(sel) => Array.from(document.querySelectorAll(sel)).map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0, sx = 0, sy = 0, sum = 0;
        for (let i = 0; i < d.length; i += 4) {
            if (Math.abs(d[i] - d[0]) + Math.abs(d[i + 1] - d[1]) + Math.abs(d[i + 2] - d[2]) > 24) {
                n++; sx += (i / 4) % c.width; sy += Math.floor(i / 4 / c.width);
            }
            sum = (sum * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
        }
        return {width: c.width, height: c.height, label: c.dataset.label || '', filled: n / (c.width * c.height),
                cx: n ? sx / n / c.width : null, cy: n ? sy / n / c.height : null, checksum: sum};
    })""",
        selector,
    )
