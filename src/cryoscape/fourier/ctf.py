"""The contrast transfer function, RELION's definition and sign.

    ctf(s) = sin(pi*lam*df(alpha)*s^2 - pi/2*Cs*lam^3*s^4 + phase + atan(w/sqrt(1-w^2))) * exp(-B*s^2/4)

with ``df(alpha) = (dfu+dfv)/2 + (dfu-dfv)/2 * cos(2*(alpha - angle))`` (defocus positive for
underfocus), ``s`` in 1/Å, ``alpha`` the angle of the frequency vector from the x axis. It is
positive at low frequency, so ``image = ctf * projection`` is white-on-black like RELION's
particles. cryoDRGN's CTF is exactly ``-ctf``.
"""

from __future__ import annotations

import math

import torch

#: Column order of a CTF parameter tensor, same as ``CTFParams.as_array()``.
CTF_COLUMNS = (
    "defocus_u_A",
    "defocus_v_A",
    "defocus_angle_deg",
    "voltage_kV",
    "cs_mm",
    "amp_contrast",
    "phase_shift_deg",
    "bfactor_A2",
)


def electron_wavelength_A(voltage_kV: torch.Tensor | float) -> torch.Tensor:
    """Relativistic electron wavelength in Å for an accelerating voltage in kV."""
    v = torch.as_tensor(voltage_kV, dtype=torch.float64) * 1e3
    return 12.2643247 / torch.sqrt(v * (1 + v * 0.978466e-6))


def compute_ctf(freqs_A: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """CTF values at the given spatial frequencies.

    Args:
        freqs_A: ``(N, 2)`` or ``(B, N, 2)`` frequencies ``(kx, ky)`` in 1/Å.
        params: ``(B, 8)`` per-particle parameters in :data:`CTF_COLUMNS` order.
    Returns:
        ``(B, N)`` CTF values, dtype of ``freqs_A``.
    """
    p = params.to(torch.float64)
    dfu, dfv, ang, kv, cs, w, phase, bfac = (c[:, None] for c in p.unbind(-1))
    kx, ky = freqs_A[..., 0].to(torch.float64), freqs_A[..., 1].to(torch.float64)
    s2 = kx * kx + ky * ky
    alpha = torch.atan2(ky, kx)
    df = 0.5 * (dfu + dfv) + 0.5 * (dfu - dfv) * torch.cos(2 * (alpha - torch.deg2rad(ang)))
    lam = electron_wavelength_A(kv).to(p.device)
    cs_A = cs * 1e7
    gamma = (
        math.pi * lam * df * s2
        - 0.5 * math.pi * cs_A * lam**3 * s2 * s2
        + torch.deg2rad(phase)
        + torch.atan(w / torch.sqrt(1 - w * w))
    )
    out = torch.sin(gamma) * torch.exp(-bfac * s2 / 4)
    return out.to(freqs_A.dtype)
