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


class FourierFeatures(nn.Module):
    """Fourier features ``[k, sin(2 pi k.b_j), cos(2 pi k.b_j)]`` for the columns ``b_j`` of ``b: (3, m)``.

    Both encodings of :func:`make_encoding` are this one module and differ only in ``b`` (in
    cycles per unit ``k``): :func:`ladder_vectors` or :func:`gaussian_vectors`. ``b`` is a
    persistent buffer, saved in the state_dict with the weights. ``legacy_b`` is the matrix that
    a state_dict without ``b`` was trained with (checkpoints from before ``b`` was saved); it is
    filled in on loading, so old weights give the maps they always gave. Without ``legacy_b``
    such a state_dict is incomplete (a missing key). ``coords: (..., 3)`` in cycles/px ->
    ``(..., 3 + 2 m)``.
    """

    b: torch.Tensor  # buffer

    def __init__(self, b: torch.Tensor, legacy_b: torch.Tensor | None = None) -> None:
        super().__init__()
        if b.ndim != 2 or b.shape[0] != 3 or (legacy_b is not None and legacy_b.shape != b.shape):
            raise ValueError(
                f"frequency vectors must be a (3, m) matrix, got {tuple(b.shape)}"
                + ("" if legacy_b is None else f" and legacy {tuple(legacy_b.shape)}")
            )
        self.register_buffer("b", b.float())
        self.out_dim = 3 + 2 * b.shape[1]
        self.legacy_b = None if legacy_b is None else legacy_b.float()
        if legacy_b is not None:
            self.register_load_state_dict_pre_hook(FourierFeatures._fill_legacy_b)

    @staticmethod
    def _fill_legacy_b(module: FourierFeatures, state_dict: dict, prefix: str, *_args) -> None:
        if prefix + "b" not in state_dict and module.legacy_b is not None:
            state_dict[prefix + "b"] = module.legacy_b

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        arg = (2 * math.pi) * geom_matmul(coords, self.b)
        return torch.cat([coords, torch.sin(arg), torch.cos(arg)], dim=-1)


def gaussian_vectors(D: int, n_freqs: int, sigma: float) -> torch.Tensor:
    """``(3, 3 * n_freqs)`` float32 random frequency vectors ``b_j ~ N(0, (sigma * D/2)^2 I)``.

    ``sigma`` is the spread as a fraction of the box radius ``D/2`` (0.5 puts two standard
    deviations at ``D/2``); seeded by :data:`GAUSSIAN_SEED`, so one config starts alike.
    """
    gen = torch.Generator().manual_seed(GAUSSIAN_SEED)
    b = torch.randn(3, 3 * n_freqs, generator=gen, dtype=torch.float64) * (sigma * D / 2)
    return b.float()


#: Seed of the per-level rotations of the geometric ladder: fixed so one config starts alike.
LADDER_SEED = 0


def ladder_vectors(D: int, n_freqs: int, rotated: bool = True) -> torch.Tensor:
    """``(3, 3 * n_freqs)`` float32 frequency vectors (cycles per unit ``k``) of the geometric ladder.

    Column ``a * n_freqs + i`` is ``f_i R_i e_a``: frequency ``f_i`` (:func:`geometric_frequencies`)
    along axis ``a`` of level ``i``'s rotated frame (``R_i = I`` if not ``rotated``: the legacy
    axis-aligned ladder, ``[sin(2 pi f_i k_a)]`` for each axis ``a``, that runs written before
    the turned ladder were trained with).
    """
    f = geometric_frequencies(D, n_freqs).double()
    if rotated:
        frames = torch.as_tensor(random_rotations(n_freqs, np.random.default_rng(LADDER_SEED)))
    else:
        frames = torch.eye(3, dtype=torch.float64).expand(n_freqs, 3, 3)
    # frames[i, :, a] = R_i e_a  ->  b[:, a * n + i]
    return (frames * f[:, None, None]).permute(1, 2, 0).reshape(3, 3 * n_freqs).float()


def make_encoding(pe_type: str, D: int, n_freqs: int, sigma: float) -> FourierFeatures:
    """The encoding named by ``ModelConfig.pe_type``, ``3 + 6 * n_freqs`` features.

    ``"geom"``: the turned geometric ladder; a state_dict without ``b`` gets the axis-aligned
    ladder it was trained with. ``"gaussian"``: random Fourier features of spread ``sigma``.
    """
    if pe_type == "geom":
        return FourierFeatures(ladder_vectors(D, n_freqs), legacy_b=ladder_vectors(D, n_freqs, rotated=False))
    if pe_type == "gaussian":
        return FourierFeatures(gaussian_vectors(D, n_freqs, sigma))
    raise ValueError(f"unknown positional encoding {pe_type!r}; use 'geom' or 'gaussian'")
