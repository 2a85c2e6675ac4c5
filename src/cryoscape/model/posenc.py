"""Positional encodings of 3D Fourier coordinates for the coordinate-MLP decoder.

The decoder represents a volume's transform ``F(k)``. A volume that fits in a box of ``D`` px
(real-space radius ``D/2``) has a transform whose variation in ``k`` (cycles/px) contains
"frequencies" of at most ``D/2`` cycles per unit ``k``. Sinusoids of ``k`` with frequencies from
1 (one cycle over the whole ``k`` range, i.e. features the size of the box) to ``D/2`` (a period
of two lattice points) therefore span what the MLP needs to fit; without them a ReLU MLP is far
too smooth to represent fine detail (spectral bias).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from cryoscape.fourier.precision import geom_matmul
from cryoscape.geometry import random_rotations

#: Seed of the Gaussian feature matrix: fixed so two models with one config start alike.
GAUSSIAN_SEED = 0


def geometric_frequencies(D: int, n_freqs: int) -> torch.Tensor:
    """``(n_freqs,)`` frequencies in cycles per unit ``k``: geometric from 1 to ``D/2``."""
    if n_freqs == 1:
        return torch.ones(1)
    i = torch.arange(n_freqs, dtype=torch.float64)
    return ((D / 2) ** (i / (n_freqs - 1))).float()


class GeometricEncoding(nn.Module):
    """``[k, sin(2 pi f_i k_a), cos(2 pi f_i k_a)]`` for each axis ``a`` and frequency ``f_i``.

    ``coords: (..., 3)`` in cycles/px -> ``(..., 3 + 6 * n_freqs)``.
    """

    freqs: torch.Tensor  # buffer

    def __init__(self, D: int, n_freqs: int) -> None:
        super().__init__()
        self.register_buffer("freqs", geometric_frequencies(D, n_freqs), persistent=False)
        self.out_dim = 3 + 6 * n_freqs

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        # (..., 3, 1) * (n,) -> (..., 3n): all x frequencies, then y, then z
        arg = (2 * math.pi) * (coords[..., :, None] * self.freqs).flatten(-2)
        return torch.cat([coords, torch.sin(arg), torch.cos(arg)], dim=-1)


class GaussianEncoding(nn.Module):
    """Random Fourier features ``[k, sin(2 pi k.b_j), cos(2 pi k.b_j)]`` with ``3 * n_freqs`` vectors.

    ``b_j ~ N(0, (sigma * D/2)^2 I)`` in cycles per unit ``k``: ``sigma`` is the spread as a
    fraction of the box radius ``D/2`` (0.5 puts two standard deviations at ``D/2``). The matrix
    is a persistent buffer, so it is saved in the state_dict with the weights.
    ``coords: (..., 3)`` in cycles/px -> ``(..., 3 + 6 * n_freqs)``.
    """

    b: torch.Tensor  # buffer

    def __init__(self, D: int, n_freqs: int, sigma: float) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(GAUSSIAN_SEED)
        b = torch.randn(3, 3 * n_freqs, generator=gen, dtype=torch.float64) * (sigma * D / 2)
        self.register_buffer("b", b.float())
        self.out_dim = 3 + 6 * n_freqs

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        arg = (2 * math.pi) * geom_matmul(coords, self.b)
        return torch.cat([coords, torch.sin(arg), torch.cos(arg)], dim=-1)


#: Seed of the per-level rotations of the geometric ladder: fixed so one config starts alike.
LADDER_SEED = 0


def ladder_vectors(D: int, n_freqs: int, rotated: bool = True) -> torch.Tensor:
    """``(3, 3 * n_freqs)`` float32 frequency vectors (cycles per unit ``k``) of the geometric ladder.

    Column ``a * n_freqs + i`` is ``f_i R_i e_a``: frequency ``f_i`` (:func:`geometric_frequencies`)
    along axis ``a`` of level ``i``'s rotated frame (``R_i = I`` if not ``rotated``: the legacy
    axis-aligned ladder, the same features as :class:`GeometricEncoding`).
    """
    f = geometric_frequencies(D, n_freqs).double()
    if rotated:
        frames = torch.as_tensor(random_rotations(n_freqs, np.random.default_rng(LADDER_SEED)))
    else:
        frames = torch.eye(3, dtype=torch.float64).expand(n_freqs, 3, 3)
    # frames[i, :, a] = R_i e_a  ->  b[:, a * n + i]
    return (frames * f[:, None, None]).permute(1, 2, 0).reshape(3, 3 * n_freqs).float()


class LadderEncoding(nn.Module):
    """``[k, sin(2 pi k.b_j), cos(2 pi k.b_j)]`` for the ``3 * n_freqs`` vectors of :func:`ladder_vectors`.

    The vectors are a persistent buffer, saved with the weights. A state_dict without them comes
    from a checkpoint trained with the axis-aligned ladder, which they are then set to, so old
    weights give the maps they always gave. ``coords: (..., 3)`` cycles/px -> ``(..., 3 + 6 * n_freqs)``.
    """

    b: torch.Tensor  # buffer

    def __init__(self, D: int, n_freqs: int) -> None:
        super().__init__()
        self.D, self.n_freqs = D, n_freqs
        self.register_buffer("b", ladder_vectors(D, n_freqs))
        self.out_dim = 3 + 6 * n_freqs
        self.register_load_state_dict_pre_hook(LadderEncoding._legacy_axes)

    @staticmethod
    def _legacy_axes(module: LadderEncoding, state_dict: dict, prefix: str, *_args) -> None:
        if prefix + "b" not in state_dict:
            state_dict[prefix + "b"] = ladder_vectors(module.D, module.n_freqs, rotated=False)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        arg = (2 * math.pi) * geom_matmul(coords, self.b)
        return torch.cat([coords, torch.sin(arg), torch.cos(arg)], dim=-1)


def make_encoding(pe_type: str, D: int, n_freqs: int, sigma: float) -> LadderEncoding | GaussianEncoding:
    """The encoding named by ``ModelConfig.pe_type`` ("geom" or "gaussian")."""
    if pe_type == "geom":
        return LadderEncoding(D, n_freqs)
    if pe_type == "gaussian":
        return GaussianEncoding(D, n_freqs, sigma)
    raise ValueError(f"unknown positional encoding {pe_type!r}; use 'geom' or 'gaussian'")
