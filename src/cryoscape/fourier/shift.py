"""In-plane translation by Fourier phase ramps."""

from __future__ import annotations

import math

import torch

from cryoscape.fourier.precision import geom_matmul


def phase_ramp(freqs_px: torch.Tensor, t_px: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` complex ``exp(-2 pi i k.t)``: multiplying a transform by it moves the image by ``+t``.

    Args:
        freqs_px: ``(N, 2)`` frequencies ``(kx, ky)`` in cycles/px.
        t_px: ``(B, 2)`` translations ``(tx, ty)`` in pixels.
    """
    phase = -2 * math.pi * geom_matmul(t_px, freqs_px.T)
    return torch.polar(torch.ones_like(phase), phase)


def translate(f: torch.Tensor, freqs_px: torch.Tensor, t_px: torch.Tensor) -> torch.Tensor:
    """Translate images by ``+t_px`` via their centred transforms ``f: (B, N)`` complex."""
    return f * phase_ramp(freqs_px, t_px)
