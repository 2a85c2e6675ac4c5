"""Does a latent structure reproduce on independent halves of the data? The scores.

Two models are trained on disjoint random halves (RELION's ``_rlnRandomSubset`` where the file
has it). Their latent spaces cannot be compared directly: each is defined only up to a warp, and
an encoder need not carry over to the other half's particles when there are fewer particles than
pixels (in development runs at the demo's size, one half's encoder gave the other half's
particles codes unrelated to the true motion while its own particles' codes followed it: it had
fitted their noise). So both comparisons go through maps, which the halves share a frame for
(the same consensus poses):

- **variability**: each half's maps at on-data centres of its own codes; their deviations from
  the half's mean map (inside a mask, minus any change of the mean map's overall scale, which
  is contrast, not conformation) give that half's covariance of map changes. The score is the
  RV coefficient of the two covariances (Robert & Escoufier 1976; ``tr(Ca Cb) / sqrt(tr(Ca^2)
  tr(Cb^2))``): 1 when both halves learnt the same changes in the same proportions, near 0 when
  their changes are unrelated, as for a homogeneous sample where each half's map changes are
  its own fitted noise, whatever nuisance (pose, defocus) the encoders picked up. It needs no
  correspondence between the halves' latent spaces; the cosines of the principal angles
  between the leading :data:`MODES` modes are reported beside it.
- **states and particles**: each half's states (:func:`cryoscape.analysis.states.choose_k` on its
  codes; for a continuous motion, where both find one state, the on-data centres) give one map
  each; every particle of both halves is assigned to the state map of each
  half whose projection (its pose and CTF) fits its image best, the states are matched
  one-to-one by shared particles (Hungarian), and a particle agrees when its two assignments
  match. Per state: Jaccard of the two particle sets, and FSC between the halves' maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: On-data centres (k-means of a half's own codes) whose maps describe the half's variability.
MAP_CENTRES = 12
#: Leading variability modes of each half whose principal angles are reported.
MODES = 3
#: ``map_agreement`` at or above which the heterogeneity counts as reproduced (measured by
#: benchmarks/reproduce_halves.py: see docs/states.md).
REPRODUCED = 0.45


def variability_modes(
    maps: np.ndarray, mask: np.ndarray | None = None, r: int = MODES
) -> tuple[np.ndarray, np.ndarray]:
    """``(modes: (r, V), share: (r,))``: the leading principal directions of ``maps: (M, D, D, D)``
    around their mean (times ``mask``), the mean map's own direction removed, and the share of
    the deviation energy each holds."""
    w = 1.0 if mask is None else mask
    mean = (maps.mean(0) * w).ravel().astype(np.float64)
    dev = ((maps - maps.mean(0)) * w).reshape(len(maps), -1).astype(np.float64)
    if np.any(mean):
        unit = mean / np.linalg.norm(mean)
        dev -= np.outer(dev @ unit, unit)
    _, s, vt = np.linalg.svd(dev, full_matrices=False)
    total = float(np.sum(s**2))
    return vt, (s**2 / total if total > 0 else np.zeros(len(s)))


def rv_coefficient(modes_a: np.ndarray, share_a: np.ndarray, modes_b: np.ndarray, share_b: np.ndarray) -> float:
    """RV coefficient of the covariances ``sum_i share_i m_i m_i^T`` of two halves (module docstring)."""
    den = float(np.sqrt(np.sum(share_a**2) * np.sum(share_b**2)))
    if den == 0.0:
        return 0.0
    cross = (modes_a @ modes_b.T) ** 2
    return float(np.sum(share_a[:, None] * share_b[None, :] * cross) / den)


def mode_agreement(modes_a: np.ndarray, modes_b: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between two sets of orthonormal modes ``(r, V)``, largest first."""
    if len(modes_a) == 0 or len(modes_b) == 0:
        return np.zeros(0)
    return np.clip(np.linalg.svd(modes_a @ modes_b.T, compute_uv=False), 0.0, 1.0)


@dataclass(frozen=True)
class StateMatch:
    """``pairs``: (state of A, state of B) matched; ``jaccard`` per pair; ``ari`` of the partitions."""

    pairs: list[tuple[int, int]]
    jaccard: list[float]
    ari: float


def chance_agreement(labels_a: np.ndarray, labels_b: np.ndarray, match: StateMatch) -> float:
    """Share of particles :func:`agreeing` expected if the two assignments were independent."""
    pa = np.bincount(labels_a) / len(labels_a)
    pb = np.bincount(labels_b) / len(labels_b)
    return float(sum(pa[a] * pb[b] for a, b in match.pairs))


def match_states(labels_a: np.ndarray, labels_b: np.ndarray) -> StateMatch:
    """Match the states of two partitions of the same particles one-to-one by shared particles."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score

    ka, kb = int(labels_a.max()) + 1, int(labels_b.max()) + 1
    table = np.zeros((ka, kb), np.int64)
    np.add.at(table, (labels_a, labels_b), 1)
    rows, cols = linear_sum_assignment(-table)
    sizes_a, sizes_b = table.sum(1), table.sum(0)
    jac = [float(table[r, c] / max(1, sizes_a[r] + sizes_b[c] - table[r, c])) for r, c in zip(rows, cols)]
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols)]
    return StateMatch(pairs, jac, float(adjusted_rand_score(labels_a, labels_b)))


def agreeing(labels_a: np.ndarray, labels_b: np.ndarray, match: StateMatch) -> np.ndarray:
    """``(N,)`` bool: the particle's state under B is the one matched to its state under A."""
    to_b = np.full(int(labels_a.max()) + 1, -1)
    for a, b in match.pairs:
        to_b[a] = b
    return to_b[labels_a] == labels_b


def best_fit(images: np.ndarray, projections: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(B,)`` index of the projection (``(K, B, D, D)``) that explains each of ``images: (B, D, D)``
    best within ``mask: (D, D)``, each scaled by its best non-negative amplitude and both taken
    about their mean: the one that removes the most squared residual."""
    m = mask.astype(bool)
    y = images[:, m]
    y = y - y.mean(1, keepdims=True)
    p = projections[:, :, m]
    p = p - p.mean(2, keepdims=True)
    dot = np.clip(np.einsum("bp,kbp->kb", y, p), 0.0, None)
    gain = dot**2 / np.maximum(np.einsum("kbp,kbp->kb", p, p), 1e-30)
    return np.argmax(gain, axis=0)
