"""``cryoscape reproduce``: train on the two half-sets, then score how well their latent spaces agree.

The split is RELION's ``_rlnRandomSubset`` (or cryoSPARC's ``alignments3D/split``) where the
particle file has it (so it is the split the consensus refinement used), else a seeded random
halving. Each half is an ordinary training run (``OUTDIR/half1``, ``OUTDIR/half2``: resumable,
analysable like any other); the comparison (:mod:`cryoscape.analysis.reproduce`) goes to
``OUTDIR/compare``. docs/states.md lists the files.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryoscape.analysis.reproduce import (
    MAP_CENTRES,
    MODES,
    REPRODUCED,
    agreeing,
    best_fit,
    chance_agreement,
    match_states,
    mode_agreement,
    rv_coefficient,
    variability_modes,
)
from cryoscape.errors import InputError
from cryoscape.io.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from cryoscape.analysis.run_data import RunData
    from cryoscape.io.particles import ParticleSet
    from cryoscape.train.run import RunConfig


@dataclass(frozen=True)
class CompareConfig:
    """How the two half runs are compared (see :mod:`cryoscape.analysis.reproduce`)."""

    k: int | None = None  # states per half; None: chosen by ICL up to kmax
    kmax: int = 10
    centres: int = MAP_CENTRES
    modes: int = MODES
    epoch: int | None = None
    seed: int = 0
    device: str = "cpu"


def say(msg: str) -> None:
    print(f"cryoscape reproduce: {msg}", file=sys.stderr, flush=True)


def half_rows(run: RunConfig) -> list[np.ndarray]:
    """Rows of the particle file in half 1 and half 2 (within ``run.ind`` if given)."""
    from cryoscape.io.cryodrgn import read_index
    from cryoscape.recon.backproject import random_subset, split_halves

    pset = run.read_particles(ind=None, need_box=False)
    rows = np.arange(pset.n) if run.ind is None else read_index(run.ind)
    subset = random_subset(pset)
    which = split_halves(len(rows), run.seed, None if subset is None else subset[rows])
    return [np.sort(rows[which == h]) for h in (0, 1)]


def train_halves(run: RunConfig, outdir: Path) -> tuple[Path, Path]:
    """Train (or resume) ``outdir/half1`` and ``outdir/half2`` with ``run``'s settings."""
    from cryoscape.io.write import write_index
    from cryoscape.train.run import train_run

    outdir.mkdir(parents=True, exist_ok=True)
    dirs = []
    for h, rows in enumerate(half_rows(run), start=1):
        if len(rows) < 2:
            raise InputError(f"half {h} has {len(rows)} particles: too few to train on", run.particles)
        ind = outdir / f"half{h}_ind.pkl"
        write_index(rows, ind)
        say(f"half {h}: {len(rows)} particles -> {outdir / f'half{h}'}")
        train_run(replace(run, ind=str(ind), outdir=str(outdir / f"half{h}")))
        dirs.append(outdir / f"half{h}")
    return dirs[0], dirs[1]


def _rows(rd: RunData) -> np.ndarray:
    return np.arange(rd.pset.n) if rd.rp.run_ind is None else np.asarray(rd.rp.run_ind, np.int64)


def _check_pair(a: RunData, b: RunData, dirs: tuple[Path, Path]) -> None:
    if a.run.model.zdim == 0 or b.run.model.zdim == 0:
        raise InputError("a homogeneous run (zdim 0) has no latent space to compare", dirs[a.run.model.zdim != 0])
    if a.rp.particles is None or b.rp.particles is None or a.rp.particles.resolve() != b.rp.particles.resolve():
        raise InputError(f"the runs were trained on different particle files ({a.rp.particles}, {b.rp.particles})")
    if a.pset.box != b.pset.box:
        raise InputError(f"the runs' boxes differ ({a.pset.box} and {b.pset.box} px)", dirs[1])
    shared = np.intersect1d(_rows(a), _rows(b))
    if len(shared):
        raise InputError(f"the runs share {len(shared)} particles: train them on disjoint halves", dirs[1])


def _maps(rd: RunData, zs: np.ndarray) -> np.ndarray:
    """``(M, D, D, D)`` maps of ``rd``'s model at ``zs``, in the particles' units and contrast."""
    from cryoscape.analysis.volumes import generate_volumes

    vols = np.stack(list(generate_volumes(rd.run.model, zs, scale=rd.run.norm_std)))
    return -vols if rd.sign < 0 else vols


def _state_maps(rd: RunData, labels: np.ndarray) -> np.ndarray:
    """One map per state of ``labels``, at the state's on-data centre."""
    from cryoscape.analysis.states import state_centre

    states = (rd.z[labels == k] for k in range(int(labels.max()) + 1))
    return _maps(rd, np.stack([zk[state_centre(zk)] for zk in states]))


def assign(psets: list[ParticleSet], maps: np.ndarray, use_ctf: bool, batch: int = 128) -> np.ndarray:
    """For every particle of ``psets``, in order, the index of the map among ``maps: (K, D, D, D)``
    whose projection at its pose (and CTF) fits its image best (:func:`best_fit`)."""
    import torch

    from cryoscape.fourier.project import Projector
    from cryoscape.model.encoder import pixel_mask

    projectors = [Projector(torch.from_numpy(np.ascontiguousarray(v, np.float32))) for v in maps]
    out = []
    for pset in psets:
        assert pset.images is not None and pset.rotations is not None
        mask = pixel_mask(pset.box).numpy()
        shifts = np.zeros((pset.n, 2)) if pset.shifts_px is None else pset.shifts_px
        ctf = pset.ctf.as_array() if use_ctf and pset.ctf is not None else None
        for a in range(0, pset.n, batch):
            sel = np.arange(a, min(a + batch, pset.n))
            rot = torch.as_tensor(pset.rotations[sel], dtype=torch.float32)
            sh = torch.as_tensor(shifts[sel], dtype=torch.float32)
            c = None if ctf is None else torch.as_tensor(ctf[sel])
            with torch.no_grad():
                proj = np.stack([p.project(rot, sh, c, float(pset.apix)).numpy() for p in projectors])
            out.append(best_fit(np.asarray(pset.images[sel], np.float32), proj, mask))
    return np.concatenate(out)


def _pair_rows(maps_a, maps_b, match, psize: float, outdir: Path) -> list[dict]:
    """Per matched state: its index in each half, the Jaccard overlap, and the FSC of the halves'
    maps (masked), the maps written as state_NN_half1/2.mrc."""
    from cryoscape.analysis.fsc import auto_mask, fsc, resolution_at
    from cryoscape.io.mrc import write_volume

    rows = []
    for n, ((i, j), jac) in enumerate(zip(match.pairs, match.jaccard)):
        va, vb = maps_a[i], maps_b[j]
        for tag, v in (("half1", va), ("half2", vb)):
            write_volume(outdir / f"state_{n:02d}_{tag}.mrc", np.ascontiguousarray(v, np.float32), psize)
        freqs, curve = fsc(va, vb, auto_mask(0.5 * (va + vb), psize))
        rows.append(
            {
                "state": n,
                "state_half1": i,
                "state_half2": j,
                "jaccard": jac,
                "fsc_0143_A": resolution_at(freqs, curve, 0.143, psize),
                "fsc_05_A": resolution_at(freqs, curve, 0.5, psize),
            }
        )
    return rows


def compare_halves(run_a: str | Path, run_b: str | Path, outdir: str | Path, cfg: CompareConfig) -> dict:
    """Score two runs trained on disjoint halves of one particle file (module docstring of
    :mod:`cryoscape.analysis.reproduce`); write the results to ``outdir`` and return the summary."""
    from cryoscape.analysis.fsc import auto_mask
    from cryoscape.analysis.latent import kmeans
    from cryoscape.analysis.run_data import load_run_data
    from cryoscape.analysis.states import choose_k

    dirs = (Path(run_a), Path(run_b))
    a, b = (load_run_data(d, cfg.epoch, cfg.device) for d in dirs)
    _check_pair(a, b, dirs)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    _, psize = a.run.output_grid()
    say(f"maps at {cfg.centres} on-data centres of each half")
    cls = [kmeans(rd.z, min(cfg.centres, rd.pset.n), cfg.seed) for rd in (a, b)]
    var = [_maps(rd, rd.z[cl.centers_ind]) for rd, cl in zip((a, b), cls)]
    mask = auto_mask(0.5 * (var[0].mean(0) + var[1].mean(0)), psize)
    (ma, wa), (mb, wb) = (variability_modes(m, mask) for m in var)
    score = rv_coefficient(ma, wa, mb, wb)
    say("states of each half, and every particle assigned to each half's state maps")
    sa, sb = (choose_k(rd.z, cfg.kmax, cfg.k, seed=cfg.seed) for rd in (a, b))
    if sa.k == 1 and sb.k == 1:  # no discrete states in either half: compare the centres instead
        kind, maps_a, maps_b = "centres", var[0], var[1]
    else:
        kind, maps_a, maps_b = "states", _state_maps(a, sa.labels), _state_maps(b, sb.labels)
    la = assign([a.pset, b.pset], maps_a, a.use_ctf)
    lb = assign([a.pset, b.pset], maps_b, b.use_ctf)
    match = match_states(la, lb)
    agree = agreeing(la, lb, match)
    states = _pair_rows(maps_a, maps_b, match, psize, outdir)
    for row in states:
        row["n_half1_maps"] = int(np.sum(la == row["state_half1"]))
        row["n_half2_maps"] = int(np.sum(lb == row["state_half2"]))
    summary = {
        "runs": [str(d) for d in dirs],
        "n_particles": [int(a.pset.n), int(b.pset.n)],
        "map_agreement": score,
        "reproduced": score >= REPRODUCED,
        "threshold": REPRODUCED,
        "mode_cosines": mode_agreement(ma[: cfg.modes], mb[: cfg.modes]).tolist(),
        "mode_shares": [wa[: cfg.modes].tolist(), wb[: cfg.modes].tolist()],
        "k": [sa.k, sb.k],
        "compared": kind,
        "particle_agreement": float(np.mean(agree)),
        "chance_agreement": chance_agreement(la, lb, match),
        "ari": match.ari,
        "states": states,
        "config": asdict(cfg),
    }
    _write(
        outdir, summary, np.r_[_rows(a), _rows(b)], np.r_[np.ones(a.pset.n, int), np.full(b.pset.n, 2)], la, lb, agree
    )
    return summary


def _write(outdir: Path, summary: dict, rows, half, la, lb, agree) -> None:
    import json

    from cryoscape.viz.reproduce import plot_agreement

    lines = ["row,half,state_half1_maps,state_half2_maps,agrees"]
    lines += [f"{r},{h},{i},{j},{int(g)}" for r, h, i, j, g in zip(rows, half, la, lb, agree)]
    atomic_write_bytes(outdir / "particles.csv", ("\n".join(lines) + "\n").encode())
    plot_agreement(outdir / "agreement.png", la, lb, summary)
    atomic_write_bytes(outdir / "reproduce.json", (json.dumps(summary, indent=1) + "\n").encode())
