"""What the model sees of a particle: centred, windowed, normalised images and their transforms.

One place for the per-batch data maths shared by training and by the latent (eval) pass:

    image --fft2c--> * exp(-2 pi i k.(-shift)) --ifft2c--> centred --* window--> x
    encoder input  = x * D / norm_std                      (pixel variance ~ 1)
    Fourier data   = fft2c(x)[half-plane] / norm_std       (coefficient mean square ~ 1)

``norm_std`` is the RMS of the Fourier coefficients of windowed, centred images over the half
plane (see :func:`estimate_norm`). By Parseval, ``x * D / norm_std`` then has unit mean-square
pixel value, so encoder inputs and decoder targets are both O(1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cryoscape.fourier.fft import fft2c, ifft2c
from cryoscape.fourier.lattice import freqs_2d, radius_2d
from cryoscape.fourier.shift import phase_ramp
from cryoscape.fourier.window import soft_circular_window


@dataclass(frozen=True)
class HalfPlane:
    """Image-lattice points the loss compares: inside the open Nyquist circle, half plane only.

    A real image's transform is Hermitian, so ``ky > 0`` (or ``ky == 0`` and ``kx >= 0``) holds all
    of its information. ``freqs: (N, 2)`` (kx, ky) cycles/px; ``index: (N,)`` flat index into the
    ``(D, D)`` centred grid. Points are ordered by radius, so the points of any band ``|k| < r``
    are a prefix (:meth:`count_within`): training on a band costs no gather. ``radius: (N,)`` their
    ``|k|`` on the CPU, so that finding a band's size never waits on a GPU.
    """

    D: int
    freqs: torch.Tensor
    index: torch.Tensor
    radius: torch.Tensor

    def __len__(self) -> int:
        return len(self.index)

    def count_within(self, band: float) -> int:
        """Number of leading points with ``|k| < band * 0.5`` cycles/px (``band = 1``: all of them)."""
        if band >= 1.0:
            return len(self)
        return max(1, int(torch.searchsorted(self.radius, 0.5 * band, side="left")))


def half_plane(D: int, device: torch.device | str | None = None) -> HalfPlane:
    """The :class:`HalfPlane` of a ``D x D`` image (strictly inside radius ``D/2``: the decoder's support)."""
    f = freqs_2d(D, device).reshape(-1, 2)
    kx, ky = f.unbind(-1)
    inside = radius_2d(D, device).reshape(-1) < D / 2
    upper = (ky > 0) | ((ky == 0) & (kx >= 0))
    index = torch.nonzero(inside & upper)[:, 0]
    r2 = f[index].square().sum(-1)
    index = index[torch.sort(r2, stable=True).indices]
    freqs = f[index].contiguous()
    return HalfPlane(D, freqs, index, freqs.square().sum(-1).sqrt().cpu())


class Preprocessor:
    """Batch maths from raw images to (encoder input, Fourier data); see the module docstring.

    ``sign = -1`` negates the images first (``--uninvert-data``, for black-on-white data).
    """

    def __init__(self, D: int, norm_std: float, sign: float = 1.0, device: torch.device | str | None = None) -> None:
        self.D, self.norm_std, self.sign = D, float(norm_std), float(sign)
        self.window = soft_circular_window(D, device=device)
        self.freqs = freqs_2d(D, device).reshape(-1, 2)
        self.half = half_plane(D, device)

    def centred(self, images: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
        """``(B, D, D)`` raw images, ``(B, 2)`` shifts px -> windowed, centred images (raw units)."""
        B, D = images.shape[0], self.D
        f = fft2c(images.float() * self.sign).reshape(B, -1)
        f = f * phase_ramp(self.freqs, shift_px.float())  # translate by +shift: particle to centre
        return ifft2c(f.reshape(B, D, D)).real * self.window

    def __call__(self, images: torch.Tensor, shift_px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ``enc: (B, D, D)`` float32 encoder input, ``data: (B, N)`` complex64 half-plane transform."""
        x = self.centred(images, shift_px)
        data = fft2c(x).reshape(x.shape[0], -1)[:, self.half.index] / self.norm_std
        return x * (self.D / self.norm_std), data


def estimate_norm(images: np.ndarray, shifts_px: np.ndarray, sign: float = 1.0) -> float:
    """RMS of the half-plane Fourier coefficients of windowed, centred images ``(k, D, D)``.

    The mean is not subtracted: it only moves the DC term, which the decoder fits like any other.
    """
    if len(images) == 0:
        raise ValueError("no images to estimate the normalisation from")
    D = images.shape[-1]
    pre = Preprocessor(D, 1.0, sign)
    total, count = 0.0, 0
    for a in range(0, len(images), 256):
        x = pre.centred(
            torch.from_numpy(np.ascontiguousarray(images[a : a + 256])),
            torch.from_numpy(np.asarray(shifts_px[a : a + 256], np.float32)),
        )
        f = fft2c(x).reshape(x.shape[0], -1)[:, pre.half.index]
        total += float((f.abs() ** 2).sum(dtype=torch.float64))
        count += f.numel()
    return (total / count) ** 0.5
