"""Helpers the commands share once their options are parsed (the options themselves: :mod:`.options`)."""

from __future__ import annotations

import argparse


def optics_fill(args: argparse.Namespace):
    """``--voltage/--cs/--amp-contrast`` as an :class:`~cryoscape.io.optics.OpticsFill` (None if none)."""
    from cryoscape.io.optics import OpticsFill

    fill = OpticsFill(voltage_kV=args.voltage, cs_mm=args.cs, amp_contrast=args.amp_contrast)
    return fill if fill.given() else None


def particle_options(args: argparse.Namespace) -> dict:
    """The options of :func:`~cryoscape.io.load.load_particles` that ``add_particles`` declares."""
    return {
        "datadir": args.datadir,
        "poses": args.poses,
        "ctf": args.ctf,
        "ind": args.ind,
        "box": args.box,
        "apix": args.apix,
        "optics": optics_fill(args),
    }


def setup_torch(threads: int | None, device: str | None = None) -> str:
    """Apply ``--threads`` and resolve ``--device`` (default: cuda when available, else cpu)."""
    import torch

    from cryoscape.device import resolve_device

    if threads:
        torch.set_num_threads(threads)
    return str(resolve_device(device))


def print_warnings(command: str, pset) -> None:
    """The loader's warnings (missing stacks, pixel-size mismatch...) on stderr, one line each."""
    import sys

    for msg in pset.info.warnings:
        print(f"cryoscape {command}: warning: {msg}", file=sys.stderr)
