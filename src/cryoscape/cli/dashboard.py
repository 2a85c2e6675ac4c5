"""Explore a trained run in a local web app: latent space, particle images, maps, selections.

Serves a page on http://localhost:8050/ showing the latent codes (PCA, or UMAP from a
`cryoscape analyze` folder) coloured by cluster, |z| or any numeric column of the original
star/cs file (defocus, class...). Hovering a point shows its particle image; clicking it makes
the map at its code (shown as an isosurface, kept as RUN/dashboard/maps/particle_<i>.mrc);
a lasso selects every particle inside it, drawn or not, and "Save selection" writes
RUN/dashboard/selections/NAME/ (NAME.pkl, NAME.star, NAME.cs for cs input, and the complement),
like `cryoscape select`.

The server listens on localhost only. On a cluster node, forward the port and open the URL on
your own machine:  ssh -L 8050:localhost:8050 NODE   then  http://localhost:8050/
Stop it with Ctrl-C.

example:
  cryoscape dashboard run1
  cryoscape dashboard run1 --epoch 19 --analysis run1/analyze.19 --port 0 --open
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import add_device, add_epoch, add_seed


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="output folder of cryoscape train (or a cryoDRGN run: no maps)")
    add_epoch(p)
    p.add_argument(
        "--analysis",
        metavar="DIR",
        help="cryoscape analyze folder for UMAP and cluster labels (default: RUN/analyze.<epoch> if present)",
    )
    p.add_argument("--port", type=int, default=8050, help="port (default: 8050; 0: any free port)")
    p.add_argument(
        "--host",
        help="address to listen on (default: 127.0.0.1). Another address exposes "
        "the run to anyone who can reach this machine",
    )
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    add_device(p, purpose="maps")
    p.add_argument(
        "--max-points", type=int, default=10000, help="particles drawn at most (a random subset beyond; default: 10000)"
    )
    add_seed(p)


def main(args: argparse.Namespace) -> int:
    from cryoscape.dashboard.server import plotly_js, serve
    from cryoscape.dashboard.state import DashboardState, say

    plotly_js()  # fail now, not in the browser, when plotly is missing
    if args.device:
        from cryoscape.device import resolve_device

        resolve_device(args.device)
    state = DashboardState(args.run, args.epoch, args.analysis, args.device, args.max_points, args.seed)
    for w in state.warnings:
        say(f"warning: {w}")
    serve(state, args.host, args.port, open_browser=args.open)
    return 0
