"""A lazy, indexable view over particle images spread across many MRC stacks.

Every file's header is read and checked once, when the source is built; images are read only
when indexed, with plain positioned reads (not mmaps) so memory stays bounded by the request and
thousands of stacks never hold thousands of file descriptors. Image names follow RELION:
``000123@path/stack.mrcs`` is the 123rd image (1-based) of that stack.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.mrc import MrcHeader, read_header

Index = int | slice | Sequence[int] | np.ndarray | tuple


def resolve_image_path(
    path: str | os.PathLike,
    base_dir: str | os.PathLike,
    datadir: str | os.PathLike | None = None,
    *,
    origin: str | os.PathLike | None = None,
) -> Path:
    """The existing file a star/cs image path refers to, as an absolute path.

    cryoSPARC's leading ``>`` is stripped. A relative path is tried under ``datadir`` (if given,
    else ``base_dir``) as written, then by its basename alone; an absolute path as it is, then by
    basename under ``datadir``. Raise InputError naming ``origin`` if none exists.
    """
    text = str(path).strip()
    text = text.removeprefix(">")
    p = Path(text)
    root = Path(datadir) if datadir is not None else Path(base_dir)
    if p.is_absolute():
        tries = [p] + ([root / p.name] if datadir is not None else [])
    else:
        tries = [root / p, root / p.name]
    for t in tries:
        if t.is_file():
            return t.absolute()
    folders = [t for t in tries if t.is_dir()]
    if folders:
        raise InputError(f"image stack {folders[0]} is a folder, not a file", origin)
    hint = "check --datadir" if datadir is not None else "use --datadir to point to the folder holding the stacks"
    looked = ", ".join(dict.fromkeys(str(t) for t in tries))
    raise InputError(f"image stack {text} not found (looked for {looked}); {hint}", origin)


def _parse_name(name: str, origin: str | os.PathLike | None) -> tuple[int, str]:
    """``'000123@a/b.mrcs'`` -> (122, 'a/b.mrcs'); a bare path -> (0, path)."""
    head, sep, tail = name.strip().partition("@")
    if not sep:
        return 0, head
    try:
        frame = int(head)
    except ValueError:
        raise InputError(f"image name {name!r} is not of the form INDEX@FILE", origin) from None
    if frame < 1:
        raise InputError(f"image name {name!r}: RELION image indices start at 1", origin)
    return frame - 1, tail


def image_refs_from_names(
    names: Sequence[str],
    *,
    base_dir: str | os.PathLike,
    datadir: str | os.PathLike | None = None,
    origin: str | os.PathLike | None = None,
) -> tuple[list[Path], np.ndarray]:
    """Parse RELION ``_rlnImageName`` strings into (absolute file per particle, 0-based frames).

    Each distinct path is resolved once (see :func:`resolve_image_path`), so 10^6 names sharing
    a few thousand stacks cost a few thousand ``stat`` calls.
    """
    resolved: dict[str, Path] = {}
    files: list[Path] = []
    frames = np.empty(len(names), np.int64)
    for i, name in enumerate(names):
        frames[i], rel = _parse_name(str(name), origin)
        if rel not in resolved:
            resolved[rel] = resolve_image_path(rel, base_dir, datadir, origin=origin)
        files.append(resolved[rel])
    return files, frames


class ImageSource:
    """Particle images ``(N, D, D)`` float32 ``[n, y, x]``, read lazily from MRC stacks.

    Build with :meth:`from_file` or :meth:`from_refs`; index like an array; ``subset`` and
    ``chunks`` never read more than what is asked for.
    """

    def __init__(
        self,
        headers: Sequence[MrcHeader],
        file_idx: np.ndarray,
        frames: np.ndarray,
        origin: str | os.PathLike | None = None,
    ) -> None:
        """Internal: use :meth:`from_file` / :meth:`from_refs`, which validate."""
        self._headers = list(headers)
        self._file_idx = np.asarray(file_idx, np.int64)
        self._frames = np.asarray(frames, np.int64)
        self.origin = None if origin is None else Path(origin)
        self.box = self._headers[0].nx if self._headers else 0

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ImageSource:
        """All images of a ``.mrcs``/``.mrc`` stack, or of every stack listed in a ``.txt``."""
        path = Path(path)
        if path.suffix.lower() != ".txt":
            headers = [read_header(Path(path).absolute())]
        else:
            headers = [_header_or_origin(s, path) for s in _read_stack_list(path)]
        _check_boxes(headers, path)
        counts = [h.nz for h in headers]
        file_idx = np.repeat(np.arange(len(headers)), counts)
        frames = np.concatenate([np.arange(c) for c in counts])
        return cls(headers, file_idx, frames, path)

    @classmethod
    def from_refs(
        cls, files: Sequence[str | os.PathLike], frames: np.ndarray, *, origin: str | os.PathLike | None = None
    ) -> ImageSource:
        """Per-particle file and 0-based frame; every file, frame and box size checked now."""
        frames = np.asarray(frames, np.int64)
        if len(files) != len(frames):
            raise ValueError(f"{len(files)} files for {len(frames)} frames")
        uniq: dict[str, int] = {}
        file_idx = np.fromiter((uniq.setdefault(str(f), len(uniq)) for f in files), np.int64, len(files))
        headers = [_header_or_origin(Path(f).absolute(), origin) for f in uniq]
        _check_boxes(headers, origin)
        _check_frames(headers, file_idx, frames, origin)
        return cls(headers, file_idx, frames, origin)

    # array-like view ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._frames)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self), self.box, self.box)

    @property
    def files(self) -> list[Path]:
        """The distinct stacks (absolute paths) this source reads from."""
        return [h.path.absolute() for h in self._headers]

    @property
    def header_psize_A(self) -> float | None:
        """Voxel size written in the first stack's header, None if it is 0 (unset)."""
        if not self._headers:
            return None
        p = self._headers[int(self._file_idx[0])].psize_A if len(self) else self._headers[0].psize_A
        return p if p > 0 else None

    def __getitem__(self, key: Index) -> np.ndarray:
        """One image ``(D, D)`` for an int, else ``(k, D, D)`` in the requested order.

        A tuple key indexes images with its first element and pixels with the rest.
        """
        if isinstance(key, tuple):
            return self[key[0]][(() if isinstance(key[0], (int, np.integer)) else (slice(None),)) + key[1:]]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"image {key} out of range for {len(self)} images")
            return self._read(np.array([i]))[0]
        return self._read(self._indices(key))

    def subset(self, ind: Index) -> ImageSource:
        """A new source with images ``ind`` (indices, slice or boolean mask), in that order."""
        ind = self._indices(ind)
        return ImageSource(self._headers, self._file_idx[ind], self._frames[ind], self.origin)

    def refs(self) -> tuple[np.ndarray, np.ndarray]:
        """(absolute stack path per image as str, 0-based frame per image), for writers."""
        paths = np.array([str(h.path.absolute()) for h in self._headers], dtype=object)
        return paths[self._file_idx], self._frames.copy()

    def chunks(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream ``(indices, images: (k, D, D))`` in order, ``size`` images at a time."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        for start in range(0, len(self), size):
            ind = np.arange(start, min(start + size, len(self)))
            yield ind, self._read(ind)

    def __repr__(self) -> str:
        return f"ImageSource({len(self)} images of {self.box}x{self.box} from {len(self._headers)} file(s))"

    # reading ------------------------------------------------------------------------------
    def _indices(self, key: Index) -> np.ndarray:
        if isinstance(key, slice):
            return np.arange(len(self))[key]
        ind = np.asarray(key)
        if ind.dtype == bool:
            if ind.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {ind.shape} for {len(self)} images")
            return np.flatnonzero(ind)
        if ind.size and not np.issubdtype(ind.dtype, np.integer):
            raise IndexError(f"image indices must be integers, got {ind.dtype}")
        ind = ind.astype(np.int64).reshape(-1)
        if ind.size and (ind.max() >= len(self) or ind.min() < -len(self)):
            raise IndexError(f"image index out of range for {len(self)} images")
        return np.where(ind < 0, ind + len(self), ind)

    def _read(self, ind: np.ndarray) -> np.ndarray:
        """Images ``ind`` as float32 ``(k, D, D)``, read file by file in on-disk order."""
        out = np.empty((len(ind), self.box, self.box), np.float32)
        fidx, frames = self._file_idx[ind], self._frames[ind]
        order = np.lexsort((frames, fidx))  # group by file, then ascending frame: sequential reads
        bounds = np.flatnonzero(np.diff(fidx[order])) + 1
        for group in np.split(order, bounds) if len(order) else []:
            h = self._headers[int(fidx[group[0]])]
            out[group] = _read_frames(h, frames[group])
        return out


def _read_stack_list(path: Path) -> list[Path]:
    """The stacks named in a ``.txt`` list, one per line, relative to the list's folder."""
    if path.is_dir():
        raise InputError("is a folder, not a list of stacks", path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read stack list: {e}", path) from None
    stacks = [resolve_image_path(ln, path.parent, origin=path) for ln in lines if ln]
    if not stacks:
        raise InputError("stack list is empty", path)
    return stacks


def _header_or_origin(path: Path, origin: str | os.PathLike | None) -> MrcHeader:
    """read_header, but a missing stack is reported against the star/cs that named it."""
    if origin is not None and path.is_dir():
        raise InputError(f"image stack {path} is a folder, not a file", origin)
    if origin is not None and not path.exists():
        raise InputError(
            f"image stack {path} not found; use --datadir to point to the folder holding the stacks", origin
        )
    return read_header(path)  # a stack that is there but unreadable: named itself


def _check_boxes(headers: Sequence[MrcHeader], origin: str | os.PathLike | None) -> None:
    for h in headers:
        if h.nx != h.ny:
            raise InputError(f"images are {h.nx}x{h.ny} px; cryoscape needs square images", h.path)
    boxes = {h.nx: h.path.name for h in headers}
    if len(boxes) > 1:
        listed = ", ".join(f"{b} px in {name}" for b, name in boxes.items())
        raise InputError(
            f"image stacks have different box sizes ({listed}); re-extract or downsample them to one box",
            origin or headers[0].path,
        )


def _check_frames(
    headers: Sequence[MrcHeader], file_idx: np.ndarray, frames: np.ndarray, origin: str | os.PathLike | None
) -> None:
    if not len(frames):
        return
    counts = np.array([h.nz for h in headers])[file_idx]
    bad = np.flatnonzero((frames >= counts) | (frames < 0))
    if len(bad):
        i = int(bad[0])
        h = headers[int(file_idx[i])]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(
            f"image {frames[i] + 1}@{h.path.name} is beyond the stack's {h.nz} images{more}", origin or h.path
        )


def _read_frames(h: MrcHeader, frames: np.ndarray) -> np.ndarray:
    """Frames (ascending, 0-based) of one stack as float32, one positioned read per run."""
    raw = np.empty((len(frames), h.ny, h.nx), h.dtype)
    starts = np.flatnonzero(np.diff(frames, prepend=frames[0] - 2) != 1)  # where consecutive runs begin
    ends = np.append(starts[1:], len(frames))
    with open(h.path, "rb", buffering=0) as f:
        for a, b in zip(starts, ends):
            view = raw[a:b].data.cast("B")
            pos = h.data_offset + int(frames[a]) * h.frame_bytes
            while view:  # one read may return less than asked (reads > 2 GB on Linux)
                got = os.preadv(f.fileno(), [view], pos)
                if got == 0:
                    raise InputError(f"truncated while reading image {frames[a] + 1}", h.path)
                view, pos = view[got:], pos + got
    images = raw if raw.dtype == np.float32 else raw.astype(np.float32)
    if images.dtype.kind == "f" and h.dtype.kind == "f":
        bad = ~np.isfinite(images).all(axis=(1, 2))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            what = "NaN" if np.isnan(images[j]).any() else "Inf"
            raise InputError(f"image {frames[j] + 1}@{h.path.name} contains {what}", h.path)
    return images
