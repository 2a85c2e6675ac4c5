"""Select particles by latent cluster, threshold or index list; write star/cs subsets and index pickles.

--kmeans K: one subset per k-means cluster (the same clusters as `cryoscape analyze --ksample K`
with the same --seed; or pass its labels with --labels). --clusters C ... keeps the union of
those clusters instead (and writes the complement). --gmm K: the same with a Gaussian mixture.
--threshold DIM OP VALUE: particles whose z[DIM] (0-based; or `norm` for |z|, `pcK` for the
K-th principal component) compares with VALUE; OP is one of < <= > >= (quote them) or lt le
gt ge. --ind FILE: an index file (.pkl/.npy) of the run's particles. Selections other than
per-cluster subsets also write NAME_complement.

Indices are mapped through the run's --ind to rows of the original particle file, and each
selection is written as SELDIR/NAME.pkl (cryoDRGN index into the original file), NAME.star
(star or cs input) and NAME.cs (cs input).

example:
  cryoscape select run1 --kmeans 20 -o run1/sel
  cryoscape select run1 --kmeans 20 --clusters 3 7 -o run1/sel_bad
  cryoscape select run1 --threshold pc1 gt 1.5 -o run1/sel_pc1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryoscape.cli.common import add_seed_arg

_OP_ALIASES = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="output folder of cryoscape train")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--kmeans", type=int, metavar="K", help="k-means clusters of the codes")
    g.add_argument("--gmm", type=int, metavar="K", help="Gaussian-mixture clusters of the codes")
    g.add_argument("--threshold", nargs=3, metavar=("DIM", "OP", "VALUE"), help="e.g. pc1 gt 1.5, 0 '<' -2, norm ge 3")
    g.add_argument("--ind", metavar="FILE", help="index file (.pkl/.npy) of the run's particles")
    p.add_argument("--clusters", type=int, nargs="+", metavar="C", help="with --kmeans/--gmm: keep these clusters")
    p.add_argument("--labels", metavar="PKL",
                   help="with --kmeans/--gmm: cluster labels to use (e.g. analyze's labels.pkl)")
    p.add_argument("-o", "--outdir", metavar="SELDIR", required=True, help="output folder")
    p.add_argument("--epoch", type=int, help="use z.N.npy (default: the last)")
    add_seed_arg(p)


def _labels(args: argparse.Namespace, z):
    from cryoscape.analysis.latent import cluster
    from cryoscape.errors import InputError
    from cryoscape.io.cryodrgn import read_index

    if args.labels:
        labels = read_index(args.labels)
        if len(labels) != len(z):
            raise InputError(f"{len(labels)} labels for {len(z)} particles", args.labels)
        return labels
    k = args.kmeans if args.kmeans is not None else args.gmm
    return cluster(z, k, args.seed, "kmeans" if args.kmeans is not None else "gmm").labels


def selections(args: argparse.Namespace, z) -> tuple[dict, bool]:
    """``({name: run-relative indices}, write complements?)``."""
    import numpy as np

    from cryoscape.analysis import select as sel
    from cryoscape.errors import InputError
    from cryoscape.io.cryodrgn import read_index

    if args.ind:
        ind = read_index(args.ind)
        if len(ind) and (ind.min() < 0 or ind.max() >= len(z)):
            raise InputError(f"indices must be 0..{len(z) - 1} (the run's particles)", args.ind)
        return {Path(args.ind).stem: ind}, True
    if args.threshold:
        dim, op, value = args.threshold
        op = _OP_ALIASES.get(op, op)
        try:
            v = float(value)
        except ValueError:
            raise InputError(f"threshold value {value!r} is not a number") from None
        pcs = None
        if dim.lower().startswith("pc"):
            from cryoscape.analysis.latent import pca

            pcs = pca(z).coords
        vals = sel.threshold_values(z, dim, pcs)
        op_name = {v: k for k, v in _OP_ALIASES.items()}.get(op, op)
        name = f"{dim}_{op_name}_{value}"
        return {name: sel.threshold_select(vals, op, v)}, True
    if args.kmeans is None and args.gmm is None:
        raise InputError("choose --kmeans, --gmm, --threshold or --ind")
    labels = np.asarray(_labels(args, z))
    return sel.cluster_selections(labels, args.clusters), args.clusters is not None


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.latent import read_run_latents
    from cryoscape.analysis.select import run_particles, write_selections
    from cryoscape.errors import InputError
    from cryoscape.io.runlock import run_lock

    if args.clusters is not None and args.kmeans is None and args.gmm is None:
        raise InputError("--clusters needs --kmeans or --gmm")
    lat = read_run_latents(args.run, args.epoch)
    rp = run_particles(args.run)
    if rp.n_run is not None and rp.n_run != len(lat.z):
        raise InputError(f"config.yaml says {rp.n_run} particles but {lat.path.name} has {len(lat.z)}", args.run)
    sels, with_comp = selections(args, lat.z)
    with run_lock(args.outdir, "select"):
        counts = write_selections(sels, len(lat.z), Path(args.outdir), rp, with_comp)
    for name, n in counts.items():
        print(f"{name}: {n} particles", file=sys.stderr)
    print(f"cryoscape select: wrote {len(counts)} selection(s) to {args.outdir}", file=sys.stderr)
    return 0
