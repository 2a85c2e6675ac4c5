"""Training outputs on disk: checkpoints, latents and the log, each written atomically.

A file appears under its final name only when complete (temp file in the same folder, fsync,
``os.replace``), so a run killed at any moment leaves only whole files and resuming can trust
every ``weights.<epoch>.pt`` it finds.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

import numpy as np

WEIGHTS_RE = re.compile(r"^weights\.(\d+)\.pt$")
LOG_NAME = "log.csv"
LOG_COLUMNS = ("epoch", "loss", "mse", "kl", "beta", "band", "seconds", "images_per_s")


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync, then rename it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort; not all filesystems allow it)."""
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


def save_checkpoint(outdir: str | os.PathLike, epoch: int, state: dict) -> Path:
    """Write ``weights.<epoch>.pt`` then point ``weights.pt`` at it (hard link, else a copy)."""
    import torch

    outdir = Path(outdir)
    path = outdir / f"weights.{epoch}.pt"
    atomic_write(path, lambda f: torch.save(state, f))
    latest = outdir / "weights.pt"
    tmp = outdir / f".weights.pt.{os.getpid()}.tmp"
    try:
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)
        os.replace(tmp, latest)
    except OSError:  # no hard links here (some network/FUSE filesystems): copy
        tmp.unlink(missing_ok=True)
        atomic_write(latest, lambda f: f.write(path.read_bytes()))
    return path


def save_latents(path: str | os.PathLike, z: np.ndarray) -> None:
    """``z: (N, zdim)`` float32 as ``.npy``, atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(z, np.float32))
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def checkpoint_epochs(outdir: str | os.PathLike) -> list[int]:
    """Epochs of the ``weights.<epoch>.pt`` files in ``outdir``, ascending."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        return []
    found = (WEIGHTS_RE.match(p.name) for p in outdir.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def load_epoch(outdir: str | os.PathLike, epoch: int, map_location: str = "cpu") -> dict | None:
    """The checkpoint ``weights.<epoch>.pt`` of ``outdir`` if it loads and says it is that epoch."""
    import torch

    try:
        ckpt = torch.load(Path(outdir) / f"weights.{epoch}.pt", map_location=map_location,
                          weights_only=True)
    except Exception:  # unreadable (e.g. a disk error)
        return None
    return ckpt if isinstance(ckpt, dict) and ckpt.get("epoch") == epoch else None


def last_checkpoint(outdir: str | os.PathLike, map_location: str = "cpu") -> dict | None:
    """The newest checkpoint in ``outdir`` that loads (falling back past unreadable ones), or None."""
    for epoch in reversed(checkpoint_epochs(outdir)):
        ckpt = load_epoch(outdir, epoch, map_location)
        if ckpt is not None:
            return ckpt
    return None


def read_log(outdir: str | os.PathLike) -> list[dict]:
    """Rows of ``log.csv`` as dicts of floats (``epoch`` as int); [] if absent."""
    import csv

    path = Path(outdir) / LOG_NAME
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def write_log(outdir: str | os.PathLike, rows: list[dict]) -> None:
    """Rewrite ``log.csv`` with ``rows`` (a handful per epoch, so rewriting is cheap and atomic)."""
    lines = [",".join(LOG_COLUMNS)]
    for r in rows:
        lines.append(",".join(str(r["epoch"]) if k == "epoch" else f"{r[k]:.6g}" for k in LOG_COLUMNS))
    text = "\n".join(lines) + "\n"
    atomic_write(Path(outdir) / LOG_NAME, lambda f: f.write(text.encode()))
