"""One scorer for every tool in the CryoBench-protocol benchmark (benchmarks/cryobench.py).

Maps: images are sampled ``per_volume`` from each ground-truth conformation (CryoBench samples
its conformation-sorted stack at a fixed stride, i.e. evenly over conformations); each image's
latent code is decoded by the tool's own decoder and compared with the map that made the image
(Fourier-cropped to the trained box), FSC unmasked. From the AUCs (area under the FSC curve
over 0..0.5 cycles/px, perfect = 0.5):

* ``perimage_auc``: mean over images, weighting each conformation by its abundance (what a
  uniformly random image gets);
* ``perconf_auc``: mean over conformations of their images' mean (rare states count as much
  as common ones: the number a compositional benchmark is about);
* ``worstconf_auc``: the lowest conformation's mean.

Latent codes of every epoch are scored with :func:`common.latent_quality` (|Spearman| of PC1 vs
``t``; ARI of k-means, k = number of states).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from common import cryodrgn_last_codes, cryodrgn_maps, latent_quality

from cryoscape.analysis.perimage import per_image_fsc, read_ground_truth


def stratified_indices(volume_index: np.ndarray, per_volume: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of up to ``per_volume`` random images of every ground-truth volume."""
    rng = np.random.default_rng(seed)
    out = [
        rng.choice(
            np.flatnonzero(volume_index == k), size=min(per_volume, int(np.sum(volume_index == k))), replace=False
        )
        for k in np.unique(volume_index)
    ]
    return np.sort(np.concatenate(out)).astype(np.int64)


def summarise(ind: np.ndarray, auc: np.ndarray, res05: np.ndarray, volume_index: np.ndarray) -> dict:
    """Per-image (abundance-weighted), per-conformation and worst-conformation AUC of a sample."""
    vi = volume_index[ind]
    confs = np.unique(vi)
    conf_auc = np.array([auc[vi == k].mean() for k in confs])
    abundance = np.array([np.sum(volume_index == k) for k in confs], np.float64)
    finite = res05[np.isfinite(res05)]
    return {
        "n_maps": len(ind),
        "n_conformations": len(confs),
        "perimage_auc": float(np.sum(conf_auc * abundance) / abundance.sum()),
        "perconf_auc": float(conf_auc.mean()),
        "worstconf_auc": float(conf_auc.min()),
        "mean_res05_A": float(finite.mean()) if len(finite) else float("inf"),
        "conf_auc": {int(k): round(float(a), 5) for k, a in zip(confs, conf_auc)},
    }


def _score_maps(maps: Iterable[np.ndarray], ind: np.ndarray, sim: Path, psize_A: float) -> dict:
    gt = read_ground_truth(sim)
    res = per_image_fsc(maps, ind, gt.volume_index, gt.load, psize_A)
    return summarise(ind, res.auc, res.res05_A, gt.volume_index)


def maps_cryoscape(
    run: Path, sim: Path, per_volume: int, psize_A: float, device: str = "cpu", epoch: int | None = None
) -> dict:
    """Scores of a cryoscape run's checkpoint of ``epoch`` (None: the last), maps from its own decoder."""
    from cryoscape.analysis.volumes import generate_volumes, load_run

    trained = load_run(run, epoch, device=device)
    z = np.load(run / ("z.npy" if epoch is None else f"z.{epoch}.npy"))
    ind = stratified_indices(read_ground_truth(sim).volume_index, per_volume)
    return _score_maps(generate_volumes(trained.model, z[ind], scale=trained.norm_std), ind, sim, psize_A)


def maps_cryodrgn(cryodrgn: str, run: Path, sim: Path, per_volume: int, psize_A: float) -> dict:
    """The same for a cryoDRGN run: its last epoch's codes decoded by ``cryodrgn eval_vol``."""
    epoch, z = cryodrgn_last_codes(run)
    ind = stratified_indices(read_ground_truth(sim).volume_index, per_volume)
    return _score_maps(cryodrgn_maps(cryodrgn, run, epoch, z[ind], "cryobench_maps", psize_A), ind, sim, psize_A)


def curve_cryoscape(run: Path, gt: dict) -> list[list]:
    """``[[cumulative training s, latent scores], ...]`` per epoch (log.csv, z.<e>.npy)."""
    from train_vs_cryodrgn import cryoscape_curve

    return [[t, q] for t, q in cryoscape_curve(run, gt)]


def curve_cryodrgn(run: Path, gt: dict) -> list[list]:
    """The same for cryoDRGN (run.log epoch times, z.<e>.pkl)."""
    from train_vs_cryodrgn import cryodrgn_curve

    return [[t, q] for t, q in cryodrgn_curve(run, gt)]


def time_to_reach(curve: list[list], metric: str, target: float) -> float | None:
    """Training seconds at the first epoch whose ``metric`` reaches ``target`` (None: never)."""
    return next((t for t, q in curve if q.get(metric, -np.inf) >= target), None)


__all__ = [
    "curve_cryodrgn",
    "curve_cryoscape",
    "latent_quality",
    "maps_cryodrgn",
    "maps_cryoscape",
    "stratified_indices",
    "summarise",
    "time_to_reach",
]
