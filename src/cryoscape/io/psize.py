"""The pixel size of a particle set when the metadata, --apix and the stack header disagree or are
silent: one rule for star, cs and bare stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryoscape.errors import InputError


def pick_psize(
    file_psize: np.ndarray | None, apix: float | None, n: int, path: Path, warnings: list[str]
) -> np.ndarray | None:
    """``apix`` if given (warning when it disagrees with the file by > 1 %), else the file's."""
    if apix is None:
        return file_psize
    if apix <= 0:
        raise InputError(f"--apix must be positive, got {apix}", path)
    if file_psize is not None and len(file_psize):
        worst = float(np.max(np.abs(file_psize / apix - 1)))
        if worst > 0.01:
            warnings.append(
                f"--apix {apix} differs from the file's pixel size "
                f"{float(np.median(file_psize)):.4f} Å by {100 * worst:.1f}%; using --apix"
            )
    return np.full(n, float(apix))


def fallback_psize(src, n: int, *, needed: bool, path: Path, warnings: list[str], hint: str) -> np.ndarray:
    """Pixel size for ``n`` particles when the metadata has none: the stack header, else 1 Å
    (only if not needed)."""
    if src is not None and src.header_psize_A:
        warnings.append(f"no pixel size in the metadata; using the stack header's {src.header_psize_A:.4f} Å/px")
        return np.full(n, src.header_psize_A)
    if needed:
        raise InputError(f"no pixel size: the CTF needs {hint}; pass --apix", path)
    warnings.append("no pixel size in the file; assuming 1 Å/px (pass --apix)")
    return np.ones(n)
