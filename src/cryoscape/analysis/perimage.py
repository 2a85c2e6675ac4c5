"""Per-image FSC against ground truth for simulated data (cryoDRGN paper, Extended Data Fig. 1).

For a random sample of particles, the map generated at each particle's latent code is compared
with the ground-truth map that made the particle. The summary is the mean FSC curve, the mean
area under the curve (AUC, over 0..0.5 cycles/px, so a perfect map scores 0.5) and the mean
resolution where the FSC first drops below 0.5.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryoscape.analysis.fsc import fsc, resolution_at
from cryoscape.errors import InputError
from cryoscape.io.atomic import save_text_array

DEFAULT_SAMPLE = 128
_VOL_RE = re.compile(r"^vol_(\d+)\.mrc$")


@dataclass(frozen=True)
class PerImageFSC:
    """``indices: (M,)`` run-relative particles; ``curves: (M, D//2+1)``; ``freqs`` in cycles/px;
    ``auc: (M,)``; ``res05_A: (M,)`` resolution at FSC 0.5 in Å."""

    indices: np.ndarray
    volume_index: np.ndarray
    freqs: np.ndarray
    curves: np.ndarray
    auc: np.ndarray
    res05_A: np.ndarray
    psize_A: float

    @property
    def mean_curve(self) -> np.ndarray:
        return self.curves.mean(0)

    def summary(self) -> dict[str, float]:
        finite = self.res05_A[np.isfinite(self.res05_A)]
        return {
            "n": len(self.indices),
            "mean_auc": float(self.auc.mean()),
            "mean_res05_A": float(finite.mean()) if len(finite) else float("inf"),
        }


@dataclass(frozen=True)
class GroundTruth:
    """``volume_index: (N,)`` the ground-truth map of each simulated particle; ``paths`` by index."""

    volume_index: np.ndarray
    paths: dict[int, Path]

    def load(self, k: int) -> np.ndarray:
        from cryoscape.io.mrc import read_volume

        if k not in self.paths:
            raise InputError(f"ground-truth map vol_{k}.mrc is missing", next(iter(self.paths.values())).parent)
        return read_volume(self.paths[k])[0].astype(np.float32)


def read_ground_truth(simdir: str | Path) -> GroundTruth:
    """``ground_truth.npz`` and ``gt_volumes/vol_*.mrc`` written by ``cryoscape simulate``."""
    simdir = Path(simdir)
    npz, vdir = simdir / "ground_truth.npz", simdir / "gt_volumes"
    if not npz.is_file() or not vdir.is_dir():
        raise InputError("not a cryoscape simulate folder (needs ground_truth.npz and gt_volumes/)", simdir)
    with np.load(npz) as f:
        if "volume_index" not in f:
            raise InputError("no volume_index in the ground truth", npz)
        vi = np.asarray(f["volume_index"], np.int64)
    paths = {int(m.group(1)): p for p in vdir.iterdir() if (m := _VOL_RE.match(p.name))}
    if not paths:
        raise InputError("no vol_*.mrc maps", vdir)
    return GroundTruth(vi, paths)


def sample_indices(n: int, n_sample: int = DEFAULT_SAMPLE, seed: int = 0) -> np.ndarray:
    """Sorted random sample of ``min(n, n_sample)`` particle indices."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, n_sample), replace=False)).astype(np.int64)


def fourier_crop_volume(vol: np.ndarray, D_new: int) -> np.ndarray:
    """``(D_new,)*3`` map keeping the central ``D_new^3`` Fourier box of ``vol`` (same extent)."""
    D = vol.shape[0]
    if D_new == D:
        return vol
    f = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(vol.astype(np.float64))))
    a = D // 2 - D_new // 2
    f = f[a : a + D_new, a : a + D_new, a : a + D_new]
    out = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(f))).real * (D_new / D) ** 3
    return out.astype(np.float32)


def auc(freqs: np.ndarray, curve: np.ndarray) -> float:
    """Area under an FSC curve over ``freqs`` in cycles/px (0..0.5)."""
    return float(np.sum((curve[1:] + curve[:-1]) * np.diff(freqs)) / 2)


def per_image_fsc(
    pred_maps: Iterable[np.ndarray],
    indices: np.ndarray,
    volume_index: np.ndarray,
    load_gt: Callable[[int], np.ndarray],
    psize_A: float,
) -> PerImageFSC:
    """Score ``pred_maps`` (one ``(D, D, D)`` map per entry of ``indices``) against
    ``load_gt(volume_index[i])`` (Fourier-cropped to ``D`` when larger; each loaded once)."""
    cache: dict[int, np.ndarray] = {}
    curves, freqs = [], None
    for i, pred in zip(indices, pred_maps):
        k = int(volume_index[i])
        if k not in cache:
            gt = load_gt(k)
            if gt.shape[0] < pred.shape[0]:
                raise InputError(
                    f"ground-truth maps are {gt.shape[0]}^3 but the model's are "
                    f"{pred.shape[0]}^3; per-image FSC needs a box at least as large"
                )
            cache[k] = fourier_crop_volume(gt, pred.shape[0])
        freqs, c = fsc(pred, cache[k])
        curves.append(c)
    if len(curves) != len(indices):
        raise ValueError(f"{len(curves)} maps for {len(indices)} particles")
    if freqs is None:
        raise ValueError("no maps to score")
    curves_a = np.asarray(curves)
    return PerImageFSC(
        np.asarray(indices),
        volume_index[np.asarray(indices)],
        freqs,
        curves_a,
        np.array([auc(freqs, c) for c in curves_a]),
        np.array([resolution_at(freqs, c, 0.5, psize_A) for c in curves_a]),
        psize_A,
    )


def evaluate_run(
    run,
    z: np.ndarray,
    simdir: str | Path,
    run_ind: np.ndarray | None = None,
    n_sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
) -> PerImageFSC:
    """Per-image FSC of a :class:`~cryoscape.analysis.volumes.TrainedRun` on simulated data.

    ``z: (N, zdim)`` are the run's codes; ``run_ind`` maps its rows to the simulated particles
    when it was trained with ``--ind``.
    """
    from cryoscape.analysis.volumes import generate_volumes

    gt = read_ground_truth(simdir)
    vi = gt.volume_index if run_ind is None else gt.volume_index[run_ind]
    if len(vi) != len(z):
        raise InputError(f"the simulation has {len(vi)} particles but the run has {len(z)} codes", simdir)
    ind = sample_indices(len(z), n_sample, seed)
    psize = run.psize_A if run.psize_A else 1.0
    maps = generate_volumes(run.model, z[ind], scale=run.norm_std)
    return per_image_fsc(maps, ind, vi, gt.load, psize)


def save_perimage(res: PerImageFSC, outdir: Path) -> tuple[Path, Path]:
    """``perimage_fsc.txt`` (particle, gt volume, AUC, res@0.5) and ``perimage_fsc_mean.txt``."""
    outdir.mkdir(parents=True, exist_ok=True)
    a, b = outdir / "perimage_fsc.txt", outdir / "perimage_fsc_mean.txt"
    save_text_array(
        a,
        np.column_stack([res.indices, res.volume_index, res.auc, res.res05_A]),
        fmt=["%d", "%d", "%.5f", "%.3f"],
        header="particle gt_volume fsc_auc res_at_0.5_A",
    )
    save_text_array(
        b,
        np.column_stack([res.freqs, res.freqs / res.psize_A, res.mean_curve]),
        fmt="%.6f",
        header="freq_cycles_per_px freq_1/A mean_fsc",
    )
    return a, b
