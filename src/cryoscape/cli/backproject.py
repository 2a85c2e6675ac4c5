"""Reconstruct a map from posed particles by Fourier-space backprojection, with half-maps and FSC.

Each image is Fourier transformed, centred by its shift, multiplied by its CTF and inserted as a
central slice; the map is the Wiener-filtered ratio sum(CTF*F)/(sum(CTF^2) + 1/SSNR), the SSNR
per shell measured from the half-map FSC (--no-wiener: a small constant instead). Particles are split
into two halves (by _rlnRandomSubset or cryoSPARC's alignments3D/split when the file has it, else
at random with --seed); the command writes OUT.mrc (all particles), OUT_half1.mrc, OUT_half2.mrc,
and the gold-standard FSC between the halves as OUT_fsc.txt and OUT_fsc.png, and prints the
resolution at FSC 0.143 and 0.5.

Images are expected white-on-black (RELION's convention); use --invert for black-on-white data.

example:
  cryoscape backproject particles.star -o backproject.mrc
  cryoscape backproject particles.cs --datadir J24 -o bp.mrc --first 10000 --no-ctf
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryoscape.cli.common import particle_options, print_warnings, setup_torch
from cryoscape.cli.options import add_device, add_outdir, add_particles, add_seed, add_threads


def add_args(p: argparse.ArgumentParser) -> None:
    add_particles(p)
    add_outdir(
        p,
        required=True,
        metavar="OUT",
        aliases=("--output",),
        help="output map OUT.mrc (half-maps and FSC go beside it)",
    )
    p.add_argument("--first", type=int, metavar="N", help="use only the first N particles (after --ind)")
    p.add_argument("--no-ctf", action="store_true", help="ignore the CTF (e.g. for CTF-free simulations)")
    p.add_argument(
        "--invert",
        "--uninvert-data",
        dest="invert",
        action="store_true",
        help="flip the image sign first: for black-on-white data (cryoDRGN's --uninvert-data)",
    )
    p.add_argument("--batch-size", type=int, default=256, help="images per batch (default: 256)")
    p.add_argument(
        "--reg",
        type=float,
        default=1e-2,
        help="floor of the Wiener regulariser as a fraction of the mean CTF^2 weight (default: 0.01)",
    )
    p.add_argument(
        "--no-window",
        action="store_true",
        help="do not taper images with a soft circular window (radius 0.85-0.99 of the box)",
    )
    p.add_argument(
        "--gridding",
        action="store_true",
        help="divide out the interpolation envelope (more accurate on high-SNR data, noisier edges on real data)",
    )
    p.add_argument(
        "--no-wiener", action="store_true", help="do not filter the full map with the SSNR measured by the half-map FSC"
    )
    add_device(p)
    add_seed(p)
    add_threads(p)


def _check_args(args: argparse.Namespace) -> None:
    from cryoscape.errors import InputError

    if args.first is not None and args.first < 2:
        raise InputError(f"--first {args.first}: need at least 2 particles for two half-maps")
    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: must be at least 1")
    if args.reg < 0:
        raise InputError(f"--reg {args.reg}: must be >= 0")
    out_dir = Path(args.outdir).resolve().parent
    if not out_dir.is_dir():
        raise InputError("output folder does not exist", out_dir)


def main(args: argparse.Namespace) -> int:
    _check_args(args)
    from tqdm import tqdm

    from cryoscape.io.load import load_particles
    from cryoscape.recon.backproject import BackprojectConfig, posed_halves, reconstruct_halves, write_reconstruction

    device = setup_torch(args.threads, args.device)
    pset = load_particles(args.particles, **particle_options(args), use_ctf=not args.no_ctf, images="require")
    print_warnings("backproject", pset)
    stack, which = posed_halves(pset, use_ctf=not args.no_ctf, seed=args.seed, first=args.first)
    cfg = BackprojectConfig(
        use_ctf=not args.no_ctf,
        invert=args.invert,
        batch_size=args.batch_size,
        reg=args.reg,
        wiener=not args.no_wiener,
        window=not args.no_window,
        gridding=args.gridding,
        device=device,
    )
    n = len(which)
    print(f"backprojecting {n} particles, box {stack.box}, {stack.psize_A:.4f} Å/px on {device}")
    with tqdm(total=n, unit="img", desc="backproject") as bar:
        rec = reconstruct_halves(stack, cfg, which, progress=bar.update)
    print("\n".join(write_reconstruction(rec, args.outdir)))
    return 0
