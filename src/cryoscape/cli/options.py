"""Command-line options shared by several commands, declared once.

Every command spells its output ``-o/--outdir`` (a folder, or the file a command writes with its
side files beside it), its torch device ``--device``, its run epoch ``--epoch N``, and so on, so
the same option means the same thing everywhere. Old spellings are kept as hidden aliases:
accepted, never shown in ``--help``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

#: A parser or an argument group: anything with ``add_argument``.
Container = argparse._ActionsContainer

#: Attribute of an action naming its hidden old spellings; read by :class:`HelpFormatter`.
_HIDDEN = "_cryoscape_hidden_aliases"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the command docstrings as written and leaves hidden aliases out of ``--help``."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        hidden = getattr(action, _HIDDEN, ())
        if not hidden:
            return super()._format_action_invocation(action)
        shown = [s for s in action.option_strings if s not in hidden]
        saved, action.option_strings = action.option_strings, shown
        try:
            return super()._format_action_invocation(action)
        finally:
            action.option_strings = saved


def add_outdir(
    p: Container,
    *,
    help: str,
    required: bool = False,
    default: str | None = None,
    metavar: str | None = None,
    aliases: Sequence[str] = (),
) -> argparse.Action:
    """``-o/--outdir`` (dest ``outdir``): where a command writes. ``aliases`` are the old long
    spellings (``--out``, ``--output``), still accepted so existing scripts keep working."""
    action = p.add_argument(
        "-o", "--outdir", *aliases, dest="outdir", required=required, default=default, metavar=metavar, help=help
    )
    setattr(action, _HIDDEN, tuple(aliases))
    return action


def add_device(p: Container, *, purpose: str = "", default: str | None = None) -> None:
    """``--device``: the torch device (``cuda``, ``cuda:1``, ``cpu``...); ``purpose`` says what
    it is used for where that is not everything (e.g. "maps")."""
    what = f"torch device for {purpose}" if purpose else "torch device"
    p.add_argument("--device", default=default, help=f"{what} (default: cuda if available, else cpu)")


def add_epoch(p: Container, *, reads: str = "z.N.npy and weights.N.pt") -> None:
    """``--epoch N``: which checkpoint of a training run to read (default: the last)."""
    p.add_argument("--epoch", type=int, metavar="N", help=f"use epoch N: {reads} (default: the last)")


def add_seed(p: Container) -> None:
    """``--seed``: every random choice of a command derives from it, so reruns repeat."""
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def add_threads(p: Container) -> None:
    """``--threads``: CPU threads for torch (shared machines want fewer than all cores)."""
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all cores)")


def add_junk_threshold(p: Container) -> None:
    """``--junk-threshold``: the junk score above which a particle is junk, in robust standard
    deviations; the default is :data:`cryoscape.analysis.junk.DEFAULT_THRESHOLD` (not imported
    here, so ``--help`` stays light; tests/test_cli_options.py checks they agree)."""
    p.add_argument(
        "--junk-threshold",
        type=float,
        default=4.0,
        metavar="SIGMA",
        help="junk: a score above this many robust standard deviations (default: 4)",
    )


def add_particles(p: Container, *, positional: bool = True, metadata: bool = True) -> None:
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
    g.add_argument(
        "--amp-contrast",
        type=float,
        metavar="FRACTION",
        help="amplitude contrast, a fraction (0.1 is cryoDRGN's default)",
    )
