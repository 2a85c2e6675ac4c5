"""A tiny two-class simulated dataset for the data/training tests (no tests of its own here).

Two volumes made of Gaussian blobs that differ in one blob's position, projected with
:class:`cryoscape.fourier.project.Projector` at random poses and shifts with a RELION-sign CTF,
plus white noise; written as particles.mrcs + particles.star (RELION 3.1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cryoscape.fourier.project import Projector
from cryoscape.geometry import random_rotations
from cryoscape.io.images import ImageSource
from cryoscape.io.mrc import StackWriter
from cryoscape.io.particles import CTFParams, ParticleSet
from cryoscape.io.write import write_particles


def blob_volume(D: int, centres_px: list[tuple[float, float, float]], sigma_px: float) -> np.ndarray:
    """``(D, D, D)`` float32 sum of isotropic Gaussians at ``(x, y, z)`` px from the box centre."""
    g = np.arange(D) - D // 2
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    v = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * sigma_px**2))
            for cx, cy, cz in centres_px)
    return v.astype(np.float32)


def two_class_volumes(D: int) -> list[np.ndarray]:
    s = D / 24
    common = [(-3 * s, 0, 0), (3 * s, 0, 0)]
    return [blob_volume(D, common + [(0, 3 * s, 2 * s)], 1.5 * s),
            blob_volume(D, common + [(0, -4 * s, -2 * s)], 1.5 * s)]


def simulate_particles(out: Path, n: int = 160, D: int = 16, snr: float = 1.0, seed: int = 0,
                       psize_A: float = 4.0, ctf: bool = True) -> tuple[Path, np.ndarray]:
    """Write a two-class dataset into ``out``; return (star path, class label per particle)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    rot = random_rotations(n, rng)
    shifts_px = rng.uniform(-1.0, 1.0, (n, 2))
    params = CTFParams.from_columns(
        n, defocus_u_A=rng.uniform(8000, 15000, n), defocus_v_A=rng.uniform(8000, 15000, n),
        defocus_angle_deg=rng.uniform(0, 180, n), voltage_kV=300.0, cs_mm=2.7, amp_contrast=0.1)
    imgs = np.empty((n, D, D), np.float32)
    for k, vol in enumerate(two_class_volumes(D)):
        sel = np.flatnonzero(labels == k)
        proj = Projector(torch.from_numpy(vol))
        c = torch.from_numpy(params.as_array()[sel]) if ctf else None
        imgs[sel] = proj.project(torch.from_numpy(rot[sel]), torch.from_numpy(shifts_px[sel]), c,
                                 psize_A).numpy()
    if snr < np.inf:
        imgs += rng.normal(0, imgs.std() / np.sqrt(snr), imgs.shape).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    with StackWriter(out / "particles.mrcs", n, D, psize_A) as w:
        w.write(0, imgs)
    pset = ParticleSet(box=D, psize_A=np.full(n, psize_A), images=ImageSource.from_file(out / "particles.mrcs"),
                       rotations=rot, shifts_A=shifts_px * psize_A, ctf=params if ctf else None,
                       source=out / "particles.star", source_format="star")
    write_particles(pset, out / "particles.star")
    return out / "particles.star", labels


def train_tiny_run(tmp: Path, n: int) -> Path:
    """A one-epoch run folder (zdim 2, narrow one-layer networks) on ``n`` simulated particles."""
    from cryoscape.cli.main import main as cli

    star, _ = simulate_particles(tmp / "sim", n=n, D=16)
    out = tmp / "run"
    assert cli(["train", str(star), "-o", str(out), "--zdim", "2", "-n", "1", "--enc-width", "16",
                "--dec-width", "16", "--enc-depth", "1", "--dec-depth", "1", "--threads", "1"]) == 0
    return out


def test_default_learning_rate_falls_with_the_box():
    """1e-3 up to 64 px (measured stable), lower for larger boxes (1e-3 diverged at 128 px)."""
    from cryoscape.train.config import default_lr

    assert default_lr(32) == default_lr(64) == 1e-3
    assert abs(default_lr(128) - 3.54e-4) < 1e-6
    assert abs(default_lr(256) - 1.25e-4) < 1e-9
    assert default_lr(360) < default_lr(256)
