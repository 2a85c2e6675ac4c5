"""Maps along a path through latent space: a principal component, a straight line, or the data graph.

--pc K: codes evenly spaced along PC K between its 5th and 95th percentiles. --line I J: a
straight line from particle I's code to particle J's. --graph A B [C ...]: the shortest path
through the nearest-neighbour graph of the codes (the cryoDRGN paper's graph traversal) visiting
anchor particles A, B, C in order; every step is between real particles, each linked to at most
--max-neighbors others closer than a threshold set for --avg-neighbors links on average.
--kmeans-anchors K uses the particles nearest K k-means centres as anchors, ordered along PC1.
Particle indices count from 0 in the run's particles. Writes DIR/z.path.txt (codes in path
order), DIR/path_ind.txt (particles, graph only) and DIR/vol_0000.mrc ... in path order.

example:
  cryoscape traverse run1 --pc 1 -n 10 -o run1/pc1_path
  cryoscape traverse run1 --graph 1203 88 4411 -o run1/graph_path
  cryoscape traverse run1 --kmeans-anchors 5 -o run1/km_path --skip-maps
"""

from __future__ import annotations

import argparse
import sys

from cryoscape.cli.common import setup_torch
from cryoscape.cli.options import add_device, add_epoch, add_outdir, add_seed, add_threads


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="output folder of cryoscape train")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--pc", type=int, metavar="K", help="along principal component K (1-based)")
    g.add_argument("--line", type=int, nargs=2, metavar=("I", "J"), help="straight line between particles I and J")
    g.add_argument("--graph", type=int, nargs="+", metavar="ANCHOR", help="graph path through these particles")
    g.add_argument("--kmeans-anchors", type=int, metavar="K", help="graph path through K k-means centres")
    add_outdir(p, required=True, metavar="DIR", help="output folder")
    p.add_argument("-n", type=int, default=10, help="points on a --pc or --line path (default: 10)")
    add_epoch(p)
    p.add_argument("--avg-neighbors", type=float, default=5.0, help="graph: mean links per particle (default: 5)")
    p.add_argument("--max-neighbors", type=int, default=10, help="graph: most links per particle (default: 10)")
    p.add_argument("--skip-maps", action="store_true", help="write the path only")
    add_device(p, purpose="maps")
    add_seed(p)
    add_threads(p)


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.traverse import PathSpec, run_path, write_path

    setup_torch(args.threads)
    spec = PathSpec(
        pc=args.pc,
        line=tuple(args.line) if args.line else None,
        seed=args.seed,
        graph=tuple(args.graph) if args.graph else None,
        kmeans_anchors=args.kmeans_anchors,
        n=args.n,
        avg_neighbors=args.avg_neighbors,
        max_neighbors=args.max_neighbors,
    )
    path = run_path(spec, args.run, args.epoch, maps=not args.skip_maps)
    if path.threshold is not None:
        print(
            f"cryoscape traverse: graph threshold {path.threshold:.4g}; anchors {list(path.anchors)}; "
            f"{len(path.z)} particles on the path",
            file=sys.stderr,
        )
    msg = write_path(path, args.outdir, args.run, args.epoch, args.device, maps=not args.skip_maps)
    print(f"cryoscape traverse: wrote {msg}", file=sys.stderr)
    return 0
