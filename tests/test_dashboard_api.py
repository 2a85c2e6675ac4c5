"""`cryoscape dashboard`'s server: every endpoint on a tiny trained run, through real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.error import HTTPError

import numpy as np
import pytest
import yaml
from helpers import make_run, serving

from cryoscape.analysis.latent import pca
from cryoscape.analysis.select import polygon_select
from cryoscape.cli.main import main as cli
from cryoscape.dashboard.server import make_server
from cryoscape.dashboard.state import DashboardState
from cryoscape.dashboard.thumbs import png_gray8, thumbnail
from cryoscape.errors import InputError
from cryoscape.io.cryodrgn import read_index
from cryoscape.io.load import load_particles
from cryoscape.io.mrc import read_volume
from cryoscape.io.write import write_index, write_particles

pytest.importorskip("plotly", reason="the dashboard needs plotly (pip install cryoscape[dashboard])")
pytest.importorskip("skimage", reason="the dashboard's maps need scikit-image (pip install cryoscape[dashboard])")

N, D, PSIZE_A = 48, 16, 4.0


def request(
    url: str, body=None, *, raw: bytes | None = None, ctype: str = "application/json", headers: dict | None = None
) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, or a POST when ``body``/``raw`` is given."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers={"Content-Type": ctype, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def api(url: str, body=None) -> dict:
    status, ctype, data = request(url, body)
    assert status == 200, data
    assert ctype == "application/json"
    return json.loads(data)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("dash"), N, D, psize_A=PSIZE_A)


@pytest.fixture(scope="module")
def server(trained):
    state = DashboardState(trained[0])
    with serving(state) as url:
        yield state, url


def star_names(path) -> list[str]:
    """Each particle's image as ``frame@absolute stack path`` (names in a star are relative to it)."""
    files, frames = load_particles(path, images="require").images.refs()
    return [f"{fr}@{os.path.realpath(f)}" for f, fr in zip(files.tolist(), frames.tolist(), strict=True)]


def test_info_coords_and_page(server, trained):
    _state, url = server
    info = api(url + "api/info")
    assert info["n"] == N and info["zdim"] == 2 and info["can_map"] and info["has_images"]
    assert info["warnings"] == []
    coords = api(url + "api/coords?embedding=pca")
    assert coords["index"] == list(range(N)) and len(coords["x"]) == len(coords["y"]) == N
    ref = pca(np.load(trained[0] / "z.npy"), 2).coords
    np.testing.assert_allclose(np.c_[coords["x"], coords["y"]], ref, rtol=1e-4, atol=1e-5)
    status, ctype, page = request(url)
    assert status == 200 and ctype.startswith("text/html") and b"cryoscape dashboard" in page
    for name, needle in (
        ("plotly.min.js", b"plotly"),
        ("isoviewer.js", b"cryoscapeIsoViewer"),
        ("dashboard.js", b"api/map"),
        ("dashboard.css", b"#plot"),
    ):
        status, ctype, body = request(url + "static/" + name)
        assert status == 200 and needle in body, name
    assert request(url + "static/../server.py")[0] == 404


def test_colour_columns_include_star_columns(server, trained):
    _state, url = server
    cols = {c["id"]: c for c in api(url + "api/info")["columns"]}
    assert cols["file:rlnClassNumber"]["kind"] == "categorical"
    assert cols["file:rlnDefocusU"]["kind"] == "continuous"
    assert {"latent:norm", "latent:z0", "latent:z1"} <= set(cols)
    pset = load_particles(trained[1], images="skip")
    got = api(url + "api/color?column=file:rlnDefocusU")
    np.testing.assert_allclose(got["values"], pset.ctf.defocus_u_A, rtol=1e-5)
    cls = api(url + "api/color?column=file:rlnClassNumber")
    assert cls["categories"] == [1, 2] and cls["values"] == pset.metadata["_rlnClassNumber"].tolist()
    norm = api(url + "api/color?column=latent:norm")["values"]
    np.testing.assert_allclose(norm, np.linalg.norm(np.load(trained[0] / "z.npy"), axis=1), rtol=1e-5)
    km = next(c for c in cols if c.startswith("cluster:kmeans"))  # computed on first use
    labels = api(url + "api/color?column=" + km)
    assert labels["kind"] == "categorical" and len(labels["values"]) == N
    assert set(labels["values"]) == set(labels["categories"]) and len(labels["categories"]) > 1


def test_thumbnail_is_a_png_of_the_particle(server, tmp_path):
    from matplotlib.image import imread

    state, url = server
    status, ctype, png = request(url + "api/thumbnail?index=5")
    assert status == 200 and ctype == "image/png" and png.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "t.png").write_bytes(png)
    decoded = np.rint(imread(tmp_path / "t.png") * 255).astype(np.uint8)
    assert decoded.shape == (D, D)
    np.testing.assert_array_equal(decoded, thumbnail(state.image(5)))
    ramp = np.tile(np.arange(64.0)[:, None], (1, 64))  # value = y: +y must point up on screen
    t = thumbnail(ramp, max_px=32)
    assert t.shape == (32, 32) and t[0].mean() > 250 and t[-1].mean() < 5


def test_png_writer_round_trip(tmp_path):
    from matplotlib.image import imread

    img = np.random.default_rng(0).integers(0, 256, (7, 13), dtype=np.uint8)
    (tmp_path / "x.png").write_bytes(png_gray8(img))
    np.testing.assert_array_equal(np.rint(imread(tmp_path / "x.png") * 255).astype(np.uint8), img)


def test_map_mesh_and_mrc(server, trained):
    from cryoscape.analysis.volumes import generate_volumes, load_run

    _state, url = server
    res = api(url + "api/map", {"index": 7})
    assert res["index"] == 7 and res["D"] == D and res["psize_A"] == PSIZE_A
    mesh = res["mesh"]
    assert len(mesh["faces"]) > 0 and len(mesh["faces"]) % 3 == 0 and len(mesh["verts"]) % 3 == 0
    assert max(mesh["faces"]) < len(mesh["verts"]) // 3
    assert np.abs(mesh["verts"]).max() <= D / 2 * PSIZE_A + 1e-3  # Å, around the box centre
    path = trained[0] / "dashboard" / "maps" / "particle_000007.mrc"
    assert Path(res["file"]) == path
    vol, psize = read_volume(path)
    assert psize == pytest.approx(PSIZE_A) and vol.shape == (D, D, D)
    run = load_run(trained[0])
    want = next(generate_volumes(run.model, np.load(trained[0] / "z.npy")[7:8], scale=run.norm_std))
    np.testing.assert_allclose(vol, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    status, _, data = request(url + res["url"])
    assert status == 200 and data == path.read_bytes()
    z = api(url + "api/map", {"z": [0.1, -0.2]})
    assert Path(z["file"]).is_file() and z["name"].startswith("code_")


def test_polygon_select_matches_matplotlib():
    from matplotlib.path import Path as MplPath

    rng = np.random.default_rng(1)
    xy = rng.normal(size=(20000, 2))
    t = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    r = 1.2 + 0.6 * np.sin(4 * t)  # concave
    poly = np.c_[r * np.cos(t), r * np.sin(t)]
    got = polygon_select(xy, poly)
    want = np.flatnonzero(MplPath(poly).contains_points(xy))
    np.testing.assert_array_equal(got, want)
    assert 0 < len(got) < len(xy)
    with pytest.raises(InputError):
        polygon_select(xy, poly[:2])


def test_lasso_selects_all_particles_not_only_drawn(trained):
    from matplotlib.path import Path as MplPath

    state = DashboardState(trained[0], max_points=10)
    with serving(state) as url:
        coords = api(url + "api/coords?embedding=pca")
        assert coords["n"] == N and len(coords["index"]) == 10 == len(set(coords["index"]))
        xy = state.embedding("pca").coords
        lo, hi = xy.min(0), xy.max(0)
        mid = (lo + hi) / 2
        poly = [[lo[0] - 1, lo[1] - 1], [mid[0], hi[1] + 1], [hi[0] + 1, lo[1] - 1]]  # a triangle
        want = np.flatnonzero(MplPath(poly).contains_points(xy))
        assert api(url + "api/lasso", {"embedding": "pca", "polygon": poly})["count"] == len(want) > 10
        everything = [[lo[0] - 1, lo[1] - 1], [hi[0] + 1, lo[1] - 1], [hi[0] + 1, hi[1] + 1], [lo[0] - 1, hi[1] + 1]]
        assert api(url + "api/lasso", {"embedding": "pca", "polygon": everything})["count"] == N


def test_analysis_folder_gives_umap_and_labels(trained, tmp_path):
    from cryoscape.io.cryodrgn import save_pickle

    an = tmp_path / "analyze.0"
    (an / "kmeans3").mkdir(parents=True)
    rng = np.random.default_rng(0)
    umap = rng.normal(size=(N, 2)).astype(np.float32)
    np.save(an / "umap.npy", umap)
    np.save(an / "z_pca.npy", rng.normal(size=(N + 1, 2)))  # not this run's: ignored, with a warning
    save_pickle(np.arange(N) % 3, an / "kmeans3" / "labels.pkl")
    (an / "landscape").mkdir()  # analyze --landscape
    volpca = rng.normal(size=(N, 10)).astype(np.float32)
    np.save(an / "landscape" / "vol_pca_particles.npy", volpca)
    save_pickle(np.arange(N) % 2, an / "landscape" / "labels.pkl")
    with serving(DashboardState(trained[0], analysis=an)) as url:
        info = api(url + "api/info")
        assert [e["id"] for e in info["embeddings"]] == ["pca", "umap", "volpca"]
        got = api(url + "api/coords?embedding=volpca")
        np.testing.assert_allclose(np.c_[got["x"], got["y"]], volpca[:, :2], rtol=1e-5)
        assert "volume landscape clusters (analyze)" in [c["label"] for c in info["columns"]]
        assert any("z_pca.npy" in w for w in info["warnings"])
        got = api(url + "api/coords?embedding=umap")
        np.testing.assert_allclose(np.c_[got["x"], got["y"]], umap, rtol=1e-5)
        labels = api(url + "api/color?column=cluster:kmeans3")
        assert labels["values"] == (np.arange(N) % 3).tolist() and labels["counts"] == [16, 16, 16]
        assert info["columns"][0]["label"] == "k-means k=3 (analyze)"
    with pytest.raises(InputError, match="analysis folder not found"):
        DashboardState(trained[0], analysis=tmp_path / "nope")


def test_saved_selection_partitions_the_input(server, trained):
    state, url = server
    xy = state.embedding("pca").coords
    c = np.median(xy, axis=0)
    poly = [[c[0], c[1] - 10], [c[0] + 10, c[1] - 10], [c[0] + 10, c[1] + 10], [c[0], c[1] + 10]]
    res = api(url + "api/select", {"name": "right_half", "embedding": "pca", "polygon": poly})
    want = np.flatnonzero(xy[:, 0] > c[0])
    out = trained[0] / "dashboard" / "selections" / "right_half"
    assert res["count"] == len(want) and res["complement"] == N - len(want)
    assert sorted(Path(f).name for f in res["files"]) == [
        "right_half.pkl",
        "right_half.star",
        "right_half_complement.pkl",
        "right_half_complement.star",
    ]
    np.testing.assert_array_equal(read_index(out / "right_half.pkl"), want)
    names = star_names(trained[1])
    sel, comp = star_names(out / "right_half.star"), star_names(out / "right_half_complement.star")
    assert sel == [names[i] for i in want]
    assert sorted(sel + comp) == sorted(names) and not set(sel) & set(comp)
    status, _, body = request(url + "api/select", {"name": "right_half", "indices": [1, 2]})
    assert status == 400 and "exists" in json.loads(body)["error"]


def test_cs_run_with_index_writes_cs_and_maps_rows(trained, tmp_path):
    """A run trained on rows ``ind`` of a .cs: columns and selections refer to the file's rows."""
    pset = load_particles(trained[1])
    cs = tmp_path / "parts.cs"
    write_particles(pset, cs)
    run = tmp_path / "run"
    run.mkdir()
    ind = np.arange(N)[::-2].copy()  # the run saw every other row, reversed
    write_index(ind, tmp_path / "ind.pkl")
    cfg = yaml.safe_load((trained[0] / "config.yaml").read_text())
    cfg["data"].update(particles=str(cs), ind=str(tmp_path / "ind.pkl"), n_particles=len(ind))
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    np.save(run / "z.npy", np.load(trained[0] / "z.npy")[ind])
    with serving(DashboardState(run)) as url:
        cols = {c["id"] for c in api(url + "api/info")["columns"]}
        assert "file:ctf/df1_A" in cols
        df = api(url + "api/color?column=file:ctf/df1_A")["values"]
        np.testing.assert_allclose(df, pset.ctf.defocus_u_A[ind], rtol=1e-5)
        assert api(url + "api/particle?index=3")["file_row"] == ind[3]
        res = api(url + "api/select", {"name": "few", "indices": [0, 1, 2]})
    out = run / "dashboard" / "selections" / "few"
    assert {Path(f).name for f in res["files"]} == {
        "few.pkl",
        "few.star",
        "few.cs",
        "few_complement.pkl",
        "few_complement.star",
        "few_complement.cs",
    }
    np.testing.assert_array_equal(read_index(out / "few.pkl"), ind[:3])
    got = load_particles(out / "few.cs", images="skip")
    np.testing.assert_allclose(got.ctf.defocus_u_A, pset.ctf.defocus_u_A[ind[:3]], rtol=1e-6)
    np.testing.assert_array_equal(read_index(out / "few_complement.pkl"), ind[3:])  # the run's other rows


def test_cryodrgn_run_explores_latents_without_maps(tmp_path, capsys):
    from cryoscape.io.cryodrgn import save_pickle

    run = tmp_path / "drgn"
    run.mkdir()
    save_pickle(np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32), run / "z.4.pkl")
    with serving(DashboardState(run)) as url:
        info = api(url + "api/info")
        assert info["n"] == 30 and info["epoch"] == 4 and not info["can_map"] and not info["has_images"]
        assert "cryoDRGN" in info["map_note"] and any("no config.yaml" in w for w in info["warnings"])
        status, _, body = request(url + "api/map", {"index": 0})
        assert status == 400 and "cryoDRGN" in json.loads(body)["error"]
        assert request(url + "api/thumbnail?index=0")[0] == 400
        res = api(url + "api/select", {"name": "s", "indices": [0, 5]})
    assert sorted(Path(f).name for f in res["files"]) == ["s.pkl", "s_complement.pkl"]
    np.testing.assert_array_equal(read_index(run / "dashboard" / "selections" / "s" / "s.pkl"), [0, 5])


BAD = [
    ("api/coords?embedding=umap", None, 400, "unknown embedding"),
    ("api/coords", None, 400, "missing parameter"),
    ("api/color?column=nope", None, 400, "unknown colour column"),
    ("api/thumbnail?index=x", None, 400, "must be an integer"),
    ("api/thumbnail?index=-1", None, 400, "out of range"),
    (f"api/particle?index={N}", None, 400, "out of range"),
    ("api/map", {"index": N}, 400, "out of range"),
    ("api/map", {"z": [1.0]}, 400, "needs 2 finite values"),
    ("api/map", {"z": ["a", 1]}, 400, "list of numbers"),
    ("api/map", {}, 400, "give 'index'"),
    ("api/lasso", {"embedding": "pca", "polygon": [[0, 0], [1, 1]]}, 400, "at least 3"),
    ("api/lasso", {"embedding": "pca", "polygon": "x"}, 400, "polygon"),
    ("api/select", {"name": "../up", "indices": [1]}, 400, "selection name"),
    ("api/select", {"name": "empty", "indices": []}, 400, "empty"),
    ("api/select", {"name": "bad", "indices": [N]}, 400, "indices must be"),
    ("api/select", {"name": "bad", "indices": [True]}, 400, "give 'polygon'"),
    ("files/maps/..%2Fconfig.yaml", None, 404, "no map"),
    ("api/nothing", None, 404, "no such page"),
    ("api/info", {}, 405, "GET"),
]


@pytest.mark.parametrize("path,body,status,message", BAD)
def test_bad_requests_are_json_errors(server, path, body, status, message):
    got, ctype, data = request(server[1] + path, body)
    assert got == status and ctype == "application/json"
    assert message in json.loads(data)["error"] and b"Traceback" not in data


def test_bad_bodies_and_hosts(server):
    url = server[1]
    for raw, ctype, message in (
        (b"{nope", "application/json", "not valid JSON"),
        (b"[1]", "application/json", "JSON object"),
        (b'{"index": 1}', "text/plain", "must be JSON"),
    ):
        status, _, data = request(url + "api/map", raw=raw, ctype=ctype)
        assert status == 400 and message in json.loads(data)["error"]
    status, _, data = request(url + "api/info", headers={"Host": "evil.example:80"})  # DNS rebinding
    assert status == 403 and "localhost" in json.loads(data)["error"]


def test_disk_errors_and_bugs_answer_one_json_line(server, monkeypatch, capsys):
    import errno

    from cryoscape.analysis import select

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "x.pkl")

    monkeypatch.setattr(select, "write_selection", full)
    status, _, data = request(server[1] + "api/select", {"name": "full", "indices": [1]})
    assert status == 500 and json.loads(data)["error"] == "x.pkl: No space left on device"
    monkeypatch.setattr(select, "write_selection", lambda *a, **k: 1 / 0)
    status, _, data = request(server[1] + "api/select", {"name": "bug", "indices": [1]})
    assert status == 500 and "internal error: ZeroDivisionError" in json.loads(data)["error"]
    assert "Traceback" in capsys.readouterr().err  # for the bug report, on the terminal


def test_refuses_non_local_bind_by_default(server):
    state = server[0]
    with pytest.raises(InputError, match="localhost only"):
        make_server(state, host="0.0.0.0", port=0)
    srv = make_server(state, host="0.0.0.0", port=0, allow_remote=True)  # --host given explicitly
    srv.server_close()
    busy = make_server(state, port=0)
    try:
        with pytest.raises(InputError, match="in use"):
            make_server(state, port=busy.server_address[1])
    finally:
        busy.server_close()


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert cli(["dashboard", str(tmp_path / "nowhere")]) == 2
    assert cli(["dashboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a heterogeneous training run" in err[1]
    assert all(line.startswith("cryoscape dashboard: error:") for line in err)


def test_cli_prints_url_and_stops_on_ctrl_c(trained):
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryoscape.cli.main", "dashboard", str(trained[0]), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://localhost:") and url.endswith("/")
        assert api(url + "api/info")["n"] == N
        proc.send_signal(signal.SIGINT)
        # the exit waits for the model loading in the background (torch's first import): on a
        # machine busy with other jobs and a cold disk cache that once took over 30 s in CI
        assert proc.wait(timeout=120) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_client_closing_early_is_not_reported(capsys):
    """A client that resets its connection leaves no traceback on the user's terminal."""
    from cryoscape.dashboard.server import DashboardServer

    server = DashboardServer.__new__(DashboardServer)  # handle_error needs no bound socket
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError:
        server.handle_error(None, ("127.0.0.1", 1))
    assert capsys.readouterr().err == ""
