"""Central slices: sample a centred 3D transform at rotated 2D lattice points (trilinear)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cryoscape.fourier.precision import geom_matmul


def rotate_lattice(freqs_px: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Volume-frame coordinates of an image lattice: ``(N, 2)`` (kx, ky) and ``(B, 3, 3)`` A -> ``(B, N, 3)``.

    Implements ``k3 @ A`` with ``k3 = (kx, ky, 0)`` (see :mod:`cryoscape.geometry`).
    """
    return geom_matmul(freqs_px, rot[:, :2, :])


def sample_volume(vol_ft: torch.Tensor, coords_px: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of a centred transform at frequencies in cycles/px of its own grid.

    Args:
        vol_ft: ``(P, P, P)`` centred transform, [kz, ky, kx], real or complex.
        coords_px: ``(B, N, 3)`` (kx, ky, kz) in cycles/px of the ``P`` grid (index = k*P + P//2).
    Returns:
        ``(B, N)`` samples (zero outside the grid).
    """
    P = vol_ft.shape[-1]
    # grid_sample with align_corners=True maps -1 -> index 0 and +1 -> index P-1
    grid = (coords_px * P + P // 2) * (2.0 / (P - 1)) - 1.0
    grid = grid.to(torch.float32)[None, :, :, None, :]  # (1, B, N, 1, 3), last dim (x, y, z)
    if vol_ft.is_complex():
        chans = torch.stack([vol_ft.real, vol_ft.imag])[None].float()
    else:
        chans = vol_ft[None, None].float()
    out = F.grid_sample(chans, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    out = out[0, :, :, :, 0]  # (C, B, N)
    return torch.complex(out[0], out[1]) if vol_ft.is_complex() else out[0]
