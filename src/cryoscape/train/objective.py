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

both averaged over the batch. Under frequency marching
(:attr:`~cryoscape.train.config.TrainConfig.freq_march`) the sum runs over the points of the
current band only, still divided by ``N``: every point weighs what it weighs in the full loss, and
the KL keeps its weight against the data. With sampled high frequencies
(:attr:`~cryoscape.train.config.TrainConfig.hf_sample` ``= s < 1``) each image's sum runs over the
points within :data:`~cryoscape.train.config.SAMPLE_CORE` of Nyquist and a random share ``s`` of
the band's points beyond, drawn per image and step, each of those weighted ``1/s``: an unbiased
estimate of the band's sum at a fraction of the decoder's work. ``beta = 1`` is the true ELBO,
the default (reached after a warm-up, :attr:`~cryoscape.train.config.TrainConfig.beta_warmup`) ``beta = 4/zdim``
(:data:`~cryoscape.train.config.BETA_ZDIM`) weakens the prior. The trainer sets :attr:`beta` per
step. For ``zdim = 0`` the loss is the mse alone.

Under torchrun each rank holds a :class:`~cryoscape.train.distributed.BatchPart` of the global
batch; it then returns its *share* of the global means (its sums divided by the global batch
size), which add up over ranks to the single-process values, and draws the whole global batch's
sampling noise and keeps its own rows, so all ranks together draw what one process would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from cryoscape.data.preprocess import Preprocessor
from cryoscape.fourier.ctf import compute_ctf
from cryoscape.fourier.slicing import rotate_lattice
from cryoscape.train.config import SAMPLE_CORE
from cryoscape.train.distributed import BatchPart

if TYPE_CHECKING:
    from cryoscape.model.vae import ReconModel

#: Frequency marching rounds the band's radius up to a multiple of ``1 / BAND_STEPS`` of Nyquist,
#: so a run meets at most this many point counts instead of a new one at nearly every step: each
#: new tensor shape costs memory that is kept (the CPU's bf16 kernels are cached per shape), and
#: a bf16 run's peak memory grew with every epoch of the march (benchmarks/README.md, "Memory").
BAND_STEPS = 16


@dataclass
class LossTerms:
    """Batch means: ``loss`` (differentiable), ``mse`` and ``kl`` (per image, nats); for a
    :class:`BatchPart`, this part's shares of the global batch's means."""

    loss: torch.Tensor
    mse: torch.Tensor
    kl: torch.Tensor


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``(B,)`` KL(N(mu, exp(logvar)) || N(0, I)) summed over the latent dimensions."""
    return -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum(-1)


class ReconObjective:
    """Computes :class:`LossTerms` for a batch and the latent means for the eval pass.

    ``psize_A`` converts lattice frequencies to 1/Å for the CTF; ``beta`` weights the KL;
    ``hf_sample``: the share of points beyond the core each image fits per step (1: all).
    """

    def __init__(self, pre: Preprocessor, psize_A: float, beta: float, hf_sample: float = 1.0) -> None:
        self.pre, self.psize_A, self.beta = pre, float(psize_A), float(beta)
        self.freqs_A = pre.half.freqs / self.psize_A
        self.hf_sample = float(hf_sample)
        self.n_core = pre.half.count_within(SAMPLE_CORE)
        self.band = 1.0

    @property
    def band(self) -> float:
        """Fraction of the Nyquist radius whose lattice points the loss fits (the trainer sets it
        per step, see :meth:`~cryoscape.train.config.TrainConfig.band_at`); 1: all of them."""
        return self._band

    @band.setter
    def band(self, value: float) -> None:
        self._band = float(value)
        steps = math.ceil(self._band * BAND_STEPS - 1e-9)  # the tolerance keeps exact multiples
        self.n_fit = self.pre.half.count_within(min(1.0, steps / BAND_STEPS))

    @property
    def points_per_image(self) -> int:
        """Lattice points the decoder evaluates per image at the current band and share: what a
        step's activations scale with."""
        k = self._tail_sampled(self.n_fit)
        return self.n_fit if k is None else self.n_core + k

    def _tail_sampled(self, n: int) -> int | None:
        """How many of a band's ``n - n_core`` points beyond the core each image fits per step;
        None where it fits all of them (no sampling)."""
        tail = n - self.n_core
        k = round(self.hf_sample * tail)
        if self.hf_sample >= 1.0 or tail <= 0 or k >= tail:
            return None
        return max(k, 1)

    def __call__(
        self,
        model: ReconModel,
        images: torch.Tensor,
        rot: torch.Tensor,
        shift_px: torch.Tensor,
        ctf: torch.Tensor | None,
        generator: torch.Generator | None = None,
        part: BatchPart | None = None,
    ) -> LossTerms:
        """``images: (B, D, D)`` raw, ``rot: (B, 3, 3)``, ``shift_px: (B, 2)``, ``ctf: (B, 8) | None``;
        ``part``: these are rows ``part.offset...`` of a global batch of ``part.total`` (torchrun;
        ``part.size == 0``: one stand-in image that must not count)."""
        enc, data = self.pre(images, shift_px)
        z = None
        kl = data.new_zeros((), dtype=torch.float32)
        if model.zdim > 0:
            mu, logvar = model.encode(enc)
            eps = _noise(mu, generator, part)
            z = mu + eps * torch.exp(0.5 * logvar)
            kl_each = kl_to_standard_normal(mu.float(), logvar.float())
            kl = kl_each.mean() if part is None else _share(kl_each, part)
        n_all, n = data.shape[1], self.n_fit  # the band's points are the first n (sorted by radius)
        idx, tail_weight = self._sample(n, data.shape[0], generator, part)
        if idx is None:
            data, freqs, freqs_A = data[:, :n], self.pre.half.freqs[:n], self.freqs_A[:n]
        else:  # (b, m) points of each image
            data, freqs, freqs_A = data.gather(1, idx), self.pre.half.freqs[idx], self.freqs_A[idx]
        coords = rotate_lattice(freqs, rot)
        pred = model.decode(coords, z)
        if ctf is not None:
            pred = pred * compute_ctf(freqs_A, ctf)
        sq = (pred - data).abs().square()
        if idx is not None:
            sq = torch.cat([sq[:, : self.n_core], sq[:, self.n_core :] * tail_weight], dim=1)
        # per point of the whole image, as if the points outside the band fitted exactly: every
        # point weighs what it weighs in the full loss, at any band
        mse = (sq.sum(1).mean() if part is None else _share(sq, part)) / n_all
        # the KL is weighed per point of the whole image, whatever the band: beta keeps its meaning
        loss = mse + (self.beta / n_all) * kl if z is not None else mse
        return LossTerms(loss, mse, kl)

    def _sample(
        self, n: int, b: int, generator: torch.Generator | None, part: BatchPart | None
    ) -> tuple[torch.Tensor | None, float]:
        """``(b, m)`` indices of the points each image fits this step (the core's, then a random
        share of the band's tail) and the tail's weight; ``(None, 1)`` where every point of the
        band is fitted. For a part: its rows of the draw for the whole global batch."""
        k = self._tail_sampled(n)
        if k is None:
            return None, 1.0
        core, tail = self.n_core, n - self.n_core
        device = self.pre.half.freqs.device
        keys = _part_draw(lambda rows: torch.rand((rows, tail), generator=generator, device=device), b, part)
        pick = keys.topk(k, dim=1, sorted=False).indices + core
        idx = torch.cat([torch.arange(core, device=device).expand(len(pick), core), pick], dim=1)
        return idx, tail / k

    @torch.no_grad()
    def latent_means(self, model: ReconModel, images: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
        """``(B, zdim)`` posterior means: the latents reported for each particle (no sampling)."""
        enc, _ = self.pre(images, shift_px)
        mu, _ = model.encode(enc)
        return mu.float()


def _share(x: torch.Tensor, part: BatchPart) -> torch.Tensor:
    """This part's sum of ``x: (b, ...)`` divided by the global batch size: its share of the global
    mean. An empty part's stand-in row counts 0 (times 0 keeps the graph, so DDP sees gradients)."""
    share = x.sum() / part.total
    return share * 0.0 if part.size == 0 else share


def _part_draw(draw: Callable[[int], torch.Tensor], b: int, part: BatchPart | None) -> torch.Tensor:
    """``draw(rows)`` for the ``b`` images of this batch; for a part, its rows of the draw for the
    whole global batch (every rank draws all of it), so the split over ranks does not change the
    numbers. An empty part's stand-in image gets the draw's first rows (its loss counts 0)."""
    if part is None:
        return draw(b)
    full = draw(part.total)
    return full[part.offset : part.offset + part.size] if part.size else full[:b]


def _noise(mu: torch.Tensor, generator: torch.Generator | None, part: BatchPart | None) -> torch.Tensor:
    """Standard normal noise shaped like ``mu: (b, zdim)`` (a part's rows: :func:`_part_draw`)."""
    return _part_draw(
        lambda rows: torch.randn((rows, mu.shape[1]), generator=generator, device=mu.device, dtype=mu.dtype),
        mu.shape[0],
        part,
    )


class LossModule(nn.Module):
    """The model and its objective as one module whose ``forward`` is the whole loss computation:
    what DistributedDataParallel wraps, so its reducer sees every gradient of the step.

    ``forward`` takes :meth:`ReconObjective.__call__`'s arguments after ``model`` and returns
    ``(loss, mse, kl)``; ``self.model`` is the plain model (checkpoints save its ``state_dict``).
    """

    def __init__(self, model: ReconModel, objective: ReconObjective) -> None:
        super().__init__()
        self.model, self.objective = model, objective

    def forward(
        self,
        images: torch.Tensor,
        rot: torch.Tensor,
        shift_px: torch.Tensor,
        ctf: torch.Tensor | None,
        generator: torch.Generator | None = None,
        part: BatchPart | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = self.objective(self.model, images, rot, shift_px, ctf, generator, part)
        return t.loss, t.mse, t.kl
