"""cryoSPARC ``.cs`` particle files (numpy structured arrays) <-> ParticleSet.

The raw array is kept in ``pset.info.cs_rows`` so a subset is written back with every field;
pose/shift/CTF/blob fields are then overwritten from the ParticleSet. RELION columns that have
no cryoSPARC field travel as ``rln/<column>`` (particle) and ``rln_optics/<column>`` (optics
group) fields, which is how star -> cs -> star keeps every column.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryoscape.errors import InputError
from cryoscape.geometry import cryosparc_pose_to_matrix, matrix_to_cryosparc_pose
from cryoscape.io.atomic import atomic_write_bytes
from cryoscape.io.optics import OpticsFill, fill_optics, unused_fill
from cryoscape.io.particles import CTFParams, ParticleSet, ReadInfo
from cryoscape.io.psize import fallback_psize, pick_psize
from cryoscape.io.star import ANGLES, V30_OPTICS_COLS, check_images_mode, image_names

if TYPE_CHECKING:
    import pandas as pd

RLN, RLN_OPTICS = "rln/", "rln_optics/"
#: star columns that have a cryoSPARC field (or come from pset fields), so not carried as rln/
CANONICAL_STAR = (
    set(ANGLES)
    | set(V30_OPTICS_COLS)
    | {
        "_rlnOriginXAngst",
        "_rlnOriginYAngst",
        "_rlnDefocusU",
        "_rlnDefocusV",
        "_rlnDefocusAngle",
        "_rlnPhaseShift",
        "_rlnCtfBfactor",
        "_rlnImageName",
        "_rlnOpticsGroup",
        "_rlnImageSize",
    }
)


def load_cs(path: Path) -> np.ndarray:
    """The structured array in ``path``, or InputError if numpy cannot read it as one."""
    if path.is_dir():
        raise InputError("is a folder, not a cryoSPARC .cs file", path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError/... for non-npy content
        raise InputError(f"not a cryoSPARC .cs file ({type(e).__name__}: {e})", path) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.names is None or arr.ndim != 1:
        raise InputError("not a cryoSPARC .cs file (no named fields)", path)
    _check_fields(arr, path)
    return arr


def _names(arr: np.ndarray) -> tuple[str, ...]:
    """The field names of a structured array (what :func:`load_cs` returns)."""
    return arr.dtype.names or ()


#: Per-particle shape of the numeric fields cryoscape reads (alignments: any prefix).
READ_FIELDS = {
    "ctf/df1_A": (),
    "ctf/df2_A": (),
    "ctf/df_angle_rad": (),
    "ctf/phase_shift_rad": (),
    "ctf/bfactor": (),
    "ctf/accel_kv": (),
    "ctf/cs_mm": (),
    "ctf/amp_contrast": (),
    "blob/psize_A": (),
    "blob/idx": (),
    "blob/shape": (2,),
}
ALIGNMENT_FIELDS = {"pose": (3,), "shift": (2,), "psize_A": (), "class_posterior": ()}


def _expected_shape(name: str) -> tuple | None:
    """The per-particle shape of a numeric field cryoscape reads (None: a field it does not read)."""
    if name.startswith("alignments"):
        return ALIGNMENT_FIELDS.get(name.rsplit("/", 1)[-1])
    return READ_FIELDS.get(name)


def _check_fields(arr: np.ndarray, path: Path) -> None:
    """Fields cryoscape reads must be numbers of the right shape (text for blob/path), so a
    damaged or foreign file fails here with its name, not deep inside numpy."""
    for name in _names(arr):
        dt = arr.dtype[name]
        want = _expected_shape(name)
        if name == "blob/path" and dt.kind != "S":
            raise InputError(f"field blob/path holds {dt}, expected text", path)
        if want is None:
            continue
        if dt.base.kind not in "biuf" or dt.shape != want:
            raise InputError(
                f"field {name} holds {dt.base}{list(dt.shape) or ''}, expected "
                f"{'numbers' if not want else f'{want[0]} numbers per particle'}",
                path,
            )
    if "blob/path" in _names(arr) and "blob/idx" not in _names(arr):
        raise InputError("field blob/path without blob/idx (the image's index in its stack)", path)


def _text(arr: np.ndarray, name: str, path: Path) -> np.ndarray:
    """A text field decoded; InputError naming the field if it is not UTF-8."""
    try:
        return np.char.decode(arr[name].astype(bytes), "utf-8")
    except UnicodeDecodeError:
        raise InputError(f"field {name} is not UTF-8 text", path) from None


def _f(arr: np.ndarray, name: str) -> np.ndarray | None:
    return arr[name].astype(np.float64) if name in _names(arr) else None


#: CTFParams optics field -> cryoSPARC field
OPTICS_FIELDS = {"voltage_kV": "ctf/accel_kv", "cs_mm": "ctf/cs_mm", "amp_contrast": "ctf/amp_contrast"}


def _ctf(
    arr: np.ndarray, path: Path, fill: OpticsFill | None, warnings: list[str]
) -> tuple[CTFParams | None, dict[str, float]]:
    """CTF per particle and the optics fields the file lacks, which come from ``fill`` (reported)."""
    if "ctf/df1_A" not in _names(arr):
        unused_fill(fill, warnings)
        return None, {}
    optics, filled = fill_optics(
        {k: _f(arr, f) for k, f in OPTICS_FIELDS.items()}, OPTICS_FIELDS, fill, len(arr), path, warnings
    )
    df2 = _f(arr, "ctf/df2_A")
    ang, phase, bfac = (_f(arr, k) for k in ("ctf/df_angle_rad", "ctf/phase_shift_rad", "ctf/bfactor"))
    return CTFParams.from_columns(
        len(arr),
        defocus_u_A=_f(arr, "ctf/df1_A"),
        defocus_v_A=_f(arr, "ctf/df1_A") if df2 is None else df2,
        defocus_angle_deg=0.0 if ang is None else np.rad2deg(ang),
        **optics,
        phase_shift_deg=0.0 if phase is None else np.rad2deg(phase),
        bfactor_A2=0.0 if bfac is None else bfac,
    ), filled


def _alignment_prefix(arr: np.ndarray, warnings: list[str], path: Path) -> str | None:
    """``alignments3D/``, else the ``alignments_class_K/`` with the largest total posterior."""
    names = _names(arr)
    if "alignments3D/pose" in names:
        return "alignments3D/"
    classes = sorted({n.split("/")[0] for n in names if n.startswith("alignments_class_") and n.endswith("/pose")})
    if not classes:
        warnings.append(f"no 3D alignments (alignments3D/pose) in {path.name}: no poses")
        return None
    post = [float(arr[f"{c}/class_posterior"].sum()) if f"{c}/class_posterior" in names else -1.0 for c in classes]
    best = classes[int(np.argmax(post))] if max(post) >= 0 else classes[0]
    if len(classes) > 1:
        why = "highest total posterior" if max(post) >= 0 else "first class"
        warnings.append(f"no alignments3D; using poses of {best} ({why}) of {len(classes)} classes")
    return best + "/"


def _shifts_A(
    arr: np.ndarray, pre: str, psize: np.ndarray, blob_box: int, box: int | None, warnings: list[str]
) -> np.ndarray | None:
    """Shifts in Å: pixels of the refinement box times its pixel size."""
    if pre + "shift" not in _names(arr):
        return None
    px = arr[pre + "shift"].astype(np.float64)
    ref_psize = _f(arr, pre + "psize_A")
    if ref_psize is not None and np.all(ref_psize > 0):
        return px * ref_psize[:, None]
    if box:  # refinement box D given: the shift is a fraction px / D of the physical box
        return px / box * (blob_box * psize)[:, None]
    warnings.append(
        f"no {pre}psize_A: shifts assumed in pixels of the particle box (pass -D/--box "
        "with the refinement box if it differs)"
    )
    return px * psize[:, None]


def _images(arr: np.ndarray, path: Path, datadir, images: str, warnings: list[str]):
    """ImageSource from blob/path + blob/idx; cryoSPARC paths are project-relative, so the cs
    folder's parent (the project) is tried after the cs folder itself."""
    from cryoscape.io.images import ImageSource, resolve_image_path

    if images == "skip":
        return None
    if "blob/path" not in _names(arr):
        if images == "require":
            raise InputError("missing field blob/path needed for reading particle images", path)
        warnings.append("no blob/path field: no particle images")
        return None
    try:
        paths = _text(arr, "blob/path", path)
        files = {}
        for p in dict.fromkeys(paths.tolist()):
            try:
                files[p] = resolve_image_path(p, path.parent, datadir, origin=path)
            except InputError:
                if datadir is not None:
                    raise
                files[p] = resolve_image_path(p, path.parent.parent, None, origin=path)
        return ImageSource.from_refs([files[p] for p in paths.tolist()], arr["blob/idx"].astype(np.int64), origin=path)
    except InputError as e:
        if images == "require":
            raise
        warnings.append(f"images not read: {e}")
        return None


def _metadata(arr: np.ndarray, path: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, np.ndarray | None]:
    """(particle rows: rln/ fields + _rlnImageName, optics table from rln_optics/, groups)."""
    import pandas as pd

    def col(name: str):
        v = arr[name]
        return _text(arr, name, path).astype(object) if v.dtype.kind == "S" else v

    meta = pd.DataFrame({n[len(RLN) :]: col(n) for n in _names(arr) if n.startswith(RLN)})
    if "ctf/phase_shift_rad" in _names(arr) and "_rlnPhaseShift" not in meta.columns:
        meta["_rlnPhaseShift"] = np.rad2deg(arr["ctf/phase_shift_rad"].astype(np.float64))
    if "alignments3D/split" in _names(arr) and "_rlnRandomSubset" not in meta.columns:
        meta["_rlnRandomSubset"] = arr["alignments3D/split"].astype(np.int64) + 1  # cryoSPARC's half-sets: 0/1
    if "ctf/bfactor" in _names(arr) and "_rlnCtfBfactor" not in meta.columns:
        meta["_rlnCtfBfactor"] = arr["ctf/bfactor"].astype(np.float64)
    if "blob/path" in _names(arr) and "_rlnImageName" not in meta.columns:
        paths = _text(arr, "blob/path", path)
        meta["_rlnImageName"] = [
            f"{i + 1:06d}@{p.lstrip('>')}" for i, p in zip(arr["blob/idx"].tolist(), paths.tolist())
        ]
    optics_cols = [n for n in _names(arr) if n.startswith(RLN_OPTICS)]
    if "_rlnOpticsGroup" not in meta.columns:
        return meta, None, None
    groups = meta["_rlnOpticsGroup"].to_numpy(np.int64)
    if not optics_cols:
        return meta, None, groups
    first = np.unique(groups, return_index=True)[1]
    optics = pd.DataFrame(
        {"_rlnOpticsGroup": groups[first], **{n[len(RLN_OPTICS) :]: col(n)[first] for n in optics_cols}}
    )
    return meta, optics, groups


def read_cs(
    path: str | os.PathLike,
    *,
    datadir: str | os.PathLike | None = None,
    images: str = "optional",
    box: int | None = None,
    apix: float | None = None,
    optics: OpticsFill | None = None,
    use_ctf: bool = True,
) -> ParticleSet:
    """Read a cryoSPARC particle ``.cs``; ``box`` is the refinement box D, needed only when the
    file lacks ``alignments3D/psize_A``; ``apix`` overrides ``blob/psize_A``; ``optics`` supplies
    voltage, Cs and amplitude contrast where the file lacks them (:mod:`.optics`); ``use_ctf=False``
    leaves the CTF unread."""
    check_images_mode(images)
    path = Path(path)
    arr = load_cs(path)
    warnings: list[str] = []
    psize = pick_psize(_f(arr, "blob/psize_A"), apix, len(arr), path, warnings)
    ctf, filled = _ctf(arr, path, optics, warnings) if use_ctf else (None, {})
    src = _images(arr, path, datadir, images, warnings)
    blob_box = int(arr["blob/shape"][0, 0]) if "blob/shape" in _names(arr) and len(arr) else 0
    if src is not None and blob_box and src.box != blob_box:
        warnings.append(f"blob/shape says {blob_box} px but the stacks are {src.box} px; using {src.box}")
    img_box = src.box if src is not None else blob_box
    if psize is None:
        psize = fallback_psize(
            src, len(arr), needed=ctf is not None, path=path, warnings=warnings, hint="the field blob/psize_A"
        )
    pre = _alignment_prefix(arr, warnings, path)
    rot = shifts = None
    if pre is not None:
        rot = cryosparc_pose_to_matrix(arr[pre + "pose"].astype(np.float64))
        shifts = _shifts_A(arr, pre, psize, img_box or (box or 0), box, warnings)
    meta, optics, groups = _metadata(arr, path)
    return ParticleSet(
        box=img_box or 0,
        psize_A=psize,
        images=src,
        rotations=rot,
        shifts_A=shifts,
        ctf=ctf,
        optics_group=groups,
        metadata=meta,
        optics=optics,
        source=path,
        source_format="cs",
        info=ReadInfo(warnings=warnings, cs_rows=arr, cs_alignments=pre, optics_filled=filled),
    )


def _source_rows(pset: ParticleSet) -> np.ndarray | None:
    """The raw cs rows of ``pset``'s particles (following subsets), or None if unavailable."""
    raw = pset.info.cs_rows
    if raw is None:
        return None
    sel = pset.info.subset_of_source
    rows = raw if sel is None else raw[np.asarray(sel)]
    return rows if len(rows) == pset.n else None


def _bytes(values: list[str]) -> np.ndarray:
    return np.array([v.encode() for v in values], dtype=bytes)


def _blob_fields(pset: ParticleSet, out_dir: Path, rows: np.ndarray | None) -> dict[str, np.ndarray]:
    n = pset.n
    out = {"blob/psize_A": pset.psize_A, "blob/shape": np.full((n, 2), pset.box, np.uint32)}
    names = image_names(pset, out_dir)
    if names is None and rows is None and pset.metadata is not None and "_rlnImageName" in pset.metadata:
        names = pset.metadata["_rlnImageName"].astype(str).tolist()
    if names is not None:
        idx, _, paths = zip(*(s.partition("@") for s in names)) if n else ((), "", ())
        out["blob/path"] = _bytes(list(paths))
        out["blob/idx"] = np.array([int(i) - 1 for i in idx], np.uint32)
    return out


def _ctf_fields(pset: ParticleSet, rows: np.ndarray | None) -> dict[str, np.ndarray]:
    c = pset.ctf
    if c is None:
        return {}
    out = {
        "ctf/accel_kv": c.voltage_kV,
        "ctf/cs_mm": c.cs_mm,
        "ctf/amp_contrast": c.amp_contrast,
        "ctf/df1_A": c.defocus_u_A,
        "ctf/df2_A": c.defocus_v_A,
        "ctf/df_angle_rad": np.deg2rad(c.defocus_angle_deg),
        "ctf/phase_shift_rad": np.deg2rad(c.phase_shift_deg),
    }
    had = rows is not None and "ctf/bfactor" in _names(rows)
    if np.any(c.bfactor_A2) or had or (pset.metadata is not None and "_rlnCtfBfactor" in pset.metadata):
        out["ctf/bfactor"] = c.bfactor_A2
    return out


def _pose_fields(pset: ParticleSet, rows: np.ndarray | None) -> dict[str, np.ndarray]:
    if pset.rotations is None:
        return {}
    pre = pset.info.cs_alignments or "alignments3D/"
    pose = matrix_to_cryosparc_pose(pset.rotations)
    if rows is not None and pre + "pose" in _names(rows):
        # cryoSPARC's axis-angle may exceed pi; keep its own vector where the rotation is unchanged
        orig = rows[pre + "pose"].astype(np.float64)
        same = np.abs(cryosparc_pose_to_matrix(orig) - pset.rotations).max(axis=(1, 2)) < 1e-6
        pose[same] = orig[same]
    out = {pre + "pose": pose}
    if pset.shifts_A is not None:
        ref = pre + "psize_A"
        ref_psize = rows[ref].astype(np.float64) if rows is not None and ref in _names(rows) else pset.psize_A
        out[ref] = ref_psize
        out[pre + "shift"] = pset.shifts_A / ref_psize[:, None]
    return out


def _star_fields(pset: ParticleSet) -> dict[str, np.ndarray]:
    """RELION columns without a cryoSPARC field, as rln/ and rln_optics/ fields."""
    out: dict[str, np.ndarray] = {}
    meta = pset.metadata
    # canonical columns travel too: write_star keeps their digits where they still agree
    if meta is not None:
        for col in meta.columns:
            if col not in V30_OPTICS_COLS:
                out[RLN + col] = meta[col].to_numpy()
    if pset.optics_group is not None:
        out[RLN + "_rlnOpticsGroup"] = pset.optics_group
        if pset.optics is not None:
            table = pset.optics.set_index("_rlnOpticsGroup").reindex(pset.optics_group)
            for col in table.columns:
                if col not in CANONICAL_STAR:
                    out[RLN_OPTICS + col] = table[col].to_numpy()
    return {k: (_bytes([str(x) for x in v]) if v.dtype.kind in "OUS" else v) for k, v in out.items()}


def _merge(rows: np.ndarray | None, fields: dict[str, np.ndarray], n: int) -> np.ndarray:
    """``rows`` with ``fields`` overwritten (existing dtypes kept, strings widened) or added."""
    have: dict[str, np.dtype] = {} if rows is None else {k: rows.dtype[k] for k in _names(rows)}
    dtypes: list[tuple[str, np.dtype | tuple[np.dtype, tuple[int, ...]]]] = list(have.items())
    for k, v in fields.items():
        v = np.asarray(v)
        if k in have and not (v.dtype.kind == "S" and v.dtype.itemsize > have[k].itemsize):
            continue
        sub = (v.dtype if k not in have or v.dtype.kind == "S" else have[k].base, v.shape[1:])
        if k in have:
            dtypes[[name for name, _ in dtypes].index(k)] = (k, sub)
        else:
            dtypes.append((k, sub))
    out = np.zeros(n, dtype=dtypes)
    if rows is not None:
        for k in _names(rows):
            out[k] = rows[k]
    for k, v in fields.items():
        out[k] = v
    return out


def write_cs(pset: ParticleSet, path: str | os.PathLike) -> None:
    """Write a cryoSPARC ``.cs`` (exactly that name), atomically.

    From a cs input every original field of the selected rows is kept; otherwise the array is
    built from the ParticleSet (float64 fields, so star -> cs -> star loses nothing).
    """
    path = Path(path)
    rows = _source_rows(pset)
    fields: dict[str, np.ndarray] = {}
    if rows is None:
        fields["uid"] = np.arange(pset.n, dtype=np.uint64)
    fields.update(_blob_fields(pset, path.absolute().parent, rows))
    fields.update(_ctf_fields(pset, rows))
    fields.update(_pose_fields(pset, rows))
    if rows is None:
        fields.update(_star_fields(pset))
    buf = io.BytesIO()
    np.save(buf, _merge(rows, fields, pset.n), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
