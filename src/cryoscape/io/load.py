"""One entry point for every particle input: dispatch on the extension, then apply overrides.

Overrides come from the shared command-line options (--poses, --ctf, --ind, -D/--box, --apix),
so every command reads particles the same way and reports the same errors.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.optics import OPTIONS, OpticsFill
from cryoscape.io.particles import CTFParams, ParticleSet, ReadInfo

METADATA_EXTS = (".star", ".cs")
IMAGE_EXTS = (".mrcs", ".mrc", ".txt")


def load_particles(
    path: str | os.PathLike,
    *,
    datadir: str | os.PathLike | None = None,
    poses: str | os.PathLike | None = None,
    ctf: str | os.PathLike | None = None,
    ind: str | os.PathLike | np.ndarray | None = None,
    box: int | None = None,
    apix: float | None = None,
    images: str = "optional",
    need_box: bool = True,
    optics: OpticsFill | None = None,
    use_ctf: bool = True,
) -> ParticleSet:
    """Read ``path`` (.star, .cs, .mrcs/.mrc stack, .txt stack list) and apply the overrides.

    ``poses``/``ctf``: cryoDRGN pickles replacing the file's; ``ind``: index file (.pkl/.npy) or
    array selecting particles in that order; ``box``: the box where the file lacks it (and the
    refinement box D of a .cs without ``alignments3D/psize_A``); ``apix``: pixel size override;
    ``optics``: voltage, Cs, amplitude contrast where the file lacks them (used ones are reported
    in the warnings and in ``pset.info.optics_filled``); ``use_ctf=False`` (``--no-ctf``): the
    file's CTF is not read (nor needed), and ``ctf`` must be None.
    Warnings (missing stacks, mismatches) are collected in ``pset.info.warnings``.
    """
    path = Path(path)
    if not use_ctf and ctf is not None:
        raise InputError("--ctf and --no-ctf contradict each other: give one")
    pset = _read(path, datadir, box, apix, images, optics, use_ctf)
    if pset.n == 0 and (need_box or images == "require"):
        raise InputError("no particles: the particle table is empty", path)
    pset = _resolve_box(pset, box, need_box)
    _check_header_psize(pset)
    if ctf is not None:  # first: it may supply the pixel size the shifts are converted with
        pset = _apply_ctf(pset, Path(ctf))
    if poses is not None:
        pset = _apply_poses(pset, Path(poses))
    if ind is not None:
        pset = _apply_ind(pset, ind)
    pset.check_counts()
    return pset


def _read(
    path: Path, datadir, box: int | None, apix: float | None, images: str, optics: OpticsFill | None, use_ctf: bool
) -> ParticleSet:
    ext = path.suffix.lower()
    if ext == ".star":
        from cryoscape.io.star import read_star

        return read_star(path, datadir=datadir, images=images, apix=apix, optics=optics, use_ctf=use_ctf)
    if ext == ".cs":
        from cryoscape.io.cs import read_cs

        return read_cs(path, datadir=datadir, images=images, box=box, apix=apix, optics=optics, use_ctf=use_ctf)
    if ext in IMAGE_EXTS:
        pset = _read_stack(path, apix)
        if optics is not None and optics.given():  # a bare stack's CTF comes whole from --ctf
            pset.info.warnings.extend(
                f"{o} not used: a bare stack's CTF comes from --ctf" for o in (OPTIONS[k][0] for k in optics.given())
            )
        return pset
    raise InputError(
        f"unknown extension {ext or '(none)'!r}; expected one of {', '.join(METADATA_EXTS + IMAGE_EXTS)}", path
    )


def _read_stack(path: Path, apix: float | None) -> ParticleSet:
    """Images only: pixel size from --apix, else the header, else 1 Å with a warning."""
    from cryoscape.io.images import ImageSource
    from cryoscape.io.psize import fallback_psize, pick_psize

    src = ImageSource.from_file(path)
    warnings: list[str] = []
    psize = pick_psize(
        None if not src.header_psize_A else np.full(len(src), src.header_psize_A), apix, len(src), path, warnings
    )
    psize_from = "apix" if apix is not None else "header"
    if psize is None:
        psize = fallback_psize(src, len(src), needed=False, path=path, warnings=warnings, hint="")
        psize_from = "assumed"
    return ParticleSet(
        box=src.box,
        psize_A=psize,
        images=src,
        source=path,
        source_format=path.suffix.lower().lstrip("."),
        info=ReadInfo(warnings=warnings, psize_from=psize_from),
    )


def _warn(pset: ParticleSet, msg: str) -> None:
    pset.info.warnings.append(msg)


def _resolve_box(pset: ParticleSet, box: int | None, need_box: bool) -> ParticleSet:
    """The file's box (``_rlnImageSize``/stacks/``blob/shape``), else ``box``, else an error."""
    if box is not None and box <= 0:
        raise InputError(f"-D/--box must be positive, got {box}", pset.source)
    if pset.box > 0:
        return pset
    if box is not None:
        return dataclasses.replace(pset, box=int(box))
    if need_box:
        raise InputError(
            "box size unknown (no _rlnImageSize, blob/shape or readable image stack); pass -D/--box", pset.source
        )
    return pset


def _check_header_psize(pset: ParticleSet) -> None:
    hdr = None if pset.images is None else pset.images.header_psize_A
    if hdr and pset.n and pset.source_format in ("star", "cs"):
        file_psize = float(np.median(pset.psize_A))
        if abs(hdr / file_psize - 1) > 0.01:
            _warn(
                pset,
                f"pixel size {file_psize:.4f} Å in the metadata but {hdr:.4f} Å in the "
                "stack header; using the metadata's (pass --apix to override)",
            )


def _apply_poses(pset: ParticleSet, path: Path) -> ParticleSet:
    from cryoscape.io.cryodrgn import read_poses, trans_to_shifts_A

    rot, trans = read_poses(path)
    if len(rot) != pset.n:
        raise InputError(f"{len(rot)} poses for {pset.n} images", path)
    shifts = None
    if trans is not None:
        if pset.box <= 0:
            raise InputError("box size unknown: pass -D/--box to convert the fractional shifts", path)
        shifts = trans_to_shifts_A(trans, pset.box, pset.psize_A)
    return dataclasses.replace(pset, rotations=rot, shifts_A=shifts)


def _apply_ctf(pset: ParticleSet, path: Path) -> ParticleSet:
    from cryoscape.io.cryodrgn import read_ctf

    arr = read_ctf(path)
    if len(arr) != pset.n:
        raise InputError(f"{len(arr)} CTF rows for {pset.n} images", path)
    box_col, psize_col = arr[:, 0], arr[:, 1]
    if pset.info.psize_from in ("header", "assumed"):  # a bare stack: the pickle knows better
        pset = dataclasses.replace(pset, psize_A=psize_col.copy())
    if pset.box > 0 and np.any(box_col != pset.box):
        _warn(pset, f"CTF pickle {path.name} was made for box {int(box_col[0])}, images are {pset.box}")
    if np.any(np.abs(psize_col / pset.psize_A - 1) > 0.01):
        _warn(
            pset,
            f"CTF pickle {path.name} says {psize_col[0]:.4f} Å/px, particles "
            f"{pset.psize_A[0]:.4f} Å/px; using the particles' (pass --apix to override)",
        )
    return dataclasses.replace(pset, ctf=CTFParams.from_cryodrgn(arr))


def _apply_ind(pset: ParticleSet, ind: str | os.PathLike | np.ndarray) -> ParticleSet:
    from cryoscape.io.cryodrgn import read_index

    origin = None
    if not isinstance(ind, np.ndarray):
        origin = Path(ind)
        ind = read_index(origin)
    ind = np.asarray(ind, np.int64)
    bad = ind[(ind < 0) | (ind >= pset.n)]
    if len(bad):
        raise InputError(
            f"index {int(bad[0])} out of range for {pset.n} particles"
            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
            origin or pset.source,
        )
    return pset.subset(ind)
