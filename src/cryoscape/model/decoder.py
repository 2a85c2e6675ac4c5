"""The volume as a coordinate MLP: 3D frequency (+ latent) -> its complex Fourier coefficient.

A real volume has a Hermitian transform, ``F(-k) = conj(F(k))``. Rather than hoping the network
learns that, every point is mapped into one canonical half-space before evaluation and the
conjugate is returned for points that were flipped, so the represented volume is real by
construction. The support is the open Nyquist sphere ``|k| < 0.5`` cycles/px: the corners of the
cube are never observed in a central slice within the mask, so the decoder returns 0 there
rather than extrapolating.

The ``"geom"`` positional encoding (:func:`cryoscape.model.posenc.ladder_vectors`) is a geometric
ladder of frequencies from 1 to ``D/2`` cycles per unit ``k`` along three orthogonal directions per
level, each level's triad turned by its own fixed random rotation. A ladder along the x, y and z
axes at every level (what older checkpoints were trained with; they are still evaluated with it)
makes sums of functions of ``kx``, ``ky`` or ``kz`` alone the network's easiest outputs, and a
function of ``kx`` alone is, in real space, a line along x through the box centre: fitting errors
became spikes along the axes through the centre of every map (tests/test_model_volumes_artifact.py).
Turned frames scatter them instead.
"""

from __future__ import annotations

import torch
from torch import nn

from cryoscape.model.config import ModelConfig
from cryoscape.model.mlp import ResidualStack, make_activation
from cryoscape.model.posenc import make_encoding

#: Squared radius (cycles/px)^2 of the support: points with |k|^2 >= this decode to 0.
SUPPORT_R2 = 0.25


def canonicalize(coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Map points to the half-space ``kz > 0``, ties broken by ``ky > 0`` then ``kx >= 0``.

    ``coords: (..., 3)`` (kx, ky, kz) -> ``(canonical coords (..., 3), flipped (...) bool)``.
    Negation is exact in floating point, so ``k`` and ``-k`` land on bitwise-identical points.
    """
    kx, ky, kz = coords.unbind(-1)
    flip = (kz < 0) | ((kz == 0) & ((ky < 0) | ((ky == 0) & (kx < 0))))
    return torch.where(flip[..., None], -coords, coords), flip


class FourierDecoder(nn.Module):
    """MLP on ``[posenc(k), z]`` -> (re, im) of the volume's centred transform.

    The first layer is split into a positional part and a latent part (the same as one layer on
    the concatenation) so that the latent's contribution is computed once per image instead of
    once per point, and the positional part can be cached across latents when making maps.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.zdim = cfg.zdim
        self.pe = make_encoding(cfg.pe_type, cfg.D, cfg.n_freqs, cfg.pe_sigma)
        self.inp_pe = nn.Linear(self.pe.out_dim, cfg.dec_width)
        self.inp_z = nn.Linear(cfg.zdim, cfg.dec_width, bias=False) if cfg.zdim else None
        self.act = make_activation(cfg.activation)
        self.body = ResidualStack(cfg.dec_width, cfg.dec_depth - 1, cfg.activation)
        self.out = nn.Linear(cfg.dec_width, 2)

    def point_features(self, coords_c: torch.Tensor) -> torch.Tensor:
        """First-layer positional part: canonical ``(..., N, 3)`` -> pre-activation ``(..., N, width)``."""
        return self.inp_pe(self.pe(coords_c))

    def head(self, h0: torch.Tensor, coords_c: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """Rest of the network from :meth:`point_features`: ``h0: (B|1, N, width)`` -> ``(B, N)`` complex64.

        ``coords_c``: the canonical coordinates ``h0`` came from (for the support and the DC term).
        ``z: (B, zdim)`` or None for a homogeneous model. The result is for the canonical points.
        """
        if self.inp_z is not None:
            if z is None:
                raise ValueError("this decoder has zdim > 0 and needs z")
            h0 = h0 + self.inp_z(z.to(h0.dtype))[:, None, :]
        out = self.out(self.body(self.act(h0))).float()
        r2 = (coords_c * coords_c).sum(-1)
        keep = (r2 < SUPPORT_R2).float()
        # the DC term is its own Hermitian partner, so it must be real
        imag_keep = keep * (r2 > 0).float()
        return torch.complex(out[..., 0] * keep, out[..., 1] * imag_keep)

    def forward(self, coords: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``coords: (B, N, 3)`` cycles/px, ``z: (B, zdim) | None`` -> ``(B, N)`` complex64 ``F(k)``."""
        coords_c, flip = canonicalize(coords.float())
        f = self.head(self.point_features(coords_c), coords_c, z)
        return torch.where(flip, f.conj(), f)
