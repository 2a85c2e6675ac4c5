"""Voxel backprojection of posed particles: half-maps, full map, gold-standard FSC.

Images are streamed from the particle set's image source in batches, so memory is bounded by
the batch and the 3D grids, never by the stack. Per image: centred FFT, translate by ``+shift``
(the particle sits at ``-shift``), multiply by the CTF (RELION sign, positive at low frequency),
insert at ``k @ A`` (see :mod:`cryoscape.recon.insert`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from cryoscape.analysis.fsc import fsc
from cryoscape.errors import InputError
from cryoscape.fourier.ctf import compute_ctf
from cryoscape.fourier.fft import fft2c
from cryoscape.fourier.shift import translate
from cryoscape.fourier.window import soft_circular_window
from cryoscape.recon.insert import FourierAccumulator, half_lattice, ssnr_from_fsc


class Images(Protocol):
    """Anything indexable by an index array giving ``(k, D, D)`` float32 (ImageSource, ndarray)."""

    def __getitem__(self, idx: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class BackprojectConfig:
    """How to backproject.

    ``invert``: multiply images by -1 first (for black-on-white data; RELION's are white-on-black).
    ``window``: taper each image to zero outside 0.85-0.99 of the box radius, removing the
    noise in the corners (about 40% of it) where no particle is; ``gridding``: see
    :meth:`FourierAccumulator.reconstruct`.
    ``reg``: floor of the Wiener regulariser relative to the mean weight; ``wiener``: filter the
    full map with the SSNR measured by the half-map FSC (see :meth:`FourierAccumulator.reconstruct`).
    """

    use_ctf: bool = True
    invert: bool = False
    batch_size: int = 256
    reg: float = 1e-2
    wiener: bool = True  # full map filtered with the half-map SSNR (else constant reg only)
    window: bool = True  # soft circular real-space window on each image (removes corner noise)
    gridding: bool = False  # divide out the trilinear envelope (for high-SNR data)
    device: str = "cpu"


@dataclass
class PosedStack:
    """Arrays needed for backprojection, one row per particle (a ParticleSet, flattened).

    ``rotations: (N, 3, 3)`` A matrices; ``shifts_px: (N, 2)`` or None; ``ctf: (N, 8)`` in
    :data:`cryoscape.fourier.ctf.CTF_COLUMNS` order or None; ``psize_A``: pixel size in Å.
    """

    images: Images
    rotations: np.ndarray
    shifts_px: np.ndarray | None
    ctf: np.ndarray | None
    psize_A: float
    box: int


def posed_stack(pset, use_ctf: bool = True) -> PosedStack:
    """Flatten a :class:`~cryoscape.io.particles.ParticleSet`; raises InputError if it can't be backprojected."""
    if pset.images is None:
        raise InputError("no images to backproject", pset.source)
    if not pset.has_poses:
        raise InputError("backprojection needs poses: give a refined star/cs file or --poses", pset.source)
    if use_ctf and pset.ctf is None:
        raise InputError("no CTF parameters; give --ctf or use --no-ctf", pset.source)
    pset.check_counts()
    return PosedStack(
        images=pset.images,
        rotations=pset.rotations,
        shifts_px=pset.shifts_px,
        ctf=pset.ctf.as_array() if use_ctf else None,
        psize_A=pset.apix,
        box=pset.box,
    )


def backproject_into(
    stack: PosedStack,
    accs: list[FourierAccumulator],
    which: np.ndarray,
    cfg: BackprojectConfig,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Insert every particle ``i`` into ``accs[which[i]]`` (``which: (N,)`` ints), in batches."""
    D, dev = stack.box, torch.device(cfg.device)
    index, freqs, mult = half_lattice(D, dev)
    window = soft_circular_window(D, device=dev) if cfg.window else None
    n = len(stack.rotations)
    for start in range(0, n, cfg.batch_size):
        sel = np.arange(start, min(start + cfg.batch_size, n))
        imgs = np.asarray(stack.images[sel], dtype=np.float32)
        if imgs.shape[1:] != (D, D):
            raise InputError(f"images are {imgs.shape[1]}x{imgs.shape[2]} px but the box is {D}")
        x = torch.from_numpy(imgs).to(dev)
        f = fft2c(x if window is None else x * window).reshape(len(sel), -1)[:, index]
        if cfg.invert:
            f = -f
        if stack.shifts_px is not None:
            f = translate(f, freqs, torch.as_tensor(stack.shifts_px[sel], dtype=torch.float32, device=dev))
        ctf = None
        if stack.ctf is not None:
            params = torch.as_tensor(stack.ctf[sel], device=dev)
            ctf = compute_ctf(freqs / stack.psize_A, params)
        rot = torch.as_tensor(stack.rotations[sel], dtype=torch.float32, device=dev)
        for h, acc in enumerate(accs):
            m = torch.as_tensor(which[sel] == h, device=dev)
            if m.any():
                acc.insert(f[m], freqs, rot[m], None if ctf is None else ctf[m], mult)
        if progress is not None:
            progress(len(sel))


def split_halves(n: int, seed: int, random_subset: np.ndarray | None = None) -> np.ndarray:
    """``(n,)`` half index 0/1 per particle: RELION's ``_rlnRandomSubset`` (1/2) if given, else a
    seeded random split into two equal halves."""
    if random_subset is not None:
        rs = np.asarray(random_subset)
        if not np.isin(rs, (1, 2)).all():
            raise InputError("_rlnRandomSubset must be 1 or 2 for every particle")
        return (rs == 2).astype(np.int64)
    which = np.zeros(n, np.int64)
    which[np.random.default_rng(seed).permutation(n)[n // 2 :]] = 1
    return which


@dataclass
class Reconstruction:
    """Full map and half-maps, ``(D, D, D)`` float32 numpy [z, y, x], with the split used and the
    unmasked gold-standard FSC between the halves (``fsc_freqs`` in cycles/px, ``fsc_half``)."""

    full: np.ndarray
    half1: np.ndarray
    half2: np.ndarray
    which: np.ndarray
    psize_A: float
    fsc_freqs: np.ndarray
    fsc_half: np.ndarray


def reconstruct_halves(
    stack: PosedStack, cfg: BackprojectConfig, which: np.ndarray, progress: Callable[[int], None] | None = None
) -> Reconstruction:
    """Backproject each half separately; the full map is reconstructed from the summed grids."""
    accs = [FourierAccumulator(stack.box, cfg.device) for _ in range(2)]
    backproject_into(stack, accs, which, cfg, progress)
    half1, half2 = (a.reconstruct(cfg.reg, gridding=cfg.gridding).cpu().numpy() for a in accs)
    freqs, fsc_half = fsc(half1, half2)
    # the full map gets the Wiener filter whose SSNR the half-maps measure (gold standard)
    ssnr = ssnr_from_fsc(torch.from_numpy(fsc_half)) if cfg.wiener else None
    full = accs[0].add(accs[1]).reconstruct(cfg.reg, ssnr=ssnr, gridding=cfg.gridding).cpu().numpy()
    return Reconstruction(
        full=full, half1=half1, half2=half2, which=which, psize_A=stack.psize_A, fsc_freqs=freqs, fsc_half=fsc_half
    )


def backproject(stack: PosedStack, cfg: BackprojectConfig = BackprojectConfig()) -> np.ndarray:
    """``(D, D, D)`` float32 map from all particles of ``stack`` (no half split)."""
    acc = FourierAccumulator(stack.box, cfg.device)
    backproject_into(stack, [acc], np.zeros(len(stack.rotations), np.int64), cfg)
    return acc.reconstruct(cfg.reg, gridding=cfg.gridding).cpu().numpy()


def posed_halves(pset, use_ctf: bool = True, seed: int = 0, first: int | None = None) -> tuple[PosedStack, np.ndarray]:
    """The :func:`posed_stack` of ``pset`` (its first ``first`` particles if given) and their
    half-map index ``(N,)`` (:func:`split_halves`: the file's random subsets, else ``seed``)."""
    if first is not None and first < pset.n:
        pset = pset.subset(np.arange(first))
    stack = posed_stack(pset, use_ctf=use_ctf)
    return stack, split_halves(pset.n, seed, random_subset(pset))


def output_paths(out: str | Path) -> dict[str, Path]:
    """OUT.mrc plus OUT_half1.mrc, OUT_half2.mrc, OUT_fsc.txt, OUT_fsc.png beside it."""
    path = Path(out)
    if path.suffix.lower() not in (".mrc", ".map"):
        path = path.with_name(path.name + ".mrc")
    stem = path.with_suffix("")
    named = lambda tail: stem.with_name(stem.name + tail)
    return {
        "full": path,
        "half1": named("_half1.mrc"),
        "half2": named("_half2.mrc"),
        "txt": named("_fsc.txt"),
        "png": named("_fsc.png"),
    }


def random_subset(pset) -> np.ndarray | None:
    """RELION's ``_rlnRandomSubset`` column, if the input has one."""
    md = pset.metadata
    if md is None:
        return None
    for col in ("rlnRandomSubset", "_rlnRandomSubset"):
        if col in md.columns:
            return md[col].to_numpy()
    return None


def write_reconstruction(rec: Reconstruction, out: str | Path) -> list[str]:
    """Write the full map ``out`` (.mrc added if missing), the half-maps, and the gold-standard
    FSC table and plot beside it (see :func:`output_paths`); returns the summary lines (files
    written, resolutions at FSC 0.143 and 0.5, unmasked and auto-masked)."""
    from cryoscape.analysis.fsc import auto_mask, format_resolution, plot_fsc, save_fsc_txt
    from cryoscape.io.mrc import write_volume

    paths = output_paths(out)
    for key in ("full", "half1", "half2"):
        write_volume(paths[key], getattr(rec, key), rec.psize_A)
    freqs = rec.fsc_freqs
    _, masked = fsc(rec.half1, rec.half2, auto_mask(rec.full, rec.psize_A))
    curves = {"unmasked": rec.fsc_half, "auto_mask": masked}
    save_fsc_txt(paths["txt"], freqs, curves, rec.psize_A)
    plot_fsc(paths["png"], freqs, curves, rec.psize_A)
    lines = [
        f"wrote {paths['full']}, {paths['half1'].name}, {paths['half2'].name}, {paths['txt'].name}, {paths['png'].name}"
    ]
    for label, c in curves.items():
        r143, r5 = (format_resolution(freqs, c, t, rec.psize_A) for t in (0.143, 0.5))
        lines.append(f"half-map FSC ({label}): {r143} at 0.143, {r5} at 0.5")
    return lines
