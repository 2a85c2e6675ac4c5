"""The volume landscape and latent density of a run on the continuous demo, scored against the truth.

Runs `cryoscape landscape RUN` (measured by benchmarks/common.py) and reads what it wrote: the
connected components of the sampled maps' k-NN graph in volume-PC space, |Spearman| of volume
PC1 and of the main-path order against the simulation's hinge coordinate t (of the on-data
centre particle, and the mean t of the particles nearest each centre), and the latent density
(-log density / max) along the paths. Copies the two main PNGs beside the JSON.

Usage: python benchmarks/landscape_demo.py RUN SIMDIR -o results/cpu/landscape_continuous_3k.json [-- --n-maps 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure
from provenance import provenance, save_result


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(abs(spearmanr(a, b).statistic)), 4)


def score(out: Path, t: np.ndarray, z: np.ndarray) -> dict:
    """Truth scores of a landscape folder ``out`` for per-particle ``t`` and codes ``z``."""
    from cryoscape.analysis.latent import pca

    summ = json.loads((out / "landscape.json").read_text())
    ind = np.loadtxt(out / "centers_ind.txt", dtype=np.int64)
    owner = np.load(out / "particle_centers.npy")
    vpc = np.load(out / "vol_pca.npy")
    order = np.load(out / "path_order.npy")
    t_centre = t[ind]
    t_members = np.array([t[owner == i].mean() for i in range(len(ind))])
    main = np.isfinite(order)
    dens = json.loads((out / "density.json").read_text())
    return {
        "n_maps": summ["n_maps"],
        "box": summ["box"],
        "psize_A": summ["psize_A"],
        "path_check": {k: v for k, v in summ["path_check"].items() if k != "main_path"},
        "main_path_length": len(summ["path_check"]["main_path"]),
        "volume_pc1_explained": summ["explained_variance_ratio"][0],
        "spearman_volume_pc1_vs_t_centre": _rho(vpc[:, 0], t_centre),
        "spearman_volume_pc1_vs_t_members": _rho(vpc[:, 0], t_members),
        "spearman_path_order_vs_t_centre": _rho(order[main], t_centre[main]),
        "spearman_path_order_vs_t_members": _rho(order[main], t_members[main]),
        "spearman_latent_pc1_vs_t_particles": _rho(pca(z, 1).coords[:, 0], t),
        "density_profiles_max_g": {p["name"]: round(max(p["g"]), 3) for p in dens["profiles"]},
        "landscape_seconds": summ["seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("sim", type=Path, help="the simulation folder (ground_truth.npz)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("landscape_args", nargs="*", help="arguments for cryoscape landscape (after --)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="landscape_"))
    land = work / "landscape"
    cmd = [sys.executable, "-m", "cryoscape.cli.main", "landscape", str(args.run), "-o", str(land)]
    m = measure([*cmd, *args.landscape_args], work / "landscape.log")
    t = np.load(args.sim / "ground_truth.npz")["t"]
    res = {
        "provenance": provenance(),
        "landscape_args": args.landscape_args,
        "wall_s": m.wall_s,
        "rss_gb": m.rss_gb,
        **score(land, t, np.load(args.run / "z.npy")),
    }
    save_result(args.out, res)
    for png in ("volume_pca", "free_energy_pc12"):
        shutil.copy(land / f"{png}.png", args.out.with_name(f"{args.out.stem}_{png}.png"))
    print(json.dumps({k: v for k, v in res.items() if k != "provenance"}, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
