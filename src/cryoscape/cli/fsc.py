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
from pathlib import Path

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


def _voxel_size(args: argparse.Namespace, ps1: float, ps2: float) -> float:
    from cryoscape.errors import InputError

    if args.apix is not None:
        if args.apix <= 0:
            raise InputError(f"--apix {args.apix}: must be positive")
        return args.apix
    if ps1 <= 0:
        raise InputError("the header has no voxel size; give --apix", args.map1)
    if ps2 > 0 and abs(ps1 - ps2) > 1e-3 * ps1:
        raise InputError(
            f"voxel size {ps2:.4f} Å differs from {args.map1}'s {ps1:.4f} Å; give --apix if the header is wrong",
            args.map2,
        )
    return ps1


def _load_mask(args: argparse.Namespace, vol1, vol2, psize_A: float):
    from cryoscape.analysis.fsc import auto_mask
    from cryoscape.errors import InputError
    from cryoscape.io.mrc import read_volume

    if args.mask is None:
        return None
    if args.mask == "auto":
        return auto_mask(0.5 * (vol1 + vol2), psize_A)
    mask, _ = read_volume(args.mask)
    if mask.shape != vol1.shape:
        raise InputError(f"mask box {mask.shape[0]} differs from the maps' {vol1.shape[0]}", args.mask)
    if mask.min() < -1e-3 or mask.max() > 1 + 1e-3:
        raise InputError(f"mask values span [{mask.min():.3g}, {mask.max():.3g}]; expected 0..1", args.mask)
    return mask


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.fsc import format_resolution, fsc, plot_fsc, save_fsc_txt
    from cryoscape.errors import InputError
    from cryoscape.io.mrc import read_volume

    vol1, ps1 = read_volume(args.map1)
    vol2, ps2 = read_volume(args.map2)
    if vol1.shape != vol2.shape:
        raise InputError(f"box {vol2.shape[0]} differs from {args.map1}'s box {vol1.shape[0]}", args.map2)
    if vol1.shape[0] % 2:
        raise InputError(f"odd box {vol1.shape[0]}; cryoscape needs an even box", args.map1)
    psize_A = _voxel_size(args, ps1, ps2)
    out = Path(args.outdir)
    if not out.resolve().parent.is_dir():
        raise InputError("output folder does not exist", out.resolve().parent)
    mask = _load_mask(args, vol1, vol2, psize_A)
    freqs, unmasked = fsc(vol1, vol2)
    curves = {"unmasked": unmasked}
    if mask is not None:
        curves["masked"] = fsc(vol1, vol2, mask)[1]
    png = out if out.suffix.lower() == ".png" else out.with_name(out.name + ".png")
    save_fsc_txt(png.with_suffix(".txt"), freqs, curves, psize_A)
    plot_fsc(png, freqs, curves, psize_A)
    for label, c in curves.items():
        r143, r5 = (format_resolution(freqs, c, t, psize_A) for t in (0.143, 0.5))
        print(f"FSC ({label}): {r143} at 0.143, {r5} at 0.5")
    print(f"wrote {png.with_suffix('.txt')} and {png}")
    return 0
