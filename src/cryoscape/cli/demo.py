"""Run the whole pipeline on the built-in demo molecule: simulate, backproject, train, maps.

Makes a small synthetic dataset with ground truth (the demo molecule's hinge motion, or its
removable domain with --kind compositional), reconstructs the consensus map, trains the VAE,
writes maps along the first principal component of the latent space and reports how well the
latent codes recover the true conformations. Every step is an ordinary cryoscape command,
printed before it runs, so the demo doubles as a tutorial.

example:
  cryoscape demo -o cryoscape_demo
  cryoscape demo --kind compositional -n 2000 --epochs 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cryoscape.cli.options import add_outdir, add_seed


def add_args(p: argparse.ArgumentParser) -> None:
    add_outdir(p, default="cryoscape_demo", help="output folder (default: cryoscape_demo)")
    p.add_argument(
        "--kind",
        choices=("continuous", "compositional"),
        default="continuous",
        help="heterogeneity of the demo dataset (default: continuous hinge motion)",
    )
    p.add_argument("-n", "--n-particles", type=int, default=3000, help="particles (default: 3000)")
    p.add_argument("-D", "--box", type=int, default=64, help="box size in pixels (default: 64)")
    p.add_argument("--snr", type=float, default=0.1, help="signal-to-noise ratio (default: 0.1)")
    p.add_argument("--zdim", type=int, default=8, help="latent dimension (default: 8)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    add_seed(p)
    p.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train in bf16 mixed precision (default: where the machine computes bf16 natively)",
    )


def _run(argv: list[str]) -> None:
    """Run one cryoscape command in this process, echoing it first."""
    from cryoscape.cli.main import main as cryoscape
    from cryoscape.errors import InputError

    print(f"\n$ cryoscape {' '.join(argv)}", flush=True)
    rc = cryoscape(argv)
    if rc:
        raise InputError(f"step 'cryoscape {argv[0]}' failed (exit {rc})")


def _steps(args: argparse.Namespace, out: Path) -> dict[str, list[str]]:
    """The cryoscape command lines the demo runs, by name."""
    data, train = out / "data", out / "train"
    amp = [] if args.amp is None else ["--amp" if args.amp else "--no-amp"]
    return {
        "simulate": ["simulate", "--demo", "--kind", args.kind, "-n", str(args.n_particles), "-D", str(args.box)]
        + ["--snr", str(args.snr), "--seed", str(args.seed), "-o", str(data)],
        "backproject": ["backproject", str(data / "particles.star"), "-o", str(out / "backproject" / "consensus.mrc")],
        "train": ["train", str(data / "particles.star"), "-o", str(train), "--zdim", str(args.zdim)]
        + ["-n", str(args.epochs), "--seed", str(args.seed), *amp],
        "volumes": ["volumes", str(train), "--z", str(out / "pc1_codes.txt"), "-o", str(out / "maps_pc1")],
    }


def main(args: argparse.Namespace) -> int:
    import numpy as np

    from cryoscape.analysis.latent import pc_traversal, pca, truth_summary
    from cryoscape.io.atomic import save_text_array

    out = Path(args.outdir)
    steps = _steps(args, out)
    t0 = time.perf_counter()
    _run(steps["simulate"])
    (out / "backproject").mkdir(parents=True, exist_ok=True)
    _run(steps["backproject"])
    _run(steps["train"])
    z = np.load(out / "train" / "z.npy")
    save_text_array(out / "pc1_codes.txt", pc_traversal(pca(z), dim=1, n=6))
    _run(steps["volumes"])
    summary = truth_summary(z, out / "data" / "ground_truth.npz", args.kind)
    print(f"""
cryoscape demo finished in {time.perf_counter() - t0:.0f} s. Results in {out}/:
  data/particles.star, .mrcs, .cs   simulated particles (ground truth: data/ground_truth.npz, data/gt_volumes/)
  backproject/consensus.mrc         consensus map, half-maps and gold-standard FSC
  train/                            trained model: z.npy (latent codes), weights.pt, log.csv, config.yaml
  maps_pc1/vol_0000..0005.mrc       maps along latent PC1 (open them in ChimeraX as a series)
{summary}""")
    return 0
