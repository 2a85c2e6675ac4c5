"""The dashboard's web server: the standard library's threading HTTP server on localhost.

It binds to 127.0.0.1 unless told otherwise, answers only requests addressed to a loopback name
(a guard against DNS rebinding) and only JSON POSTs (a cross-site form cannot write selections).
The page, its script and plotly.js are served from installed package data; nothing is fetched
from the internet.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import socket
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

from cryoscape.dashboard.api import Response, error_response, handle_api
from cryoscape.errors import InputError

DEFAULT_PORT = 8050
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
MAX_BODY_BYTES = 8 * 2**20
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css", "index.html": "text/html"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plotly_js() -> bytes:
    """plotly.js as bundled in the plotly Python package (served locally, never from a CDN)."""
    try:
        return (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise InputError("the dashboard needs plotly: pip install plotly") from None


def static_file(name: str) -> Response | None:
    """A file of the page: package data, plotly.js or the isosurface viewer."""
    cache = {"Cache-Control": "max-age=3600"}
    if name == "plotly.min.js":
        return Response(200, "text/javascript", plotly_js(), cache)
    if name == "isoviewer.js":
        from cryoscape.viz.isosurface import viewer_js

        return Response(200, "text/javascript", viewer_js().encode(), cache)
    if name in STATIC:
        data = (resources.files("cryoscape.dashboard") / "static" / name).read_bytes()
        return Response(200, STATIC[name] + "; charset=utf-8", data, {"Cache-Control": "no-cache"})
    return None


def failure_response(e: Exception) -> Response:
    """An OSError with an errno (full disk, permissions) is the user's environment: one line.
    Anything else is a bug: the page gets one line, the terminal the traceback."""
    if isinstance(e, OSError) and e.errno is not None:
        return error_response(f"{str(e.filename) + ': ' if e.filename else ''}{e.strerror}", 500)
    traceback.print_exc(file=sys.stderr)
    return error_response(f"internal error: {type(e).__name__}: {e}", 500)


class Handler(BaseHTTPRequestHandler):
    """Routes GET/POST to the page files and :func:`~cryoscape.dashboard.api.handle_api`."""

    server: DashboardServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        pass  # one line per request would drown the URL and warnings users need to see

    def _send(self, r: Response) -> None:
        self.send_response(r.status)
        self.send_header("Content-Type", r.content_type)
        self.send_header("Content-Length", str(len(r.body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in r.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(r.body)

    def _host_ok(self) -> bool:
        if not self.server.check_host:
            return True
        host = urlsplit("//" + (self.headers.get("Host") or "")).hostname or ""
        return is_loopback(host)

    def _answer(self, method: str, body: dict | None) -> Response:
        url = urlsplit(self.path)
        if not self._host_ok():
            return error_response("requests must be addressed to localhost", 403)
        if method == "GET" and url.path in ("/", "/index.html"):
            return static_file("index.html") or error_response("no such file: /index.html", 404)
        if method == "GET" and url.path.startswith("/static/"):
            return static_file(url.path[len("/static/") :]) or error_response(f"no such file: {url.path}", 404)
        query = dict(parse_qsl(url.query))
        return handle_api(self.server.state, method, url.path, query, body)

    def _guarded(self, method: str, body: dict | None = None) -> None:
        try:
            r = self._answer(method, body)
        except InputError as e:
            r = error_response(str(e))
        except Exception as e:
            r = failure_response(e)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(r)  # fails when the browser went away (page reloaded mid-request)

    def do_GET(self) -> None:
        self._guarded("GET")

    def do_POST(self) -> None:
        body, problem = self._read_json()
        if problem:
            self._send(error_response(problem))
        else:
            self._guarded("POST", body)

    def _read_json(self) -> tuple[dict | None, str]:
        """(body, "") or (None, what is wrong with it)."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            return None, f"request body must be 0..{MAX_BODY_BYTES} bytes"
        raw = self.rfile.read(length) if length else b""
        if ctype != "application/json":
            return None, "POST bodies must be JSON (Content-Type: application/json)"
        try:
            body = json.loads(raw or b"{}")
        except ValueError as e:
            return None, f"request body is not valid JSON: {e}"
        return (body, "") if isinstance(body, dict) else (None, "request body must be a JSON object")


class DashboardServer(ThreadingHTTPServer):
    """Serves one :class:`~cryoscape.dashboard.state.DashboardState`."""

    daemon_threads = True

    def __init__(self, state, host: str, port: int, check_host: bool) -> None:
        self.state, self.check_host = state, check_host
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    def handle_error(self, request, client_address) -> None:
        """A browser that closes its connection early (a reload, a cancelled fetch) is routine, not
        an error worth a traceback; anything else is reported as the standard library does."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        """The address to open: localhost for the loopback, the machine's name for all interfaces."""
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        elif host == "127.0.0.1":
            host = "localhost"
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def make_server(
    state, host: str = "127.0.0.1", port: int = DEFAULT_PORT, allow_remote: bool = False
) -> DashboardServer:
    """Bind the server (``port`` 0: any free port). A non-loopback ``host`` needs
    ``allow_remote``: the dashboard has no login and writes into the run folder."""
    local = is_loopback(host)
    if not local and not allow_remote:
        raise InputError(
            f"refusing to serve on {host!r}: the dashboard binds to localhost only "
            "(pass --host explicitly to override, or use ssh -L to reach it)"
        )
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be 0..65535, got {port}")
    try:
        return DashboardServer(state, host, port, check_host=local)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} is in use; pass --port 0 for any free port") from None
        raise InputError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None


def serve(state, host: str | None = None, port: int = DEFAULT_PORT, open_browser: bool = False) -> None:
    """Serve ``state`` until Ctrl-C, holding the lock on its folder (:func:`folder_lock`).
    ``host`` None: 127.0.0.1; any other given address is allowed, with a warning."""
    import threading

    from cryoscape.dashboard.state import say

    if host is not None and host not in LOOPBACK_NAMES:
        say(
            f"warning: listening on {host}: anyone who can reach this machine can see the run "
            "and write into its folder (there is no login)"
        )
    with folder_lock(state.out_dir):
        server = make_server(state, host or "127.0.0.1", port, allow_remote=host is not None)
        threading.Thread(target=state.maps.warm_up, daemon=True).start()
        print(server.url, flush=True)
        say(f"serving {state.n} particles at {server.url} (Ctrl-C to stop)")
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        try:
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            print(file=sys.stderr)
            say("stopped")
        finally:
            server.server_close()


def folder_lock(out_dir) -> contextlib.ExitStack:
    """The lock on RUN/dashboard, where selections and maps are saved: a second dashboard on the
    same run is refused; a run folder we cannot write into is still shown (saving will fail)."""
    from cryoscape.dashboard.state import say
    from cryoscape.io.runlock import FolderBusy, run_lock

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(run_lock(out_dir, "dashboard"))
    except FolderBusy:
        raise
    except InputError as e:
        say(f"warning: {e}; selections and maps cannot be saved")
    return stack
