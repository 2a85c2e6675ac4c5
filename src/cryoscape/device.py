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


#: glibc's mallopt parameters (malloc.h) and the threshold set for both: 1 GiB.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _KEEP_BYTES = -1, -3, 1 << 30
_allocator_tuned: bool | None = None


def tune_cpu_allocator() -> bool:
    """Keep freed large blocks in the heap instead of returning them to the OS (glibc only).

    Why: a training step allocates and frees activations of tens of MB. By default glibc serves
    blocks over 32 MB with a fresh ``mmap`` and unmaps them on ``free``, so every step pays page
    faults and zero-filling of all its large tensors again, in fp32 as in bf16 (the measurements:
    benchmarks/README.md, "Per-image work and steps to quality", host allocator).
    Raising both thresholds lets the heap reuse those blocks. Returns whether the setting took
    (False off glibc, e.g. macOS, where nothing is changed). Idempotent.
    """
    global _allocator_tuned
    if _allocator_tuned is None:
        import ctypes
        import ctypes.util
        import sys

        _allocator_tuned = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                ok = libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(_KEEP_BYTES))
                ok &= libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(_KEEP_BYTES))
                _allocator_tuned = bool(ok)
            except (OSError, AttributeError):  # musl or another libc without mallopt
                pass
    return _allocator_tuned
