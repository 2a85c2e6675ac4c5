"""Compare two maps (e.g. half-maps): the FSC, unmasked and masked, written as a table and a plot.

What ``cryoscape fsc`` does: :func:`compare_maps` reads and checks the maps, makes or reads the
mask, computes the curves and writes them; :meth:`MapComparison.summary` is what it prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryoscape.analysis.fsc import auto_mask, format_resolution, fsc, plot_fsc, save_fsc_txt
from cryoscape.errors import InputError
from cryoscape.io.mrc import read_volume


@dataclass(frozen=True)
class MapComparison:
    """``freqs: (D//2 + 1,)`` in cycles/px; ``curves``: "unmasked" (and "masked" with a mask)
    -> ``(D//2 + 1,)`` FSC; ``txt`` and ``png``: the files written."""

    freqs: np.ndarray
    curves: dict[str, np.ndarray]
    psize_A: float
    txt: Path
    png: Path

    def summary(self) -> list[str]:
        """The resolution at 0.143 and 0.5 for each curve, then the files written."""
        lines = []
        for label, c in self.curves.items():
            r143, r5 = (format_resolution(self.freqs, c, t, self.psize_A) for t in (0.143, 0.5))
            lines.append(f"FSC ({label}): {r143} at 0.143, {r5} at 0.5")
        return [*lines, f"wrote {self.txt} and {self.png}"]


def compare_maps(
    map1: str | Path, map2: str | Path, out: str | Path, mask: str | None = None, apix: float | None = None
) -> MapComparison:
    """FSC of two maps of one (even) box, written to ``out`` (.png added if missing) and beside
    it as .txt. ``mask``: None, "auto" (:func:`auto_mask` of the average) or a mask map of the
    same box with values in 0..1; ``apix``: the voxel size in Å when the headers lack or misstate it."""
    vol1, ps1 = read_volume(map1)
    vol2, ps2 = read_volume(map2)
    if vol1.shape != vol2.shape:
        raise InputError(f"box {vol2.shape[0]} differs from {map1}'s box {vol1.shape[0]}", map2)
    if vol1.shape[0] % 2:
        raise InputError(f"odd box {vol1.shape[0]}; cryoscape needs an even box", map1)
    psize_A = _voxel_size(map1, map2, ps1, ps2, apix)
    path = Path(out)
    if not path.resolve().parent.is_dir():
        raise InputError("output folder does not exist", path.resolve().parent)
    weights = _load_mask(mask, vol1, vol2, psize_A)
    freqs, unmasked = fsc(vol1, vol2)
    curves = {"unmasked": unmasked}
    if weights is not None:
        curves["masked"] = fsc(vol1, vol2, weights)[1]
    png = path if path.suffix.lower() == ".png" else path.with_name(path.name + ".png")
    save_fsc_txt(png.with_suffix(".txt"), freqs, curves, psize_A)
    plot_fsc(png, freqs, curves, psize_A)
    return MapComparison(freqs, curves, psize_A, png.with_suffix(".txt"), png)


def _voxel_size(map1: str | Path, map2: str | Path, ps1: float, ps2: float, apix: float | None) -> float:
    if apix is not None:
        if apix <= 0:
            raise InputError(f"--apix {apix}: must be positive")
        return apix
    if ps1 <= 0:
        raise InputError("the header has no voxel size; give --apix", map1)
    if ps2 > 0 and abs(ps1 - ps2) > 1e-3 * ps1:
        raise InputError(
            f"voxel size {ps2:.4f} Å differs from {map1}'s {ps1:.4f} Å; give --apix if the header is wrong", map2
        )
    return ps1


def _load_mask(mask: str | None, vol1: np.ndarray, vol2: np.ndarray, psize_A: float) -> np.ndarray | None:
    if mask is None:
        return None
    if mask == "auto":
        return auto_mask(0.5 * (vol1 + vol2), psize_A)
    weights, _ = read_volume(mask)
    if weights.shape != vol1.shape:
        raise InputError(f"mask box {weights.shape[0]} differs from the maps' {vol1.shape[0]}", mask)
    if weights.min() < -1e-3 or weights.max() > 1 + 1e-3:
        raise InputError(f"mask values span [{weights.min():.3g}, {weights.max():.3g}]; expected 0..1", mask)
    return weights
