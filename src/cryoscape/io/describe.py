"""What ``cryoscape info`` says about a file: a particle set, a map or a cryoDRGN pickle.

:func:`describe_file` picks the report by what the file is; each report is a list of lines:
format, counts, optics, poses, CTF, stacks for particles (with a ``WARNING:`` line for anything
that looks wrong), box, voxel size and density range for maps, shapes and ranges for pickles.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.cryodrgn import load_pickle, read_ctf, read_index, read_poses
from cryoscape.io.load import load_particles
from cryoscape.io.mrc import read_header, read_volume
from cryoscape.io.optics import OPTIONS
from cryoscape.io.particles import CRYODRGN_CTF_COLUMNS, ParticleSet

#: How each input format is named in the report.
FORMATS = {
    "star": "RELION star",
    "cs": "cryoSPARC .cs",
    "mrcs": "MRC stack",
    "mrc": "MRC stack",
    "txt": "list of MRC stacks",
}


def describe_file(path: str | os.PathLike, **load_options: Any) -> list[str]:
    """The report on ``path``: a cryoDRGN pickle (.pkl), a map (a cubic .mrc) or else a particle
    set, read by :func:`~cryoscape.io.load.load_particles` with ``load_options`` (its overrides)."""
    path = Path(path)
    if path.suffix.lower() == ".pkl":
        return describe_pickle(path)
    if path.is_file() and looks_like_volume(path):
        return describe_volume(path)
    return describe_particles(load_particles(path, **load_options, images="optional", need_box=False))


def describe_particles(pset: ParticleSet) -> list[str]:
    """The report on a particle set, one string per line."""
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


def _optics_lines(pset: ParticleSet) -> list[str]:
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


def _checks(pset: ParticleSet) -> list[str]:
    """Oddities worth a WARNING that no reader flags by itself."""
    warn = []
    if pset.images is not None:
        files, frames = pset.images.refs()
        keys = np.char.add(files.astype(str), np.char.add("@", frames.astype(str)))
        dup = pset.n - len(np.unique(keys))
        if dup:
            warn.append(f"{dup} duplicate particles (same image used more than once)")
    if pset.ctf is not None and np.any(pset.ctf.defocus_u_A == 0):
        warn.append(f"{int(np.sum(pset.ctf.defocus_u_A == 0))} particles have defocus 0")
    shifts_px = pset.shifts_px
    if shifts_px is not None and pset.box:
        far = np.abs(shifts_px).max(axis=1) > pset.box / 4
        if far.any():
            warn.append(f"{int(far.sum())} particles shifted by more than a quarter box ({pset.box / 4:g} px)")
    if pset.metadata is not None:
        nan_cols = [c for c in pset.metadata.columns if pset.metadata[c].isna().any()]
        if nan_cols:
            warn.append(f"NaN/missing values in column(s) {', '.join(map(str, nan_cols))}")
    return warn


def value_range(x: np.ndarray) -> str:
    """``min / median / max`` of ``x``, as info prints every range."""
    return f"{np.min(x):.6g} / {np.median(x):.6g} / {np.max(x):.6g}"


def looks_like_volume(path: Path) -> bool:
    """A ``.mrc`` whose header says a cubic map (space group >= 1, nz == nx == ny).

    A ``.mrc`` can also be a particle stack (RELION 3.0 extractions are): those have nz != nx or
    space group 0, and are read as stacks.
    """
    if path.suffix.lower() != ".mrc":
        return False
    h = read_header(path)
    return h.ispg >= 1 and h.nx == h.ny == h.nz


def describe_volume(path: Path) -> list[str]:
    """The report on a map: box, voxel size, density range."""
    vol, psize = read_volume(path)
    D = vol.shape[0]
    return [
        f"file: {path}",
        "format: MRC volume (map)",
        f"box: {D}^3 voxels, voxel size {psize:.4g} Å ({D * psize:.4g} Å across)"
        if psize
        else f"box: {D}^3 voxels, voxel size not set in the header (give --apix where needed)",
        f"density min / mean / max: {vol.min():.4g} / {vol.mean():.4g} / {vol.max():.4g}, rms {vol.std():.4g}",
        f"(if this is a stack of {D} images rather than a map, name it .mrcs)",
    ]


def describe_pickle(path: Path) -> list[str]:
    """Recognise cryoDRGN's pose, CTF and index pickles by their shapes."""
    obj = load_pickle(path)
    out = [f"file: {path}"]
    a = np.asarray(obj) if isinstance(obj, np.ndarray) else None
    if (isinstance(obj, (tuple, list)) and len(obj) == 2) or (a is not None and a.ndim == 3):
        rot, trans = read_poses(path)
        out += [
            "format: cryoDRGN pose pickle" + (" (rotations only)" if trans is None else " (rot, trans)"),
            f"particles: {len(rot)}",
        ]
        if trans is not None:
            out.append(f"translations (fraction of box) x min / median / max: {value_range(trans[:, 0])}")
            out.append(f"translations (fraction of box) y min / median / max: {value_range(trans[:, 1])}")
        return out
    if a is not None and a.ndim == 2 and a.shape[1] == len(CRYODRGN_CTF_COLUMNS):
        c = read_ctf(path)
        out += [
            "format: cryoDRGN CTF pickle (N x 9)",
            f"particles: {len(c)}",
            f"box: {value_range(c[:, 0])} px; pixel size {value_range(c[:, 1])} Å",
            f"defocus U min / median / max: {value_range(c[:, 2])} Å",
            f"defocus V min / median / max: {value_range(c[:, 3])} Å",
            f"voltage {value_range(c[:, 5])} kV, Cs {value_range(c[:, 6])} mm, "
            f"amplitude contrast {value_range(c[:, 7])}, "
            f"phase shift {value_range(c[:, 8])}°",
        ]
        if np.any(c[:, 2] == 0):
            out.append(f"WARNING: {int(np.sum(c[:, 2] == 0))} particles have defocus 0")
        return out
    if a is not None and a.ndim == 1:
        ind = read_index(path)
        out += ["format: cryoDRGN index selection", f"particles selected: {len(ind)}"]
        if len(ind):
            out.append(f"index range: {ind.min()} .. {ind.max()}")
        return out
    raise InputError(f"not a cryoDRGN pose, CTF or index pickle ({type(obj).__name__})", path)
