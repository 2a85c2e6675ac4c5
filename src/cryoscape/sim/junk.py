"""Junk particles for simulations: what a picker lets through besides the molecule.

A share of the particles is replaced by one of three kinds, in equal numbers, so that junk
detection can be scored against a known answer:

* ``noise``: no signal at all, only the dataset's noise (an empty pick);
* ``decoy``: projections of another molecule (:func:`decoy_volume`, a ring of blobs unlike the
  ground-truth volumes) with the particle's pose, shift and CTF;
* ``ice``: smooth blobs and a gradient in the image plane (contamination, ice thickness), no CTF.

Junk keeps the pose and CTF drawn for it, written to the star/cs like any particle's: a refinement
gives junk a pose too. The decoy has the true molecule's mass and ice images the signal's pixel
variance, so junk is about as strong as a real particle.
"""

from __future__ import annotations

import numpy as np

#: Codes of ``junk_kind`` in ``ground_truth.npz`` (0: a real particle).
JUNK_KINDS = ("none", "noise", "decoy", "ice")


def sample_junk(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` int8 junk kind per particle: ``round(fraction * n)`` junk particles at random,
    the kinds 1..3 of :data:`JUNK_KINDS` in turn (equal shares)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"junk fraction must be in [0, 1), got {fraction}")
    kind = np.zeros(n, np.int8)
    m = round(fraction * n)
    picks = rng.choice(n, size=m, replace=False)
    kind[picks] = 1 + np.arange(m) % (len(JUNK_KINDS) - 1)
    return kind


def decoy_volume(D: int, mass: float) -> np.ndarray:
    """``(D, D, D)`` float32 [z, y, x]: a tilted ring of eight Gaussian blobs spanning half the
    box, normalised to total ``mass`` (that of the true molecule)."""
    g = np.arange(D) - D // 2
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    r, s = 0.25 * D, D / 20
    vol = np.zeros((D, D, D))
    for a in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        cx, cy, cz = r * np.cos(a), r * np.sin(a), 0.3 * r * np.sin(2 * a)
        vol += np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * s**2))
    return (vol * mass / vol.sum()).astype(np.float32)


def ice_images(n: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, D, D)`` float32 smooth images with unit pixel variance: 1-3 wide Gaussian blobs at
    random places plus a random linear gradient."""
    g = np.arange(D) - D // 2
    y, x = np.meshgrid(g, g, indexing="ij")
    out = np.empty((n, D, D), np.float32)
    for i in range(n):
        img = np.zeros((D, D))
        for _ in range(rng.integers(1, 4)):
            c, s = rng.uniform(-D / 3, D / 3, 2), rng.uniform(D / 12, D / 5)
            img += rng.uniform(0.5, 1.5) * np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2) / (2 * s**2))
        img += (rng.normal(0, 1, 2) @ np.stack([x.ravel(), y.ravel()]) / D).reshape(D, D) * 0.3
        img -= img.mean()
        out[i] = img / max(img.std(), 1e-12)
    return out
