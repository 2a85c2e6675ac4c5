"""Real-space soft masks."""

from __future__ import annotations

import math

import torch


def soft_circular_window(
    D: int, inner: float = 0.85, outer: float = 0.99, device: torch.device | str | None = None
) -> torch.Tensor:
    """``(D, D)`` window: 1 inside ``inner * D/2``, cosine fall-off to 0 at ``outer * D/2``.

    Tapering the box edge stops its discontinuity from ringing across all frequencies.
    """
    f = torch.arange(D, device=device, dtype=torch.float32) - D // 2
    r = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2) / (D / 2)
    t = ((r - inner) / (outer - inner)).clamp(0, 1)
    return 0.5 * (1 + torch.cos(math.pi * t))
