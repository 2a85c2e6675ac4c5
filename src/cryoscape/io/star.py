"""RELION particle star files (3.0 single block; 3.1/4/5 optics + particles) <-> ParticleSet.

Reading maps RELION columns to cryoscape's canonical fields (see docs/conventions.md) and keeps
every original column in ``metadata`` (particle rows, names with the leading underscore, e.g.
``_rlnDefocusU``) and ``optics`` (the ``data_optics`` table), so a subset can be written back with
nothing lost. Writing always produces RELION 3.1 (``# version 30001``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryoscape.errors import InputError
from cryoscape.geometry import euler_to_matrix, matrix_to_euler
from cryoscape.io.atomic import atomic_write_bytes
from cryoscape.io.optics import OpticsFill, fill_optics, unused_fill
from cryoscape.io.particles import CTFParams, ParticleSet, ReadInfo
from cryoscape.io.psize import fallback_psize, pick_psize

if TYPE_CHECKING:
    import pandas as pd

IMAGES_MODES = ("require", "optional", "skip")
ANGLES = ("_rlnAngleRot", "_rlnAngleTilt", "_rlnAnglePsi")
#: per-particle columns of RELION 3.0 that RELION 3.1 moves into data_optics (or replaces)
V30_OPTICS_COLS = (
    "_rlnVoltage",
    "_rlnSphericalAberration",
    "_rlnAmplitudeContrast",
    "_rlnMagnification",
    "_rlnDetectorPixelSize",
    "_rlnImagePixelSize",
    "_rlnOriginX",
    "_rlnOriginY",
)


def require_columns(
    df: pd.DataFrame, cols: Iterable[str], path: str | os.PathLike | None, needed_for: str, hint: str = ""
) -> None:
    """Raise InputError naming every column of ``cols`` missing from ``df``."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        s = "s" if len(missing) > 1 else ""
        raise InputError(
            f"missing column{s} {', '.join(missing)} needed for {needed_for}" + (f"; {hint}" if hint else ""), path
        )


def check_images_mode(images: str) -> None:
    if images not in IMAGES_MODES:
        raise ValueError(f"images must be one of {IMAGES_MODES}, got {images!r}")


# reading ----------------------------------------------------------------------------------------
def _read_blocks(path: Path) -> dict:
    import starfile

    if path.is_dir():
        raise InputError("is a folder, not a STAR file", path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as e:  # starfile raises assorted parse errors; the user needs one line
        first = (str(e).splitlines() or [""])[0][:200]
        raise InputError(f"not a readable STAR file ({type(e).__name__}: {first})", path) from None
    blocks = {k: _underscored(v) for k, v in blocks.items() if hasattr(v, "columns")}
    _check_unique_columns(blocks, path)
    return blocks


def _check_unique_columns(blocks: dict, path: Path) -> None:
    """A block that declares a column twice: pandas keeps both, and a lookup of that column would
    fail later with an error that names nothing."""
    for name, df in blocks.items():
        dup = df.columns[df.columns.duplicated()]
        if len(dup):
            cols = list(map(str, df.columns))
            first = cols.index(str(dup[0]))
            second = cols.index(str(dup[0]), first + 1)
            raise InputError(
                f"column {dup[0]} appears twice in data_{name} (columns #{first + 1} and #{second + 1})", path
            )


def _underscored(df: pd.DataFrame) -> pd.DataFrame:
    """starfile drops the leading underscore of column names; put it back (original names)."""
    return df.rename(columns=lambda c: c if str(c).startswith("_") else f"_{c}")


def _split_blocks(blocks: dict, path: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(particles table, optics table or None), whatever order the blocks are in."""
    if "particles" in blocks:
        return blocks["particles"].reset_index(drop=True), blocks.get("optics")
    loops = [df for name, df in blocks.items() if name != "optics"]
    with_names = [df for df in loops if "_rlnImageName" in df.columns]
    if with_names or loops:
        best = max(with_names or loops, key=len)
        return best.reset_index(drop=True), blocks.get("optics")
    raise InputError("no particle table (data_particles or a data_ loop) in the STAR file", path)


def _optics_per_particle(
    parts: pd.DataFrame, optics: pd.DataFrame | None, path: Path
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Particle rows with their optics group's columns joined in, and the group per particle."""
    if optics is None or not len(optics):
        return parts, None
    require_columns(optics, ["_rlnOpticsGroup"], path, "the data_optics table")
    if "_rlnOpticsGroup" in parts.columns:
        groups = parts["_rlnOpticsGroup"].to_numpy()
    elif len(optics) == 1:
        groups = np.full(len(parts), optics["_rlnOpticsGroup"].iloc[0])
    else:
        raise InputError("missing column _rlnOpticsGroup with several optics groups", path)
    table = optics.set_index("_rlnOpticsGroup")
    unknown = sorted(set(groups.tolist()) - set(table.index.tolist()))
    if unknown:
        raise InputError(f"particles use optics group(s) {unknown} absent from data_optics", path)
    joined = parts.copy()
    for col in table.columns:
        if col not in joined.columns:  # a per-particle value overrides its group's
            joined[col] = table[col].reindex(groups).to_numpy()
    return joined, np.asarray(groups, np.int64)


def _psize(rows: pd.DataFrame, path: Path) -> np.ndarray | None:
    """Image pixel size per particle (Å), or None when the file does not say."""
    if "_rlnImagePixelSize" in rows.columns:
        return _floats(rows, "_rlnImagePixelSize", path=path)
    if {"_rlnDetectorPixelSize", "_rlnMagnification"} <= set(rows.columns):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (
                _floats(rows, "_rlnDetectorPixelSize", path=path) * 1e4 / _floats(rows, "_rlnMagnification", path=path)
            )
    return None


def _floats(rows: pd.DataFrame, col: str, default: float | None = None, path: Path | None = None) -> np.ndarray:
    """Column ``col`` as float64 (``default`` where absent); InputError naming the file, the column
    and the first row (1-based, in the particle table) that is not a number."""
    if col not in rows.columns:
        return np.full(len(rows), np.nan if default is None else default)
    try:
        return rows[col].to_numpy(np.float64)
    except (TypeError, ValueError):
        pass
    import pandas as pd

    bad = pd.to_numeric(rows[col], errors="coerce").isna().to_numpy() & rows[col].notna().to_numpy()
    i = int(np.flatnonzero(bad)[0]) if bad.any() else 0
    raise InputError(
        f"column {col} is not numeric: row {i + 1} of the particle table has {str(rows[col].iloc[i])[:40]!r}", path
    )


#: CTFParams optics field -> RELION column
OPTICS_COLUMNS = {
    "voltage_kV": "_rlnVoltage",
    "cs_mm": "_rlnSphericalAberration",
    "amp_contrast": "_rlnAmplitudeContrast",
}


def _ctf(
    rows: pd.DataFrame, path: Path, fill: OpticsFill | None, warnings: list[str]
) -> tuple[CTFParams | None, dict[str, float]]:
    """CTF per particle and the optics columns the file lacks, which come from ``fill`` (reported)."""
    if "_rlnDefocusU" not in rows.columns:
        unused_fill(fill, warnings)
        return None, {}
    given = {k: (_floats(rows, c, path=path) if c in rows.columns else None) for k, c in OPTICS_COLUMNS.items()}
    optics, filled = fill_optics(given, OPTICS_COLUMNS, fill, len(rows), path, warnings)
    du = _floats(rows, "_rlnDefocusU", path=path)
    dv = _floats(rows, "_rlnDefocusV", path=path) if "_rlnDefocusV" in rows.columns else du
    return CTFParams.from_columns(
        len(rows),
        defocus_u_A=du,
        defocus_v_A=dv,
        defocus_angle_deg=_floats(rows, "_rlnDefocusAngle", 0.0, path),
        **optics,
        phase_shift_deg=_floats(rows, "_rlnPhaseShift", 0.0, path),
        bfactor_A2=_floats(rows, "_rlnCtfBfactor", 0.0, path),
    ), filled


def _poses(
    rows: pd.DataFrame, psize_A: np.ndarray | None, path: Path, warnings: list[str]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(rotations (N,3,3), shifts_A (N,2)); either None when the file lacks it."""
    have = [c for c in ANGLES if c in rows.columns]
    rot = None
    if len(have) == 3:
        rot = euler_to_matrix(np.stack([_floats(rows, c, path=path) for c in ANGLES], axis=1))
    elif have:
        warnings.append(f"only {', '.join(have)} present (2D alignment?): no 3D poses read")
    if {"_rlnOriginXAngst", "_rlnOriginYAngst"} <= set(rows.columns):
        return rot, np.stack(
            [_floats(rows, "_rlnOriginXAngst", path=path), _floats(rows, "_rlnOriginYAngst", path=path)], 1
        )
    if {"_rlnOriginX", "_rlnOriginY"} <= set(rows.columns):
        if psize_A is None:
            raise InputError(
                "missing columns _rlnDetectorPixelSize, _rlnMagnification needed to "
                "convert _rlnOriginX/Y (pixels) to Å; pass --apix",
                path,
            )
        px = np.stack([_floats(rows, "_rlnOriginX", path=path), _floats(rows, "_rlnOriginY", path=path)], 1)
        return rot, px * psize_A[:, None]
    return rot, None


def _images(rows: pd.DataFrame, path: Path, datadir, images: str, warnings: list[str]):
    """ImageSource for ``_rlnImageName`` or None (mode 'optional' records why in ``warnings``)."""
    from cryoscape.io.images import ImageSource, image_refs_from_names

    if images == "skip":
        return None
    if "_rlnImageName" not in rows.columns:
        if images == "require":
            require_columns(rows, ["_rlnImageName"], path, "reading particle images")
        warnings.append("no _rlnImageName column: no particle images")
        return None
    try:
        files, frames = image_refs_from_names(
            rows["_rlnImageName"].astype(str).tolist(), base_dir=path.parent, datadir=datadir, origin=path
        )
        return ImageSource.from_refs(files, frames, origin=path)
    except InputError as e:
        if images == "require":
            raise
        warnings.append(f"images not read: {e}")
        return None


def read_star(
    path: str | os.PathLike,
    *,
    datadir: str | os.PathLike | None = None,
    images: str = "optional",
    apix: float | None = None,
    optics: OpticsFill | None = None,
    use_ctf: bool = True,
) -> ParticleSet:
    """Read a RELION 3.0-5.x particle star file.

    ``images``: "require" (missing stacks raise InputError), "optional" (missing stacks give
    ``images=None`` and a line in ``info.warnings``) or "skip". ``apix`` replaces the file's
    pixel size (and supplies one where the file has none). ``box`` is 0 when neither
    ``_rlnImageSize`` nor the stacks give it (:func:`cryoscape.io.load.load_particles` resolves it).
    ``optics``: voltage, Cs, amplitude contrast for files that lack them (:mod:`.optics`);
    ``use_ctf=False`` (``--no-ctf``) leaves the CTF unread, so missing optics do not matter.
    """
    check_images_mode(images)
    path = Path(path)
    parts, optics_table = _split_blocks(_read_blocks(path), path)
    rows, groups = _optics_per_particle(parts, optics_table, path)
    warnings: list[str] = []
    psize = pick_psize(_psize(rows, path), apix, len(rows), path, warnings)
    ctf, filled = _ctf(rows, path, optics, warnings) if use_ctf else (None, {})
    rot, shifts = _poses(rows, psize, path, warnings)
    src = _images(rows, path, datadir, images, warnings)
    box = _box(rows, src, path, warnings)
    if psize is None:
        psize = fallback_psize(
            src,
            len(rows),
            needed=ctf is not None,
            path=path,
            warnings=warnings,
            hint="_rlnImagePixelSize in data_optics, or _rlnDetectorPixelSize and _rlnMagnification",
        )
    version = "3.1" if optics_table is not None else "3.0"
    return ParticleSet(
        box=box,
        psize_A=psize,
        images=src,
        rotations=rot,
        shifts_A=shifts,
        ctf=ctf,
        optics_group=groups,
        metadata=parts,
        optics=optics_table,
        source=path,
        source_format="star",
        info=ReadInfo(warnings=warnings, star_version=version, optics_filled=filled),
    )


def _box(rows: pd.DataFrame, src, path: Path, warnings: list[str]) -> int:
    """Box from ``_rlnImageSize``, else the stacks; 0 if unknown. Disagreement is a warning."""
    box = 0
    if "_rlnImageSize" in rows.columns and len(rows):
        sizes = np.unique(_floats(rows, "_rlnImageSize", path=path))
        if len(sizes) > 1:
            raise InputError(
                f"optics groups have different _rlnImageSize {sizes.tolist()}; cryoscape needs one box size", path
            )
        box = int(sizes[0])
    if src is not None and src.box != box:
        if box:
            warnings.append(f"_rlnImageSize is {box} but the stacks are {src.box} px; using {src.box}")
        box = src.box
    return box


# writing ----------------------------------------------------------------------------------------
def image_names(pset: ParticleSet, out_dir: Path) -> list[str] | None:
    """RELION ``000001@stack.mrcs`` names for ``pset.images``, relative to ``out_dir``."""
    if pset.images is None:
        return None
    files, frames = pset.images.refs()
    rel = {f: os.path.relpath(f, out_dir) for f in dict.fromkeys(files.tolist())}
    return [f"{fr + 1:06d}@{rel[f]}" for f, fr in zip(files.tolist(), frames.tolist())]


def _angles(rotations: np.ndarray, old: pd.DataFrame) -> np.ndarray:
    """Euler angles for ``rotations``; the file's own angles where they give the same matrix."""
    euler = matrix_to_euler(rotations)
    if all(c in old.columns for c in ANGLES):
        orig = np.stack([old[c].to_numpy(np.float64) for c in ANGLES], axis=1)
        same = np.abs(euler_to_matrix(orig) - rotations).max(axis=(1, 2)) < 1e-9
        euler[same] = orig[same]
    return euler


def _keep_close(old: pd.DataFrame, col: str, new: np.ndarray) -> np.ndarray:
    """``new``, except where the file's value is equal to ~1e-9 (unit round trips, e.g. rad <-> deg
    or Å <-> px, must not rewrite a column's digits)."""
    if col not in old.columns:
        return new
    try:
        orig = old[col].to_numpy(np.float64)
    except (TypeError, ValueError):
        return new
    same = np.abs(orig - new) <= 1e-9 * np.maximum(1.0, np.abs(new))
    return np.where(same, orig, new)


def _particle_table(pset: ParticleSet, out_dir: Path) -> pd.DataFrame:
    import pandas as pd

    old = pset.metadata if pset.metadata is not None else pd.DataFrame(index=range(pset.n))
    if len(old) != pset.n:
        raise ValueError(f"metadata has {len(old)} rows for {pset.n} particles")
    df = old.drop(columns=[c for c in V30_OPTICS_COLS if c in old.columns]).reset_index(drop=True)
    names = image_names(pset, out_dir)
    if names is not None:
        df["_rlnImageName"] = names
    if pset.rotations is not None:
        for col, v in zip(ANGLES, _angles(pset.rotations, old).T):
            df[col] = v
    new: dict[str, np.ndarray] = {}
    if pset.shifts_A is not None:
        new["_rlnOriginXAngst"], new["_rlnOriginYAngst"] = pset.shifts_A[:, 0], pset.shifts_A[:, 1]
    c = pset.ctf
    if c is not None:
        # _rlnPhaseShift is always written: RELION defaults it to 0, but cryoDRGN's
        # parse_ctf_star reads a missing column as NaN and its whole reconstruction turns NaN
        new.update(
            {
                "_rlnDefocusU": c.defocus_u_A,
                "_rlnDefocusV": c.defocus_v_A,
                "_rlnDefocusAngle": c.defocus_angle_deg,
                "_rlnPhaseShift": c.phase_shift_deg,
            }
        )
        if "_rlnCtfBfactor" in df.columns or np.any(c.bfactor_A2):  # only where the input had it
            new["_rlnCtfBfactor"] = c.bfactor_A2
    for col, v in new.items():
        df[col] = _keep_close(old, col, v)
    return df


def _optics_values(pset: ParticleSet) -> dict[str, np.ndarray]:
    vals = {"_rlnImagePixelSize": pset.psize_A}
    if pset.ctf is not None:
        vals.update(
            {
                "_rlnVoltage": pset.ctf.voltage_kV,
                "_rlnSphericalAberration": pset.ctf.cs_mm,
                "_rlnAmplitudeContrast": pset.ctf.amp_contrast,
            }
        )
    return vals


def _optics_table(pset: ParticleSet) -> tuple[pd.DataFrame, np.ndarray]:
    """(data_optics table, optics group per particle), one group per distinct optics.

    The input's groups and their extra columns (beam tilt, ...) are kept when every particle of
    a group still shares one set of values; otherwise groups are renumbered 1..K.
    """
    import pandas as pd

    vals = _optics_values(pset)
    orig = pset.optics_group if pset.optics_group is not None else np.zeros(pset.n, np.int64)
    keys = pd.DataFrame({"g": orig, **{k: np.round(v, 6) for k, v in vals.items()}})
    uniq = keys.drop_duplicates()
    old = pset.optics
    if old is not None and uniq["g"].is_unique and set(uniq["g"]) <= set(old["_rlnOpticsGroup"]):
        table, groups = old.copy().reset_index(drop=True), orig
    else:
        codes = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
        groups = codes + 1
        first = np.unique(codes, return_index=True)[1]
        if old is not None:
            base = old.set_index("_rlnOpticsGroup").reindex(orig[first]).reset_index(drop=True)
        else:
            base = pd.DataFrame(index=range(len(first)))
        base.insert(0, "_rlnOpticsGroup", np.arange(1, len(first) + 1))
        base["_rlnOpticsGroupName"] = [f"opticsGroup{k}" for k in range(1, len(first) + 1)]
        table = base
    first_of = {g: i for i, g in reversed(list(enumerate(groups.tolist())))}
    rows = table["_rlnOpticsGroup"].map(first_of)
    used = rows.notna().to_numpy()
    idx = rows[used].astype(int).to_numpy()
    for col, v in vals.items():
        if col not in table.columns:
            table[col] = np.nan
        table.loc[used, col] = v[idx]
    table["_rlnImageSize"] = pset.box
    if "_rlnImageDimensionality" not in table.columns:
        table["_rlnImageDimensionality"] = 2
    return table, groups


def _format_block(name: str, df: pd.DataFrame) -> str:
    import csv

    head = [f"\n# version 30001\n\ndata_{name}\n\nloop_"]
    head += [f"{col} #{i}" for i, col in enumerate(df.columns, 1)]
    body = df.to_csv(sep=" ", header=False, index=False, na_rep="nan", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return "\n".join(head) + "\n" + body + "\n"


def write_star(pset: ParticleSet, path: str | os.PathLike) -> None:
    """Write RELION 3.1 (data_optics + data_particles), atomically.

    Canonical columns (angles, Å origins, defocus, optics values, image names relative to the
    output folder) come from ``pset``'s fields; every other original column is kept.
    """
    path = Path(path)
    parts = _particle_table(pset, path.absolute().parent)
    optics, groups = _optics_table(pset)
    parts["_rlnOpticsGroup"] = groups
    optics = optics.drop(columns=[c for c in optics.columns if c in parts.columns and c != "_rlnOpticsGroup"])
    text = _format_block("optics", optics) + _format_block("particles", parts)
    atomic_write_bytes(path, text.encode())
