"""Particle tensors for training: poses, shifts, CTF parameters and images, in memory or streamed.

Built from a :class:`~cryoscape.io.particles.ParticleSet`; per-particle arrays keep the input's
order, so row ``i`` of everything (and of ``z.npy``) is particle ``i`` of the input (after
``--ind``). Images are held in memory as one float32 tensor when they fit in about half of the
available RAM; otherwise (or with ``lazy=True``) they are streamed: each batch is one sorted,
positioned read per stack (:class:`~cryoscape.io.images.ImageSource`), done by DataLoader
workers that read ahead while the model trains. Memory then depends on the batch, not on N: a
process holds the per-particle metadata (~130 bytes a particle) and the batches in flight.
See docs/large-datasets.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from cryoscape.errors import InputError
from cryoscape.io.particles import ParticleSet

if TYPE_CHECKING:
    from cryoscape.io.images import ImageSource

#: Fraction of the available RAM the images may take before streaming is chosen automatically.
RAM_FRACTION = 0.5
#: Batches each DataLoader worker reads ahead (PyTorch's default, set explicitly): with W workers
#: at most ``2 W`` batches, ``2 W * batch * D * D * 4`` bytes, are in flight.
PREFETCH_BATCHES = 2
#: Images read at once while estimating the normalisation (bounds that step's memory).
NORM_CHUNK = 256
#: While streaming, glibc serves blocks of at least this many bytes by mmap (see _bound_heap).
MMAP_THRESHOLD_BYTES = 4 << 20


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
    source: ImageSource
    # persistent DataLoaders of the lazy path, by (workers, pin): workers outlive an epoch
    _loaders: dict = field(default_factory=dict, init=False, repr=False, compare=False)

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

    def batches(
        self, order: np.ndarray, batch_size: int, num_workers: int = 0, *, pin_memory: bool | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(idx: (b,) int64, images: (b, D, D) float32)`` over ``order`` in ``batch_size`` steps.

        Lazy data are read by ``num_workers`` DataLoader processes (0: in this one), each
        ``PREFETCH_BATCHES`` ahead; the workers persist from one call to the next. Batches land in
        pinned memory when ``pin_memory`` (default: when the per-particle tensors are on a CUDA
        device, i.e. training runs there), so the copy to the GPU can overlap compute.
        """
        order = np.asarray(order, np.int64)
        groups = [order[a : a + batch_size] for a in range(0, len(order), batch_size)]
        if self.images is not None:
            for g in groups:
                idx = torch.from_numpy(g)
                yield idx, self.images[idx.to(self.images.device)]
            return
        if pin_memory is None:
            pin_memory = self.rotations.is_cuda
        yield from self._stream(groups, num_workers, bool(pin_memory))

    def _stream(
        self, groups: list[np.ndarray], num_workers: int, pin: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The lazy path of :meth:`batches`: ``groups`` read by the loader for these settings."""
        key = (num_workers, pin)
        _bound_heap()
        loader = self._loader(num_workers, pin)
        sampler, taken = loader.sampler, 0
        assert isinstance(sampler, _Groups)
        sampler.groups, sampler.busy = groups, True
        try:
            for idx, images in loader:
                if isinstance(idx, _Failure):
                    raise idx.error()
                taken += 1
                yield idx, images
        finally:
            sampler.groups, sampler.busy = [], False
            if taken < len(groups) and self._loaders.get(key) is loader:
                # ended early (an error, or abandoned): stop its workers now, not whenever the
                # garbage collector gets to it with batches still in flight (seconds per worker)
                del self._loaders[key]
            del loader

    def _loader(self, num_workers: int, pin: bool) -> torch.utils.data.DataLoader:
        """The persistent loader for these settings, or a one-off one while that is in use (a
        second pass started before the first ended must not share its workers)."""
        key = (num_workers, pin)
        cached = self._loaders.get(key)
        if cached is not None and not cached.sampler.busy:
            return cached
        keep = num_workers > 0 and cached is None
        loader = torch.utils.data.DataLoader(
            _BatchReader(self.source),
            batch_size=None,
            sampler=_Groups(),
            num_workers=num_workers,
            pin_memory=pin,
            persistent_workers=keep,
            prefetch_factor=PREFETCH_BATCHES if num_workers > 0 else None,
        )
        if keep:
            self._loaders[key] = loader
        return loader


class _Groups(torch.utils.data.Sampler):
    """The DataLoader's sampler: yields the batches (index arrays) of the current pass. It runs in
    the main process and is re-read on every pass, so persistent workers serve any new order."""

    def __init__(self) -> None:
        self.groups: list[np.ndarray] = []
        self.busy = False

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)


@dataclass(frozen=True)
class _Failure:
    """An InputError met in a worker, carried back as data so the user sees its one line (the
    DataLoader would re-raise it wrapped in the worker's traceback)."""

    problem: str
    path: str | None

    def error(self) -> InputError:
        return InputError(self.problem, self.path)


class _BatchReader(torch.utils.data.Dataset):
    """Key: one batch's particle indices (any order); item: ``(idx, images)``, one sorted read per
    stack. Holds only the source: its per-particle arrays are small, and it opens each stack per
    read, so no file descriptor is shared between worker processes."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor] | tuple[_Failure, None]:
        try:
            return torch.from_numpy(idx), torch.from_numpy(self.source[idx])
        except InputError as e:
            return _Failure(e.problem, e.path), None


def _bound_heap() -> None:
    """On glibc, serve every allocation of ``MMAP_THRESHOLD_BYTES`` or more by mmap from now on.

    Why: glibc raises that threshold by itself (up to 32 MiB) once a large block is freed; the
    step's per-batch buffers (a batch's images and Fourier transforms, 2-16 MiB at D = 128) then
    come from the heap and, interleaved with small long-lived blocks, fragment it without bound.
    Measured (D = 128, 8,192 images, 2 workers, one epoch): in the latent pass the free part of
    the heap grew from 0.17 to 0.64 GB while 0.19 GB was in use, and the run peaked at 1.23 GB;
    with the fixed threshold it peaks at 0.52 GB. Mapped blocks cost page faults instead
    (docs/large-datasets.md).
    A threshold set by the user (``MALLOC_MMAP_THRESHOLD_``) is left alone. Fork inherits it.
    """
    global _heap_bounded
    if _heap_bounded or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    _heap_bounded = True
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc only; elsewhere this is an AttributeError
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_heap_bounded = False


def available_ram_bytes() -> int:
    """``MemAvailable`` from /proc/meminfo, else free physical pages (bytes)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_trainable(pset: ParticleSet, use_ctf: bool) -> None:
    """InputError unless ``pset`` has images, poses and (with ``use_ctf``) CTF, in an even box."""
    where = pset.source
    if pset.images is None:
        raise InputError("training needs particle images; none were found (check --datadir)", where)
    if pset.n == 0:
        raise InputError("no particles to train on", where)
    if pset.rotations is None:
        raise InputError(
            "training needs poses: the particles have no orientations; "
            "pass --poses POSES.pkl or use a refined .star/.cs",
            where,
        )
    if use_ctf and pset.ctf is None:
        raise InputError(
            "training needs CTF parameters: the particles have none; pass --ctf CTF.pkl, or --no-ctf for CTF-free data",
            where,
        )
    D = pset.images.box
    if D % 2 or D < 4:
        raise InputError(
            f"training needs an even box of at least 4 px, images are {D} px; downsample or re-extract them", where
        )


def particle_data(
    pset: ParticleSet, use_ctf: bool = True, lazy: bool | None = None, device: torch.device | str = "cpu"
) -> ParticleData:
    """Build :class:`ParticleData`; ``lazy=None`` streams only when images exceed half the free RAM.

    Under torchrun every process on a node holds its own copy, so the free RAM is shared out by
    ``LOCAL_WORLD_SIZE``. Pose, shift and CTF tensors go to ``device``; in-memory images stay on
    the CPU (batches are moved by the loop).
    """
    check_trainable(pset, use_ctf)
    src = pset.images
    assert src is not None  # check_trainable refuses particles without images
    D = src.box
    psize_A = pset.apix
    rot = torch.as_tensor(np.asarray(pset.rotations, np.float32), device=device)
    shifts = np.zeros((pset.n, 2)) if pset.shifts_A is None else pset.shifts_px
    shifts_t = torch.as_tensor(np.asarray(shifts, np.float32), device=device)
    ctf = None
    if use_ctf:
        assert pset.ctf is not None  # check_trainable refuses use_ctf without a CTF
        ctf = torch.as_tensor(pset.ctf.as_array(), device=device)
    if lazy is None:
        lazy = pset.n * D * D * 4 > RAM_FRACTION * available_ram_bytes() / _processes_per_node()
    images = None if lazy else _load_all(src)
    return ParticleData(D, psize_A, rot, shifts_t, ctf, images, src)


def _processes_per_node() -> int:
    """Training processes sharing this node's RAM: torchrun's ``LOCAL_WORLD_SIZE``, else 1."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _load_all(src: ImageSource, chunk: int = 4096) -> torch.Tensor:
    """All images of ``src`` as one ``(N, D, D)`` float32 tensor, read in chunks."""
    out = torch.empty((len(src), src.box, src.box), dtype=torch.float32)
    for ind, imgs in src.chunks(chunk):
        out[int(ind[0]) : int(ind[-1]) + 1] = torch.from_numpy(imgs)
    return out


def norm_subset(n: int, seed: int, size: int = 2000) -> np.ndarray:
    """Sorted indices of the (seeded) random subset the normalisation is estimated on."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def estimate_data_norm(data: ParticleData, sign: float, seed: int) -> tuple[float, float]:
    """``(mean, std)`` of the Fourier data (mean is 0 by definition, see :mod:`.preprocess`).

    ``std`` is the RMS over a seeded subset of up to 2,000 images, read ``NORM_CHUNK`` at a time.
    """
    from cryoscape.data.preprocess import estimate_norm

    idx = norm_subset(len(data), seed)
    total = 0.0
    for a in range(0, len(idx), NORM_CHUNK):
        part = idx[a : a + NORM_CHUNK]
        rms = estimate_norm(data.read(part).numpy(), data.shifts_px[part].cpu().numpy(), sign)
        total += rms * rms * len(part)  # every image has the same number of coefficients
    std = (total / len(idx)) ** 0.5
    if not np.isfinite(std) or std <= 0:
        raise InputError("the particle images are all zero", getattr(data.source, "origin", None))
    return 0.0, float(std)
