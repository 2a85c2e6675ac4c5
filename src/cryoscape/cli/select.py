"""Select particles by latent cluster, threshold or index list; write star/cs subsets and index pickles.

--kmeans K: one subset per k-means cluster (the same clusters as `cryoscape analyze --ksample K`
with the same --seed; or pass its labels with --labels). --clusters C ... keeps the union of
those clusters instead (and writes the complement). --gmm K: the same with a Gaussian mixture.
--threshold DIM OP VALUE: particles whose z[DIM] (0-based; or `norm` for |z|, `pcK` for the
K-th principal component) compares with VALUE; OP is one of < <= > >= (quote them) or lt le
gt ge. --ind FILE: an index file (.pkl/.npy) of the run's particles. --junk: score how well the
model explains each image (see docs/states.md) and write `keep` and `junk` subsets, with the
scores in junk_scores.txt and their histogram and threshold (--junk-threshold) in
junk_scores.png. Selections other than per-cluster and junk subsets also write NAME_complement.

Indices are mapped through the run's --ind to rows of the original particle file, and each
selection is written as SELDIR/NAME.pkl (cryoDRGN index into the original file), NAME.star
(star or cs input) and NAME.cs (cs input).

example:
  cryoscape select run1 --kmeans 20 -o run1/sel
  cryoscape select run1 --kmeans 20 --clusters 3 7 -o run1/sel_bad
  cryoscape select run1 --threshold pc1 gt 1.5 -o run1/sel_pc1
  cryoscape select run1 --junk -o run1/sel_junk
"""

from __future__ import annotations

import argparse
import sys

from cryoscape.cli.options import add_device, add_epoch, add_junk_threshold, add_outdir, add_seed


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="output folder of cryoscape train")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--kmeans", type=int, metavar="K", help="k-means clusters of the codes")
    g.add_argument("--gmm", type=int, metavar="K", help="Gaussian-mixture clusters of the codes")
    g.add_argument("--threshold", nargs=3, metavar=("DIM", "OP", "VALUE"), help="e.g. pc1 gt 1.5, 0 '<' -2, norm ge 3")
    g.add_argument("--ind", metavar="FILE", help="index file (.pkl/.npy) of the run's particles")
    g.add_argument("--junk", action="store_true", help="keep/junk subsets from how well the model explains each image")
    add_junk_threshold(p)
    p.add_argument("--clusters", type=int, nargs="+", metavar="C", help="with --kmeans/--gmm: keep these clusters")
    p.add_argument(
        "--labels", metavar="PKL", help="with --kmeans/--gmm: cluster labels to use (e.g. analyze's labels.pkl)"
    )
    add_outdir(p, required=True, metavar="SELDIR", help="output folder")
    add_epoch(p, reads="z.N.npy")
    add_seed(p)
    add_device(p, purpose="the junk score")


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.select import SelectConfig, select_run

    device = "cpu"
    if args.junk:
        from cryoscape.cli.common import setup_torch

        device = setup_torch(None, args.device)
    cfg = SelectConfig(
        kmeans=args.kmeans,
        gmm=args.gmm,
        ind=args.ind,
        labels=args.labels,
        seed=args.seed,
        junk=args.junk,
        junk_threshold=args.junk_threshold,
        device=device,
        threshold=tuple(args.threshold) if args.threshold else None,
        clusters=tuple(args.clusters) if args.clusters is not None else None,
    )
    counts = select_run(args.run, args.outdir, cfg, args.epoch)
    for name, n in counts.items():
        print(f"{name}: {n} particles", file=sys.stderr)
    print(f"cryoscape select: wrote {len(counts)} selection(s) to {args.outdir}", file=sys.stderr)
    return 0
