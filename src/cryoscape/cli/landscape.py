"""Volume-space landscape of a run: many maps sampled on the data, PCA of the maps, clusters, latent density.

Decodes maps at N k-means centres of RUN/z.npy (each the code of a real particle) at a small box,
masks them (union of thresholded maps), and writes into DIR (default RUN/landscape.<epoch>):
vol_pca.npy (volume-PC coordinates per map), vol_pca_particles.npy (per particle: those of its
nearest centre), labels.pkl (per-particle cluster, for `cryoscape select --labels`), mean.mrc,
mask.mrc, vpc1/ and vpc2/ (maps from -2 to +2 standard deviations along volume PCs 1 and 2),
clusters/ (cluster mean maps), all with their voxel size; the latent density as
-log(density / max) on latent PC1-PC2 and along paths (free_energy_pc12.npy, density.json: a
density of the embedding, not a physical free energy); PNG plots and landscape.json, which says
whether the maps form one connected path (connected components of their k-NN graph).

example:
  cryoscape landscape run1
  cryoscape landscape run1 --epoch 19 --n-maps 300 --box 48 -o run1/landscape
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryoscape.cli.common import setup_torch
from cryoscape.cli.options import add_device, add_epoch, add_outdir, add_seed, add_threads


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="output folder of cryoscape train")
    add_outdir(p, metavar="DIR", help="output folder (default: RUN/landscape.<epoch>)")
    add_epoch(p)
    p.add_argument("--n-maps", type=int, default=200, help="maps sampled at k-means centres of z (default: 200)")
    p.add_argument("--box", type=int, default=32, help="box of the sampled maps, even (default: 32)")
    p.add_argument("--n-pcs", type=int, default=10, help="volume PCs kept for clustering and the graph (default: 10)")
    p.add_argument("--n-clusters", type=int, default=5, help="clusters of the maps (Ward; default: 5)")
    p.add_argument("--mask", choices=("union", "mean"), default="union", help="mask of the maps (default: union)")
    p.add_argument("--neighbors", type=int, default=5, help="links per map in the path-check graph (default: 5)")
    add_device(p, purpose="maps")
    add_seed(p)
    add_threads(p)


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.landscape import LandscapeConfig
    from cryoscape.analysis.landscape_run import landscape_of_run, say

    cfg = LandscapeConfig(
        n_maps=args.n_maps,
        box=args.box,
        n_pcs=args.n_pcs,
        n_clusters=args.n_clusters,
        mask=args.mask,
        n_neighbors=args.neighbors,
        seed=args.seed,
    )
    cfg.check()
    setup_torch(args.threads)
    out = landscape_of_run(Path(args.run), cfg, Path(args.outdir) if args.outdir else None, args.epoch, args.device)
    say(f"done in {out.summary['seconds']['total']:.1f} s: see {out.outdir / 'landscape.json'}")
    return 0
