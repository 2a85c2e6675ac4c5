"""Fourier-space sampling grids for a ``D x D`` image (centred layout, see :mod:`.fft`)."""

from __future__ import annotations

import torch


def freqs_1d(D: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(D,)`` frequencies in cycles/px of the centred layout: ``(j - D//2) / D``."""
    return (torch.arange(D, device=device, dtype=torch.float32) - D // 2) / D


def freqs_2d(D: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(D, D, 2)`` frequencies ``(kx, ky)`` in cycles/px; ``kx`` varies along the last axis."""
    f = freqs_1d(D, device)
    ky, kx = torch.meshgrid(f, f, indexing="ij")
    return torch.stack([kx, ky], dim=-1)


def radius_2d(D: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(D, D)`` distance from the zero frequency in Fourier pixels (``|k| * D``)."""
    return freqs_2d(D, device).norm(dim=-1) * D


def circular_mask(D: int, radius: float | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """``(D, D)`` bool: frequencies with ``|k| * D <= radius`` (default ``D // 2``, i.e. Nyquist)."""
    return radius_2d(D, device) <= (D // 2 if radius is None else radius)


def shell_index(D: int, device: torch.device | str | None = None, ndim: int = 2) -> torch.Tensor:
    """Integer Fourier shell (rounded ``|k| * D``) of each point of a centred 2D or 3D grid."""
    f = freqs_1d(D, device) * D
    grids = torch.meshgrid(*([f] * ndim), indexing="ij")
    r2 = grids[0] * grids[0]
    for g in grids[1:]:
        r2 = r2 + g * g
    return torch.sqrt(r2).round().long()
