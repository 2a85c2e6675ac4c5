"""Command-line options shared by several commands, declared once."""

from __future__ import annotations

import argparse


def add_particle_args(p: argparse.ArgumentParser, *, positional: bool = True, metadata: bool = True) -> None:
    """PARTICLES input plus the options that say how to read it.

    ``metadata=False`` leaves out the pose/CTF/index overrides and ``-D/--box`` (for commands
    that only read images, like downsample, whose ``-D`` is the new box).
    """
    if positional:
        p.add_argument("particles", help="particles: RELION .star, cryoSPARC .cs, .mrcs/.mrc stack or .txt list")
    p.add_argument("--datadir", help="folder to resolve relative image paths against (default: the star/cs folder)")
    if metadata:
        p.add_argument("--poses", help="cryoDRGN pose pickle (rot N×3×3, trans N×2) overriding poses in PARTICLES")
        p.add_argument("--ctf", help="cryoDRGN CTF pickle (N×9) overriding CTF in PARTICLES")
        p.add_argument("--ind", help="index selection (.pkl or .npy of particle indices) to use a subset")
        p.add_argument("-D", "--box", type=int, help="box size of the refinement, where the file lacks it")
    p.add_argument("--apix", type=float, help="pixel size in Å, where the file lacks it or it is wrong")
    g = p.add_argument_group("optics the file lacks (used only where it has none; the value used is printed)")
    g.add_argument("--voltage", type=float, metavar="KV", help="acceleration voltage, kV")
    g.add_argument("--cs", type=float, metavar="MM", help="spherical aberration, mm")
    g.add_argument("--amp-contrast", type=float, metavar="FRACTION",
                   help="amplitude contrast, a fraction (0.1 is cryoDRGN's default)")


def optics_fill(args: argparse.Namespace):
    """``--voltage/--cs/--amp-contrast`` as an :class:`~cryoscape.io.optics.OpticsFill` (None if none)."""
    from cryoscape.io.optics import OpticsFill

    fill = OpticsFill(voltage_kV=args.voltage, cs_mm=args.cs, amp_contrast=args.amp_contrast)
    return fill if fill.given() else None


def add_seed_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all cores)")


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

    for msg in pset.extra.get("warnings", []):
        print(f"cryoscape {command}: warning: {msg}", file=sys.stderr)
