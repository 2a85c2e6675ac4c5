"""Shared options are declared once (cli/options.py) and spelled the same by every command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from cryoscape.cli import main as cli_main
from cryoscape.cli.main import build_parser

SHARED = ("--outdir", "--device", "--epoch", "--seed", "--threads", "--datadir", "--junk-threshold")
CLI_DIR = Path(cli_main.__file__).parent


def subparsers() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in p._actions for s in a.option_strings}


def test_shared_options_declared_only_in_options_module():
    for path in CLI_DIR.glob("*.py"):
        if path.name == "options.py":
            continue
        for opt in (*SHARED, "-o"):
            assert not re.search(rf"add_argument\([^)]*\"{opt}\"", path.read_text()), f"{path.name} declares {opt}"


def test_every_output_is_dash_o_outdir_and_old_spellings_are_hidden():
    old = {
        "convert": "--out",
        "downsample": "--out",
        "backproject": "--output",
        "fsc": "--output",
        "volumes": "--output",
    }
    with_o = set()
    for name, p in subparsers().items():
        opts = options(p)
        if "-o" not in opts:
            continue
        with_o.add(name)
        assert opts["-o"] is opts["--outdir"] and opts["-o"].dest == "outdir", name
        help_text = p.format_help()
        assert "--outdir" in help_text
        if name in old:
            assert opts[old[name]] is opts["-o"], name
            assert not re.search(rf"{old[name]}\b(?!-)", help_text), f"{name} --help shows {old[name]}"
    assert with_o == set(cli_main.COMMANDS) - {"info", "dashboard"}


def test_shared_options_mean_the_same_everywhere():
    for opt in ("--seed", "--threads", "--epoch", "--junk-threshold"):
        found = {
            (a.type, a.default, a.metavar) for p in subparsers().values() for s, a in options(p).items() if s == opt
        }
        assert len(found) == 1, (opt, found)
    devices = [options(p)["--device"] for p in subparsers().values() if "--device" in options(p)]
    assert len(devices) >= 6
    assert all(a.help and a.help.startswith("torch device") for a in devices)
    from cryoscape.analysis.junk import DEFAULT_THRESHOLD

    junk = [options(p)["--junk-threshold"] for p in subparsers().values() if "--junk-threshold" in options(p)]
    assert len(junk) >= 2 and all(a.default == DEFAULT_THRESHOLD for a in junk)  # the CLI's default is the library's


@pytest.mark.parametrize("spelling", ["-o", "--outdir", "--output"])
def test_volumes_run_and_outdir(spelling):
    args = build_parser().parse_args(["volumes", "run1", "--z", "z.txt", spelling, "maps"])
    assert (args.run, args.outdir) == ("run1", "maps")
    assert "RUN" in subparsers()["volumes"].format_usage()


@pytest.mark.parametrize("spelling", ["-o", "--outdir", "--out"])
def test_downsample_keeps_out_alias_beside_out_star(spelling):
    args = build_parser().parse_args(["downsample", "p.star", "-D", "64", spelling, "s.mrcs", "--out-star", "s.star"])
    assert (args.outdir, args.out_star) == ("s.mrcs", "s.star")


def test_every_command_main_is_short():
    """A command parses its options into library calls and prints: its ``main`` stays under 40 lines."""
    import importlib
    import inspect

    for name in [*cli_main.COMMANDS, "main"]:
        mod = importlib.import_module(f"cryoscape.cli.{cli_main.COMMANDS.get(name, name)}")
        lines = len(inspect.getsource(mod.main).splitlines())
        assert lines <= 40, f"cli/{mod.__name__.rsplit('.', 1)[1]}.py: main has {lines} lines"
