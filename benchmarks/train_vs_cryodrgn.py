"""Heterogeneous training side by side with cryoDRGN `train_vae`: quality against wall time.

One run, one machine, one dataset (made with `cryoscape simulate --demo`, continuous hinge or
compositional states): trains cryoscape (its defaults) and cryoDRGN (its defaults, or a
CPU-sized architecture with --drgn-arch cpu), scores every epoch's latent codes with the same
scorer against the ground truth (|Spearman| of PC1 vs the hinge coordinate, or ARI of k-means
vs the states), and prints a table, the time cryoscape needs to reach cryoDRGN's final quality,
and a quality-vs-time plot.

cryoDRGN's default architecture needs ~10 h for 20 epochs of 10k particles on a 2-core CPU. Its
final quality does not depend on the machine that trained it, so ``--drgn-reference`` takes
cryoDRGN's curve, final quality and per-image FSC from an earlier ``results.json`` of this script
with the same dataset settings (e.g. a GPU run) instead of running it, and ``--drgn-train-s``
gives its training time on *this* machine (measured per epoch elsewhere) for the time ratio.

Usage:
    python benchmarks/train_vs_cryodrgn.py --cryodrgn /path/to/venv/bin/cryodrgn \
        [--kind continuous] [-n 10000] [-D 64] [--epochs 20] [--drgn-epochs 20] [--drgn-arch default|cpu]
    python benchmarks/train_vs_cryodrgn.py --drgn-reference results.json --drgn-train-s 37940
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from cryoscape.device import resolve_device
from cryoscape.io.mrc import read_header

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Measured,
    latent_quality,
    measure,
    perimage_cryodrgn,
    perimage_cryoscape,
)
from provenance import provenance, save_result

#: cryoDRGN's defaults (1024 x 3 encoder and decoder), or the width cryoscape uses by default
DRGN_ARCH = {"default": [], "cpu": ["--enc-dim", "256", "--dec-dim", "256"]}
CRYOSCAPE = [sys.executable, "-m", "cryoscape.cli.main"]


def cryoscape_curve(run: Path, gt: dict) -> list[tuple[float, dict]]:
    """(cumulative training seconds, quality) after each epoch, from log.csv and z.<e>.npy."""
    with open(run / "log.csv", newline="") as f:
        secs = np.cumsum([float(r["seconds"]) for r in csv.DictReader(f)])
    return [
        (float(secs[e]), latent_quality(np.load(run / f"z.{e}.npy"), gt))
        for e in range(len(secs))
        if (run / f"z.{e}.npy").exists()
    ]


def cryodrgn_curve(run: Path, gt: dict) -> list[tuple[float, dict]]:
    """The same for cryoDRGN: per-epoch times from its run.log, codes from z.<e>.pkl (1-based).
    An epoch whose codes were not completely written (a run stopped by the time limit) ends it."""
    log = (run / "run.log").read_text()
    times = re.findall(r"Epoch: \d+ .*?Finished in (\d+):(\d+):([\d.]+)", log)
    secs = np.cumsum([int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in times])
    out = []
    for e, t in enumerate(secs, start=1):
        try:
            with open(run / f"z.{e}.pkl", "rb") as f:
                out.append((float(t), latent_quality(np.asarray(pickle.load(f)), gt)))
        except (OSError, EOFError, pickle.UnpicklingError):
            break
    return out


def first_reaching(curve: list[tuple[float, dict]], metric: str, target: float) -> float | None:
    """Training seconds at the first epoch whose ``metric`` reaches ``target`` (None if never)."""
    return next((t for t, q in curve if q[metric] >= target), None)


def plot(curves: dict[str, list], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        ax.plot([t / 60 for t, _ in c], [q[metric] for _, q in c], "o-", label=name)
    times = [t for c in curves.values() for t, _ in c if t > 0]
    if times and max(times) / min(times) > 100:  # one tool's curve would be squeezed into a corner
        ax.set_xscale("log")
    ax.set_xlabel("training wall time (min)")
    ax.set_ylabel(metric)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def report(
    curves: dict[str, list], cost: dict[str, Measured], n: int, metric: str, drgn: str, perimage: dict[str, dict]
) -> dict:
    """Print the table, the time-to-quality ratio and the per-epoch curves; return them as a dict."""
    print(
        "| tool | epochs | total wall s | training s | median s/epoch | img/s | peak RSS GB | "
        f"peak GPU GB | final {metric} | per-image FSC AUC | per-image res@0.5 Å |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = {}
    for name, c in curves.items():
        m, per = cost[name], perimage.get(name, {})
        epoch_s = np.diff([0.0] + [t for t, _ in c])
        row = {
            "epochs": len(c),
            "wall_s": m.wall_s,
            "train_s": c[-1][0],
            "median_epoch_s": float(np.median(epoch_s)),
            "images_per_s": n / float(np.median(epoch_s)),
            "rss_gb": m.rss_gb,
            "gpu_gb": m.gpu_gb,
            "timed_out": m.timed_out,
            "final": c[-1][1],
            **{f"perimage_{k}": v for k, v in per.items()},
        }
        rows[name] = row
        gpu = "-" if m.gpu_gb is None else f"{m.gpu_gb:.2f}"
        stop = " (time limit)" if m.timed_out else ""
        print(
            f"| {name} | {len(c)}{stop} | {m.wall_s:.0f} | {row['train_s']:.0f} | {row['median_epoch_s']:.2f} | "
            f"{row['images_per_s']:.0f} | {m.rss_gb:.2f} | {gpu} | {c[-1][1][metric]:.3f} | "
            f"{per.get('mean_auc', float('nan')):.3f} | {per.get('mean_res05_A', float('nan')):.2f} |"
        )
    target = curves[drgn][-1][1][metric]
    t_ours, t_drgn = first_reaching(curves["cryoscape"], metric, target), curves[drgn][-1][0]
    if t_ours is None:
        print(f"cryoscape did not reach cryoDRGN's final {metric} {target:.3f}")
    else:
        print(
            f"cryoscape reached cryoDRGN's final {metric} {target:.3f} after {t_ours:.0f} s of training, "
            f"cryoDRGN after {t_drgn:.0f} s: {t_drgn / t_ours:.1f}x sooner"
        )
    print("per epoch (cumulative training s, metric):")
    for name, c in curves.items():
        print(f"  {name}: " + ", ".join(f"{t:.0f}s {q[metric]:.3f}" for t, q in c))
    return {
        "metric": metric,
        "target": target,
        "cryoscape_reached_s": t_ours,
        "cryodrgn_s": t_drgn,
        "tools": rows,
        "curves": {k: [[t, q] for t, q in c] for k, c in curves.items()},
    }


def reference(args: argparse.Namespace) -> tuple[str, list, Measured, dict]:
    """cryoDRGN's name, curve, cost and per-image FSC from an earlier results.json of this script.

    The curve's times are rescaled so that its last epoch ends at ``--drgn-train-s`` (when given):
    cryoDRGN's quality per epoch is the reference's, its time is this machine's."""
    ref = json.loads(Path(args.drgn_reference).read_text())
    for key in ("kind", "n", "D", "snr", "zdim"):
        if ref["settings"][key] != getattr(args, key):
            sys.exit(
                f"{args.drgn_reference}: reference has {key}={ref['settings'][key]}, this run {getattr(args, key)}"
            )
    name = next(k for k in ref["tools"] if k.startswith("cryoDRGN"))
    curve, row = [(float(t), q) for t, q in ref["curves"][name]], ref["tools"][name]
    scale = args.drgn_train_s / curve[-1][0] if args.drgn_train_s else 1.0
    curve = [(t * scale, q) for t, q in curve]
    gpu = row["gpu_gb"] if not args.drgn_train_s else None  # not this machine's
    cost = Measured(wall_s=row["wall_s"] * scale, rss_gb=row["rss_gb"], gpu_gb=gpu, timed_out=False)
    per = {k[len("perimage_") :]: v for k, v in row.items() if k.startswith("perimage_")}
    return f"{name}, reference", curve, cost, per


def simulate(args: argparse.Namespace, sim: Path) -> None:
    if not (sim / "ground_truth.npz").exists():
        subprocess.run(
            [
                *CRYOSCAPE,
                "simulate",
                "--demo",
                "--kind",
                args.kind,
                "-n",
                str(args.n),
                "-D",
                str(args.D),
                "--snr",
                str(args.snr),
                "-o",
                str(sim),
            ],
            check=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cryodrgn", help="path to the cryodrgn executable (to run it)")
    ap.add_argument("--drgn-reference", help="results.json of an earlier run: cryoDRGN's figures from it")
    ap.add_argument(
        "--drgn-train-s",
        type=float,
        help="with --drgn-reference: cryoDRGN's training s on this machine (default: the reference's)",
    )
    ap.add_argument("--kind", choices=("continuous", "compositional"), default="continuous")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-D", type=int, default=64)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--zdim", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=20, help="cryoscape epochs")
    ap.add_argument("--drgn-epochs", type=int, default=20)
    ap.add_argument("--drgn-arch", choices=tuple(DRGN_ARCH), default="default")
    ap.add_argument("--time-limit", type=float, default=0, help="stop each tool after this many s (0: none)")
    ap.add_argument("--perimage", type=int, default=128, help="particles in the per-image FSC (0: skip)")
    ap.add_argument("--device", default="auto", help="cryoscape's --device (cryoDRGN uses CUDA when present)")
    ap.add_argument("--workdir")
    args = ap.parse_args()
    if (args.cryodrgn is None) == (args.drgn_reference is None):
        ap.error("give either --cryodrgn (run it) or --drgn-reference (reuse an earlier run)")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="train_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    sim = work / "sim"
    simulate(args, sim)
    gt = dict(np.load(sim / "ground_truth.npz"))
    metric = "spearman_pc1" if args.kind == "continuous" else "ari_kmeans"
    psize = read_header(sim / "gt_volumes" / "vol_000.mrc").psize_A

    ours, drgn = work / "cryoscape", work / "cryodrgn"
    cost = {
        "cryoscape": measure(
            [
                *CRYOSCAPE,
                "train",
                str(sim / "particles.star"),
                "-o",
                str(ours),
                "--overwrite",
                "--zdim",
                str(args.zdim),
                "-n",
                str(args.epochs),
                "--device",
                args.device,
            ],
            work / "cryoscape.log",
            args.time_limit,
        )
    }
    curves = {"cryoscape": cryoscape_curve(ours, gt)}
    perimage = {}
    if args.perimage:
        perimage["cryoscape"] = perimage_cryoscape(ours, sim, args.perimage, str(resolve_device(args.device)))
    if args.drgn_reference:
        drgn_name, curves[drgn_name], cost[drgn_name], perimage[drgn_name] = reference(args)
    else:
        drgn_name = f"cryoDRGN ({args.drgn_arch})"
        if drgn.exists():  # cryoDRGN appends to an old run.log, whose epoch times cryodrgn_curve would read
            shutil.rmtree(drgn)
        cost[drgn_name] = measure(
            [
                args.cryodrgn,
                "train_vae",
                str(sim / "particles.mrcs"),
                "--poses",
                str(sim / "poses.pkl"),
                "--ctf",
                str(sim / "ctf.pkl"),
                "--zdim",
                str(args.zdim),
                "-n",
                str(args.drgn_epochs),
                "-o",
                str(drgn),
                "--no-analysis",
                *DRGN_ARCH[args.drgn_arch],
            ],
            work / "cryodrgn.log",
            args.time_limit,
        )
        curves[drgn_name] = cryodrgn_curve(drgn, gt)
        if args.perimage:
            perimage[drgn_name] = perimage_cryodrgn(args.cryodrgn, drgn, sim, args.perimage, psize)
    print(
        f"\n{args.n} particles, D={args.D}, SNR {args.snr}, {args.kind}, zdim {args.zdim}; metric {metric}; "
        f"per-image FSC over {args.perimage} particles at each tool's last epoch"
    )
    res = report(curves, cost, args.n, metric, drgn_name, perimage)
    res["settings"] = vars(args)
    res["provenance"] = provenance(cryodrgn=args.cryodrgn)
    save_result(work / "results.json", res)
    plot(curves, metric, work / "quality_vs_time.png")
    print(f"plot: {work / 'quality_vs_time.png'}; results: {work / 'results.json'}")


if __name__ == "__main__":
    main()
