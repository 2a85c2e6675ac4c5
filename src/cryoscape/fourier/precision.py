"""Geometry in full precision, also inside mixed-precision (autocast) regions.

Autocast runs every matrix product in bf16, whose 8-bit mantissa is fine for network layers but
not for geometry: a rotated frequency at the edge of a 128 px box would move by ~0.25 voxel and a
phase angle of tens of radians (a shift of a few pixels) would be off by ~0.1 rad. Rotations of
the lattice, phase ramps and positional-encoding arguments therefore go through :func:`geom_matmul`.
"""

from __future__ import annotations

import torch


def geom_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` outside autocast, in the wider of the inputs' dtypes and at least float32."""
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    with torch.autocast(a.device.type, enabled=False):
        return a.to(dtype) @ b.to(dtype)
