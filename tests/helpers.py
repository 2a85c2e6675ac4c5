"""Helpers shared by several test files (no tests here): test files import from this module,
never from one another (``from helpers import simulate_particles``; pytest puts ``tests/`` on
the path). Browser helpers are in ``browser.py``, fixtures in ``conftest.py``.

* :func:`simulate_particles`: a tiny two-class dataset (particles.mrcs + particles.star) made of
  Gaussian blobs (:func:`two_class_volumes`), projected at random poses and shifts with a
  RELION-sign CTF, plus white noise; :func:`train_tiny_run` trains one epoch on it.
* :func:`smooth_volume`, :func:`ctf_params`: a volume with power out to Nyquist and realistic CTFs
  for reconstruction tests; :func:`real_space_project`: an independent real-space projector.
* :data:`TINY_PDB`: a five-atom PDB file with a water; :func:`make_run` and :func:`serving`: a
  trained run for the dashboard and the dashboard served on a free local port.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cryoscape.dashboard.state import DashboardState


def blob_volume(D: int, centres_px: list[tuple[float, float, float]], sigma_px: float) -> np.ndarray:
    """``(D, D, D)`` float32 sum of isotropic Gaussians at ``(x, y, z)`` px from the box centre."""
    g = np.arange(D) - D // 2
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    v = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * sigma_px**2)) for cx, cy, cz in centres_px)
    return v.astype(np.float32)


def two_class_volumes(D: int) -> list[np.ndarray]:
    """Two volumes of three blobs that differ in one blob's position."""
    s = D / 24
    common = [(-3 * s, 0, 0), (3 * s, 0, 0)]
    return [
        blob_volume(D, common + [(0, 3 * s, 2 * s)], 1.5 * s),
        blob_volume(D, common + [(0, -4 * s, -2 * s)], 1.5 * s),
    ]


def simulate_particles(
    out: Path, n: int = 160, D: int = 16, snr: float = 1.0, seed: int = 0, psize_A: float = 4.0, ctf: bool = True
) -> tuple[Path, np.ndarray]:
    """Write a two-class dataset into ``out``; return (star path, class label per particle)."""
    import torch

    from cryoscape.fourier.project import Projector
    from cryoscape.geometry import random_rotations
    from cryoscape.io.images import ImageSource
    from cryoscape.io.mrc import StackWriter
    from cryoscape.io.particles import CTFParams, ParticleSet
    from cryoscape.io.write import write_particles

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    rot = random_rotations(n, rng)
    shifts_px = rng.uniform(-1.0, 1.0, (n, 2))
    params = CTFParams.from_columns(
        n,
        defocus_u_A=rng.uniform(8000, 15000, n),
        defocus_v_A=rng.uniform(8000, 15000, n),
        defocus_angle_deg=rng.uniform(0, 180, n),
        voltage_kV=300.0,
        cs_mm=2.7,
        amp_contrast=0.1,
    )
    imgs = np.empty((n, D, D), np.float32)
    for k, vol in enumerate(two_class_volumes(D)):
        sel = np.flatnonzero(labels == k)
        proj = Projector(torch.from_numpy(vol))
        c = torch.from_numpy(params.as_array()[sel]) if ctf else None
        imgs[sel] = proj.project(torch.from_numpy(rot[sel]), torch.from_numpy(shifts_px[sel]), c, psize_A).numpy()
    if snr < np.inf:
        imgs += rng.normal(0, imgs.std() / np.sqrt(snr), imgs.shape).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    with StackWriter(out / "particles.mrcs", n, D, psize_A) as w:
        w.write(0, imgs)
    pset = ParticleSet(
        box=D,
        psize_A=np.full(n, psize_A),
        images=ImageSource.from_file(out / "particles.mrcs"),
        rotations=rot,
        shifts_A=shifts_px * psize_A,
        ctf=params if ctf else None,
        source=out / "particles.star",
        source_format="star",
    )
    write_particles(pset, out / "particles.star")
    return out / "particles.star", labels


#: The smallest `cryoscape train` options: zdim 2, narrow networks, batches of 8, one thread, fp32.
TINY_TRAIN = ["--zdim", "2", "--batch-size", "8", "--enc-width", "8", "--dec-width", "8", "--threads", "1", "--no-amp"]


def noise_free_demo(tmp: Path, n: int = 16, D: int = 16) -> Path:
    """``tmp/sim``: ``n`` noise-free particles of the demo molecule at ``D`` px; returns the star file."""
    from cryoscape.cli.main import main

    assert main(["simulate", "--demo", "-n", str(n), "-D", str(D), "--snr", "inf", "-o", str(tmp / "sim")]) == 0
    return tmp / "sim" / "particles.star"


def train_tiny_run(tmp: Path, n: int) -> Path:
    """A one-epoch run folder (zdim 2, narrow one-layer networks) on ``n`` simulated particles."""
    from cryoscape.cli.main import main as cli

    star, _ = simulate_particles(tmp / "sim", n=n, D=16)
    out = tmp / "run"
    assert (
        cli(
            [
                "train",
                str(star),
                "-o",
                str(out),
                "--zdim",
                "2",
                "-n",
                "1",
                "--enc-width",
                "16",
                "--dec-width",
                "16",
                "--enc-depth",
                "1",
                "--dec-depth",
                "1",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    return out


def smooth_volume(D: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered noise inside a sphere of radius 0.3 D: power out to Nyquist, compact support."""
    from scipy.ndimage import gaussian_filter

    v = gaussian_filter(rng.standard_normal((D, D, D)), 1.0)
    f = np.arange(D) - D // 2
    r = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    return (v * (r < 0.3 * D)).astype(np.float32)


def ctf_params(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 8) realistic CTFs: defocus 1-2.5 um, 300 kV, Cs 2.7 mm, 10% amplitude contrast."""
    from cryoscape.io.particles import CTFParams

    dfu = rng.uniform(10000, 25000, n)
    cols = dict(
        defocus_u_A=dfu,
        defocus_v_A=dfu - rng.uniform(0, 500, n),
        defocus_angle_deg=rng.uniform(0, 180, n),
        voltage_kV=300.0,
        cs_mm=2.7,
        amp_contrast=0.1,
    )
    return CTFParams.from_columns(n, **cols).as_array()


def real_space_project(vol: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """``(B, D, D)`` projections of ``vol: (D, D, D)`` [z, y, x] along poses ``rot: (B, 3, 3)`` (cubic
    spline), by :mod:`cryoscape.geometry`'s convention written out directly:
    ``image(x, y) = sum_z V(A.T @ (x, y, z))``, coordinates relative to index ``D//2``."""
    from scipy.ndimage import map_coordinates

    D = vol.shape[-1]
    r = np.arange(D, dtype=np.float64) - D // 2
    z, y, x = np.meshgrid(r, r, r, indexing="ij")  # image-frame coordinates, [z, y, x]
    pts = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    out = np.empty((len(rot), D, D))
    for i, a in enumerate(rot):
        u = pts @ a  # row vectors: u = A.T @ p, volume-frame (ux, uy, uz)
        idx = u[:, ::-1].T + D // 2  # -> index order [z, y, x]
        vals = map_coordinates(vol, idx, order=3, mode="constant", cval=0.0)
        out[i] = vals.reshape(D, D, D).sum(axis=0)
    return out


#: Four atoms of an alanine, a hydrogen and a water (weights 7 + 6 + 6 + 8 without H and water).
TINY_PDB = """\
ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N
ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00  0.00           C
ATOM      3  C   ALA A   1      13.140   5.849  -5.198  1.00  0.00           C
ATOM      4  O   ALA A   1      13.700   5.651  -6.273  1.00  0.00           O
ATOM      5  H   ALA A   1      10.500   6.000  -7.000  1.00  0.00           H
HETATM    6  O   HOH A 101      20.000  20.000  20.000  1.00  0.00           O
END
"""

#: Network and batch settings of :func:`make_run`'s tiny run.
_DASHBOARD_RUN_ARGS = [
    "--enc-width",
    "32",
    "--dec-width",
    "32",
    "--enc-depth",
    "1",
    "--dec-depth",
    "1",
    "--batch-size",
    "16",
    "--threads",
    "1",
]


def make_run(root: Path, n: int, D: int, epochs: int = 1, psize_A: float = 4.0) -> tuple[Path, Path]:
    """A trained run (zdim 2) on a simulated star with a _rlnClassNumber column; (run, star)."""
    from cryoscape.cli.main import main as cli
    from cryoscape.io.load import load_particles
    from cryoscape.io.write import write_particles

    star, labels = simulate_particles(root / "sim", n=n, D=D, snr=2.0, psize_A=psize_A)
    pset = load_particles(star)
    assert pset.metadata is not None
    pset.metadata["_rlnClassNumber"] = labels + 1
    star = root / "sim" / "particles_cls.star"
    write_particles(pset, star)
    run = root / "run"
    assert cli(["train", str(star), "-o", str(run), "--zdim", "2", "-n", str(epochs), *_DASHBOARD_RUN_ARGS]) == 0
    return run, star


@contextmanager
def serving(state: DashboardState) -> Iterator[str]:
    """The dashboard on a free localhost port, in a thread; yields its URL."""
    import threading

    from cryoscape.dashboard.server import make_server

    server = make_server(state, port=0)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
