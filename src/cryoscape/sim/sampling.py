"""Random per-particle parameters of a simulation: conformations, states, CTFs and shifts.

The continuous distributions mimic the cryoDRGN paper's synthetic benchmarks (a 1D motion
sampled three ways). Each is a truncated Gaussian mixture on ``t`` in [0, 1] (draws outside
[0, 1] are redrawn), given exactly by :data:`T_MIXTURES`:

* ``uniform``: ``t ~ U(0, 1)``;
* ``cooperative``: two states with a sparsely populated path between them —
  ``0.5 N(0.1, 0.07^2) + 0.5 N(0.9, 0.07^2)``;
* ``noncontiguous``: three separated clusters, no particles between them —
  ``1/3 N(0.1, 0.04^2) + 1/3 N(0.5, 0.04^2) + 1/3 N(0.9, 0.04^2)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cryoscape.io.particles import CTFParams

#: name -> list of (weight, mean, sd) of the Gaussian mixture on t; None means uniform.
T_MIXTURES: dict[str, list[tuple[float, float, float]] | None] = {
    "uniform": None,
    "cooperative": [(0.5, 0.1, 0.07), (0.5, 0.9, 0.07)],
    "noncontiguous": [(1 / 3, 0.1, 0.04), (1 / 3, 0.5, 0.04), (1 / 3, 0.9, 0.04)],
}


def sample_t(dist: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` conformational coordinates in [0, 1] drawn from :data:`T_MIXTURES` ``[dist]``."""
    if dist not in T_MIXTURES:
        raise ValueError(f"unknown distribution {dist!r}; choose from {sorted(T_MIXTURES)}")
    mix = T_MIXTURES[dist]
    if mix is None:
        return rng.uniform(0.0, 1.0, n)
    w, mu, sd = (np.array(c) for c in zip(*mix))
    out = np.empty(n)
    todo = np.arange(n)
    while len(todo):  # rejection: redraw the (few) samples that fell outside [0, 1]
        comp = rng.choice(len(w), size=len(todo), p=w / w.sum())
        x = rng.normal(mu[comp], sd[comp])
        ok = (x >= 0.0) & (x <= 1.0)
        out[todo[ok]] = x[ok]
        todo = todo[~ok]
    return out


def sample_states(proportions: Sequence[float], n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` int labels ``0..K-1`` drawn with the given (unnormalised) proportions."""
    p = np.asarray(proportions, np.float64)
    if p.ndim != 1 or len(p) == 0 or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"proportions must be non-negative with a positive sum, got {list(p)}")
    return rng.choice(len(p), size=n, p=p / p.sum())


def quantise_t(t: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Snap ``t`` to the grid ``linspace(0, 1, n_bins)``: ``(bin: (n,) int, t_used: (n,))``."""
    if n_bins < 2:
        return np.zeros(len(t), np.int64), np.zeros(len(t))
    b = np.rint(np.asarray(t) * (n_bins - 1)).astype(np.int64)
    return b, b / (n_bins - 1)


def balanced_bins(n: int, n_bins: int, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` bin indices in random order with every bin used ``n // n_bins`` or one more time.

    Benchmarks (CryoBench: 100 conformations x 1,000 images) want exactly balanced bins; the
    ``n % n_bins`` extra images go to distinct bins chosen at random."""
    b = np.concatenate([np.repeat(np.arange(n_bins), n // n_bins), rng.choice(n_bins, size=n % n_bins, replace=False)])
    return rng.permutation(b).astype(np.int64)


def exact_states(proportions: Sequence[float], n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` labels in random order whose counts match the proportions as closely as integers
    can (largest remainder), so a benchmark's abundances are what it says, not a random draw."""
    p = np.asarray(proportions, np.float64)
    if p.ndim != 1 or len(p) == 0 or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"proportions must be non-negative with a positive sum, got {list(p)}")
    share = p / p.sum() * n
    counts = np.floor(share).astype(np.int64)
    counts[np.argsort(counts - share)[: n - counts.sum()]] += 1  # largest remainders first
    return rng.permutation(np.repeat(np.arange(len(p)), counts)).astype(np.int64)


def sample_ctf(
    n: int,
    rng: np.random.Generator,
    *,
    defocus_min_A: float,
    defocus_max_A: float,
    astigmatism_A: float = 0.0,
    voltage_kV: float = 300.0,
    cs_mm: float = 2.7,
    amp_contrast: float = 0.1,
    bfactor_A2: float = 0.0,
    bfactor_max_A2: float | None = None,
) -> CTFParams:
    """Random CTFs: mean defocus ~ U(min, max), ``dfu - dfv ~ U(0, astigmatism_A)``, angle ~ U(0, 180);
    B-factor ``bfactor_A2``, or ~ U(bfactor_A2, bfactor_max_A2) per particle when that is given
    (real particles differ in how much their high frequencies are damped)."""
    mean = rng.uniform(defocus_min_A, defocus_max_A, n)
    delta = rng.uniform(0.0, astigmatism_A, n) if astigmatism_A > 0 else np.zeros(n)
    angle = rng.uniform(0.0, 180.0, n) if astigmatism_A > 0 else np.zeros(n)
    bfac: float | np.ndarray = bfactor_A2
    if bfactor_max_A2 is not None:  # drawn after the others: the same seed keeps the same defoci
        bfac = rng.uniform(bfactor_A2, bfactor_max_A2, n)
    return CTFParams.from_columns(
        n,
        defocus_u_A=mean + delta / 2,
        defocus_v_A=mean - delta / 2,
        defocus_angle_deg=angle,
        voltage_kV=voltage_kV,
        cs_mm=cs_mm,
        amp_contrast=amp_contrast,
        bfactor_A2=bfac,
    )


def sample_shifts_px(n: int, shift_max_px: float, rng: np.random.Generator) -> np.ndarray:
    """``(n, 2)`` shifts ``(x, y)`` in pixels, each uniform in ``[-shift_max_px, shift_max_px]``."""
    if shift_max_px <= 0:
        return np.zeros((n, 2))
    return rng.uniform(-shift_max_px, shift_max_px, (n, 2))
