"""Issue 19's experiment: what pose error costs, and what `train --refine-poses` wins back.

One dataset (the demo molecule, continuous or compositional) is simulated once per rotation
error level with `cryoscape simulate --rot-error DEG --shift-error PX` and the same seed, so the
images are identical and only the written poses differ. Trained with cryoscape's defaults: on the
true poses (`poses_true.pkl`, once), and at each level on the perturbed poses without and with
`--refine-poses`; optionally cryoDRGN `train_vae --do-pose-sgd` (256 x 3, its CPU-best setting)
on the same perturbed poses. Scores, one scorer for all: latent quality against the truth
(|Spearman| of PC1 with t, or ARI of k-means with the states), per-image FSC AUC, the median and
90th percentile rotation (degrees) and shift (pixels) error of the poses the run ends with,
and each run's wall and CPU seconds.

Usage: python benchmarks/pose_refine.py --kind continuous --errors 3 6 10 -o results/cpu/pose_refine_continuous.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import latent_quality, measure, perimage_cryoscape
from provenance import provenance, save_result


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cryoscape.cli.main", *args]


def pose_error(poses: Path, sim: Path) -> dict:
    """Median and 90th percentile rotation (deg) and shift (px) error of a pose pickle."""
    from cryoscape.geometry import angular_distance_deg
    from cryoscape.io.cryodrgn import read_poses

    rot, trans = read_poses(poses)
    gt = np.load(sim / "ground_truth.npz")
    D = json.loads((sim / "simulation.json").read_text())["box"]
    a = angular_distance_deg(rot, gt["rot_true"])
    s = np.linalg.norm(trans * D - gt["shift_px_true"], axis=1)
    q = lambda x, p: round(float(np.percentile(x, p)), 3)
    return {"rot_median_deg": q(a, 50), "rot_p90_deg": q(a, 90), "shift_median_px": q(s, 50), "shift_p90_px": q(s, 90)}


def train(sim: Path, out: Path, poses: Path, extra: list[str], args, work: Path) -> dict:
    """A cryoscape run with the defaults on ``poses``; its cost and scores."""
    cmd = ["train", str(sim / "particles.star"), "--poses", str(poses), "-o", str(out), "--zdim", str(args.zdim)]
    m = measure(
        cli(*cmd, "-n", str(args.epochs), "--seed", str(args.seed), "--threads", str(args.threads), *extra),
        work / "train.log",
    )
    gt = dict(np.load(sim / "ground_truth.npz"))
    row = {"wall_s": round(m.wall_s, 1), "cpu_s": m.cpu_s and round(m.cpu_s, 1), "rss_gb": round(m.rss_gb, 3)}
    row["latent"] = {k: round(float(v), 4) for k, v in latent_quality(np.load(out / "z.npy"), gt).items()}
    row["perimage"] = perimage_cryoscape(out, sim, args.perimage)
    row["poses_end"] = pose_error(out / "poses.pkl" if (out / "poses.pkl").is_file() else poses, sim)
    return row


def cryodrgn(sim: Path, out: Path, args, work: Path) -> dict:
    """cryoDRGN train_vae --do-pose-sgd (which needs --domain hartley), 256 x 3, on the perturbed poses."""
    from common import cryodrgn_last_codes, perimage_cryodrgn

    cmd = [args.cryodrgn, "train_vae", str(sim / "particles.mrcs"), "--poses", str(sim / "poses.pkl")]
    cmd += ["--ctf", str(sim / "ctf.pkl"), "--zdim", str(args.zdim), "-n", str(args.epochs), "-o", str(out)]
    cmd += ["--no-analysis", "--enc-dim", "256", "--dec-dim", "256", "--seed", str(args.seed)]
    cmd += ["--do-pose-sgd", "--domain", "hartley"]  # cryoDRGN's pose SGD needs its Hartley decoder
    m = measure(cmd, work / "cryodrgn.log")
    epoch, z = cryodrgn_last_codes(out)
    gt = dict(np.load(sim / "ground_truth.npz"))
    psize = json.loads((sim / "simulation.json").read_text())["psize_A"]
    row = {"wall_s": round(m.wall_s, 1), "cpu_s": m.cpu_s and round(m.cpu_s, 1), "rss_gb": round(m.rss_gb, 3)}
    row["latent"] = {k: round(float(v), 4) for k, v in latent_quality(z, gt).items()}
    row["perimage"] = perimage_cryodrgn(args.cryodrgn, out, sim, args.perimage, psize)
    pose = next((p for p in (out / "pose.pkl", out / f"pose.{epoch}.pkl") if p.is_file()), None)
    row["poses_end"] = pose_error(pose, sim) if pose is not None else None
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--kind", choices=("continuous", "compositional"), default="continuous")
    ap.add_argument("--errors", type=float, nargs="+", default=[3.0, 6.0, 10.0], help="median rotation errors, deg")
    ap.add_argument(
        "--refine-at", type=float, nargs="*", help="levels that also get --refine-poses runs (default: all)"
    )
    ap.add_argument("--shift-error", type=float, default=1.5, help="median shift error, px")
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-D", type=int, default=64)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--zdim", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perimage", type=int, default=100, help="particles in the per-image FSC")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cryodrgn", help="cryodrgn executable: also run train_vae --do-pose-sgd at each level")
    ap.add_argument(
        "--only-cryodrgn", action="store_true", help="run cryoDRGN alone (the cryoscape runs are in another file)"
    )
    ap.add_argument(
        "--only-refined",
        action="store_true",
        help="run the --refine-poses runs alone (the true-pose and plain runs, which refinement does not "
        "change, are in another file): a newer refinement measured on the same data",
    )
    ap.add_argument(
        "--label", help="what the table calls this file's refined runs (default: the train options they ran with)"
    )
    ap.add_argument(
        "--refine-args",
        default="",
        help="more train options for the refined runs, one string (e.g. '--refine-rotations-from 0.15')",
    )
    args = ap.parse_args()
    # recorded, so the table names what ran even after the defaults change
    args.label = args.label or " ".join(["--refine-poses", args.refine_args]).strip()
    work = Path(tempfile.mkdtemp(prefix="pose_refine_"))
    if args.only_cryodrgn and not args.cryodrgn:
        ap.error("--only-cryodrgn needs --cryodrgn")
    if args.only_cryodrgn and args.only_refined:
        ap.error("--only-cryodrgn and --only-refined exclude each other")
    only = args.only_cryodrgn or args.only_refined
    t0, levels, true = time.time(), [], None
    for deg in args.errors:
        sim = work / f"sim{deg:g}"
        opts = ["--rot-error", str(deg), "--shift-error", str(args.shift_error), "--seed", str(args.seed)]
        sim_cmd = [
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
        ]
        measure(cli(*sim_cmd, *opts, "-o", str(sim)), work / "sim.log")
        if not levels and not only:
            true = train(sim, work / "true", sim / "poses_true.pkl", [], args, work)
            print(json.dumps({"true_poses": true}), flush=True)
        row = {
            "rot_error_deg": deg,
            "shift_error_px": args.shift_error,
            "poses_start": pose_error(sim / "poses.pkl", sim),
        }
        if not only:
            row["plain"] = train(sim, work / f"plain{deg:g}", sim / "poses.pkl", [], args, work)
        if not args.only_cryodrgn and (args.refine_at is None or deg in args.refine_at):
            row["refined"] = train(
                sim,
                work / f"refine{deg:g}",
                sim / "poses.pkl",
                ["--refine-poses", *shlex.split(args.refine_args)],
                args,
                work,
            )
        if args.cryodrgn:
            row["cryodrgn_pose_sgd"] = cryodrgn(sim, work / f"drgn{deg:g}", args, work)
        levels.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "provenance": provenance(cryodrgn=args.cryodrgn),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "true_poses": true,
        "levels": levels,
        "total_s": round(time.time() - t0, 1),
    }
    save_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
