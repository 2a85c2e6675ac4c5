"""Fourier shell correlation between two maps, resolution estimates and the automatic mask.

Maps are numpy ``(D, D, D)`` [z, y, x] with an even box; shells are rounded ``|k| * D`` on the
centred transform, 0 .. D/2 (the corners beyond Nyquist are left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cryoscape.io.atomic import save_figure, save_text_array

#: The usual thresholds: 0.143 for half-maps (gold standard), 0.5 for map-vs-model/reference.
THRESHOLDS = (0.143, 0.5)


def _ft3(vol: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(vol.astype(np.float64))))


def shell_index_3d(D: int) -> np.ndarray:
    """``(D, D, D)`` int: rounded distance from the zero frequency in Fourier pixels."""
    f = np.arange(D) - D // 2
    r = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    return np.rint(r).astype(np.int64)


def _check_pair(vol1: np.ndarray, vol2: np.ndarray) -> int:
    D = vol1.shape[-1]
    if vol1.shape != (D, D, D) or vol2.shape != vol1.shape or D % 2:
        raise ValueError(f"need two cubic maps of the same even box, got {vol1.shape} and {vol2.shape}")
    return D


def fsc(vol1: np.ndarray, vol2: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """FSC per shell.

    Returns:
        ``freqs: (D//2 + 1,)`` shell frequencies in cycles/px (``shell / D``) and
        ``fsc: (D//2 + 1,)`` the real correlation ``Re sum F1 F2* / sqrt(sum|F1|^2 sum|F2|^2)``
        (0 where a shell has no power).
    """
    D = _check_pair(vol1, vol2)
    if mask is not None:
        vol1, vol2 = vol1 * mask, vol2 * mask
    f1, f2 = _ft3(vol1), _ft3(vol2)
    shells = shell_index_3d(D).ravel()
    keep = shells <= D // 2
    s = shells[keep]
    n = D // 2 + 1
    cross = np.bincount(s, (f1 * f2.conj()).real.ravel()[keep], n)
    p1 = np.bincount(s, (np.abs(f1) ** 2).ravel()[keep], n)
    p2 = np.bincount(s, (np.abs(f2) ** 2).ravel()[keep], n)
    denom = np.sqrt(p1 * p2)
    curve = np.divide(cross, denom, out=np.zeros(n), where=denom > 0)
    return np.arange(n) / D, curve


def resolution_at(freqs: np.ndarray, curve: np.ndarray, threshold: float, psize_A: float) -> float:
    """Resolution in Å where the curve first drops below ``threshold`` (linear interpolation
    between the shells either side); Nyquist (``2 * psize_A``) if it never does; ``inf`` if it
    is below already at the zero frequency (no shared signal at all)."""
    below = np.flatnonzero(curve[1:] < threshold) + 1
    if len(below) == 0:
        return 2.0 * psize_A
    i = below[0]
    c0, c1 = curve[i - 1], curve[i]
    if c0 < threshold:  # only at i = 1: never above the threshold at all
        return float("inf")
    t = (c0 - threshold) / (c0 - c1)
    f = freqs[i - 1] + t * (freqs[i] - freqs[i - 1])
    return float(psize_A / f) if f > 0 else float("inf")


def format_resolution(freqs: np.ndarray, curve: np.ndarray, threshold: float, psize_A: float) -> str:
    """``'7.63 Å'``, or ``'8.00 Å (Nyquist; never below)'`` when the curve never drops below ``threshold``."""
    res = resolution_at(freqs, curve, threshold, psize_A)
    if not np.isfinite(res):
        return "none (below the threshold from the lowest frequency)"
    never = not (curve[1:] < threshold).any()
    return f"{res:.2f} Å" + (" (Nyquist; never below)" if never else "")


def auto_mask(vol: np.ndarray, psize_A: float, dilate_A: float = 25.0, soft_edge_A: float = 15.0) -> np.ndarray:
    """Soft solvent mask per the cryoDRGN paper: threshold at half the 99.99th percentile,
    dilate by ``dilate_A``, then a cosine fall-off over ``soft_edge_A``. Returns ``(D, D, D)``
    float32 in [0, 1]."""
    return soft_mask(vol >= 0.5 * np.percentile(vol, 99.99), psize_A, dilate_A, soft_edge_A)


def soft_mask(core: np.ndarray, psize_A: float, dilate_A: float, soft_edge_A: float) -> np.ndarray:
    """``core: (D, D, D)`` bool grown by ``dilate_A`` with a cosine fall-off over ``soft_edge_A``:
    float32 in [0, 1] (all ones for an empty core: nothing to mask by)."""
    from scipy.ndimage import distance_transform_edt

    if not core.any():
        return np.ones(core.shape, dtype=np.float32)
    dist_A = distance_transform_edt(~core, sampling=psize_A)
    t = np.clip((dist_A - dilate_A) / soft_edge_A, 0.0, 1.0) if soft_edge_A > 0 else (dist_A > dilate_A) * 1.0
    return (0.5 * (1 + np.cos(np.pi * t))).astype(np.float32)


def save_fsc_txt(path: str | Path, freqs: np.ndarray, curves: Mapping[str, np.ndarray], psize_A: float) -> None:
    """Whitespace table: shell, frequency (1/Å), resolution (Å), one column per curve."""
    res = np.divide(psize_A, freqs, out=np.full_like(freqs, np.inf), where=freqs > 0)
    cols = [np.arange(len(freqs)), freqs / psize_A, res, *curves.values()]
    header = "shell freq_1/A resolution_A " + " ".join(f"fsc_{k}" for k in curves)
    save_text_array(path, np.stack(cols, 1), fmt=["%d", "%.6f", "%.3f"] + ["%.6f"] * len(curves), header=header)


def plot_fsc(
    path: str | Path,
    freqs: np.ndarray,
    curves: Mapping[str, np.ndarray],
    psize_A: float,
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> None:
    """FSC curves against frequency in 1/Å, with the threshold lines, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for label, c in curves.items():
        ax.plot(freqs / psize_A, c, label=label)
    for t in thresholds:
        ax.axhline(t, color="grey", lw=0.7, ls="--")
    ax.set(xlabel="spatial frequency (1/Å)", ylabel="FSC", ylim=(-0.1, 1.05), xlim=(0, freqs[-1] / psize_A))
    ax.legend(frameon=False)
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)
