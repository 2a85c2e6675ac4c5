"""Side by side from finished runs: cryoscape runs and a cryoDRGN run on one simulated dataset.

`train_vs_cryodrgn.py` runs the tools one after the other; this script scores runs that were made
separately (e.g. each on its own pinned core, or with different number formats) with the same
scorer: every epoch's latent quality against the ground truth, training seconds per epoch from
each tool's own log, the last epoch's per-image FSC, and the time each cryoscape run needed to
reach cryoDRGN's final latent quality, and to reach both it and cryoDRGN's final per-image FSC
AUC (the per-image FSC of a cryoscape epoch is computed from the first epoch at the latent target
on, until one reaches the AUC target: the first epoch where both hold). Wall time and peak RSS of each run come from
`common.measure` (given per run, as the tools were measured when they ran).

Usage:
    python benchmarks/compare_runs.py --sim SIM --cryodrgn /venv/bin/cryodrgn \
        --drgn RUN WALL_S RSS_GB "COMMAND" --ours NAME RUN WALL_S RSS_GB "COMMAND" [--ours ...] -o out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from cryoscape.io.mrc import read_header

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Measured, perimage_cryodrgn, perimage_cryoscape
from provenance import provenance, save_result
from train_vs_cryodrgn import cryodrgn_curve, cryoscape_curve, first_reaching, plot


def reaching_both(
    run: Path, sim: Path, curve: list, metric: str, target: float, auc_target: float, n_sample: int
) -> dict:
    """The first epoch of a cryoscape run at both the latent target and the per-image FSC AUC
    target: ``{"epoch", "s", "auc"}`` (epoch and s None if no epoch gets there), plus every
    epoch's AUC that was computed on the way."""
    aucs = {}
    for epoch, (secs, q) in enumerate(curve):
        if q[metric] < target:
            continue
        aucs[epoch] = perimage_cryoscape(run, sim, n_sample, epoch=epoch)["mean_auc"]
        print(f"  {run.name} epoch {epoch}: {metric} {q[metric]:.3f}, per-image AUC {aucs[epoch]:.3f}", flush=True)
        if aucs[epoch] >= auc_target:
            return {"epoch": epoch, "s": secs, "auc": aucs[epoch], "aucs": aucs}
    return {"epoch": None, "s": None, "auc": None, "aucs": aucs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=Path, required=True)
    ap.add_argument("--cryodrgn", required=True, help="cryodrgn executable (for eval_vol)")
    ap.add_argument("--drgn", nargs=4, required=True, metavar=("RUN", "WALL_S", "RSS_GB", "COMMAND"))
    ap.add_argument(
        "--ours", nargs=5, action="append", required=True, metavar=("NAME", "RUN", "WALL_S", "RSS_GB", "COMMAND")
    )
    ap.add_argument("--perimage", type=int, default=128)
    ap.add_argument("--note", default="")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    gt = dict(np.load(args.sim / "ground_truth.npz"))
    metric = "spearman_pc1" if "t" in gt else "ari_kmeans"
    psize = read_header(args.sim / "gt_volumes" / "vol_000.mrc").psize_A
    tools = {}
    drun = Path(args.drgn[0])
    tools["cryoDRGN"] = {
        "curve": cryodrgn_curve(drun, gt),
        "cost": Measured(float(args.drgn[1]), float(args.drgn[2]), None, False),
        "command": args.drgn[3],
        "perimage": perimage_cryodrgn(args.cryodrgn, drun, args.sim, args.perimage, psize),
    }
    for name, run, wall, rss, cmd in args.ours:
        with open(Path(run) / "log.csv", newline="") as f:
            log = list(csv.DictReader(f))
        tools[name] = {
            "curve": cryoscape_curve(Path(run), gt),
            "cost": Measured(float(wall), float(rss), None, False),
            "command": cmd,
            "perimage": perimage_cryoscape(Path(run), args.sim, args.perimage),
            "run": run,
            "log": [{k: float(r[k]) for k in ("band", "seconds", "images_per_s") if r.get(k)} for r in log],
        }
    target = tools["cryoDRGN"]["curve"][-1][1][metric]
    t_drgn = tools["cryoDRGN"]["curve"][-1][0]
    auc_target = tools["cryoDRGN"]["perimage"]["mean_auc"]
    print(
        f"| tool | epochs | training s | img/s (median epoch) | peak RSS GB | final {metric} | "
        f"reaches cryoDRGN's final {metric} after | per-image FSC AUC | per-image res@0.5 Å |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    out = {}
    n = len(gt["volume_index"])
    for name, t in tools.items():
        c, per = t["curve"], t["perimage"]
        epoch_s = np.diff([0.0] + [s for s, _ in c])
        reached = first_reaching(c, metric, target)
        both = (
            None
            if name == "cryoDRGN"
            else reaching_both(Path(t["run"]), args.sim, c, metric, target, auc_target, args.perimage)
        )
        row = {
            "command": t["command"],
            "epochs": len(c),
            "train_s": c[-1][0],
            "wall_s": t["cost"].wall_s,
            "rss_gb": t["cost"].rss_gb,
            "images_per_s": n / float(np.median(epoch_s)),
            "final": c[-1][1],
            "reached_target_s": reached,
            "speedup_to_target": None if reached is None else t_drgn / reached,
            **(
                {}
                if both is None
                else {"reached_both": both, "speedup_to_both": None if both["s"] is None else t_drgn / both["s"]}
            ),
            "curve": [[s, q] for s, q in c],
            "epochs_log": t.get("log"),
            **{f"perimage_{k}": v for k, v in per.items()},
        }
        out[name] = row
        when = "-" if reached is None else f"{reached:.0f} s ({t_drgn / reached:.1f}x sooner)"
        print(
            f"| {name} | {len(c)} | {c[-1][0]:.0f} | {row['images_per_s']:.1f} | {row['rss_gb']:.2f} | "
            f"{c[-1][1][metric]:.3f} | {when} | {per['mean_auc']:.3f} | {per['mean_res05_A']:.2f} |"
        )
    save_result(
        args.out,
        {
            "provenance": provenance(cryodrgn=args.cryodrgn),
            "note": args.note,
            "simulation": json.loads((args.sim / "simulation.json").read_text()),
            "metric": metric,
            "target": target,
            "tools": out,
        },
    )
    plot({k: t["curve"] for k, t in tools.items()}, metric, args.out.with_suffix(".png"))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
