"""Training outputs on disk: checkpoints, latents and the log, each written atomically.

A file appears under its final name only when complete (:mod:`cryoscape.io.atomic`), and an
epoch's files are written in one order — latents and weights, then the ``z.npy``/``weights.pt``
links, the log last — so a run killed or out of disk at any moment leaves a folder whose files
agree, and resuming can trust every ``weights.<epoch>.pt`` it finds.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.atomic import atomic_link, atomic_write_bytes

WEIGHTS_RE = re.compile(r"^weights\.(\d+)\.pt$")
#: Files written beside an epoch's weights (latents; refined poses with --refine-poses), each with
#: a link to the latest one: ``z.<e>.npy`` -> ``z.npy``, ``poses.<e>.pkl`` -> ``poses.pkl``.
COMPANIONS = (("z", ".npy"), ("poses", ".pkl"))
#: ``<stem>.<epoch><ext>``: a companion when ``(stem, ext)`` is in :data:`COMPANIONS`.
NUMBERED_RE = re.compile(r"^(\w+)\.(\d+)(\.\w+)$")
LOG_NAME = "log.csv"
LOG_COLUMNS = ("epoch", "loss", "mse", "kl", "beta", "band", "seconds", "images_per_s")


def save_epoch(
    outdir: str | os.PathLike,
    epoch: int,
    state: dict,
    z: np.ndarray | None,
    poses: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write one checkpointed epoch in the documented order (docs/outputs.md): the numbered files
    ``z.<e>.npy``, ``poses.<e>.pkl`` (refined poses as cryoDRGN's ``(rot, trans)``, if given) and
    ``weights.<e>.pt`` first, then the ``z.npy``, ``poses.pkl`` and ``weights.pt`` links to them.

    If any of it fails (a full disk) the epoch's files are removed and the links put back on the
    previous checkpoint, so the folder stays consistent and the run resumes from there.
    """
    import torch

    outdir = Path(outdir)
    path, zpath = outdir / f"weights.{epoch}.pt", outdir / f"z.{epoch}.npy"
    buf = io.BytesIO()  # serialise first: a full disk then fails in our write, not inside torch
    torch.save(state, buf)
    try:
        if z is not None:
            save_latents(zpath, z)
        if poses is not None:
            from cryoscape.io.cryodrgn import save_pickle

            save_pickle(poses, outdir / f"poses.{epoch}.pkl")
        atomic_write_bytes(path, buf.getvalue())
        point_latest(outdir, epoch)
    except BaseException:
        _retreat(outdir, epoch)
        raise
    return path


def _retreat(outdir: Path, epoch: int) -> None:
    """Undo a partly written epoch: its files go, the links name the checkpoint before it (or
    nothing, if putting them back fails too: removing a link needs no space)."""
    for stem, ext in COMPANIONS:
        (outdir / f"{stem}.{epoch}{ext}").unlink(missing_ok=True)
    (outdir / f"weights.{epoch}.pt").unlink(missing_ok=True)
    before = [e for e in checkpoint_epochs(outdir) if e < epoch]
    try:
        if before:
            point_latest(outdir, before[-1])
            return
    except Exception:  # the disk is still full: fall through, leave no link at all
        pass
    for name in [stem + ext for stem, ext in COMPANIONS] + ["weights.pt"]:
        (outdir / name).unlink(missing_ok=True)


def point_latest(outdir: str | os.PathLike, epoch: int) -> None:
    """Make ``weights.pt`` (and ``z.npy``, ``poses.pkl`` where the epoch has them) name epoch
    ``epoch``'s files; a link of a later epoch than the weights is removed, never left behind."""
    outdir = Path(outdir)
    for stem, ext in COMPANIONS:
        src = outdir / f"{stem}.{epoch}{ext}"
        if src.is_file():
            atomic_link(src, outdir / f"{stem}{ext}")
        else:
            (outdir / f"{stem}{ext}").unlink(missing_ok=True)
    atomic_link(outdir / f"weights.{epoch}.pt", outdir / "weights.pt")


def save_latents(path: str | os.PathLike, z: np.ndarray) -> None:
    """``z: (N, zdim)`` float32 as ``.npy``, atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(z, np.float32))
    atomic_write_bytes(path, buf.getvalue())


def tidy_after(outdir: str | os.PathLike, epoch: int | None) -> None:
    """Before resuming from ``epoch`` (None: from scratch): remove latents and poses of later
    epochs (a run stopped before ``weights.<e>.pt``) and point the links at ``epoch``."""
    outdir = Path(outdir)
    last = -1 if epoch is None else epoch
    for p in outdir.iterdir():
        m = NUMBERED_RE.match(p.name)
        if m and (m.group(1), m.group(3)) in COMPANIONS and int(m.group(2)) > last:
            p.unlink()
    if epoch is not None:
        point_latest(outdir, epoch)


def checkpoint_epochs(outdir: str | os.PathLike) -> list[int]:
    """Epochs of the ``weights.<epoch>.pt`` files in ``outdir``, ascending."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        return []
    found = (WEIGHTS_RE.match(p.name) for p in outdir.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def read_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict:
    """The checkpoint dict at ``path`` (:func:`cryoscape.model.vae.load_checkpoint`: tensors and
    plain data only, errors in cryoscape's words)."""
    from cryoscape.model.vae import load_checkpoint

    return load_checkpoint(path, map_location)


def load_epoch(outdir: str | os.PathLike, epoch: int, map_location: str = "cpu") -> dict | None:
    """The checkpoint ``weights.<epoch>.pt`` of ``outdir`` if it loads and says it is that epoch."""
    try:
        ckpt = read_checkpoint(Path(outdir) / f"weights.{epoch}.pt", map_location)
    except InputError:  # unreadable (e.g. a disk error)
        return None
    return ckpt if ckpt.get("epoch") == epoch else None


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
    atomic_write_bytes(Path(outdir) / LOG_NAME, text.encode())
