"""The loss of the reconstruction model: Gaussian likelihood of the images + beta * KL.

Per image, with Fourier data ``Y`` (normalised so its coefficients have mean square ~1, see
:mod:`cryoscape.data.preprocess`) on the ``N`` half-plane lattice points, pose ``A``, CTF ``C`` and
latent ``z ~ q(z|x) = N(mu, diag(exp(logvar)))``:

    -ELBO = sum_k |Y_k - C_k * F_z(k @ A)|^2 / sigma^2  +  KL(q(z|x) || N(0, I))

a complex Gaussian likelihood with noise variance ``sigma^2`` per coefficient. We take
``sigma^2 = 1``: in normalised units the total variance is 1 and at cryo-EM SNRs (<< 1) nearly all
of it is noise, so 1 is the noise variance to within the SNR. Dividing by ``N`` gives the
reported, scale-free quantities

    loss = mse + beta * kl / N,   mse = mean_k |Y_k - pred_k|^2,   kl = KL per image (nats)

both averaged over the batch; ``beta = 1`` is the true ELBO, the default ``beta = 1/zdim``
(cryoDRGN's) weakens the prior. For ``zdim = 0`` the loss is the mse alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cryoscape.data.preprocess import Preprocessor
from cryoscape.fourier.ctf import compute_ctf
from cryoscape.fourier.slicing import rotate_lattice


@dataclass
class LossTerms:
    """Batch means: ``loss`` (differentiable), ``mse`` and ``kl`` (per image, nats)."""

    loss: torch.Tensor
    mse: torch.Tensor
    kl: torch.Tensor


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``(B,)`` KL(N(mu, exp(logvar)) || N(0, I)) summed over the latent dimensions."""
    return -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum(-1)


class ReconObjective:
    """Computes :class:`LossTerms` for a batch and the latent means for the eval pass.

    ``psize_A`` converts lattice frequencies to 1/Å for the CTF; ``beta`` weights the KL.
    """

    def __init__(self, pre: Preprocessor, psize_A: float, beta: float) -> None:
        self.pre, self.psize_A, self.beta = pre, float(psize_A), float(beta)
        self.freqs_A = pre.half.freqs / self.psize_A

    def __call__(self, model: torch.nn.Module, images: torch.Tensor, rot: torch.Tensor,
                 shift_px: torch.Tensor, ctf: torch.Tensor | None,
                 generator: torch.Generator | None = None) -> LossTerms:
        """``images: (B, D, D)`` raw, ``rot: (B, 3, 3)``, ``shift_px: (B, 2)``, ``ctf: (B, 8) | None``."""
        enc, data = self.pre(images, shift_px)
        z = None
        kl = data.new_zeros((), dtype=torch.float32)
        if model.zdim > 0:
            mu, logvar = model.encode(enc)
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + eps * torch.exp(0.5 * logvar)
            kl = kl_to_standard_normal(mu.float(), logvar.float()).mean()
        coords = rotate_lattice(self.pre.half.freqs, rot)
        pred = model.decode(coords, z)
        if ctf is not None:
            pred = pred * compute_ctf(self.freqs_A, ctf)
        mse = (pred - data).abs().square().mean()
        loss = mse + (self.beta / data.shape[1]) * kl if z is not None else mse
        return LossTerms(loss, mse, kl)

    @torch.no_grad()
    def latent_means(self, model: torch.nn.Module, images: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
        """``(B, zdim)`` posterior means: the latents reported for each particle (no sampling)."""
        enc, _ = self.pre(images, shift_px)
        mu, _ = model.encode(enc)
        return mu.float()
