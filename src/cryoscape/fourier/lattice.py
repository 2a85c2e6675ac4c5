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
