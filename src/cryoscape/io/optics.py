"""Optics values a particle file lacks, supplied on the command line (--voltage, --cs, --amp-contrast).

Real files omit them: a RELION 3.0 star written by a common cryoSPARC -> RELION exporter has no
``_rlnAmplitudeContrast``. cryoscape never guesses a CTF parameter silently; a value given here is
used only where the file has none, and every use (or non-use) is reported in the particle set's
warnings, so the user sees which number the CTF was computed with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError


@dataclass(frozen=True)
class OpticsFill:
    """Values for optics the file lacks; None: not given. Units in the names."""

    voltage_kV: float | None = None
    cs_mm: float | None = None
    amp_contrast: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "voltage_kV": (lambda v: 0 < v <= 3000, "--voltage must be in kV, > 0"),
            "cs_mm": (lambda v: 0 <= v <= 100, "--cs must be in mm, from 0 to 100"),
            "amp_contrast": (lambda v: 0 <= v < 1, "--amp-contrast must be a fraction in [0, 1)"),
        }
        for name, (ok, msg) in checks.items():
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and ok(v)):
                raise InputError(f"{msg}, got {v}")

    def given(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


#: field -> (option, what it is, unit)
OPTIONS = {
    "voltage_kV": ("--voltage", "voltage", "kV"),
    "cs_mm": ("--cs", "spherical aberration", "mm"),
    "amp_contrast": ("--amp-contrast", "amplitude contrast", ""),
}


def fill_optics(
    values: dict[str, np.ndarray | None],
    names: Mapping[str, str],
    fill: OpticsFill | None,
    n: int,
    path: Path,
    warnings: list[str],
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """``values`` (field -> per-particle array, None where the file lacks it) completed from
    ``fill``; ``names``: field -> the file's column name, for messages. Returns (values, fields
    filled -> value). InputError naming every missing column and the option that supplies it."""
    fill = fill or OpticsFill()
    out, used, missing = dict(values), {}, []
    for key, col in names.items():
        option, what, unit = OPTIONS[key]
        given = getattr(fill, key)
        if out.get(key) is not None:
            if given is not None:
                warnings.append(f"{option} {given:g} not used: the file gives {col}")
            continue
        if given is None:
            missing.append((col, option))
            continue
        out[key] = np.full(n, float(given))
        used[key] = float(given)
        warnings.append(f"{what} {given:g}{' ' + unit if unit else ''} from {option}: the file has no {col}")
    if missing:
        cols = ", ".join(c for c, _ in missing)
        opts = ", ".join(o for _, o in missing)
        hint = " (0.1 is cryoDRGN's default amplitude contrast)" if "--amp-contrast" in opts else ""
        raise InputError(f"missing {cols} needed for the CTF; pass {opts} with the value for your data{hint}", path)
    return {k: v for k, v in out.items() if v is not None}, used  # every field in ``names`` is set now


def unused_fill(fill: OpticsFill | None, warnings: list[str]) -> None:
    """Say that values were given for a file without CTF parameters, where they mean nothing."""
    for key in fill.given() if fill else {}:
        warnings.append(f"{OPTIONS[key][0]} not used: the file has no CTF parameters")
