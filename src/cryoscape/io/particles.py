"""The canonical in-memory particle set every reader produces and every writer consumes.

Units are in the names: Å, degrees, kV, mm. Per-particle arrays all have length ``n`` and are in
the order of the input file. ``metadata`` keeps the input's rows (star columns or cs fields) so a
subset can be written back with every original column. ``info`` (:class:`ReadInfo`) says how
the set was read: the reader's warnings and the format details later steps need.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cryoscape.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from cryoscape.io.images import ImageSource

#: Column order of cryoDRGN's CTF pickle (N x 9).
CRYODRGN_CTF_COLUMNS = (
    "box",
    "psize_A",
    "defocus_u_A",
    "defocus_v_A",
    "defocus_angle_deg",
    "voltage_kV",
    "cs_mm",
    "amp_contrast",
    "phase_shift_deg",
)


@dataclass(frozen=True)
class CTFParams:
    """Per-particle CTF parameters, RELION's definitions (defocus positive = underfocus)."""

    defocus_u_A: np.ndarray
    defocus_v_A: np.ndarray
    defocus_angle_deg: np.ndarray
    voltage_kV: np.ndarray
    cs_mm: np.ndarray
    amp_contrast: np.ndarray
    phase_shift_deg: np.ndarray
    bfactor_A2: np.ndarray

    @classmethod
    def from_columns(cls, n: int, **cols: Any) -> CTFParams:
        """Build from scalars or length-``n`` arrays; ``phase_shift_deg``/``bfactor_A2`` default 0."""
        cols.setdefault("phase_shift_deg", 0.0)
        cols.setdefault("bfactor_A2", 0.0)
        return cls(**{k: np.broadcast_to(np.asarray(v, np.float64), (n,)).copy() for k, v in cols.items()})

    def __len__(self) -> int:
        return len(self.defocus_u_A)

    def subset(self, ind: np.ndarray) -> CTFParams:
        return CTFParams(**{k: v[ind] for k, v in self.__dict__.items()})

    def to_cryodrgn(self, box: int, psize_A: np.ndarray | float) -> np.ndarray:
        """cryoDRGN's N x 9 float32 CTF array (see :data:`CRYODRGN_CTF_COLUMNS`)."""
        n = len(self)
        cols = [
            np.full(n, box),
            np.broadcast_to(psize_A, (n,)),
            self.defocus_u_A,
            self.defocus_v_A,
            self.defocus_angle_deg,
            self.voltage_kV,
            self.cs_mm,
            self.amp_contrast,
            self.phase_shift_deg,
        ]
        return np.stack(cols, axis=1).astype(np.float32)

    @classmethod
    def from_cryodrgn(cls, arr: np.ndarray) -> CTFParams:
        arr = np.asarray(arr, np.float64)
        names = CRYODRGN_CTF_COLUMNS[2:]
        return cls.from_columns(len(arr), **{k: arr[:, i + 2] for i, k in enumerate(names)})

    def as_array(self) -> np.ndarray:
        """(N, 8) float64 in field order, for handing to the torch CTF."""
        return np.stack([v for v in self.__dict__.values()], axis=1)


@dataclass(frozen=True, eq=False)
class ReadInfo:
    """How a :class:`ParticleSet` was read, for the commands and writers that come after.

    Frozen, except ``warnings``: a list the reader fills and later steps (overrides from pickles,
    header checks) append to; sets derived with :func:`dataclasses.replace` or
    :meth:`ParticleSet.subset` share it, so a warning is reported once wherever it was found.
    """

    #: What looked wrong while reading (missing stacks, mismatches, values taken from options).
    warnings: list[str] = field(default_factory=list)
    #: RELION star files: "3.1" (with a data_optics block) or "3.0"; None for other formats.
    star_version: str | None = None
    #: cryoSPARC ``.cs``: the file's rows with every field, so a subset is written back whole.
    cs_rows: np.ndarray | None = None
    #: cryoSPARC ``.cs``: the field prefix the poses came from (``alignments3D/`` or
    #: ``alignments_class_K/``); None where the file has no 3D alignments.
    cs_alignments: str | None = None
    #: CTF optics fields the file lacks and the command line supplied: field -> value.
    optics_filled: dict[str, float] = field(default_factory=dict)
    #: Bare image stacks: where the pixel size came from, "apix", "header" or "assumed" (1 Å).
    psize_from: str | None = None
    #: Rows of the source file the set's particles are, in order (after :meth:`ParticleSet.subset`);
    #: None: all of them, in file order.
    subset_of_source: np.ndarray | None = None


@dataclass
class ParticleSet:
    """Images plus per-particle pose, shift, CTF and the original metadata rows.

    ``rotations`` are RELION ``A`` matrices (see :mod:`cryoscape.geometry`), ``shifts_A`` are
    ``(_rlnOriginXAngst, _rlnOriginYAngst)``. Either may be ``None`` when the input lacks them.
    """

    box: int
    psize_A: np.ndarray  # (N,) pixel size of the images, Å
    images: ImageSource | None = None
    rotations: np.ndarray | None = None  # (N, 3, 3)
    shifts_A: np.ndarray | None = None  # (N, 2)
    ctf: CTFParams | None = None
    optics_group: np.ndarray | None = None  # (N,) int
    metadata: pd.DataFrame | None = None  # one row per particle, original columns
    optics: pd.DataFrame | None = None  # RELION data_optics table, if any
    source: Path | None = None
    source_format: str = ""  # "star", "cs", "mrcs", "txt", "pkl"
    info: ReadInfo = field(default_factory=ReadInfo)  # warnings and format details of the read

    def __post_init__(self) -> None:
        self.psize_A = np.asarray(self.psize_A, np.float64)
        if self.psize_A.ndim != 1:
            raise ValueError("psize_A must be a per-particle (N,) array")

    @property
    def n(self) -> int:
        return len(self.psize_A)

    def __len__(self) -> int:
        return self.n

    @property
    def apix(self) -> float:
        """The single pixel size of the set; raises if optics groups disagree."""
        vals = np.unique(np.round(self.psize_A, 5))
        if len(vals) != 1:
            raise InputError(
                f"particles have {len(vals)} different pixel sizes {vals.tolist()}; select one optics group first",
                self.source,
            )
        return float(vals[0])

    @property
    def shifts_px(self) -> np.ndarray | None:
        return None if self.shifts_A is None else self.shifts_A / self.psize_A[:, None]

    @property
    def has_poses(self) -> bool:
        return self.rotations is not None

    def subset(self, ind: np.ndarray) -> ParticleSet:
        """A new set with particles ``ind`` (indices or a boolean mask), in that order."""
        ind = np.asarray(ind)
        if ind.dtype == bool:
            ind = np.flatnonzero(ind)
        take = lambda a: None if a is None else a[ind]
        return replace(
            self,
            psize_A=self.psize_A[ind],
            images=None if self.images is None else self.images.subset(ind),
            rotations=take(self.rotations),
            shifts_A=take(self.shifts_A),
            ctf=None if self.ctf is None else self.ctf.subset(ind),
            optics_group=take(self.optics_group),
            metadata=None if self.metadata is None else self.metadata.iloc[ind].reset_index(drop=True),
            info=replace(
                self.info,
                subset_of_source=ind if self.info.subset_of_source is None else self.info.subset_of_source[ind],
            ),
        )

    def check_counts(self) -> None:
        """Raise :class:`InputError` if any per-particle array disagrees with the image count."""
        n_img = None if self.images is None else len(self.images)
        for name, a in (("poses", self.rotations), ("shifts", self.shifts_A), ("CTF", self.ctf)):
            if a is not None and n_img is not None and len(a) != n_img:
                raise InputError(f"{len(a)} {name} for {n_img} images", self.source)
