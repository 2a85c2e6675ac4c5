"""Image encoder: the pixels of a centred particle image -> a Gaussian posterior over z."""

from __future__ import annotations

import torch
from torch import nn

from cryoscape.fourier.fft import fft2c, ifft2c
from cryoscape.model.config import ModelConfig
from cryoscape.model.mlp import MLP


def pixel_mask(D: int) -> torch.Tensor:
    """``(D, D)`` bool: pixels within radius ``D/2`` of the box centre (pixel ``D//2``).

    Corners outside the circle hold only noise and neighbouring particles; the training loop
    windows them away anyway, so feeding them would only add inputs.
    """
    f = torch.arange(D, dtype=torch.float32) - D // 2
    return f[:, None] ** 2 + f[None, :] ** 2 <= (D / 2) ** 2


def fourier_crop(images: torch.Tensor, box: int) -> torch.Tensor:
    """``(B, D, D)`` real images -> ``(B, box, box)``: their central ``box x box`` frequencies, scaled
    so that white noise keeps its pixel variance (the encoder's inputs stay O(1))."""
    D = images.shape[-1]
    if box == D:
        return images
    a = D // 2 - box // 2
    f = fft2c(images.float())[..., a : a + box, a : a + box]
    return ifft2c(f).real * (box / D)


class ImageEncoder(nn.Module):
    """MLP on the masked pixels -> ``(mu, logvar)``.

    ``images: (B, D, D)`` real, centred, windowed, normalised -> two ``(B, zdim)`` tensors. With
    ``cfg.enc_crop`` the MLP sees the images Fourier-cropped to that box.
    """

    mask: torch.Tensor  # buffer: the pixels inside the circle

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.zdim < 1:
            raise ValueError("an encoder needs zdim >= 1")
        self.D, self.zdim = cfg.D, cfg.zdim
        self.box = cfg.enc_crop or cfg.D
        mask = pixel_mask(self.box)
        self.register_buffer("mask", mask, persistent=False)
        self.n_in = int(mask.sum())
        self.mlp = MLP(self.n_in, cfg.enc_width, cfg.enc_depth, 2 * cfg.zdim, cfg.activation)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[-2:] != (self.D, self.D):
            raise ValueError(f"encoder expects {self.D}x{self.D} images, got {tuple(images.shape)}")
        out = self.mlp(fourier_crop(images, self.box)[..., self.mask]).float()
        return out[..., : self.zdim], out[..., self.zdim :]
