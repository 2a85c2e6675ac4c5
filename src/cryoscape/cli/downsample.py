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
from pathlib import Path

from cryoscape.cli.common import add_particle_args, optics_fill, print_warnings

METADATA_SUFFIXES = (".star", ".cs")


def add_args(p: argparse.ArgumentParser) -> None:
    add_particle_args(p, metadata=False)  # no input -D/--box: here -D is the new box
    p.add_argument("-D", "--box", type=int, required=True, help="new box size in px (even, at most the input box)")
    p.add_argument("-o", "--out", required=True, help="output image stack (.mrcs)")
    p.add_argument("--chunk", type=int, help="images per chunk (default: up to 1000, fewer so a chunk stays ~32 MB)")
    p.add_argument("--out-star", help="output .star (default: OUT with .star suffix; star input only)")
    p.add_argument("--out-cs", help="output .cs (default: OUT with .cs suffix; cs input only)")


def _metadata_out(args: argparse.Namespace, kind: str) -> Path:
    given = args.out_star if kind == ".star" else args.out_cs
    return Path(given) if given else Path(args.out).with_suffix(kind)


def main(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np
    from tqdm import tqdm

    from cryoscape.data.downsample import check_box, downsample_stack
    from cryoscape.errors import InputError
    from cryoscape.io.images import ImageSource

    src = Path(args.particles)
    kind = src.suffix.lower()
    out = Path(args.out)
    if (args.out_star and kind != ".star") or (args.out_cs and kind != ".cs"):
        raise InputError("--out-star goes with a .star input and --out-cs with a .cs input", src)
    pset = None
    if kind in METADATA_SUFFIXES:
        from cryoscape.io.load import load_particles

        if _metadata_out(args, kind).absolute() == src.absolute():
            raise InputError(f"output metadata would overwrite the input; choose another -o or --out-{kind[1:]}", src)
        pset = load_particles(src, datadir=args.datadir, box=None, apix=args.apix,
                              optics=optics_fill(args))
        images = pset.images
        if images is None:  # readers record why (missing stacks, no image column)
            why = "; ".join(pset.extra.get("warnings", [])) or "no particle images referenced"
            raise InputError(why, src)
        print_warnings("downsample", pset)
        # the stack header holds one pixel size; per-particle sizes go to the metadata
        psize_A = float(pset.psize_A[0]) if len(np.unique(pset.psize_A)) == 1 else None
    else:
        images = ImageSource.from_file(src)
        psize_A = args.apix if args.apix is not None else images.header_psize_A
    check_box(images.box, args.box, path=src)
    with tqdm(total=len(images), unit="img", desc=f"downsample {images.box}->{args.box}") as bar:
        psize_new = downsample_stack(images, out, args.box, psize_A=psize_A or 0.0,
                                     chunk=args.chunk, progress=bar.update)
    print(f"wrote {len(images)} images of {args.box} px, {psize_new:.4f} Å/px to {out}")
    if psize_A is None:
        print("note: no single input pixel size (header voxel size left 0); pass --apix to record one")
    if pset is not None:
        from cryoscape.io.write import write_particles

        meta = _metadata_out(args, kind)
        scale = images.box / args.box
        write_particles(dataclasses.replace(pset, images=ImageSource.from_file(out), box=args.box,
                                            psize_A=pset.psize_A * scale), meta)
        print(f"wrote {meta}")
    return 0
