"""Per-particle corrections to the consensus poses (``train --refine-poses``), and SO(3) maths for them.

A consensus refinement aligns every particle to one map, so where the sample moves, its poses
are off by a few degrees and pixels. Each particle gets a rotation vector ``w`` (radians, axis
times angle, in the image frame) and a shift ``t`` (pixels), both zero at the start:

    A' = exp([w]x) @ A,    shift' = shift + t

with ``A`` as in :mod:`cryoscape.geometry` (the lattice's volume coordinates are ``k @ A'``).
"""

from __future__ import annotations

import torch
from torch import nn

#: Below this angle (radians) the Rodrigues coefficients use their Taylor series.
_SMALL = 1e-4


def hat(w: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` -> ``(B, 3, 3)`` skew-symmetric ``[w]x`` (``[w]x @ v = w x v``)."""
    z = torch.zeros_like(w[:, 0])
    x, y, c = w.unbind(1)
    return torch.stack([z, -c, y, c, z, -x, -y, x, z], dim=1).reshape(-1, 3, 3)


def so3_exp(w: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` rotation vectors -> ``(B, 3, 3)`` rotations ``I + a [w]x + b [w]x^2`` (Rodrigues),
    ``a = sin(t)/t``, ``b = (1 - cos t)/t^2``, ``t = |w|``."""
    t2 = (w * w).sum(1)
    t = t2.clamp_min(_SMALL**2).sqrt()
    small = t2 < _SMALL**2
    a = torch.where(small, 1 - t2 / 6, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24, (1 - torch.cos(t)) / t.square())
    k = hat(w)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(k)
    return eye + a[:, None, None] * k + b[:, None, None] * (k @ k)


class PoseCorrection(nn.Module):
    """``n`` particles' rotation vectors ``rot`` (radians) and shifts ``shift`` (pixels), zero to
    begin with, as buffers: they are set by a search (:mod:`cryoscape.train.poses`), not by
    gradients, and travel with ``state_dict``."""

    rot: torch.Tensor
    shift: torch.Tensor

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("rot", torch.zeros(n, 3))
        self.register_buffer("shift", torch.zeros(n, 2))

    def forward(
        self, idx: torch.Tensor, rot: torch.Tensor, shift_px: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Corrected ``(rot: (B, 3, 3), shift_px: (B, 2))`` of particles ``idx: (B,)``."""
        return so3_exp(self.rot[idx]) @ rot, shift_px + self.shift[idx]
