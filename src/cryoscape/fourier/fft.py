"""Centred Fourier and Hartley transforms (torch).

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


def ht2c(x: torch.Tensor) -> torch.Tensor:
    """Centred 2D Hartley transform, ``H = Re(F) - Im(F)``: real in, real out."""
    f = fft2c(x)
    return f.real - f.imag


def iht2c(h: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`ht2c` (the Hartley transform is its own inverse up to 1/size)."""
    return ht2c(h) / (h.shape[-1] * h.shape[-2])


def ht3c(x: torch.Tensor) -> torch.Tensor:
    """Centred 3D Hartley transform."""
    f = fft3c(x)
    return f.real - f.imag


def iht3c(h: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`ht3c`."""
    return ht3c(h) / (h.shape[-1] * h.shape[-2] * h.shape[-3])


def hartley_to_fourier(h: torch.Tensor, dims: tuple[int, ...] = _D2) -> torch.Tensor:
    """Complex transform from a centred Hartley transform: ``F(k) = (H(k) + H(-k))/2 - i (H(k) - H(-k))/2``.

    ``H(-k)`` is ``H`` reversed about the centre; for even boxes the Nyquist row has no partner
    and is paired with itself.
    """
    hm = _negate_freqs(h, dims)
    return torch.complex((h + hm) / 2, -(h - hm) / 2)


def _negate_freqs(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``x(-k)`` for a centred layout: reverse index ``j -> (2*(D//2) - j) mod D`` on each axis."""
    for d in dims:
        n = x.shape[d]
        idx = (2 * (n // 2) - torch.arange(n, device=x.device)) % n
        x = x.index_select(d, idx)
    return x
