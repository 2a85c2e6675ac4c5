"""The ``cryoscape`` command: one subcommand per module in :mod:`cryoscape.cli`.

Each command module has a docstring (its help text), ``add_args(parser)`` and ``main(args)``.
Command modules import numpy/torch inside ``main`` so ``cryoscape --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cryoscape import __version__
from cryoscape.cli.options import HelpFormatter

#: subcommand name -> module under cryoscape.cli, in the order shown by --help
COMMANDS = {
    "info": "info",
    "convert": "convert",
    "downsample": "downsample",
    "simulate": "simulate",
    "backproject": "backproject",
    "train": "train",
    "volumes": "volumes",
    "fsc": "fsc",
    "analyze": "analyze",
    "landscape": "landscape",
    "traverse": "traverse",
    "select": "select",
    "states": "states",
    "reproduce": "reproduce",
    "dashboard": "dashboard",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cryoscape",
        description="cryoscape: heterogeneous single-particle cryo-EM reconstruction "
        "(simulate, reconstruct, train, explore).",
    )
    parser.add_argument("--version", action="version", version=f"cryoscape {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, modname in COMMANDS.items():
        mod = importlib.import_module(f"cryoscape.cli.{modname}")
        doc = (mod.__doc__ or "").strip()
        p = sub.add_parser(
            name, help=doc.splitlines()[0] if doc else "", description=doc, formatter_class=HelpFormatter
        )
        mod.add_args(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 1
    from cryoscape.errors import InputError

    try:
        rc = args._main(args)
    except InputError as e:
        print(f"cryoscape {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cryoscape {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` & co., which stopped reading: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # full disk, permissions: the user's environment, not a bug
        if e.errno is None:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"cryoscape {args.command}: error: {where}{e.strerror}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
