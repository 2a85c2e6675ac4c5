"""Explore a trained run's latent space: PCA, UMAP, k-means, maps at cluster centres and along PCs, report.

Reads RUN/z.npy (z.<N>.npy and weights.<N>.pt with --epoch N) written by `cryoscape train`, or a
cryoDRGN run folder (z.<N>.pkl; latent analysis only, no maps). Writes into DIR (default
RUN/analyze.<epoch>): z_pca.npy, umap.npy (when umap-learn is installed), kmeans<K>/labels.pkl,
centers.txt, centers_ind.txt (particles nearest the centres) and vol_0000.mrc ... at the
centres, pc<i>/z_values.txt and maps along each PC (5th to 95th percentile), PNG plots and a
self-contained report.html. --gt SIMDIR (a `cryoscape simulate` folder) adds the per-image FSC
against the ground-truth maps. --landscape adds the volume landscape and the latent density in
DIR/landscape (as `cryoscape landscape`, with its defaults) and its plots in the report.

example:
  cryoscape analyze run1
  cryoscape analyze run1 --epoch 19 --ksample 10 --gmm -o run1/analysis
  cryoscape analyze run1 --gt sim_demo --skip-umap
  cryoscape analyze run1 --landscape
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryoscape.cli.common import setup_torch
from cryoscape.cli.options import add_device, add_epoch, add_outdir, add_seed, add_threads


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="output folder of cryoscape train (or a cryoDRGN run)")
    add_outdir(p, metavar="DIR", help="output folder (default: RUN/analyze.<epoch>)")
    add_epoch(p)
    p.add_argument("--ksample", type=int, default=20, help="number of k-means clusters / centre maps (default: 20)")
    p.add_argument("--pc", type=int, default=2, help="number of PCs to traverse (default: 2)")
    p.add_argument("--n-per-pc", type=int, default=10, help="maps along each PC (default: 10)")
    p.add_argument("--gmm", action="store_true", help="also cluster with a Gaussian mixture (gmm<K>/)")
    p.add_argument("--skip-umap", action="store_true", help="no UMAP (it is slow for many particles)")
    p.add_argument("--skip-maps", action="store_true", help="latent analysis only; no maps")
    p.add_argument("--gt", metavar="SIMDIR", help="simulated dataset folder: per-image FSC vs ground truth")
    p.add_argument("--gt-sample", type=int, default=128, help="particles in the per-image FSC (default: 128)")
    p.add_argument("--landscape", action="store_true", help="also the volume landscape and latent density")
    p.add_argument("--landscape-maps", type=int, default=200, help="maps sampled for --landscape (default: 200)")
    add_device(p, purpose="maps")
    add_seed(p)
    add_threads(p)


def main(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from cryoscape.analysis.latent import read_run_latents
    from cryoscape.analysis.pipeline import AnalyzeConfig, run_analysis, say
    from cryoscape.errors import InputError
    from cryoscape.io.runlock import run_lock

    for name in ("ksample", "pc", "n_per_pc", "gt_sample", "landscape_maps"):
        if getattr(args, name) < (0 if name == "pc" else 1):
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    setup_torch(args.threads)
    run_dir = Path(args.run)
    lat = read_run_latents(run_dir, args.epoch)
    label = "" if lat.epoch is None else f".{lat.epoch}"
    outdir = Path(args.outdir) if args.outdir else run_dir / f"analyze{label}"
    names = {f.name for f in fields(AnalyzeConfig)} - {"command"}
    cfg = AnalyzeConfig(**{k: v for k, v in vars(args).items() if k in names}, command=_typed_command())
    with run_lock(outdir, "analyze"):
        say(f"{lat.z.shape[0]} particles, zdim {lat.z.shape[1]} from {lat.path}; writing to {outdir}")
        run_analysis(cfg, run_dir, lat, outdir)
    say(f"done: open {outdir / 'report.html'}")
    return 0


def _typed_command() -> str:
    """The command line as typed in the shell ("" when called from Python; the report then
    shows an equivalent one)."""
    import shlex

    if sys.argv[1:2] == ["analyze"]:
        return "cryoscape " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return ""
