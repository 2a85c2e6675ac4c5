"""Convert particle metadata between RELION .star, cryoSPARC .cs and cryoDRGN pickles.

Reads INPUT (.star, .cs, or an image stack with --poses/--ctf) and writes any of: a star or cs
file (-o), cryoDRGN pose and CTF pickles (--poses-pkl, --ctf-pkl) and the indices into INPUT of
the particles written (--ind-pkl). A .cs from cryoSPARC needs -D/--box (the refinement box) only
if it lacks alignments3D/psize_A. Example:

  cryoscape convert J24_particles.cs -D 180 --poses-pkl poses.pkl --ctf-pkl ctf.pkl
"""

from __future__ import annotations

import argparse

from cryoscape.cli.common import particle_options, print_warnings
from cryoscape.cli.options import add_outdir, add_particles


def add_args(p: argparse.ArgumentParser) -> None:
    add_particles(p)
    add_outdir(p, metavar="OUT", aliases=("--out",), help="output particles: OUT.star (RELION 3.1) or OUT.cs")
    p.add_argument("--poses-pkl", help="output cryoDRGN pose pickle (rot, trans)")
    p.add_argument("--ctf-pkl", help="output cryoDRGN CTF pickle (N×9)")
    p.add_argument("--ind-pkl", help="output pickle of the indices into INPUT of the particles written")


def main(args: argparse.Namespace) -> int:
    from cryoscape.io.convert import ConvertTargets, write_converted
    from cryoscape.io.load import load_particles

    targets = ConvertTargets(args.outdir, args.poses_pkl, args.ctf_pkl, args.ind_pkl)
    targets.check(args.particles)
    pset = load_particles(args.particles, **particle_options(args), images="optional", need_box=targets.need_box)
    print_warnings("convert", pset)
    done = write_converted(pset, targets)
    print(f"converted {pset.n} particles from {args.particles}: wrote {', '.join(done)}")
    return 0
