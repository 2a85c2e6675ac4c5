"""MRC files: validated headers, memory-mapped stacks, atomic volume and stack writers.

Headers are decoded here (not by mrcfile) so that every way a file can be wrong — missing, not an
MRC, truncated, an unsupported mode — becomes one :class:`InputError` naming the file, and so that
opening a 50 GB stack reads only its 1024-byte header. Arrays are ``[n, y, x]`` for stacks and
``[z, y, x]`` for volumes, exactly as stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import mrcfile
import numpy as np
from mrcfile.dtypes import HEADER_DTYPE

from cryoscape.errors import InputError
from cryoscape.io.atomic import atomic_path, check_target, commit, raise_user_error, temp_beside

HEADER_BYTES = 1024
ByteOrder = Literal["<", ">"]
#: byte 212 of the header (the machine stamp's first byte) -> the byte order it declares
STAMP_ORDERS: dict[int, ByteOrder] = {0x44: "<", 0x41: "<", 0x11: ">"}

#: MRC data modes cryoscape reads, as little-endian dtypes (byte order fixed per file).
MODE_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("i1"),
    1: np.dtype("<i2"),
    2: np.dtype("<f4"),
    6: np.dtype("<u2"),
    12: np.dtype("<f2"),
}
#: Valid MRC modes cryoscape does not read (complex and packed 4-bit data).
UNSUPPORTED_MODES = {3: "complex int16", 4: "complex float32", 101: "packed 4-bit"}

# Plausibility bound for a dimension: anything larger is a misread header, not a real file.
_MAX_DIM = 1 << 24


@dataclass(frozen=True)
class MrcHeader:
    """What cryoscape needs from an MRC header, already validated against the file size."""

    path: Path
    nx: int
    ny: int
    nz: int  # images in a stack, sections in a volume
    mode: int
    dtype: np.dtype  # with the file's byte order
    data_offset: int  # bytes from the start of the file to the first voxel
    psize_A: float  # voxel size along x (cella.x / mx); 0 when the header does not say
    ispg: int
    axis_order: tuple[int, int, int]  # (mapc, mapr, maps); (1, 2, 3) for x fastest

    @property
    def frame_bytes(self) -> int:
        return self.nx * self.ny * self.dtype.itemsize


def _plausible(h: np.ndarray) -> bool:
    dims_ok = all(0 < int(h[k]) <= _MAX_DIM for k in ("nx", "ny", "nz"))
    mode = int(h["mode"])
    return dims_ok and (mode in MODE_DTYPES or mode in UNSUPPORTED_MODES) and int(h["nsymbt"]) >= 0


def _decode(raw: bytes, path: Path) -> tuple[np.ndarray, ByteOrder]:
    """The header record and its byte order ('<' or '>'), or InputError if it is not an MRC."""
    stamp = raw[212]
    orders = STAMP_ORDERS.get(stamp)
    candidates: list[ByteOrder] = [orders] if orders else ["<", ">"]
    for order in candidates:
        h = np.frombuffer(raw, HEADER_DTYPE.newbyteorder(order), count=1)[0]
        if _plausible(h):
            return h, order
    h = np.frombuffer(raw, HEADER_DTYPE.newbyteorder(orders or "<"), count=1)[0]
    what = "" if h["map"] == b"MAP " else " (no 'MAP ' identifier)"
    raise InputError(
        f"not an MRC file{what}: header gives dimensions "
        f"{int(h['nx'])}x{int(h['ny'])}x{int(h['nz'])}, mode {int(h['mode'])}",
        path,
    )


def read_header(path: str | os.PathLike) -> MrcHeader:
    """Read and validate an MRC header; raise InputError naming the file for any problem."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a folder, not an MRC file", path)
    try:
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path) from None
    if len(raw) < HEADER_BYTES:
        raise InputError(f"not an MRC file: {len(raw)} bytes, shorter than an MRC header", path)
    h, order = _decode(raw, path)
    mode = int(h["mode"])
    if mode in UNSUPPORTED_MODES:
        raise InputError(
            f"unsupported MRC mode {mode} ({UNSUPPORTED_MODES[mode]}); cryoscape reads "
            f"modes {sorted(MODE_DTYPES)} (real-valued images)",
            path,
        )
    nx, ny, nz = (int(h[k]) for k in ("nx", "ny", "nz"))
    dtype = MODE_DTYPES[mode].newbyteorder(order)
    offset = HEADER_BYTES + int(h["nsymbt"])
    need = offset + nx * ny * nz * dtype.itemsize
    if size < need:
        have = max(size - offset, 0) // max(nx * ny * dtype.itemsize, 1)
        raise InputError(
            f"truncated: the header says {nz} sections of {ny}x{nx} ({need} bytes) but "
            f"the file has {size} bytes (only {have} complete); copy or regenerate it",
            path,
        )
    extra = (size - need) // (nx * ny * dtype.itemsize)
    if extra > 0:  # a header that undercounts would silently hide images (or misread a volume)
        raise InputError(
            f"the header says {nz} sections of {ny}x{nx} but the file holds {nz + extra} "
            f"({size - need} bytes more): the header is wrong or the file was appended to; "
            "regenerate it",
            path,
        )
    mx = int(h["mx"])
    psize = float(h["cella"]["x"]) / mx if mx > 0 else 0.0
    axes = (int(h["mapc"]), int(h["mapr"]), int(h["maps"]))
    if sorted(axes) != [1, 2, 3]:
        axes = (1, 2, 3)  # many writers leave these 0; MRC then means x fastest
    return MrcHeader(path, nx, ny, nz, mode, dtype, offset, psize if np.isfinite(psize) else 0.0, int(h["ispg"]), axes)


def open_stack(path: str | os.PathLike) -> np.memmap:
    """Memory-map an image stack read-only as ``(N, ny, nx)`` in the file's dtype.

    Only the header is read; a single 2D image is ``(1, ny, nx)``. Works for ``.mrcs`` and
    ``.mrc`` alike (a stack is a stack whatever its space group says).
    """
    h = read_header(path)
    return np.memmap(h.path, dtype=h.dtype, mode="r", offset=h.data_offset, shape=(h.nz, h.ny, h.nx))


def read_volume(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """A cubic map as ``(vol: (D, D, D) float32 [z, y, x], psize_A)``; psize_A is 0 if unknown."""
    h = read_header(path)
    data = np.fromfile(h.path, dtype=h.dtype, count=h.nx * h.ny * h.nz, offset=h.data_offset)
    data = data.reshape(h.nz, h.ny, h.nx)
    # stored axes are (section, row, column) = labels (maps, mapr, mapc); we want labels (z, y, x)
    stored = (h.axis_order[2], h.axis_order[1], h.axis_order[0])
    vol = np.ascontiguousarray(data.transpose([stored.index(a) for a in (3, 2, 1)]), np.float32)
    if len(set(vol.shape)) != 1:
        raise InputError(f"volume is {'x'.join(map(str, vol.shape[::-1]))} voxels; cryoscape needs a cube", path)
    if not np.isfinite(vol).all():
        raise InputError("volume contains NaN or Inf", path)
    return vol, h.psize_A


def write_volume(path: str | os.PathLike, vol: np.ndarray, psize_A: float) -> None:
    """Write ``vol: (D, D, D) [z, y, x]`` as a float32 MRC map, atomically (:mod:`.atomic`).

    Voxel size = ``psize_A``, origin and n[xyz]start 0, space group 1 (a volume).
    """
    vol = np.asarray(vol, np.float32)
    if vol.ndim != 3:
        raise ValueError(f"write_volume needs a 3D array, got shape {vol.shape}")
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as m:
            m.set_data(vol)
            m.set_volume()
            m.voxel_size = float(psize_A)
            m.header.origin = (0.0, 0.0, 0.0)
            m.header.nxstart = m.header.nystart = m.header.nzstart = 0


class _RunningStats:
    """Min, max, mean and rms of everything written, accumulated chunk by chunk in float64."""

    def __init__(self) -> None:
        self.count, self.total, self.total_sq = 0, 0.0, 0.0
        self.lo, self.hi = np.inf, -np.inf

    def add(self, x: np.ndarray) -> None:
        x64 = x.astype(np.float64, copy=False)
        self.count += x.size
        self.total += float(x64.sum())
        self.total_sq += float(np.square(x64).sum())
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))

    def summary(self) -> tuple[float, float, float, float]:
        """(dmin, dmax, dmean, rms) where rms is the standard deviation, as MRC defines it."""
        mean = self.total / self.count
        return self.lo, self.hi, mean, float(np.sqrt(max(self.total_sq / self.count - mean**2, 0.0)))


class StackWriter:
    """Write an ``(n, D, D)`` float32 image stack chunk by chunk, atomically.

    Data go through ordinary writes (not an mmap) so a full disk raises ENOSPC instead of SIGBUS.
    Header statistics come from the chunks, so the stack is never read back. On a clean exit the
    temp file is made durable and renamed to ``path`` (:func:`cryoscape.io.atomic.commit`, the
    guarantee of every write); on an exception it is removed.

    >>> with StackWriter("out.mrcs", n, D, psize_A) as w:
    ...     w.write(0, images)  # images: (k, D, D)
    """

    def __init__(self, path: str | os.PathLike, n: int, D: int, psize_A: float) -> None:
        if n < 1 or D < 1:
            raise ValueError(f"StackWriter needs n >= 1 and D >= 1, got n={n}, D={D}")
        self.path, self.n, self.D, self.psize_A = Path(path), int(n), int(D), float(psize_A)
        self._tmp = temp_beside(self.path)
        self._stats = _RunningStats()
        self._written = np.zeros(self.n, bool)
        self._fd: int | None = None
        self._offset = 0

    def __enter__(self) -> StackWriter:
        check_target(self.path)
        try:
            with mrcfile.new_mmap(self._tmp, (self.n, self.D, self.D), mrc_mode=2, overwrite=True) as m:
                m.set_image_stack()
                m.voxel_size = self.psize_A
                self._offset = m.header.nbytes + int(m.header.nsymbt)
            self._fd = os.open(self._tmp, os.O_WRONLY)
        except OSError as e:
            self._tmp.unlink(missing_ok=True)
            raise_user_error(e, self.path)
        return self

    def write(self, start: int, images: np.ndarray) -> None:
        """Write ``images: (k, D, D)`` as images ``start .. start + k - 1`` (0-based)."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        k = len(images)
        if images.shape[1:] != (self.D, self.D) or start < 0 or start + k > self.n:
            raise ValueError(f"cannot write {images.shape} at {start} into a ({self.n}, {self.D}, {self.D}) stack")
        if self._fd is None:
            raise RuntimeError("StackWriter.write called outside its `with` block")
        buf = images.data.cast("B")
        pos = self._offset + start * self.D * self.D * 4
        try:
            while buf:
                done = os.pwrite(self._fd, buf, pos)
                buf, pos = buf[done:], pos + done
        except OSError as e:
            raise_user_error(e, self.path)
        self._stats.add(images)
        self._written[start : start + k] = True

    def __exit__(self, exc_type: type | None, _exc: BaseException | None, _tb: TracebackType | None) -> None:
        try:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if exc_type is None:
                self._finish()
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)

    def _finish(self) -> None:
        missing = np.flatnonzero(~self._written)
        if len(missing):
            raise RuntimeError(
                f"StackWriter closed with {len(missing)} of {self.n} images unwritten (first: {missing[0]})"
            )
        dmin, dmax, dmean, rms = self._stats.summary()
        try:
            # header-only update through mrcfile's mmap: maps the data lazily, reads none of it
            with mrcfile.mmap(self._tmp, mode="r+") as m:
                m.header.dmin, m.header.dmax, m.header.dmean, m.header.rms = dmin, dmax, dmean, rms
            commit(self._tmp, self.path)
        except OSError as e:
            raise_user_error(e, self.path)
