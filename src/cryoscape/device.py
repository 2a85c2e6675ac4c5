"""Which torch device a command runs on, decided in one place."""

from __future__ import annotations

import torch

from cryoscape.errors import InputError


def resolve_device(name: str | None) -> torch.device:
    """None or ``"auto"`` -> CUDA if available, else CPU; anything else as torch spells it (checked)."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise InputError(f"bad --device {name!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine")
    return dev
