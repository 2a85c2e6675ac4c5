"""Centred Fourier transforms (torch).

Layout convention: the zero frequency sits at index ``D // 2`` on every transformed axis, so
for even ``D`` the frequency of index ``j`` is ``(j - D//2) / D`` cycles/px and index 0 holds
Nyquist. Forward transforms are unnormalised (numpy's convention); inverses divide by the size.
"""

from __future__ import annotations

import torch

_D2 = (-2, -1)
_D3 = (-3, -2, -1)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred 2D FFT of the last two axes: ``(..., D, D)`` real/complex -> complex."""
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=_D2)), dim=_D2)


def ifft2c(f: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft2c` (complex output; take ``.real`` for real images)."""
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(f, dim=_D2)), dim=_D2)


def fft3c(x: torch.Tensor) -> torch.Tensor:
    """Centred 3D FFT of the last three axes: ``(..., D, D, D)`` -> complex."""
    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(x, dim=_D3), dim=_D3), dim=_D3)


def ifft3c(f: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft3c`."""
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(f, dim=_D3), dim=_D3), dim=_D3)
