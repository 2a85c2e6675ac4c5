"""The dashboard's HTTP endpoints as plain functions: request in, :class:`Response` out.

Every bad request is answered ``{"error": "..."}`` with HTTP 400 (404 for unknown paths), never
a traceback. GET ``/api/info``, ``/api/coords?embedding=E``, ``/api/color?column=C``,
``/api/thumbnail?index=I`` (PNG), ``/api/particle?index=I``, ``/files/maps/NAME.mrc``; POST (JSON
bodies) ``/api/map`` ``{index}`` or ``{z}``, ``/api/lasso`` ``{embedding, polygon}`` and
``/api/select`` ``{name, embedding, polygon}`` or ``{name, indices}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cryoscape.errors import InputError

#: Selection names become file names: letters, digits, ``_ . -``, not starting with a dot.
NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}$")
MAP_FILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.mrc$")


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict = field(default_factory=dict)


class ApiError(Exception):
    """A request the server cannot answer; ``status`` 400 unless said otherwise."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_response(obj, status: int = 200) -> Response:
    return Response(status, "application/json", json.dumps(obj, allow_nan=False).encode())


def error_response(message: str, status: int = 400) -> Response:
    return json_response({"error": message}, status)


def _floats(a: np.ndarray) -> list:
    """Numbers to 6 significant digits (small JSON), NaN/Inf as null."""
    return [float(f"{x:.6g}") if np.isfinite(x) else None for x in np.asarray(a, np.float64).tolist()]


def _int(query: dict, key: str) -> int:
    try:
        return int(query[key])
    except KeyError:
        raise ApiError(f"missing parameter {key!r}") from None
    except (TypeError, ValueError):
        raise ApiError(f"parameter {key!r} must be an integer, got {query[key]!r}") from None


def _str(query: dict, key: str) -> str:
    v = query.get(key)
    if not isinstance(v, str) or not v:
        raise ApiError(f"missing parameter {key!r}")
    return v


def get_coords(state, q: dict) -> Response:
    """Drawn points of an embedding: ``index`` (particle), ``x``, ``y``; ``n`` = all particles."""
    emb = state.embedding(_str(q, "embedding"))
    xy = emb.coords[state.shown]
    return json_response(
        {
            "embedding": emb.id,
            "axes": list(emb.axes),
            "n": state.n,
            "index": state.shown.tolist(),
            "x": _floats(xy[:, 0]),
            "y": _floats(xy[:, 1]),
        }
    )


def get_color(state, q: dict) -> Response:
    """A colour column's values at the drawn points (same order as ``/api/coords``)."""
    col = state.column(_str(q, "column"))
    vals = col.get()
    out = {"column": col.id, "label": col.label, "kind": col.kind, "values": _floats(vals[state.shown])}
    if col.kind == "categorical":  # counts over every particle, not only those drawn
        cats, counts = np.unique(vals[np.isfinite(vals)], return_counts=True)
        out["categories"], out["counts"] = _floats(cats), counts.tolist()
    return json_response(out)


def get_thumbnail(state, q: dict) -> Response:
    from cryoscape.dashboard.thumbs import png_gray8, thumbnail

    png = png_gray8(thumbnail(state.image(_int(q, "index"))))
    return Response(200, "image/png", png, {"Cache-Control": "max-age=3600"})


def get_particle(state, q: dict) -> Response:
    return json_response(state.particle(_int(q, "index")))


def post_map(state, body: dict) -> Response:
    if "index" in body:
        return json_response(state.map_at(index=_int(body, "index")))
    if isinstance(body.get("z"), list):
        try:
            return json_response(state.map_at(z=[float(v) for v in body["z"]]))
        except (TypeError, ValueError):
            raise ApiError("'z' must be a list of numbers") from None
    raise ApiError("give 'index' (a particle) or 'z' (a latent code)")


def _polygon(body: dict) -> np.ndarray:
    poly = body.get("polygon")
    try:
        a = np.asarray(poly, np.float64)
    except (TypeError, ValueError):
        raise ApiError("'polygon' must be a list of [x, y] pairs") from None
    if a.ndim != 2 or a.shape[1] != 2 or len(a) < 3 or not np.isfinite(a).all():
        raise ApiError("'polygon' must be a list of at least 3 finite [x, y] pairs (data coordinates)")
    return a


def _indices(state, body: dict) -> np.ndarray:
    """The run particles a request selects: inside ``polygon`` (all particles) or ``indices``."""
    if "polygon" in body:
        return state.lasso(_str(body, "embedding"), _polygon(body))
    ind = body.get("indices")
    if not isinstance(ind, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ind):
        raise ApiError("give 'polygon' (with 'embedding') or 'indices' (a list of particle numbers)")
    a = np.unique(np.asarray(ind, np.int64))
    if len(a) and (a[0] < 0 or a[-1] >= state.n):
        raise ApiError(f"particle indices must be 0..{state.n - 1}")
    return a


def post_lasso(state, body: dict) -> Response:
    """How many particles (of all, not only those drawn) a lasso holds."""
    ind = _indices(state, body)
    return json_response({"count": len(ind), "n": state.n})


def post_select(state, body: dict) -> Response:
    name = body.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ApiError("selection name: 1-80 letters, digits, '_', '-' or '.', not starting with '.'")
    return json_response(state.save_selection(name, _indices(state, body)))


def get_map_file(state, name: str) -> Response:
    path = state.out_dir / "maps" / name
    if not MAP_FILE_RE.match(name) or not path.is_file():
        raise ApiError(f"no map {name!r}", 404)
    return Response(
        200, "application/octet-stream", path.read_bytes(), {"Content-Disposition": f'attachment; filename="{name}"'}
    )


GET: dict[str, Callable] = {
    "/api/info": lambda s, q: json_response(s.info()),
    "/api/coords": get_coords,
    "/api/color": get_color,
    "/api/thumbnail": get_thumbnail,
    "/api/particle": get_particle,
}
POST: dict[str, Callable] = {"/api/map": post_map, "/api/lasso": post_lasso, "/api/select": post_select}


def handle_api(state, method: str, path: str, query: dict, body: dict | None) -> Response:
    """Answer one API request; user errors become JSON 400."""
    table = GET if method == "GET" else POST
    if path.startswith("/files/maps/") and method == "GET":
        func = lambda s, q: get_map_file(s, path[len("/files/maps/") :])
    elif path in table:
        func = table[path]
    else:
        other = POST if method == "GET" else GET
        if path in other:
            return error_response(f"{path} takes {'POST' if method == 'GET' else 'GET'} requests", 405)
        return error_response(f"no such page: {path}", 404)
    try:
        return func(state, body if method == "POST" else query)
    except ApiError as e:
        return error_response(str(e), e.status)
    except InputError as e:
        return error_response(str(e))
