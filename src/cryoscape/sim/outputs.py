"""Metadata files of a simulated dataset: star/cs/pickles, ground truth and the parameter record."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cryoscape.io.particles import ParticleSet

if TYPE_CHECKING:
    from cryoscape.sim.simulate import Particles, SimConfig
    from cryoscape.sim.sources import VolumeBank


def particle_set(bank: VolumeBank, parts: Particles, outdir: Path, bfactor_in_metadata: bool = True) -> ParticleSet:
    """The simulated particles as a :class:`ParticleSet` over ``outdir/particles.mrcs``, with the
    poses the metadata carries (perturbed when the simulation has pose error).

    ``bfactor_in_metadata=False`` writes B = 0: real refinements do not know each particle's
    envelope, and cryoDRGN's CTF pickle has no column for it, so a benchmark hides it from all."""
    from dataclasses import replace

    from cryoscape.io.images import ImageSource

    n = len(parts.volume_index)
    rotations, shifts_px = parts.written_poses()
    ctf = parts.ctf
    if ctf is not None and not bfactor_in_metadata:
        ctf = replace(ctf, bfactor_A2=np.zeros(n))
    return ParticleSet(
        box=bank.D,
        psize_A=np.full(n, bank.psize_A),
        images=ImageSource.from_file(outdir / "particles.mrcs"),
        rotations=rotations,
        shifts_A=shifts_px * bank.psize_A,
        ctf=ctf,
        source=outdir / "particles.star",
        source_format="star",
    )


def _ground_truth(bank: VolumeBank, parts: Particles) -> dict[str, np.ndarray]:
    gt = {
        "volume_index": parts.volume_index,
        "rotations": parts.rotations,  # the poses the images were made with, pose error or not
        "shifts_A": parts.shifts_px * bank.psize_A,
        "volume_t": bank.t,
        "volume_state": bank.state,
    }
    if parts.t is not None:
        gt["t"] = parts.t
    if parts.state is not None:
        gt["state"] = parts.state
    if parts.junk_kind is not None:  # see cryoscape.sim.junk.JUNK_KINDS
        gt["junk"] = parts.junk_kind > 0
        gt["junk_kind"] = parts.junk_kind
    if parts.ctf is not None:  # the CTF the images were made with, B-factor included
        gt["ctf"] = parts.ctf.as_array()
        gt["bfactor_A2"] = parts.ctf.bfactor_A2
    if parts.pose_error is not None:  # the written poses are in the star/cs/poses.pkl
        gt["rot_true"] = parts.rotations
        gt["shift_px_true"] = parts.shifts_px
        gt["rot_error_deg"] = parts.pose_error.rot_error_deg
        gt["shift_error_px"] = parts.pose_error.shift_error_px
    return gt


def config_dict(cfg: SimConfig) -> dict:
    """``cfg`` as JSON-ready data (inf SNR written as the string "inf")."""
    d = asdict(cfg)
    d["snr"] = "inf" if np.isinf(cfg.snr) else cfg.snr
    return d


def _record(cfg: SimConfig, bank: VolumeBank, parts: Particles, sigma: float) -> dict:
    from cryoscape import __version__
    from cryoscape.sim.junk import JUNK_KINDS
    from cryoscape.sim.sampling import T_MIXTURES

    signal_var = parts.stats.get("signal_var")
    return {
        "cryoscape_version": __version__,
        "config": config_dict(cfg),
        "box": bank.D,
        "psize_A": bank.psize_A,
        "n_particles": len(parts.volume_index),
        "volumes": bank.description,
        "n_volumes": len(bank),
        "n_states": bank.n_states,
        "n_t": bank.n_t,
        "t_mixture": T_MIXTURES[cfg.dist] if bank.n_t > 1 else None,
        "bfactor_range_A2": None
        if parts.ctf is None
        else [float(parts.ctf.bfactor_A2.min()), float(parts.ctf.bfactor_A2.max())],
        "shift_max_px": cfg.shift_max_px if cfg.shift_max_px is not None else bank.D / 16,
        "noise_sigma": sigma,
        "signal_var": signal_var,
        "junk_counts": None
        if parts.junk_kind is None
        else {name: int((parts.junk_kind == i).sum()) for i, name in enumerate(JUNK_KINDS) if i},
        "pose_error": None if parts.pose_error is None else parts.pose_error.summary(),
        "measured_snr": "inf" if sigma == 0 else None if signal_var is None else signal_var / sigma**2,
        "snr_definition": "pixel variance of the noise-free (CTF-applied, shifted) images over the "
        "whole box / noise variance",
    }


def write_metadata(cfg: SimConfig, bank: VolumeBank, parts: Particles, sigma: float, outdir: Path) -> Path:
    """Write particles.star/.cs, poses.pkl, ctf.pkl, ground_truth.npz, simulation.json and, with pose
    error, poses_true.pkl (the true poses; the others carry the perturbed ones)."""
    from dataclasses import replace

    from cryoscape.io.atomic import atomic_write, atomic_write_bytes
    from cryoscape.io.write import write_cryodrgn_ctf, write_cryodrgn_poses, write_particles

    pset = particle_set(bank, parts, outdir, cfg.bfactor_in_metadata)
    star = outdir / "particles.star"
    write_particles(pset, star)
    write_particles(pset, outdir / "particles.cs")
    write_cryodrgn_poses(pset, outdir / "poses.pkl")
    if parts.pose_error is not None:  # the same writer, so both pickles follow one convention
        true = replace(pset, rotations=parts.rotations, shifts_A=parts.shifts_px * bank.psize_A)
        write_cryodrgn_poses(true, outdir / "poses_true.pkl")
    if pset.ctf is not None:
        write_cryodrgn_ctf(pset, outdir / "ctf.pkl")
    gt: dict[str, Any] = _ground_truth(bank, parts)  # Any: numpy types **kwds against allow_pickle
    atomic_write(outdir / "ground_truth.npz", lambda f: np.savez(f, **gt))
    text = json.dumps(_record(cfg, bank, parts, sigma), indent=2)
    atomic_write_bytes(outdir / "simulation.json", (text + "\n").encode())
    return star
