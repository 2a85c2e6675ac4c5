"""Issue 18's experiment: unequal discrete states plus junk; does `cryoscape states` find them?

Five states of the demo molecule (hinge closed/half/open, extra domain on/off) at 3, 8, 16, 28
and 45% of the particles, plus a share of junk (empty picks, a decoy molecule, ice blobs;
`cryoscape simulate --junk`), are simulated, trained on with `cryoscape train`, and analysed with
`cryoscape states`. Scores: the chosen K against 5; per true state, the resolution at FSC 0.5
between the map backprojected from the particles `states` gave it and the true map, against the
same from backprojecting the state's true particles (both with the same half-map Wiener filter,
both masked with the true map's auto mask), each true state matched to the predicted state
holding most of its particles (``one_to_one``: no two true states share one); junk precision
and recall.

Usage: python benchmarks/states_junk.py -n 6000 --epochs 10 --seeds 0 1 2 -o benchmarks/results/cpu/states_junk.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance, save_result

#: (hinge t, extra domain) per state, and their shares, smallest first.
STATES = [(0.0, False), (0.0, True), (0.5, True), (1.0, True), (1.0, False)]
SHARES = [0.03, 0.08, 0.16, 0.28, 0.45]


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cryoscape.cli.main", *args], check=True, stdout=subprocess.DEVNULL)


def make_volumes(folder: Path, D: int) -> list[Path]:
    from cryoscape.io.mrc import write_volume
    from cryoscape.sim.molecule import default_psize_A, default_resolution_A, demo_volume

    folder.mkdir(parents=True, exist_ok=True)
    ps = default_psize_A(D)
    paths = []
    for i, (t, extra) in enumerate(STATES):
        paths.append(folder / f"state_{i}.mrc")
        write_volume(paths[-1], demo_volume(t, extra, D, ps, default_resolution_A(ps)), ps)
    return paths


def res_vs_truth(vol: np.ndarray, truth: np.ndarray, psize: float) -> float:
    from cryoscape.analysis.fsc import auto_mask, fsc, resolution_at

    freqs, c = fsc(vol, truth, auto_mask(truth, psize))
    return resolution_at(freqs, c, 0.5, psize)


def full_map(pset, ind: np.ndarray, seed: int) -> np.ndarray:
    from cryoscape.recon.backproject import BackprojectConfig, posed_stack, reconstruct_halves, split_halves

    sub = pset.subset(ind)
    return reconstruct_halves(posed_stack(sub), BackprojectConfig(), split_halves(len(ind), seed)).full


def score(sim: Path, out: Path, seed: int) -> dict:
    from cryoscape.io.load import load_particles
    from cryoscape.io.mrc import read_volume

    gt = np.load(sim / "ground_truth.npz")
    junk, state = gt["junk"], gt["state"]
    labels = np.load(out / "state_labels.npy")
    flagged = np.loadtxt(out / "junk_scores.txt")[:, 4].astype(bool)
    summary = json.loads((out / "states.json").read_text())
    pset = load_particles(sim / "particles.star", images="require")
    psize = pset.apix
    rows = []
    for s in range(len(STATES)):
        truth = read_volume(sim / "gt_volumes" / f"vol_{s:03d}.mrc")[0]
        true_ind = np.flatnonzero((state == s) & ~junk)
        found = np.bincount(labels[true_ind][labels[true_ind] >= 0], minlength=summary["k"])
        k = int(found.argmax())  # the predicted state holding most of this state's particles
        pred_ind = np.flatnonzero(labels == k)
        r_true = res_vs_truth(full_map(pset, true_ind, seed), truth, psize)
        r_pred = res_vs_truth(read_volume(out / f"state_{k:02d}" / "backproject.mrc")[0], truth, psize)
        rows.append(
            {
                "true_state": s,
                "share": SHARES[s],
                "n_true": len(true_ind),
                "predicted_state": k,
                "n_predicted": len(pred_ind),
                "purity": float(np.mean(state[pred_ind] == s) if len(pred_ind) else 0.0),
                "recall": float(found[k] / len(true_ind)),
                "res05_true_particles_A": r_true,
                "res05_states_A": r_pred,
                "within_10pct": bool(r_pred <= 1.1 * r_true),  # see one_to_one: a shared state does not count
                "res0143_halfmaps_masked_A": summary["states"][k]["res_0143_A"],
            }
        )
    tp = int((flagged & junk).sum())
    matched = [r["predicted_state"] for r in rows]
    one_to_one = len(set(matched)) == len(rows)
    return {
        "k_chosen": summary["k"],
        "k_right": summary["k"] == len(STATES),
        "one_to_one": one_to_one,  # every true state is the majority of its own predicted state
        "maps_within_10pct": one_to_one and all(r["within_10pct"] for r in rows),
        "icl": summary["icl"],
        "bic": summary["bic"],
        "junk_precision": tp / max(1, int(flagged.sum())),
        "junk_recall": tp / max(1, int(junk.sum())),
        "junk_recall_by_kind": {
            name: float(flagged[gt["junk_kind"] == i].mean()) for i, name in ((1, "noise"), (2, "decoy"), (3, "ice"))
        },
        "states": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("-n", type=int, default=6000, help="particles (default: 6000)")
    ap.add_argument("-D", type=int, default=64)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--junk", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--zdim", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="states_junk_"))
    vols = [str(p) for p in make_volumes(work / "vols", args.D)]
    th = ["--threads", str(args.threads)]
    seeds = []
    for seed in args.seeds:
        t0 = time.time()
        sim, run, out = work / f"sim{seed}", work / f"run{seed}", work / f"states{seed}"
        props = [str(p) for p in SHARES]
        sim_args = ["--junk", str(args.junk), "-n", str(args.n), "--snr", str(args.snr), "--seed", str(seed)]
        cli("simulate", *vols, "--kind", "compositional", "--proportions", *props, "--exact-counts", *sim_args,
            "-o", str(sim), *th)  # fmt: skip
        t_sim = time.time()
        cli("train", str(sim / "particles.star"), "-o", str(run), "--zdim", str(args.zdim), "-n", str(args.epochs),
            "--seed", str(seed), *th)  # fmt: skip
        t_train = time.time()
        cli("states", str(run), "-o", str(out), "--seed", str(seed), *th)
        t_states = time.time()
        res = score(sim, out, seed)
        res.update(seed=seed, simulate_s=t_sim - t0, train_s=t_train - t_sim, states_s=t_states - t_train)
        seeds.append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "states"}), flush=True)
    result = {
        "provenance": provenance(),
        "settings": {**{k: v for k, v in vars(args).items() if k != "out"}, "states": STATES, "shares": SHARES},
        "k_right": f"{sum(s['k_right'] for s in seeds)} of {len(seeds)} seeds",
        "maps_within_10pct": f"{sum(s['maps_within_10pct'] for s in seeds)} of {len(seeds)} seeds",
        "junk_precision_min": min(s["junk_precision"] for s in seeds),
        "junk_recall_min": min(s["junk_recall"] for s in seeds),
        "seeds": seeds,
    }
    save_result(args.out, result)


if __name__ == "__main__":
    main()
