"""Local pose refinement inside the training loop (``train --refine-poses``): damped Gauss-Newton.

Each time a particle's batch comes, after the refinement has started (``TrainConfig.refine_from``
of the run: before, the map is too coarse to say which way a particle should turn), its pose
correction (a rotation vector ``w`` and a shift ``t``, :class:`cryoscape.model.pose.PoseCorrection`)
takes :data:`STEPS_PER_VISIT` Levenberg-Marquardt steps on its negative log posterior: the
Gaussian likelihood of the image under the model at its posterior-mean code (the training loss's
data term ``|r|^2``, on the lattice points within a band of Nyquist that widens as the
refinement goes on, :data:`SEARCH_BAND`), plus a Gaussian prior around the consensus pose (:data:`POSE_SIGMA_DEG`,
:data:`POSE_SIGMA_PX`), which keeps it from drifting where the image says little.

Shifts first (``TrainConfig.refine_rotations_from``, default 0.15 of the run): until then only
the shift moves. A rotation searched while the shift is still a pixel or more off turns to make
up for it, and the map then learns the turned poses (docs/poses.md, "Shifts first").

The residual's derivatives: by finite differences of the decoder for the three rotation
components, and exactly for the shift (a shift ``d`` multiplies the centred transform by
``exp(-2 pi i k.d)``). A step solves ``(H + mu diag H) delta = -g`` with ``H = 2 Re(J^H J) + prior``,
is capped to a trust region, and is kept only if the cost falls; each particle's damping ``mu``
falls after a kept step and rises after a refused one. Gradient steps were tried first: one step
per particle per epoch with Adam's normalised size is a random walk at cryo-EM SNRs (the error
fell, then grew back past the start); a compass search (the best of +-2 degrees about each axis)
was slow (many visits per degree); Gauss-Newton uses the same forward passes to find direction
and size at once.

Cost: forward passes only (no backward), ``1 + 3 + 1`` decoder evaluations per image and step
(``1 + 1`` while only the shift moves), on the band's low-frequency points.
"""

from __future__ import annotations

import math

import torch

from cryoscape.fourier.ctf import compute_ctf
from cryoscape.fourier.shift import phase_ramp
from cryoscape.fourier.slicing import rotate_lattice
from cryoscape.model.pose import PoseCorrection, so3_exp
from cryoscape.train.objective import BAND_STEPS

#: Prior spread of the rotation correction (degrees, per component) and of the shift correction
#: (pixels, per axis): where the map cannot tell, the pose stays near the consensus. In trials on
#: the demo at SNR 0.1, a prior twice as wide let rotations drift away from the truth while the
#: map was still blurred; this one held them (development runs, not a recorded benchmark).
POSE_SIGMA_DEG = 4.0
POSE_SIGMA_PX = 1.5
#: The pose is compared on lattice points within a band of Nyquist that widens from the first
#: value to the second over the first half of the refinement (capped by the training band):
#: coarse to fine, as the cost far from the optimum is smooth only at low frequencies. Trials on
#: the 6-degree continuous demo (3k, SNR 0.1; development runs, the last recorded in
#: benchmarks/README.md): searched against a map trained on the true poses, 0.7 of Nyquist does
#: not move the rotations (5.97 -> 5.40 deg median, p90 growing) where 0.35 brings them to 2.7;
#: in training, where the map is blurred by the errors, 0.35 fixed ended at latent Spearman
#: 0.42, 0.25 -> 0.45 was at 0.64 by epoch 15 and this band, from 5% of the run, passed 0.84 by
#: epoch 12 (0.35 -> 0.7 from 20%: 0.08 at the end). The shifts gain the most; see docs/poses.md.
SEARCH_BAND = (0.2, 0.35)
#: Levenberg-Marquardt steps per visit (a particle's batch comes once per epoch).
STEPS_PER_VISIT = 3
#: Finite-difference step for the rotation derivatives, and the trust region of one step.
FD_DEG = 0.5
MAX_STEP_DEG, MAX_STEP_PX = 4.0, 1.0
#: Damping: start, and the factors after a kept and a refused step.
MU_START, MU_DOWN, MU_UP = 1.0, 0.3, 10.0


class _Fit:
    """One batch's images, codes and consensus poses: cost and derivatives of pose corrections."""

    def __init__(self, model, freqs, data, z, rot0, t_data, ctf) -> None:
        self.model, self.freqs, self.data, self.z, self.rot0, self.ctf = model, freqs, data, z, rot0, ctf
        self.t_data = t_data  # the shift correction ``data`` was centred with

    def shifted(self, t: torch.Tensor) -> torch.Tensor:
        """``(B, n)`` data centred with shift correction ``t: (B, 2)``: a further shift is a phase ramp."""
        return self.data * phase_ramp(self.freqs, t - self.t_data)

    def residual(self, w: torch.Tensor, data: torch.Tensor, k: int = 1) -> torch.Tensor:
        """``(B, k, n)`` residuals ``pred - data`` at rotations ``w: (B, k, 3)``, ``data``: :meth:`shifted`."""
        B, n = w.shape[0], len(self.freqs)
        z = None if self.z is None else self.z.repeat_interleave(k, 0)
        rot = so3_exp(w.reshape(-1, 3)) @ self.rot0.repeat_interleave(k, 0)
        pred = self.model.decode(rotate_lattice(self.freqs, rot), z).view(B, k, n)
        if self.ctf is not None:
            pred = pred * self.ctf[:, None]
        return pred - data[:, None]

    def _shift_columns(self, data: torch.Tensor) -> torch.Tensor:
        """``(B, 2, n)`` derivatives of the residual by the shift at :meth:`shifted` ``data`` (exact)."""
        return (2j * math.pi) * self.freqs.T[None] * data[:, None]  # d(-data)/dt

    def shift_jacobian(self, w: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r: (B, n), J: (B, n, 2))``: :meth:`jacobian`'s shift columns alone (one decoder pass)."""
        data = self.shifted(t)
        r = self.residual(w[:, None], data)[:, 0]
        return r, self._shift_columns(data).to(r.dtype).transpose(1, 2)

    def jacobian(self, w: torch.Tensor, t: torch.Tensor, h: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r: (B, n), J: (B, n, 5))`` at ``w: (B, 3)``, ``t: (B, 2)``: rotation columns by forward
        differences of step ``h`` (radians), shift columns exactly."""
        eye = torch.eye(3, device=w.device, dtype=w.dtype)
        pts = torch.cat([w[:, None], w[:, None] + h * eye[None]], dim=1)  # (B, 4, 3)
        data = self.shifted(t)
        r = self.residual(pts, data, 4)
        j_rot = (r[:, 1:] - r[:, :1]) / h  # (B, 3, n)
        j_shift = self._shift_columns(data)
        return r[:, 0], torch.cat([j_rot, j_shift.to(j_rot.dtype)], dim=1).transpose(1, 2)


def _fit(model, objective, images, rot, shift_px, t_data, n: int, ctf) -> _Fit:
    """The batch's :class:`_Fit` on its first ``n`` lattice points: images centred at ``shift_px +
    t_data``, each with its posterior-mean code and CTF."""
    pre = objective.pre
    enc, data = pre(images, shift_px + t_data)
    z = model.encode(enc)[0].float() if model.zdim > 0 else None
    c = None if ctf is None else compute_ctf(objective.freqs_A[:n], ctf)
    return _Fit(model, pre.half.freqs[:n], data[:, :n], z, rot, t_data, c)


@torch.no_grad()
def fisher_information(model, objective, images, rot, shift_px, ctf, band: float) -> tuple[torch.Tensor, torch.Tensor]:
    """How precisely each image can fix its own pose, given the model: the Fisher information of a
    pose correction (rotation vector, radians; shift, pixels) at the pose given, on the lattice
    points within ``band`` of Nyquist, and the noise power it assumes.

    Its inverse is the Cramer-Rao bound, the least covariance any unbiased estimate of the pose can
    have from this image and this map: what pose refinement can hope for (benchmarks/pose_crb.py).
    The noise power per coefficient is each image's mean squared residual at the pose given, so
    with a model short of the truth the bound is loose, never optimistic.
    ``-> (F: (B, 5, 5), noise power: (B,))``.
    """
    zeros = torch.zeros(len(images), 5, device=shift_px.device)
    fit = _fit(model, objective, images, rot, shift_px, zeros[:, 3:], objective.pre.half.count_within(band), ctf)
    r, J = fit.jacobian(zeros[:, :3], zeros[:, 3:], math.radians(FD_DEG) / 2)
    J, r = J.to(torch.complex64), r.to(torch.complex64)
    power = r.abs().square().mean(-1).float().clamp_min(1e-12)
    return 2 * (J.conj().transpose(1, 2) @ J).real / power[:, None, None], power


class PoseRefiner:
    """The corrections of ``n`` particles, their damping and schedule."""

    def __init__(self, n: int, device: torch.device, refine_from: float, rotations_from: float | None = None) -> None:
        self.table = PoseCorrection(n).to(device)
        self.mu = torch.full((n,), MU_START, device=device)
        self.refine_from = float(refine_from)
        self.rotations_from = self.refine_from if rotations_from is None else float(rotations_from)
        sr, st = math.radians(POSE_SIGMA_DEG), POSE_SIGMA_PX
        self.prior = torch.tensor([1 / sr**2] * 3 + [1 / st**2] * 2, device=device)  # precisions
        self.cap = torch.tensor([math.radians(MAX_STEP_DEG)] * 3 + [MAX_STEP_PX] * 2, device=device)

    def active(self, progress: float) -> bool:
        return progress >= self.refine_from

    def rotating(self, progress: float) -> bool:
        """Whether the rotations are refined yet (the shifts are, from :meth:`active` on)."""
        return progress >= self.rotations_from

    def band(self, progress: float) -> float:
        """The search band at ``progress`` (fraction of the run): see :data:`SEARCH_BAND`."""
        f = min(1.0, 2.0 * (progress - self.refine_from) / max(1e-9, 1.0 - self.refine_from))
        lo, hi = SEARCH_BAND
        band = lo + (hi - lo) * max(0.0, f)
        # rounded up as the training band is (objective.BAND_STEPS): each new point count is a new
        # tensor shape, and the CPU's bf16 kernels are cached per shape (11 GB in a 20-epoch run)
        return math.ceil(band * BAND_STEPS - 1e-9) / BAND_STEPS

    def apply(self, idx: torch.Tensor, rot: torch.Tensor, shift_px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Corrected poses of particles ``idx``."""
        return self.table(idx, rot, shift_px)

    @torch.no_grad()
    def search(self, model, objective, idx, images, rot0, shift0, ctf, progress: float) -> None:
        """:data:`STEPS_PER_VISIT` damped Gauss-Newton steps on each particle ``idx`` of a batch
        (module docstring); ``rot0``, ``shift0``: their consensus poses; ``images``: raw."""
        if not self.active(progress):
            return
        n = min(objective.n_fit, objective.pre.half.count_within(self.band(progress)))
        fit = _fit(model, objective, images, rot0, shift0, self.table.shift[idx].clone(), n, ctf)
        rotate = self.rotating(progress)
        for _ in range(STEPS_PER_VISIT):
            self._step(idx, fit, rotate)

    def _cost(self, r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return r.abs().square().sum(-1).float() + 0.5 * (p * p * self.prior).sum(-1)

    def _step(self, idx: torch.Tensor, fit: _Fit, rotate: bool = True) -> None:
        p = torch.cat([self.table.rot[idx], self.table.shift[idx]], dim=1)  # (B, 5)
        if rotate:
            r, J = fit.jacobian(p[:, :3], p[:, 3:], math.radians(FD_DEG))
        else:
            r, J = fit.shift_jacobian(p[:, :3], p[:, 3:])
        free = slice(0, 5) if rotate else slice(3, 5)
        J, r = J.to(torch.complex64), r.to(torch.complex64)
        prior, cap = self.prior[free], self.cap[free]
        H = 2 * (J.conj().transpose(1, 2) @ J).real + torch.diag(prior)
        g = 2 * (J.conj().transpose(1, 2) @ r[..., None]).real[..., 0] + p[:, free] * prior
        mu = self.mu[idx]
        damped = H + mu[:, None, None] * torch.diag_embed(torch.diagonal(H, dim1=1, dim2=2))
        delta = -torch.linalg.solve(damped, g)
        delta = delta * torch.clamp(cap / delta.abs().clamp_min(1e-12), max=1.0).amin(1, keepdim=True)
        new = p.clone()
        new[:, free] += delta
        before = self._cost(r, p)
        after = self._cost(fit.residual(new[:, None, :3], fit.shifted(new[:, 3:]))[:, 0], new)
        keep = after < before
        p = torch.where(keep[:, None], new, p)
        self.table.rot[idx], self.table.shift[idx] = p[:, :3], p[:, 3:]
        self.mu[idx] = torch.where(keep, mu * MU_DOWN, mu * MU_UP).clamp(1e-3, 1e4)

    @torch.no_grad()
    def corrected(self, rot: torch.Tensor, shift_px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All particles' corrected poses."""
        return self.table(torch.arange(len(rot), device=rot.device), rot, shift_px)

    def corrected_shifts(self, shift_px: torch.Tensor) -> torch.Tensor:
        """All particles' corrected shifts (the encoder needs no rotations)."""
        return shift_px + self.table.shift

    def state(self) -> dict:
        return {"table": self.table.state_dict(), "mu": self.mu}

    def restore(self, state: dict) -> None:
        self.table.load_state_dict(state["table"])
        self.mu.copy_(state["mu"])
