"""Particle tensors for training: poses, shifts, CTF parameters and images, in memory or streamed.

Built from a :class:`~cryoscape.io.particles.ParticleSet`; per-particle arrays keep the input's
order, so row ``i`` of everything (and of ``z.npy``) is particle ``i`` of the input (after
``--ind``). Images are held in memory as one float32 tensor when they fit in about half of the
available RAM; otherwise (or with ``lazy=True``) they are read batch by batch from the stacks
by DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from cryoscape.errors import InputError
from cryoscape.io.particles import ParticleSet

#: Fraction of the available RAM the images may take before streaming is chosen automatically.
RAM_FRACTION = 0.5


@dataclass
class ParticleData:
    """Everything the training loop needs per particle, in input order.

    ``rotations: (N, 3, 3)`` RELION A; ``shifts_px: (N, 2)``; ``ctf: (N, 8)`` float64 in
    :data:`cryoscape.fourier.ctf.CTF_COLUMNS` order or None; ``images: (N, D, D)`` float32 when in
    memory, else None and ``source`` (an ``ImageSource``) is read on demand.
    """

    D: int
    psize_A: float
    rotations: torch.Tensor
    shifts_px: torch.Tensor
    ctf: torch.Tensor | None
    images: torch.Tensor | None
    source: object

    def __len__(self) -> int:
        return len(self.rotations)

    @property
    def lazy(self) -> bool:
        return self.images is None

    def read(self, idx: np.ndarray) -> torch.Tensor:
        """Images ``idx`` as ``(k, D, D)`` float32, from memory or the stacks."""
        if self.images is not None:
            return self.images[torch.as_tensor(idx)]
        return torch.from_numpy(self.source[np.asarray(idx)])

    def batches(self, order: np.ndarray, batch_size: int, num_workers: int = 0
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(idx: (b,) int64, images: (b, D, D))`` over ``order`` in ``batch_size`` steps."""
        groups = [order[a:a + batch_size] for a in range(0, len(order), batch_size)]
        if self.images is not None:
            for g in groups:
                idx = torch.from_numpy(np.asarray(g, np.int64))
                yield idx, self.images[idx.to(self.images.device)]
            return
        loader = torch.utils.data.DataLoader(_BatchReader(self.source, groups), batch_size=None,
                                             shuffle=False, num_workers=num_workers)
        yield from loader


class _BatchReader(torch.utils.data.Dataset):
    """Item ``i`` is the whole batch ``groups[i]``: one sorted read per stack per batch."""

    def __init__(self, source: object, groups: list[np.ndarray]) -> None:
        self.source, self.groups = source, groups

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = np.asarray(self.groups[i], np.int64)
        return torch.from_numpy(g), torch.from_numpy(self.source[g])


def available_ram_bytes() -> int:
    """``MemAvailable`` from /proc/meminfo, else free physical pages (bytes)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_trainable(pset: ParticleSet, use_ctf: bool) -> None:
    """InputError unless ``pset`` has images, poses and (with ``use_ctf``) CTF, in an even box."""
    where = pset.source
    if pset.images is None:
        raise InputError("training needs particle images; none were found (check --datadir)", where)
    if pset.n == 0:
        raise InputError("no particles to train on", where)
    if pset.rotations is None:
        raise InputError("training needs poses: the particles have no orientations; "
                         "pass --poses POSES.pkl or use a refined .star/.cs", where)
    if use_ctf and pset.ctf is None:
        raise InputError("training needs CTF parameters: the particles have none; "
                         "pass --ctf CTF.pkl, or --no-ctf for CTF-free data", where)
    D = pset.images.box
    if D % 2 or D < 4:
        raise InputError(f"training needs an even box of at least 4 px, images are {D} px; "
                         "downsample or re-extract them", where)


def particle_data(pset: ParticleSet, use_ctf: bool = True, lazy: bool | None = None,
                  device: torch.device | str = "cpu") -> ParticleData:
    """Build :class:`ParticleData`; ``lazy=None`` streams only when images exceed half the free RAM.

    Pose, shift and CTF tensors go to ``device``; in-memory images stay on the CPU (batches are
    moved by the loop).
    """
    check_trainable(pset, use_ctf)
    src, D = pset.images, pset.images.box
    psize_A = pset.apix
    rot = torch.as_tensor(np.asarray(pset.rotations, np.float32), device=device)
    shifts = np.zeros((pset.n, 2)) if pset.shifts_A is None else pset.shifts_px
    shifts_t = torch.as_tensor(np.asarray(shifts, np.float32), device=device)
    ctf = torch.as_tensor(pset.ctf.as_array(), device=device) if use_ctf else None
    if lazy is None:
        lazy = pset.n * D * D * 4 > RAM_FRACTION * available_ram_bytes()
    images = None if lazy else _load_all(src)
    return ParticleData(D, psize_A, rot, shifts_t, ctf, images, src)


def _load_all(src: object, chunk: int = 4096) -> torch.Tensor:
    """All images of ``src`` as one ``(N, D, D)`` float32 tensor, read in chunks."""
    out = torch.empty((len(src), src.box, src.box), dtype=torch.float32)
    for ind, imgs in src.chunks(chunk):
        out[int(ind[0]):int(ind[-1]) + 1] = torch.from_numpy(imgs)
    return out


def norm_subset(n: int, seed: int, size: int = 2000) -> np.ndarray:
    """Sorted indices of the (seeded) random subset the normalisation is estimated on."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def estimate_data_norm(data: ParticleData, sign: float, seed: int) -> tuple[float, float]:
    """``(mean, std)`` of the Fourier data (mean is 0 by definition, see :mod:`.preprocess`)."""
    from cryoscape.data.preprocess import estimate_norm

    idx = norm_subset(len(data), seed)
    std = estimate_norm(data.read(idx).numpy(), data.shifts_px[idx].cpu().numpy(), sign)
    if not np.isfinite(std) or std <= 0:
        raise InputError("the particle images are all zero", getattr(data.source, "origin", None))
    return 0.0, float(std)
