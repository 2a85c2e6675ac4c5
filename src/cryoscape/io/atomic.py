"""The one way cryoscape writes a file, and its one guarantee.

How: the data go to a new temp file in the target's folder (``.NAME.<8 hex>.tmp``, created
exclusively, mode 0666 minus the umask like any ordinary program's file; ``tempfile.mkstemp``
would make it 0600), the temp file is fsynced, renamed onto the target with :func:`os.replace`,
and the folder is fsynced (where the file system allows it).

The guarantee: a file appears under its final name only when it is complete and on disk, and it
replaces the previous one in one step, so a reader sees the old file or the new one, never a
mixture; a run killed at any moment leaves whole files (plus, at worst, a hidden temp file
``.NAME.<8 hex>.tmp``); a full disk or a read-only folder becomes one
:class:`InputError` naming the file the user asked for, never the temp file, and leaves no temp
file behind.

Every writer goes through here: star, cs, pickles and index files, MRC maps (:func:`atomic_path`)
and stacks (:class:`cryoscape.io.mrc.StackWriter`, which writes in chunks and then calls
:func:`commit`), checkpoints, latents, logs, config, simulation outputs, reports and figures.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NoReturn

from cryoscape.errors import InputError

#: Bytes of the target's name kept in a temp name: a legal 255-byte output name must not make
#: an illegal temp name, and a short one is still recognisable.
_STEM_BYTES = 40

#: errno -> what the user is told; anything else stays an OSError (reported by the CLI).
_USER_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large for this file system",
}


def temp_name(name: str) -> str:
    """``.<first 40 bytes of name>.<8 hex>.tmp``: hidden, unique, never longer than 56 bytes."""
    stem = name.encode()[:_STEM_BYTES].decode(errors="ignore")
    return f".{stem}.{secrets.token_hex(4)}.tmp"


def user_error(e: OSError, path: str | os.PathLike) -> InputError | OSError:
    """The one-line error for an OSError met while writing ``path`` (the target, not the temp)."""
    why = _USER_ERRNOS.get(e.errno or -1)
    if why is None:
        return e
    return InputError(f"cannot write: {why}", path)


def raise_user_error(e: OSError, path: str | os.PathLike) -> NoReturn:
    """Raise ``e`` as the one-line error about ``path`` where it is a user's problem
    (:func:`user_error`), else as it is."""
    err = user_error(e, path)
    if err is e:
        raise e
    raise err from None


def _discard_and_raise(tmp: Path, e: OSError, path: Path) -> NoReturn:
    """Remove the temp file of a failed write and raise ``e`` (see :func:`raise_user_error`)."""
    tmp.unlink(missing_ok=True)
    raise_user_error(e, path)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_target(path: Path) -> Path:
    """The folder of ``path``; InputError if it does not exist or ``path`` is a folder."""
    folder = path.absolute().parent
    if not folder.is_dir():
        raise InputError("output folder does not exist", folder)
    if path.is_dir():
        raise InputError("is a folder; give a file name for the output", path)
    return folder


def temp_beside(path: Path) -> Path:
    """A fresh temp path for a write to ``path``, in the same folder (a rename is atomic only
    within one file system)."""
    return path.absolute().parent / temp_name(path.name)


def commit(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, rename it to ``path``, fsync the folder (the second half of every write)."""
    _fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.absolute().parent)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path`` for a writer that needs a path (mrcfile); on a clean exit
    it is made durable and renamed to ``path``, on any exception removed. The writer must create
    the file itself (ordinary ``open`` honours the umask)."""
    path = Path(path)
    check_target(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        commit(tmp, path)
    except OSError as e:
        _discard_and_raise(tmp, e, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_temp(tmp: Path) -> int:
    """Create ``tmp`` exclusively for writing, mode 0666 minus the umask; returns the descriptor."""
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(fileobj)`` on a fresh temp file beside ``path``, then make it ``path``."""
    with atomic_path(path) as tmp:
        with os.fdopen(create_temp(tmp), "wb") as f:
            write(f)
            f.flush()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    atomic_write(path, lambda f: f.write(data))


def atomic_link(src: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make ``path`` name the same file as ``src`` (a hard link, renamed into place), or a copy of it
    where the file system has no hard links."""
    src, path = Path(src), Path(path)
    folder = check_target(path)
    if path.exists() and os.path.samefile(src, path):
        return  # already so (and rename() between two links of one file would do nothing)
    tmp = temp_beside(path)
    try:
        os.link(src, tmp)
    except OSError as e:
        if e.errno in _USER_ERRNOS and e.errno not in (errno.EPERM,):
            raise user_error(e, path) from None
        atomic_write(path, lambda f: f.write(src.read_bytes()))  # no hard links (network/FUSE)
        return
    try:
        os.replace(tmp, path)
    except OSError as e:
        _discard_and_raise(tmp, e, path)
    fsync_dir(folder)


def save_array(path: str | os.PathLike, a) -> None:
    """``np.save`` through the atomic write path (the name is kept as given: no ``.npy`` appended)."""
    import numpy as np

    atomic_write(path, lambda f: np.save(f, a))


def save_text_array(path: str | os.PathLike, a, **savetxt_kwargs) -> None:
    """``np.savetxt`` through the atomic write path."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savetxt(buf, a, **savetxt_kwargs)
    atomic_write_bytes(path, buf.getvalue())


def save_figure(path: str | os.PathLike, fig) -> None:
    """A matplotlib figure through the atomic write path, in the format its suffix names."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda f: fig.savefig(f, format=fmt))
