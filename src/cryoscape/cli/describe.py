"""What ``cryoscape info`` says about files that are not particle sets: maps and cryoDRGN pickles."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def value_range(x: np.ndarray) -> str:
    """``min / median / max`` of ``x``, as info prints every range."""
    return f"{np.min(x):.6g} / {np.median(x):.6g} / {np.max(x):.6g}"


def looks_like_volume(path: Path) -> bool:
    """A ``.mrc`` whose header says a cubic map (space group >= 1, nz == nx == ny).

    A ``.mrc`` can also be a particle stack (RELION 3.0 extractions are): those have nz != nx or
    space group 0, and are read as stacks.
    """
    from cryoscape.io.mrc import read_header

    if path.suffix.lower() != ".mrc":
        return False
    h = read_header(path)
    return h.ispg >= 1 and h.nx == h.ny == h.nz


def describe_volume(path: Path) -> list[str]:
    from cryoscape.io.mrc import read_volume

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
    from cryoscape.errors import InputError
    from cryoscape.io.cryodrgn import load_pickle, read_ctf, read_index, read_poses
    from cryoscape.io.particles import CRYODRGN_CTF_COLUMNS

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
