"""Backprojection side by side with cryoDRGN, and a cross-tool convention check.

One run, one machine, one dataset:
1. `cryoscape simulate` makes a homogeneous dataset (the demo molecule at t = 0) with known poses,
   shifts and CTF, written as RELION star + mrcs + cryoDRGN pickles.
2. cryoDRGN's own parsers (`parse_pose_star`, `parse_ctf_star`) read our star: their poses/CTF
   must equal ours (a convention check against another tool's reader, not our own).
3. `cryodrgn backproject_voxel` and `cryoscape backproject` reconstruct it; both maps are scored by
   FSC against the true map (same scorer), with wall time and peak memory of each process.

Usage:
    python benchmarks/backproject_vs_cryodrgn.py --cryodrgn /path/to/venv/bin/cryodrgn \
        [-n 10000] [-D 64] [--snr 0.1] [--workdir DIR] [--out results/cpu/backproject_10k.json]

Needs cryoDRGN installed in a separate environment (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_measured
from provenance import provenance, save_result


def score(map_path: Path, truth: np.ndarray, psize: float) -> dict:
    import mrcfile

    from cryoscape.analysis.fsc import fsc, resolution_at

    vol = mrcfile.read(map_path).astype(np.float32)
    freqs, curve = fsc(vol, truth)
    return {
        "res05_A": resolution_at(freqs, curve, 0.5, psize),
        "res0143_A": resolution_at(freqs, curve, 0.143, psize),
        "fsc_auc": float(np.mean(curve)),
        "voxel_A": float(mrcfile.open(map_path).voxel_size.x),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cryodrgn", required=True, help="path to the cryodrgn executable")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-D", type=int, default=64)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir")
    ap.add_argument("--out", type=Path, help="results JSON (command, commit, versions, machine, rows)")
    args = ap.parse_args()
    import mrcfile

    from cryoscape.io.mrc import write_volume
    from cryoscape.sim.molecule import default_psize_A, demo_volume

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bp_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    psize = default_psize_A(args.D)
    truth_path = work / "truth.mrc"
    write_volume(truth_path, demo_volume(0.0, D=args.D), psize)
    truth = mrcfile.read(truth_path).astype(np.float32)
    sim = work / "sim"
    cryoscape = [sys.executable, "-m", "cryoscape.cli.main"]
    subprocess.run(
        [
            *cryoscape,
            "simulate",
            str(truth_path),
            "-o",
            str(sim),
            "-n",
            str(args.n),
            "--snr",
            str(args.snr),
            "--threads",
            str(args.threads),
        ],
        check=True,
    )

    # 2. cryoDRGN's parsers on our star
    drgn_poses, drgn_ctf = work / "drgn_poses.pkl", work / "drgn_ctf.pkl"
    subprocess.run(
        [args.cryodrgn, "parse_pose_star", str(sim / "particles.star"), "-o", str(drgn_poses)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [args.cryodrgn, "parse_ctf_star", str(sim / "particles.star"), "-o", str(drgn_ctf)],
        check=True,
        capture_output=True,
    )
    with open(drgn_poses, "rb") as f:
        rot_d, trans_d = pickle.load(f)
    with open(sim / "poses.pkl", "rb") as f:
        rot_c, trans_c = pickle.load(f)
    with open(drgn_ctf, "rb") as f:
        ctf_d = pickle.load(f)
    with open(sim / "ctf.pkl", "rb") as f:
        ctf_c = pickle.load(f)
    parse_diff = {
        "rot": float(np.abs(rot_d - rot_c).max()),
        "trans": float(np.abs(trans_d - trans_c).max()),
        "ctf": float(np.abs(ctf_d - ctf_c).max()),
    }
    print(
        f"cryoDRGN parse of our star vs our pickles: rot max|diff| {parse_diff['rot']:.2e}, "
        f"trans {parse_diff['trans']:.2e}, ctf {parse_diff['ctf']:.2e}"
    )

    # 3. both backprojections
    rows = []
    drgn_out = work / "drgn_bp"
    wall, rss = run_measured(
        [
            args.cryodrgn,
            "backproject_voxel",
            str(sim / "particles.mrcs"),
            "--poses",
            str(drgn_poses),
            "--ctf",
            str(drgn_ctf),
            "-o",
            str(drgn_out),
        ],
        work / "drgn_bp.log",
    )
    rows.append(("cryoDRGN backproject_voxel", wall, rss, score(drgn_out / "backproject.mrc", truth, psize)))
    ours = work / "cs_bp" / "map.mrc"
    ours.parent.mkdir(exist_ok=True)
    wall, rss = run_measured(
        [*cryoscape, "backproject", str(sim / "particles.star"), "-o", str(ours), "--threads", str(args.threads)],
        work / "cs_bp.log",
    )
    rows.append(("cryoscape backproject", wall, rss, score(ours, truth, psize)))

    print(f"\n{args.n} particles, D={args.D}, {psize:.3f} Å/px, SNR {args.snr}; FSC vs the true map")
    print("| tool | wall s | peak RSS GB | res @0.5 Å | res @0.143 Å | mean FSC | voxel Å |")
    print("|---|---|---|---|---|---|---|")
    for name, wall, rss, s in rows:
        print(
            f"| {name} | {wall:.1f} | {rss:.2f} | {s['res05_A']:.2f} | {s['res0143_A']:.2f} | "
            f"{s['fsc_auc']:.3f} | {s['voxel_A']:.3f} |"
        )
    if args.out:
        res = {
            "kind": "backprojection",
            "n": args.n,
            "D": args.D,
            "psize_A": psize,
            "snr": args.snr,
            "threads": args.threads,
            "cryodrgn_parse_max_abs_diff": parse_diff,
            "rows": [{"tool": name, "wall_s": wall, "rss_gb": rss, **s} for name, wall, rss, s in rows],
            "provenance": provenance(cryodrgn=args.cryodrgn),
        }
        save_result(args.out, res)
        print(f"results: {args.out}")
    if not args.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
