"""Junk detection: how far each image is from what the trained model explains, relative to noise.

For particle ``i`` with Fourier data ``Y`` (normalised as in training, so the noise variance per
coefficient is about 1, see :mod:`cryoscape.train.objective`) and the model's prediction
``P = CTF * F_z(k @ A)`` at its own code, pose and shift, three numbers:

* ``power = <P, P>``: the signal the model attributes to the image. Trained on data with junk, a
  VAE learns to send what it cannot explain (empty picks, other molecules, ice) to codes where
  its decoder predicts almost nothing, so junk stands out here most (its log power is compared,
  one-sided: too little);
* ``amplitude = Re<Y, P> / <P, P>``: the least-squares scale of the prediction in the image. A
  particle the model explains has about 1; an empty pick 0; another molecule, or ice, whatever
  its overlap happens to give. Its noise spread is ``sigma / sqrt(2 <P, P>)`` (``sigma^2``: the
  median residual), larger for weak predictions (high defocus), so the deviation from the
  population's median amplitude is measured in those units before it is compared;
* ``residual = mean_k |Y - P|^2``: the power left over. Real particles leave the noise; images
  with more or less power than that are suspect.

Each is turned into a robust z-score against the population (median, and 1.4826 x the median
absolute deviation, which junk at a few percent hardly moves). The junk score is the largest,
and particles above ``threshold`` (default 4: one real particle in ~16,000 per score if real
particles scatter like a Gaussian) are junk. The threshold is thus in units the data set
measures itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryoscape.io.atomic import save_figure, save_text_array

if TYPE_CHECKING:
    from cryoscape.analysis.run_data import RunData

#: Default junk threshold in robust standard deviations.
DEFAULT_THRESHOLD = 4.0
#: Images per decoder pass while scoring.
BATCH = 64


@dataclass(frozen=True)
class JunkScores:
    """Per particle (rows of ``z.npy``): ``amplitude``, ``residual``, ``power`` (``<P, P>``),
    ``score`` (robust z, the larger of the two) and ``junk = score > threshold``."""

    amplitude: np.ndarray
    residual: np.ndarray
    power: np.ndarray
    score: np.ndarray
    threshold: float

    @property
    def junk(self) -> np.ndarray:
        return self.score > self.threshold

    def summary(self) -> dict:
        return {
            "n": len(self.score),
            "n_junk": int(self.junk.sum()),
            "threshold": self.threshold,
            "amplitude_median": float(np.median(self.amplitude)),
            "residual_median": float(np.median(self.residual)),
        }


def robust_z(x: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 MAD)``: a z-score that a minority of outliers hardly shifts."""
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    return (x - med) / max(float(mad), 1e-12)


def fit_features(rd: RunData, batch: int = BATCH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(amplitude, residual, power)``, each ``(N,)``, of every particle of ``rd`` (see the
    module docstring; ``power = <P, P>``)."""
    import torch

    from cryoscape.data.preprocess import Preprocessor
    from cryoscape.fourier.ctf import compute_ctf
    from cryoscape.fourier.slicing import rotate_lattice

    model, pset = rd.run.model, rd.pset
    assert pset.images is not None and pset.rotations is not None
    dev = next(model.parameters()).device
    D, n = pset.box, pset.n
    pre = Preprocessor(D, rd.run.norm_std, rd.sign, dev)
    shifts = np.zeros((n, 2)) if pset.shifts_px is None else pset.shifts_px
    ctf = pset.ctf.as_array() if rd.use_ctf and pset.ctf is not None else None
    amp, res, power = np.empty(n), np.empty(n), np.empty(n)
    with torch.no_grad():
        for a in range(0, n, batch):
            sel = np.arange(a, min(a + batch, n))
            imgs = torch.from_numpy(np.asarray(pset.images[sel], np.float32)).to(dev)
            _, y = pre(imgs, torch.as_tensor(shifts[sel], dtype=torch.float32, device=dev))
            rot = torch.as_tensor(pset.rotations[sel], dtype=torch.float32, device=dev)
            z = torch.as_tensor(rd.z[sel], dtype=torch.float32, device=dev)
            p = model.decode(rotate_lattice(pre.half.freqs, rot), z if model.zdim else None)
            if ctf is not None:
                p = p * compute_ctf(pre.half.freqs / pset.apix, torch.as_tensor(ctf[sel], device=dev))
            pp = p.abs().square().sum(1).double()
            power[sel] = pp.cpu().numpy()
            amp[sel] = ((y * p.conj()).real.sum(1).double() / pp.clamp_min(1e-12)).cpu().numpy()
            res[sel] = (y - p).abs().square().mean(1).double().cpu().numpy()
    return amp, res, power


def junk_scores(
    amplitude: np.ndarray, residual: np.ndarray, power: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> JunkScores:
    """Combine the features into one score (see the module docstring)."""
    sigma2 = max(float(np.median(residual)), 1e-12)
    dev = (amplitude - np.median(amplitude)) * np.sqrt(2 * np.maximum(power, 0) / sigma2)
    weak = -robust_z(np.log(np.maximum(power, 1e-30)))
    score = np.maximum.reduce([np.abs(robust_z(dev)), np.abs(robust_z(residual)), weak])
    return JunkScores(np.asarray(amplitude), np.asarray(residual), np.asarray(power), score, float(threshold))


def score_run(rd: RunData, threshold: float = DEFAULT_THRESHOLD) -> JunkScores:
    """Junk scores of every particle of a loaded run."""
    return junk_scores(*fit_features(rd), threshold)


def plot_junk(path: str | Path, js: JunkScores) -> None:
    """Histogram of the junk score (log counts) with the threshold line, and amplitude vs residual."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=120)
    ax1.hist(js.score, bins=80, color="0.4", log=True)
    ax1.axvline(js.threshold, color="C3", ls="--", label=f"threshold {js.threshold:g} ({int(js.junk.sum())} junk)")
    ax1.set(xlabel="junk score (robust z)", ylabel="particles")
    ax1.legend(frameon=False)
    j = js.junk
    ax2.scatter(js.amplitude[~j], js.residual[~j], s=2, color="0.4", label="kept")
    ax2.scatter(js.amplitude[j], js.residual[j], s=4, color="C3", label="junk")
    ax2.set(xlabel="fitted amplitude of the model's image", ylabel="residual power / coefficient")
    ax2.legend(frameon=False, markerscale=3)
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)


def write_junk(outdir: str | Path, js: JunkScores) -> list[Path]:
    """``junk_scores.txt`` (particle, amplitude, residual, score, junk) and ``junk_scores.png``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    txt, png = outdir / "junk_scores.txt", outdir / "junk_scores.png"
    cols = np.column_stack([np.arange(len(js.score)), js.amplitude, js.residual, js.score, js.junk])
    save_text_array(
        txt,
        cols,
        fmt=["%d", "%.5f", "%.5f", "%.3f", "%d"],
        header=f"particle amplitude residual score junk (threshold {js.threshold:g})",
    )
    plot_junk(png, js)
    return [txt, png]
