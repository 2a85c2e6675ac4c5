"""Heterogeneous training side by side with cryoDRGN `train_vae`: quality against wall time.

One run, one machine, one dataset (made with `cryoscape simulate --demo`, continuous hinge or
compositional states): trains cryoscape (its defaults) and cryoDRGN (its defaults, or a
CPU-sized architecture with --drgn-arch cpu), scores every epoch's latent codes with the same
scorer against the ground truth (|Spearman| of PC1 vs the hinge coordinate, or ARI of k-means
vs the states), and prints a table, the time cryoscape needs to reach cryoDRGN's final quality,
and a quality-vs-time plot.

Usage:
    python benchmarks/train_vs_cryodrgn.py --cryodrgn /path/to/venv/bin/cryodrgn \
        [--kind continuous] [-n 10000] [-D 64] [--epochs 20] [--drgn-epochs 20] [--drgn-arch default|cpu]
"""

from __future__ import annotations

import argparse
import csv
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import latent_quality, run_measured  # noqa: E402

#: cryoDRGN's defaults (1024 x 3 encoder and decoder), or the width cryoscape uses by default
DRGN_ARCH = {"default": [], "cpu": ["--enc-dim", "256", "--dec-dim", "256"]}


def cryoscape_curve(run: Path, gt: dict) -> list[tuple[float, dict]]:
    """(cumulative training seconds, quality) after each epoch, from log.csv and z.<e>.npy."""
    with open(run / "log.csv", newline="") as f:
        secs = np.cumsum([float(r["seconds"]) for r in csv.DictReader(f)])
    return [(float(secs[e]), latent_quality(np.load(run / f"z.{e}.npy"), gt)) for e in range(len(secs))]


def cryodrgn_curve(run: Path, gt: dict) -> list[tuple[float, dict]]:
    """The same for cryoDRGN: per-epoch times from its run.log, codes from z.<e>.pkl (1-based)."""
    log = (run / "run.log").read_text()
    times = re.findall(r"Epoch: \d+ .*?Finished in (\d+):(\d+):([\d.]+)", log)
    secs = np.cumsum([int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in times])
    out = []
    for e, t in enumerate(secs, start=1):
        with open(run / f"z.{e}.pkl", "rb") as f:
            out.append((float(t), latent_quality(np.asarray(pickle.load(f)), gt)))
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
    ax.set_xlabel("training wall time (min)")
    ax.set_ylabel(metric)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def report(curves: dict[str, list], walls: list[float], rsss: list[float], metric: str, drgn: str) -> None:
    print("| tool | epochs | total wall s | peak RSS GB | final " + metric + " |")
    print("|---|---|---|---|---|")
    for (name, c), wall, rss in zip(curves.items(), walls, rsss):
        print(f"| {name} | {len(c)} | {wall:.0f} | {rss:.2f} | {c[-1][1][metric]:.3f} |")
    target = curves[drgn][-1][1][metric]
    t_ours, t_drgn = first_reaching(curves["cryoscape"], metric, target), curves[drgn][-1][0]
    if t_ours is None:
        print(f"cryoscape did not reach cryoDRGN's final {metric} {target:.3f}")
    else:
        print(f"cryoscape reached cryoDRGN's final {metric} {target:.3f} after {t_ours:.0f} s of training, "
              f"cryoDRGN after {t_drgn:.0f} s: {t_drgn / t_ours:.1f}x sooner")
    print("per epoch (cumulative training s, metric):")
    for name, c in curves.items():
        print(f"  {name}: " + ", ".join(f"{t:.0f}s {q[metric]:.3f}" for t, q in c))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cryodrgn", required=True, help="path to the cryodrgn executable")
    ap.add_argument("--kind", choices=("continuous", "compositional"), default="continuous")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-D", type=int, default=64)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--zdim", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=20, help="cryoscape epochs")
    ap.add_argument("--drgn-epochs", type=int, default=20)
    ap.add_argument("--drgn-arch", choices=tuple(DRGN_ARCH), default="default")
    ap.add_argument("--workdir")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="train_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    sim = work / "sim"
    cryoscape = [sys.executable, "-m", "cryoscape.cli.main"]
    if not (sim / "ground_truth.npz").exists():
        subprocess.run([*cryoscape, "simulate", "--demo", "--kind", args.kind, "-n", str(args.n),
                        "-D", str(args.D), "--snr", str(args.snr), "-o", str(sim)], check=True)
    gt = dict(np.load(sim / "ground_truth.npz"))
    metric = "spearman_pc1" if args.kind == "continuous" else "ari_kmeans"

    ours, drgn = work / "cryoscape", work / "cryodrgn"
    wall_c, rss_c = run_measured([*cryoscape, "train", str(sim / "particles.star"), "-o", str(ours),
                                  "--zdim", str(args.zdim), "-n", str(args.epochs)], work / "cryoscape.log")
    wall_d, rss_d = run_measured([args.cryodrgn, "train_vae", str(sim / "particles.mrcs"),
                                  "--poses", str(sim / "poses.pkl"), "--ctf", str(sim / "ctf.pkl"),
                                  "--zdim", str(args.zdim), "-n", str(args.drgn_epochs), "-o", str(drgn),
                                  "--no-analysis", *DRGN_ARCH[args.drgn_arch]], work / "cryodrgn.log")
    drgn_name = f"cryoDRGN ({args.drgn_arch})"
    curves = {"cryoscape": cryoscape_curve(ours, gt), drgn_name: cryodrgn_curve(drgn, gt)}
    print(f"\n{args.n} particles, D={args.D}, SNR {args.snr}, {args.kind}, zdim {args.zdim}; metric {metric}")
    report(curves, [wall_c, wall_d], [rss_c, rss_d], metric, drgn_name)
    plot(curves, metric, work / "quality_vs_time.png")
    print(f"plot: {work / 'quality_vs_time.png'}")


if __name__ == "__main__":
    main()
