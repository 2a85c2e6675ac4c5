"""A trained run together with its particles' images, poses and CTFs, row for row with ``z.npy``.

Junk scoring (the model's fit to each image) and per-state backprojection both need the images a
run was trained on, read as training read them: the same file, overrides, ``--ind`` rows, image
sign and CTF use, all taken from the run's ``config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryoscape.errors import InputError

if TYPE_CHECKING:
    from cryoscape.analysis.select import RunParticles
    from cryoscape.analysis.volumes import TrainedRun
    from cryoscape.io.particles import ParticleSet


@dataclass(frozen=True)
class RunData:
    """``z: (N, zdim)`` codes; ``pset``: the run's N particles with images (original file rows
    ``rp.run_ind``); ``sign``: -1 for a run trained with ``--uninvert-data``."""

    run: TrainedRun
    z: np.ndarray
    pset: ParticleSet
    rp: RunParticles
    use_ctf: bool
    sign: float
    epoch: int | None


def load_run_data(run_dir: str | Path, epoch: int | None = None, device: str = "cpu") -> RunData:
    """Load model, codes and particles of a cryoscape run; InputError if its images cannot be read."""
    import yaml

    from cryoscape.analysis.latent import read_run_latents
    from cryoscape.analysis.select import run_particles
    from cryoscape.analysis.volumes import load_run
    from cryoscape.io.load import load_particles

    run_dir = Path(run_dir)
    lat = read_run_latents(run_dir, epoch)
    run = load_run(run_dir, epoch, device)
    data = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("data") or {}
    rp = run_particles(run_dir)
    if rp.particles is None:
        raise InputError("config.yaml names no particle file", run_dir)
    use_ctf = bool(data.get("use_ctf", True))
    kwargs = {k: v for k, v in rp.load_kwargs.items() if v is not None}
    pset = load_particles(rp.particles, images="require", use_ctf=use_ctf, **kwargs)
    if rp.run_ind is not None:
        pset = pset.subset(np.asarray(rp.run_ind, np.int64))
    if pset.n != len(lat.z):
        raise InputError(f"{pset.n} particles but {lat.path.name} has {len(lat.z)} codes", run_dir)
    sign = -1.0 if data.get("uninvert_data") else 1.0
    return RunData(run, lat.z, pset, rp, use_ctf, sign, lat.epoch)
