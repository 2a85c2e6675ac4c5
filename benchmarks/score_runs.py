"""Score finished cryoscape training runs on one simulated dataset with the benchmarks' scorer.

For each run folder: the latent quality of every epoch's codes against the ground truth
(|Spearman| of PC1 vs the continuous coordinate, or ARI of k-means vs the states), training
seconds and images/s per epoch from log.csv, and the per-image FSC (mean AUC, mean resolution at
0.5) of the last epoch. Used for ablations where each variant is an ordinary `cryoscape train`
command (given with --commands, recorded in the JSON beside the provenance).

Usage:
    python benchmarks/score_runs.py --sim SIM RUN1 RUN2 ... --commands "cryoscape train ..." ... -o out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import perimage_cryoscape
from provenance import provenance, save_result
from train_vs_cryodrgn import cryoscape_curve


def score_run(run: Path, sim: Path, gt: dict, n_perimage: int) -> dict:
    """Per-epoch curve, timings and the last epoch's per-image FSC of one run folder."""
    metric = "spearman_pc1" if "t" in gt else "ari_kmeans"
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    curve = [q[metric] for _, q in cryoscape_curve(run, gt)]
    per = perimage_cryoscape(run, sim, n_perimage) if n_perimage else {}
    return {
        "run": run.name,
        "metric": metric,
        "curve": curve,
        "epoch_s": [float(r["seconds"]) for r in rows],
        "images_per_s": [float(r["images_per_s"]) for r in rows],
        "band": [float(r.get("band") or 1.0) for r in rows],
        "train_s": sum(float(r["seconds"]) for r in rows),
        **{f"perimage_{k}": v for k, v in per.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--sim", type=Path, required=True, help="the simulation folder the runs trained on")
    ap.add_argument("--commands", nargs="+", default=[], help="the command that made each run, in order")
    ap.add_argument("--perimage", type=int, default=128, help="particles in the per-image FSC (0: skip)")
    ap.add_argument("--note", default="", help="what the machine was doing meanwhile, etc.")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    gt = dict(np.load(args.sim / "ground_truth.npz"))
    sim_cfg = json.loads((args.sim / "simulation.json").read_text())
    runs = [score_run(r, args.sim, gt, args.perimage) for r in args.runs]
    for r, cmd in zip(runs, args.commands):
        r["command"] = cmd
    for r in runs:
        print(
            f"{r['run']}: {r['metric']} per epoch "
            + " ".join(f"{q:.3f}" for q in r["curve"])
            + f"; train {r['train_s']:.0f} s; per-image AUC {r.get('perimage_mean_auc', float('nan')):.4f}"
        )
    save_result(args.out, {"provenance": provenance(), "simulation": sim_cfg, "note": args.note, "runs": runs})
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
