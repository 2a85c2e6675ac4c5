"""Convert particle metadata between RELION .star, cryoSPARC .cs and cryoDRGN pickles.

Reads INPUT (.star, .cs, or an image stack with --poses/--ctf) and writes any of: a star or cs
file (-o), cryoDRGN pose and CTF pickles (--poses-pkl, --ctf-pkl) and the indices into INPUT of
the particles written (--ind-pkl). A .cs from cryoSPARC needs -D/--box (the refinement box) only
if it lacks alignments3D/psize_A. Example:

  cryoscape convert J24_particles.cs -D 180 --poses-pkl poses.pkl --ctf-pkl ctf.pkl
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryoscape.cli.common import optics_fill, print_warnings
from cryoscape.cli.options import add_outdir, add_particles


def add_args(p: argparse.ArgumentParser) -> None:
    add_particles(p)
    add_outdir(p, metavar="OUT", aliases=("--out",), help="output particles: OUT.star (RELION 3.1) or OUT.cs")
    p.add_argument("--poses-pkl", help="output cryoDRGN pose pickle (rot, trans)")
    p.add_argument("--ctf-pkl", help="output cryoDRGN CTF pickle (N×9)")
    p.add_argument("--ind-pkl", help="output pickle of the indices into INPUT of the particles written")


def _check_outputs(args: argparse.Namespace) -> list[Path]:
    from cryoscape.errors import InputError

    outs = [Path(o) for o in (args.outdir, args.poses_pkl, args.ctf_pkl, args.ind_pkl) if o]
    src = Path(args.particles)
    if not outs:
        raise InputError("nothing to write: give -o, --poses-pkl, --ctf-pkl or --ind-pkl", src)
    for o in outs:
        if o.absolute() == src.absolute():
            raise InputError("output would overwrite the input", o)
        if not o.absolute().parent.is_dir():
            raise InputError("output folder does not exist", o.absolute().parent)
    if args.outdir and Path(args.outdir).suffix.lower() not in (".star", ".cs"):
        raise InputError("-o must end in .star or .cs", args.outdir)
    return outs


def main(args: argparse.Namespace) -> int:
    import numpy as np

    from cryoscape.errors import InputError
    from cryoscape.io.load import load_particles
    from cryoscape.io.write import (
        write_cryodrgn_ctf,
        write_cryodrgn_poses,
        write_index,
        write_particles,
    )

    _check_outputs(args)
    need_box = bool(args.poses_pkl or args.ctf_pkl or args.outdir)
    pset = load_particles(
        args.particles,
        datadir=args.datadir,
        poses=args.poses,
        ctf=args.ctf,
        ind=args.ind,
        box=args.box,
        apix=args.apix,
        optics=optics_fill(args),
        images="optional",
        need_box=need_box,
    )
    print_warnings("convert", pset)
    if args.poses_pkl and pset.rotations is None:
        if pset.source_format == "cs":
            raise InputError(
                f"no 3D alignments (alignments3D/pose) in {pset.source}; use a refinement job's particles or --poses",
                pset.source,
            )
        raise InputError("no poses (_rlnAngleRot/Tilt/Psi) to write; pass --poses", pset.source)
    if args.ctf_pkl and pset.ctf is None:
        raise InputError("no CTF parameters to write; pass --ctf", pset.source)
    done = []
    if args.outdir:
        write_particles(pset, args.outdir)
        done.append(args.outdir)
    if args.poses_pkl:
        write_cryodrgn_poses(pset, args.poses_pkl)
        done.append(args.poses_pkl)
    if args.ctf_pkl:
        write_cryodrgn_ctf(pset, args.ctf_pkl)
        done.append(args.ctf_pkl)
    if args.ind_pkl:
        sel = pset.info.subset_of_source
        write_index(np.arange(pset.n) if sel is None else sel, args.ind_pkl)
        done.append(args.ind_pkl)
    print(f"converted {pset.n} particles from {args.particles}: wrote {', '.join(done)}")
    return 0
