"""Issue 18's reproducibility experiment: does `cryoscape reproduce` tell a real motion from none?

For each seed, the demo molecule is simulated either with its hinge motion (``continuous``) or
with the hinge fixed (``homogeneous``: ``--max-angle 0``, same SNR, CTF and poses), and
`cryoscape reproduce` trains on the two halves and compares them. Recorded per seed: the latent
map agreement (RV coefficient of the halves' map covariances) and the verdict at its threshold,
the principal-angle cosines, the states per half, the share of particles assigned alike by both
halves' maps (with its chance level and ARI), and, against the truth, each half's |Spearman| of
latent PC1 with the hinge coordinate t on its own particles (continuous only).

Usage: python benchmarks/reproduce_halves.py --kind continuous --seeds 0 1 2 -o results/cpu/reproduce_continuous.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure
from provenance import provenance, save_result


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cryoscape.cli.main", *args]


def truth(sim: Path, rep: Path) -> dict:
    """|Spearman| of each half's latent PC1 with t, over its own particles."""
    from cryoscape.analysis.latent import pca
    from cryoscape.io.cryodrgn import read_index

    t = np.load(sim / "ground_truth.npz")["t"]
    rho = {}
    for h in (1, 2):
        z, rows = np.load(rep / f"half{h}" / "z.npy"), read_index(rep / f"half{h}_ind.pkl")
        rho[f"half{h}"] = round(float(abs(spearmanr(pca(z).coords[:, 0], t[rows]).statistic)), 4)
    return rho


def one(kind: str, seed: int, args: argparse.Namespace, work: Path) -> dict:
    sim, rep = work / f"sim_{kind}{seed}", work / f"rep_{kind}{seed}"
    th = ["--threads", str(args.threads)]
    motion = ["--max-angle", "0"] if kind == "homogeneous" else []
    simulate = ["simulate", "--demo", "--kind", "continuous", *motion, "-n", str(args.n), "-D", str(args.D)]
    measure(cli(*simulate, "--snr", str(args.snr), "--seed", str(seed), "-o", str(sim), *th), work / "sim.log")
    train = ["--zdim", str(args.zdim), "-n", str(args.epochs), "--seed", str(seed), *th]
    m = measure(cli("reproduce", str(sim / "particles.star"), "-o", str(rep), *train), work / f"rep{seed}.log")
    s = json.loads((rep / "compare" / "reproduce.json").read_text())
    keep = (
        "map_agreement",
        "reproduced",
        "mode_cosines",
        "k",
        "compared",
        "particle_agreement",
        "chance_agreement",
        "ari",
    )
    row = {"seed": seed, "wall_s": round(m.wall_s, 1), "peak_rss_gb": round(m.rss_gb, 3), **{k: s[k] for k in keep}}
    row["states"] = [{k: v for k, v in st.items() if k in ("jaccard", "fsc_0143_A")} for st in s["states"]]
    if kind == "continuous":
        row["pc1_spearman_vs_t"] = truth(sim, rep)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--kind", choices=("continuous", "homogeneous"), required=True)
    ap.add_argument("-n", type=int, default=3000, help="particles, both halves (default: 3000)")
    ap.add_argument("-D", type=int, default=64)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--zdim", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix=f"reproduce_{args.kind}_"))
    t0 = time.time()
    runs = []
    for seed in args.seeds:
        runs.append(one(args.kind, seed, args, work))
        print(json.dumps(runs[-1]), flush=True)
    from cryoscape.analysis.reproduce import REPRODUCED

    result = {
        "provenance": provenance(),
        "kind": args.kind,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "kind")},
        "threshold": REPRODUCED,
        "runs": runs,
        "total_s": round(time.time() - t0, 1),
    }
    save_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
