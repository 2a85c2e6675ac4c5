"""Image encoder: the pixels of a centred particle image -> a Gaussian posterior over z."""

from __future__ import annotations

import torch
from torch import nn

from cryoscape.model.config import ModelConfig
from cryoscape.model.mlp import MLP


def pixel_mask(D: int) -> torch.Tensor:
    """``(D, D)`` bool: pixels within radius ``D/2`` of the box centre (pixel ``D//2``).

    Corners outside the circle hold only noise and neighbouring particles; the training loop
    windows them away anyway, so feeding them would only add inputs.
    """
    f = torch.arange(D, dtype=torch.float32) - D // 2
    return f[:, None] ** 2 + f[None, :] ** 2 <= (D / 2) ** 2


class ImageEncoder(nn.Module):
    """MLP on the masked pixels -> ``(mu, logvar)``.

    ``images: (B, D, D)`` real, centred, windowed, normalised -> two ``(B, zdim)`` tensors.
    """

    mask: torch.Tensor  # buffer: the pixels inside the circle

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.zdim < 1:
            raise ValueError("an encoder needs zdim >= 1")
        self.D, self.zdim = cfg.D, cfg.zdim
        mask = pixel_mask(cfg.D)
        self.register_buffer("mask", mask, persistent=False)
        self.n_in = int(mask.sum())
        self.mlp = MLP(self.n_in, cfg.enc_width, cfg.enc_depth, 2 * cfg.zdim, cfg.activation)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[-2:] != (self.D, self.D):
            raise ValueError(f"encoder expects {self.D}x{self.D} images, got {tuple(images.shape)}")
        out = self.mlp(images[..., self.mask]).float()
        return out[..., : self.zdim], out[..., self.zdim :]
