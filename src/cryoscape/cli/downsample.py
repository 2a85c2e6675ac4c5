"""Downsample particle images by Fourier cropping to a smaller box.

Reads a .mrcs/.mrc stack, a .txt list of stacks, a RELION .star or a cryoSPARC .cs, crops every
image's Fourier transform to the central D×D frequencies and writes one new stack, chunk by
chunk (bounded memory whatever the number of particles). The pixel size grows by the ratio of
the boxes. For a .star or .cs input, the matching metadata is written next to the output
(out.star / out.cs, or --out-star / --out-cs) with image names pointing into the new stack and
shifts in Å unchanged.

example: cryoscape downsample particles.star -D 128 -o particles.128.mrcs
"""

from __future__ import annotations

import argparse

from cryoscape.cli.common import optics_fill, print_warnings
from cryoscape.cli.options import add_outdir, add_particles


def add_args(p: argparse.ArgumentParser) -> None:
    add_particles(p, metadata=False)  # no input -D/--box: here -D is the new box
    p.add_argument("-D", "--box", type=int, required=True, help="new box size in px (even, at most the input box)")
    add_outdir(p, required=True, metavar="OUT", aliases=("--out",), help="output image stack (.mrcs)")
    p.add_argument("--chunk", type=int, help="images per chunk (default: up to 1000, fewer so a chunk stays ~32 MB)")
    p.add_argument("--out-star", help="output .star (default: OUT with .star suffix; star input only)")
    p.add_argument("--out-cs", help="output .cs (default: OUT with .cs suffix; cs input only)")


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cryoscape.data.downsample import plan_downsample

    job = plan_downsample(
        args.particles,
        args.outdir,
        args.box,
        out_star=args.out_star,
        out_cs=args.out_cs,
        datadir=args.datadir,
        apix=args.apix,
        optics=optics_fill(args),
    )
    if job.pset is not None:
        print_warnings("downsample", job.pset)
    with tqdm(total=len(job.images), unit="img", desc=f"downsample {job.images.box}->{args.box}") as bar:
        psize_new = job.run(chunk=args.chunk, progress=bar.update)
    print(f"wrote {len(job.images)} images of {args.box} px, {psize_new:.4f} Å/px to {job.out}")
    if job.psize_A is None:
        print("note: no single input pixel size (header voxel size left 0); pass --apix to record one")
    if job.meta_out is not None:
        print(f"wrote {job.meta_out}")
    return 0
