"""Show what cryoscape reads from a particle file: format, counts, optics, poses, CTF, stacks.

Prints the file format and version, particle count, box and pixel size per optics group, whether
poses, shifts and CTF are present with their ranges, which image stacks were found, and a
WARNING line for anything that looks wrong (missing stacks, pixel size mismatches, duplicate
particles, zero defocus, shifts beyond a quarter box, NaN in the metadata). Also describes a
map (.mrc volume: box, voxel size, density range) and cryoDRGN pose, CTF and index pickles.
"""

from __future__ import annotations

import argparse

from cryoscape.cli.common import optics_fill
from cryoscape.cli.describe import value_range
from cryoscape.cli.options import add_particles

FORMATS = {
    "star": "RELION star",
    "cs": "cryoSPARC .cs",
    "mrcs": "MRC stack",
    "mrc": "MRC stack",
    "txt": "list of MRC stacks",
}


def add_args(p: argparse.ArgumentParser) -> None:
    add_particles(p)


def _lines(pset) -> list[str]:
    """The report, one string per line."""
    import numpy as np

    fmt = FORMATS.get(pset.source_format, pset.source_format)
    if pset.source_format == "star":
        fmt += f" (RELION {pset.info.star_version or '?'} format)"
    out = [
        f"file: {pset.source}",
        f"format: {fmt}",
        f"particles: {pset.n}",
        f"box: {pset.box} px" if pset.box else "box: unknown (pass -D/--box)",
    ]
    out += _optics_lines(pset)
    out.append(
        f"poses: {'yes' if pset.rotations is not None else 'no'}"
        + (f" (from {pset.info.cs_alignments.rstrip('/')})" if pset.info.cs_alignments else "")
    )
    if pset.shifts_A is not None and pset.n:
        out.append(
            f"shifts (Å) x min/median/max: {value_range(pset.shifts_A[:, 0])}; y: {value_range(pset.shifts_A[:, 1])}"
        )
    else:
        out.append("shifts: no")
    c = pset.ctf
    if c is not None and pset.n:
        out.append(
            f"CTF: yes; defocus U (Å) min/median/max: {value_range(c.defocus_u_A)}; V: {value_range(c.defocus_v_A)}"
        )
        out.append(
            f"voltage: {', '.join(f'{v:g}' for v in np.unique(c.voltage_kV))} kV; "
            f"Cs: {', '.join(f'{v:g}' for v in np.unique(c.cs_mm))} mm; "
            f"amplitude contrast: {', '.join(f'{v:g}' for v in np.unique(c.amp_contrast))}"
        )
        filled = pset.info.optics_filled
        if filled:
            from cryoscape.io.optics import OPTIONS

            out.append(
                "not in the file, given on the command line: "
                + ", ".join(f"{OPTIONS[k][1]} {v:g} ({OPTIONS[k][0]})" for k, v in filled.items())
            )
    else:
        out.append("CTF: no")
    if pset.images is not None:
        files = pset.images.files
        shown = ", ".join(str(f) for f in files[:3]) + (f" (+{len(files) - 3} more)" if len(files) > 3 else "")
        out.append(f"images: {len(pset.images)} found in {len(files)} stack(s): {shown}")
    else:
        out.append("images: not found")
    out += [f"WARNING: {w}" for w in pset.info.warnings + _checks(pset)]
    return out


def _optics_lines(pset) -> list[str]:
    import numpy as np

    if pset.optics_group is None or not pset.n:
        vals = np.unique(np.round(pset.psize_A, 6))
        return [f"pixel size: {', '.join(f'{v:g}' for v in vals)} Å/px"]
    groups, counts = np.unique(pset.optics_group, return_counts=True)
    out = [f"optics groups: {len(groups)}"]
    for g, k in zip(groups, counts):
        sel = pset.optics_group == g
        desc = f"  group {g}: {k} particles, {pset.psize_A[sel][0]:g} Å/px"
        if pset.ctf is not None:
            desc += f", {pset.ctf.voltage_kV[sel][0]:g} kV, Cs {pset.ctf.cs_mm[sel][0]:g} mm"
        out.append(desc)
    return out


def _checks(pset) -> list[str]:
    """Oddities worth a WARNING that no reader flags by itself."""
    import numpy as np

    warn = []
    if pset.images is not None:
        files, frames = pset.images.refs()
        keys = np.char.add(files.astype(str), np.char.add("@", frames.astype(str)))
        dup = pset.n - len(np.unique(keys))
        if dup:
            warn.append(f"{dup} duplicate particles (same image used more than once)")
    if pset.ctf is not None and np.any(pset.ctf.defocus_u_A == 0):
        warn.append(f"{int(np.sum(pset.ctf.defocus_u_A == 0))} particles have defocus 0")
    if pset.shifts_A is not None and pset.box:
        far = np.abs(pset.shifts_px).max(axis=1) > pset.box / 4
        if far.any():
            warn.append(f"{int(far.sum())} particles shifted by more than a quarter box ({pset.box / 4:g} px)")
    if pset.metadata is not None:
        nan_cols = [c for c in pset.metadata.columns if pset.metadata[c].isna().any()]
        if nan_cols:
            warn.append(f"NaN/missing values in column(s) {', '.join(map(str, nan_cols))}")
    return warn


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cryoscape.cli.describe import (
        describe_pickle,
        describe_volume,
        looks_like_volume,
    )
    from cryoscape.io.load import load_particles

    path = Path(args.particles)
    if path.suffix.lower() == ".pkl":
        print("\n".join(describe_pickle(path)))
        return 0
    if path.is_file() and looks_like_volume(path):
        print("\n".join(describe_volume(path)))
        return 0
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
        need_box=False,
    )
    print("\n".join(_lines(pset)))
    return 0
