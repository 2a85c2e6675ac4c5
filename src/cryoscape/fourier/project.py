"""The forward model: volume -> rotated central slice -> CTF -> shift -> image.

One implementation serves the simulator, tests and backprojection's adjoint checks. The volume
is zero-padded ``oversample`` times before its transform so trilinear slicing is accurate, and
pre-divided by the interpolation kernel's real-space envelope (gridding correction).
"""

from __future__ import annotations

import torch

from cryoscape.fourier.ctf import compute_ctf
from cryoscape.fourier.fft import fft3c, ifft2c
from cryoscape.fourier.lattice import freqs_2d
from cryoscape.fourier.shift import phase_ramp
from cryoscape.fourier.slicing import rotate_lattice, sample_volume


def gridding_correction(D: int, P: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(D, D, D)`` real-space envelope of trilinear interpolation on a ``P`` grid: ``sinc^2`` per axis."""
    x = (torch.arange(D, device=device, dtype=torch.float64) - D // 2) / P
    s = torch.sinc(x) ** 2
    return (s[:, None, None] * s[None, :, None] * s[None, None, :]).float()


def pad_volume(vol: torch.Tensor, P: int) -> torch.Tensor:
    """Zero-pad a centred ``(D, D, D)`` volume to ``(P, P, P)`` keeping its centre at ``P//2``."""
    D = vol.shape[-1]
    a = P // 2 - D // 2
    out = vol.new_zeros((P, P, P))
    out[a : a + D, a : a + D, a : a + D] = vol
    return out


class Projector:
    """Projects one volume along many poses.

    Args:
        vol: ``(D, D, D)`` real density, [z, y, x], even ``D``.
        oversample: padding factor before the 3D transform (2 is accurate to ~1e-3).
    """

    def __init__(self, vol: torch.Tensor, oversample: int = 2, gridding: bool = True) -> None:
        D = vol.shape[-1]
        if vol.shape != (D, D, D) or D % 2:
            raise ValueError(f"need a cubic volume with an even box, got {tuple(vol.shape)}")
        self.D, self.P = D, D * oversample
        v = vol.float()
        if gridding:
            v = v / gridding_correction(D, self.P, v.device)
        self.vol_ft = fft3c(pad_volume(v, self.P))
        self.freqs = freqs_2d(D, vol.device).reshape(-1, 2)  # (D*D, 2) cycles/px

    def slices(self, rot: torch.Tensor) -> torch.Tensor:
        """``(B, D*D)`` complex centred transforms of the projections along poses ``rot: (B, 3, 3)``."""
        return sample_volume(self.vol_ft, rotate_lattice(self.freqs, rot.to(self.freqs.dtype)))

    def project(
        self,
        rot: torch.Tensor,
        shift_px: torch.Tensor | None = None,
        ctf: torch.Tensor | None = None,
        psize_A: float = 1.0,
    ) -> torch.Tensor:
        """``(B, D, D)`` images: ``translate(-shift_px)(ctf * projection)``.

        ``ctf``: ``(B, 8)`` parameters (see :mod:`cryoscape.fourier.ctf`) or None for no CTF.
        """
        f = self.slices(rot)
        if ctf is not None:
            f = f * compute_ctf(self.freqs / psize_A, ctf.to(self.freqs.device))
        if shift_px is not None:
            f = f * phase_ramp(self.freqs, -shift_px.to(self.freqs.device))
        return ifft2c(f.reshape(-1, self.D, self.D)).real
