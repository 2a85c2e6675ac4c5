"""Does the heterogeneity reproduce? Train on the two half-sets and compare their latent spaces.

The particles are split as the refinement split them (RELION's _rlnRandomSubset, cryoSPARC's
alignments3D/split), else at random (--seed); each
half is trained with the options of `cryoscape train` into OUTDIR/half1 and OUTDIR/half2 (re-run
the command to resume). The halves are then compared through their maps and OUTDIR/compare gets:
reproduce.json (map agreement: how closely the map changes each half learnt coincide, the
cosine of the smallest angle between their leading modes, reproduced at 0.5 or more; states
matched between the halves with their particle overlap and map-to-map FSC), particles.csv (every
particle's state under each half's maps and whether they match), state_NN_half1/2.mrc and
agreement.png. A motion in the data scores high; a homogeneous sample near 0. See docs/states.md.

example:
  cryoscape reproduce particles.star -o repro --zdim 8 -n 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryoscape.cli import train


def add_args(p: argparse.ArgumentParser) -> None:
    train.add_args(p)
    g = p.add_argument_group("comparison")
    g.add_argument("--k", type=int, metavar="K", help="states per half (default: chosen by ICL)")
    g.add_argument("--kmax", type=int, default=10, help="largest number of states considered (default: 10)")
    g.add_argument("--centres", type=int, default=12, help="on-data centres whose maps give a half's variability")


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.reproduce_run import CompareConfig, compare_halves, train_halves
    from cryoscape.cli.common import optics_fill
    from cryoscape.device import resolve_device
    from cryoscape.errors import InputError
    from cryoscape.train.run import RunConfig

    if args.zdim < 1:
        raise InputError("--zdim must be at least 1: a homogeneous model has no latent space to compare")
    out = Path(args.outdir)
    half1, half2 = train_halves(RunConfig.from_args(args, optics=optics_fill(args)), out)
    cfg = CompareConfig(
        k=args.k, kmax=args.kmax, centres=args.centres, seed=args.seed, device=str(resolve_device(args.device))
    )
    s = compare_halves(half1, half2, out / "compare", cfg)
    verdict = "reproduced" if s["reproduced"] else "NOT reproduced"
    print(f"map agreement {s['map_agreement']:.3f} (threshold {s['threshold']}): heterogeneity {verdict}")
    print(f"{s['k'][0]} and {s['k'][1]} states; particles agreeing {s['particle_agreement']:.3f}, ARI {s['ari']:.3f}")
    for st in s["states"]:
        print(f"state {st['state']}: overlap {st['jaccard']:.2f}, half-map FSC {st['fsc_0143_A']:.1f} Å at 0.143")
    print(f"cryoscape reproduce: results in {out / 'compare'} (reproduce.json, agreement.png)", file=sys.stderr)
    return 0
