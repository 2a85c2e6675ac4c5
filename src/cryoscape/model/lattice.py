"""The half of a 3D Fourier lattice a decoder must evaluate to make a real volume.

Evaluating only canonical points inside the support sphere (about a quarter of the cube) and
filling the rest by conjugation is 4x cheaper than the full lattice and makes the map exactly
real.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cryoscape.model.decoder import SUPPORT_R2


@dataclass(frozen=True)
class HalfLattice:
    """Canonical lattice points of a ``(D_out,)*3`` centred grid, in the model's cycles/px.

    ``coords: (N, 3)`` (kx, ky, kz); ``index`` and ``partner``: ``(N,)`` flat indices into the
    ``[z, y, x]`` grid of each point and of its negative.
    """

    D_out: int
    coords: torch.Tensor
    index: torch.Tensor
    partner: torch.Tensor


def half_lattice(D_out: int, D_model: int, device: torch.device | str | None = None) -> HalfLattice:
    """Points to evaluate for a ``D_out`` map from a model trained on ``D_model`` px images.

    Frequency of index ``j`` is ``(j - D_out//2) / D_model`` cycles per training pixel: a smaller
    ``D_out`` crops the transform (downsampling, voxel size ``psize * D_model / D_out``), a larger
    one zero-pads it beyond the support. The Nyquist planes (index 0), whose partners fall off
    the grid, are left at zero so the filled grid is exactly Hermitian.
    """
    if D_out < 2 or D_out % 2:
        raise ValueError(f"output box must be even and >= 2, got {D_out}")
    j = torch.arange(D_out, device=device)
    f = (j - D_out // 2).float() / D_model
    fz, fy, fx = f[:, None, None], f[None, :, None], f[None, None, :]
    # canonical half-space (same rule as decoder.canonicalize), inside the support, off Nyquist
    upper = (fz > 0) | ((fz == 0) & ((fy > 0) | ((fy == 0) & (fx >= 0))))
    keep = upper & (fx * fx + fy * fy + fz * fz < SUPPORT_R2)
    keep[0], keep[:, 0], keep[:, :, 0] = False, False, False
    iz, iy, ix = keep.nonzero().unbind(1)
    coords = torch.stack([f[ix], f[iy], f[iz]], dim=-1)
    index = (iz * D_out + iy) * D_out + ix
    partner = (((D_out - iz) % D_out) * D_out + (D_out - iy) % D_out) * D_out + (D_out - ix) % D_out
    return HalfLattice(D_out, coords, index, partner)
