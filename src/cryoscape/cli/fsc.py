"""Fourier shell correlation between two maps (e.g. half-maps), with the resolution at 0.143 and 0.5.

Prints the resolution where the FSC first drops below 0.143 and 0.5 and writes the curve as a
table (OUT.txt) and a plot (OUT.png). With --mask auto, both maps are multiplied by a soft mask
made from their average (threshold at half the 99.99th percentile, dilated 25 Å, 15 Å cosine
edge); --mask FILE uses a mask map of the same box. The unmasked curve is always written too.

example:
  cryoscape fsc bp_half1.mrc bp_half2.mrc --mask auto -o fsc.png
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import add_outdir


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("map1", help="first map (.mrc)")
    p.add_argument("map2", help="second map (.mrc), same box")
    p.add_argument("--mask", help="'auto' for an automatic soft mask, or a mask .mrc of the same box")
    p.add_argument("--apix", type=float, help="voxel size in Å (default: from the map header)")
    add_outdir(
        p,
        default="fsc.png",
        metavar="OUT",
        aliases=("--output",),
        help="plot to write; the table goes beside it as .txt (default: fsc.png)",
    )


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.compare import compare_maps

    result = compare_maps(args.map1, args.map2, args.outdir, mask=args.mask, apix=args.apix)
    print("\n".join(result.summary()))
    return 0
