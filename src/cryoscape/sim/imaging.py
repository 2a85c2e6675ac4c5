"""Project, add noise and write the particle stack, volume by volume, in bounded memory."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from cryoscape.sim.simulate import Particles, SimConfig
    from cryoscape.sim.sources import VolumeBank

#: At most this many distinct volumes are projected to estimate the signal variance.
_SNR_MAX_VOLUMES = 8


def _projector(vol: np.ndarray):
    import torch

    from cryoscape.fourier.project import Projector

    return Projector(torch.from_numpy(np.ascontiguousarray(vol, np.float32)))


def _clean_images(proj, parts: Particles, idx: np.ndarray, psize_A: float) -> torch.Tensor:
    """``(len(idx), D, D)`` noise-free images of particles ``idx`` (all of one volume)."""
    import torch

    rot = torch.from_numpy(parts.rotations[idx]).float()
    shift = torch.from_numpy(parts.shifts_px[idx]).float()
    ctf = None if parts.ctf is None else torch.from_numpy(parts.ctf.as_array()[idx]).float()
    with torch.no_grad():
        return proj.project(rot, shift, ctf, psize_A)


def signal_var(cfg: SimConfig, bank: VolumeBank, parts: Particles) -> float:
    """Pixel variance of up to ``cfg.snr_sample`` noise-free images of particles drawn at random;
    they come from at most 8 volumes (chosen with the particles' frequencies) to bound the cost."""
    rng = np.random.default_rng([cfg.seed, 1])
    n = len(parts.volume_index)
    picks = np.unique(parts.volume_index[rng.choice(n, size=min(n, _SNR_MAX_VOLUMES), replace=False)])
    pool = np.flatnonzero(np.isin(parts.volume_index, picks))
    sample = rng.choice(pool, size=min(len(pool), cfg.snr_sample), replace=False)
    total, total_sq, count = 0.0, 0.0, 0
    for k in np.unique(parts.volume_index[sample]):
        idx = sample[parts.volume_index[sample] == k]
        img = _clean_images(_projector(bank.get(int(k))), parts, idx, bank.psize_A).double()
        total, total_sq, count = total + float(img.sum()), total_sq + float((img * img).sum()), count + img.numel()
    var = total_sq / count - (total / count) ** 2
    if var <= 0:
        raise ValueError("the noise-free images are constant (an empty volume?)")
    return var


def noise_sigma(cfg: SimConfig, bank: VolumeBank, parts: Particles) -> float:
    """Noise standard deviation for ``cfg.snr``: ``sqrt(signal_var / snr)``; 0 for infinite SNR.

    Also records the sampled signal variance in ``parts.stats["signal_var_sample"]`` (junk
    images are scaled to it)."""
    if np.isinf(cfg.snr) and parts.junk_kind is None:
        return 0.0
    var = signal_var(cfg, bank, parts)
    parts.stats["signal_var_sample"] = var
    return 0.0 if np.isinf(cfg.snr) else float(np.sqrt(var / cfg.snr))


class _Junk:
    """Replaces the clean images of junk particles (see :mod:`cryoscape.sim.junk`), batch by batch."""

    def __init__(self, cfg: SimConfig, bank: VolumeBank, parts: Particles) -> None:
        from cryoscape.sim.junk import decoy_volume

        assert parts.junk_kind is not None
        self.kind, self.parts, self.psize_A = parts.junk_kind, parts, bank.psize_A
        self.decoy = _projector(decoy_volume(bank.D, float(bank.get(0).sum())))
        self.scale = float(np.sqrt(parts.stats["signal_var_sample"]))
        self.rng = np.random.default_rng([cfg.seed, 3])

    def apply(self, idx: np.ndarray, img: np.ndarray) -> None:
        from cryoscape.sim.junk import ice_images

        kind = self.kind[idx]
        img[kind == 1] = 0.0
        decoy = np.flatnonzero(kind == 2)
        if len(decoy):
            img[decoy] = _clean_images(self.decoy, self.parts, idx[decoy], self.psize_A).numpy()
        ice = np.flatnonzero(kind == 3)
        if len(ice):
            img[ice] = self.scale * ice_images(len(ice), img.shape[-1], self.rng)


def _runs(idx: np.ndarray) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` positions in sorted ``idx`` of its runs of consecutive values."""
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    bounds = np.concatenate([[0], breaks, [len(idx)]])
    return itertools.pairwise(bounds)


def write_images(cfg: SimConfig, bank: VolumeBank, parts: Particles, sigma: float, outdir: Path) -> None:
    """Write ``particles.mrcs`` and ``gt_volumes/vol_*.mrc``; fill ``parts.stats``.

    Noise comes from the stream ``[seed, 2]`` in the order volumes are processed.
    """
    from tqdm import tqdm

    from cryoscape.io.mrc import StackWriter, write_volume

    n, D = len(parts.volume_index), bank.D
    rng = np.random.default_rng([cfg.seed, 2])
    (outdir / "gt_volumes").mkdir(exist_ok=True)
    digits = max(3, len(str(len(bank) - 1)))
    sig_sum = sig_sq = 0.0
    junk = None if parts.junk_kind is None else _Junk(cfg, bank, parts)
    with (
        StackWriter(outdir / "particles.mrcs", n, D, bank.psize_A) as writer,
        tqdm(total=n, unit="img", desc="simulate", disable=not cfg.progress) as bar,
    ):
        for k in range(len(bank)):
            vol = bank.get(k)
            write_volume(outdir / "gt_volumes" / f"vol_{k:0{digits}d}.mrc", vol, bank.psize_A)
            members = np.flatnonzero(parts.volume_index == k)
            if not len(members):
                continue
            proj = _projector(vol)
            for b in range(0, len(members), cfg.batch_size):
                idx = members[b : b + cfg.batch_size]
                img = _clean_images(proj, parts, idx, bank.psize_A).numpy().astype(np.float32)
                if junk is not None:
                    junk.apply(idx, img)
                sig_sum += float(img.sum(dtype=np.float64))
                sig_sq += float(np.square(img, dtype=np.float64).sum())
                if sigma > 0:
                    img += sigma * rng.standard_normal(img.shape, dtype=np.float32)
                for lo, hi in _runs(idx):
                    writer.write(int(idx[lo]), img[lo:hi])
                bar.update(len(idx))
    mean = sig_sum / (n * D * D)
    parts.stats["signal_var"] = sig_sq / (n * D * D) - mean**2
