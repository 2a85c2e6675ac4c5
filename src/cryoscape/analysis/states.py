"""How many discrete states the latent codes hold, and which particles belong to each.

A Gaussian mixture (full covariances) is fitted to ``z`` for K = 1..Kmax. EM finds local optima,
and with unequal states the one found from k-means++ starts often splits a big, non-Gaussian
state instead of separating two small neighbours; so each K keeps the best (by the criterion) of
several seeded fresh starts and of every split of one component of the best K - 1 mixture. K is
chosen by the
integrated completed likelihood (ICL, Biernacki, Celeux & Govaert 2000):
``ICL = BIC + 2 * sum_i entropy(posterior_i)``. BIC alone answers "how many Gaussians describe
the density", and a VAE's clusters are not Gaussian, so with many particles BIC keeps adding
components that split one state; those components overlap, their particles' assignments are
uncertain, and ICL's entropy term charges for exactly that. ICL therefore counts well-separated
groups: states. Both curves are kept and plotted as the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.atomic import save_figure

#: Criteria :func:`choose_k` can use.
CRITERIA = ("icl", "bic")


@dataclass(frozen=True)
class StateChoice:
    """``ks`` tried; ``bic``, ``icl`` per K (lower is better); ``k`` chosen (by ``criterion``, or
    fixed); ``labels: (N,)`` 0..k-1 ordered by decreasing population; ``means: (k, zdim)``."""

    ks: np.ndarray
    bic: np.ndarray
    icl: np.ndarray
    criterion: str
    k: int
    labels: np.ndarray
    means: np.ndarray


def _mixture(k: int, seed: int, n_init: int = 1, **init):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        k, covariance_type="full", reg_covar=1e-5, n_init=n_init, init_params="k-means++", random_state=seed, **init
    )


def _splits(z: np.ndarray, prev, seed: int) -> list:
    """Mixtures with one component more than ``prev``: each of its components split in two (a
    two-component fit on its particles), then the whole mixture refitted from there."""
    labels, d = prev.predict(z), z.shape[1]
    out = []
    for c in range(prev.n_components):
        sub = z[labels == c]
        if len(sub) < 4 * (d + 1):
            continue
        two = _mixture(2, seed, 2).fit(sub)
        init = {
            "weights_init": np.r_[np.delete(prev.weights_, c), prev.weights_[c] * two.weights_],
            "means_init": np.vstack([np.delete(prev.means_, c, 0), two.means_]),
            "precisions_init": np.concatenate([np.delete(prev.precisions_, c, 0), two.precisions_]),
        }
        out.append(_mixture(prev.n_components + 1, seed, **init).fit(z))
    return out


def _icl(g, z: np.ndarray) -> float:
    p = g.predict_proba(z)
    entropy = -np.sum(p * np.log(np.clip(p, 1e-300, None)))
    return float(g.bic(z) + 2 * entropy)


def choose_k(
    z: np.ndarray, kmax: int = 10, k: int | None = None, criterion: str = "icl", seed: int = 0, n_init: int = 4
) -> StateChoice:
    """Fit mixtures with 1..kmax components to ``z: (N, zdim)`` and pick K (``k`` fixes it;
    the evidence curves are still computed up to ``max(kmax, k)``)."""
    if criterion not in CRITERIA:
        raise InputError(f"unknown criterion {criterion!r}; choose from {', '.join(CRITERIA)}")
    z = np.asarray(z, np.float64)
    top = max(kmax, k or 1)
    if top < 1 or len(z) < 2 * top:
        raise InputError(f"{len(z)} particles are too few to compare up to {top} states")
    value = _icl if criterion == "icl" else lambda g, x: float(g.bic(x))
    fits = [_mixture(1, seed).fit(z)]
    for j in range(2, top + 1):  # the best by the criterion of fresh starts and of splits of K - 1
        tries = [_mixture(j, seed, n_init).fit(z), *_splits(z, fits[-1], seed)]
        fits.append(min(tries, key=lambda g: value(g, z)))
    bic = np.array([g.bic(z) for g in fits])
    icl = np.array([_icl(g, z) for g in fits])
    chosen = k if k is not None else int(np.argmin(icl if criterion == "icl" else bic)) + 1
    g = fits[chosen - 1]
    raw = g.predict(z)
    order = np.argsort(-np.bincount(raw, minlength=chosen), kind="stable")  # biggest state first
    rank = np.empty(chosen, np.int64)
    rank[order] = np.arange(chosen)
    return StateChoice(np.arange(1, top + 1), bic, icl, criterion, chosen, rank[raw], g.means_[order])


def plot_evidence(path: str | Path, sc: StateChoice) -> None:
    """BIC and ICL against K (each minus its minimum), the chosen K marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for name, v in (("ICL", sc.icl), ("BIC", sc.bic)):
        ax.plot(sc.ks, v - v.min(), "o-", label=name)
    ax.axvline(sc.k, color="grey", ls="--", lw=0.8, label=f"chosen K = {sc.k}")
    ax.set(xlabel="number of states K", ylabel="criterion - minimum (lower is better)", xticks=sc.ks)
    ax.legend(frameon=False)
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)


def state_centre(z: np.ndarray) -> int:
    """Row of ``z: (n, zdim)`` nearest its per-dimension median: an on-data code for a state's map."""
    return int(np.argmin(np.linalg.norm(z - np.median(z, axis=0), axis=1)))
