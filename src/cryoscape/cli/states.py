"""Discrete states of a trained run: how many, which particles, and a map of each with its resolution.

Junk is scored first from how well the model explains each image (fitted amplitude and residual,
as robust z-scores; --junk-threshold) and left out (--keep-junk to keep it). The number of states
is chosen on the remaining latent codes by a Gaussian mixture over K = 1..--kmax with the
integrated completed likelihood (ICL; --criterion bic for BIC), the evidence plotted in
states_evidence.png; --k fixes it. For each state OUTDIR gets state_NN/backproject.mrc with
half-maps and the masked gold-standard FSC (resolution at 0.143), state_NN/decoder.mrc (the model's
map at the state's centre), and subsets/state_NN.star/.cs/.pkl; junk goes to subsets/junk.*,
the rest to subsets/keep.*. states.json and report.md/report.html summarise. See docs/states.md.

example:
  cryoscape states run1 -o run1/states
  cryoscape states run1 -o run1/states4 --k 4 --keep-junk
"""

from __future__ import annotations

import argparse
import sys

from cryoscape.cli.common import setup_torch
from cryoscape.cli.options import add_device, add_epoch, add_junk_threshold, add_outdir, add_seed, add_threads


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="output folder of cryoscape train")
    add_outdir(p, required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--k", type=int, metavar="K", help="use K states instead of choosing the number")
    p.add_argument("--kmax", type=int, default=10, help="largest number of states considered (default: 10)")
    p.add_argument("--criterion", choices=("icl", "bic"), default="icl", help="how K is chosen (default: icl)")
    p.add_argument("--keep-junk", action="store_true", help="score junk but keep it in the states")
    add_junk_threshold(p)
    add_epoch(p)
    add_seed(p)
    add_device(p)
    add_threads(p)


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.state_maps import StatesConfig, run_states
    from cryoscape.errors import InputError

    if (args.k is not None and args.k < 1) or args.kmax < 1:
        raise InputError("--k and --kmax must be at least 1")
    device = setup_torch(args.threads, args.device)
    cfg = StatesConfig(
        k=args.k,
        kmax=args.kmax,
        criterion=args.criterion,
        exclude_junk=not args.keep_junk,
        junk_threshold=args.junk_threshold,
        epoch=args.epoch,
        seed=args.seed,
        device=str(device),
    )
    summary = run_states(args.run, args.outdir, cfg)
    for s in summary["states"]:
        print(
            f"state {s['state']}: {s['n']} particles ({100 * s['share']:.1f}%), "
            f"{s['res_0143_A']:.2f} Å at FSC 0.143 (masked half-maps)"
        )
    print(f"cryoscape states: {summary['k']} states written to {args.outdir} (report.html)", file=sys.stderr)
    return 0
