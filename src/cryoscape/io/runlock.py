"""A lock on an output folder, so two commands never write into one folder at once.

Two ``cryoscape train -o run`` started together would otherwise both finish "successfully" with
the config of one and the weights of the other. The lock is an advisory ``fcntl.flock`` on
``FOLDER/.cryoscape.lock``, held for the command's life: the kernel releases it when the process
ends, however it ends, so a crash never leaves a lock that blocks the next run (a leftover file
is simply taken over). The file records the holder (command, pid, host, start time) so a refusal
can say who holds the folder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from cryoscape.errors import InputError

LOCK_NAME = ".cryoscape.lock"


class FolderBusy(InputError):
    """Another process holds the folder's lock."""


def _holder(fd: int) -> str:
    """What the lock file says about its holder, as words; '' if it says nothing readable."""
    try:
        raw = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    info = dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)
    if "pid" not in info:
        return ""
    return (
        f"{info.get('command', 'cryoscape')} (pid {info['pid']} on {info.get('host', '?')}, "
        f"since {info.get('started', '?')})"
    )


def _record(fd: int, command: str) -> None:
    text = (
        f"command=cryoscape {command}\npid={os.getpid()}\nhost={socket.gethostname()}\n"
        f"started={time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
    )
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except OSError:  # a full disk: the lock holds all the same, only the holder's record is lost
        pass


def _open_locked(folder: Path, command: str) -> int:
    """Open and lock ``folder/LOCK_NAME``; the descriptor, or InputError naming the holder."""
    path = folder / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileNotFoundError:  # the previous holder just removed the (empty) folder it made
            folder.mkdir(parents=True, exist_ok=True)
            continue
        except OSError as e:
            raise InputError(f"cannot create the lock file {LOCK_NAME}: {e.strerror}", folder) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            who = _holder(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderBusy(
                    f"is in use by {who or 'another cryoscape command'}; wait for it to "
                    "finish or choose another output folder",
                    folder,
                ) from None
            print(
                f"cryoscape {command}: warning: {folder}: this file system does not support locks "
                f"({e.strerror}); nothing stops another command from writing here at the same time",
                file=sys.stderr,
            )
            return -1  # run unlocked, as before locks existed
        # the previous holder may have removed the file between our open and our lock
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            _record(fd, command)
            return fd
        os.close(fd)


@contextmanager
def run_lock(folder: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the lock on ``folder`` (created if missing) while the block runs; yields the folder.

    Raises InputError at once if another process holds it. The lock file is removed on release,
    and the folder too if this call created it and nothing was written into it.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError("output exists and is not a folder", folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the output folder: {e.strerror}", folder) from None
    fd = _open_locked(folder, command)
    try:
        yield folder
    finally:
        if fd >= 0:
            (folder / LOCK_NAME).unlink(missing_ok=True)  # while still held: no one else has it
            os.close(fd)
        if created:  # a command that failed before writing leaves no empty folder behind
            with suppress(OSError):
                folder.rmdir()
