"""How well a particle's pose could be known at all: the Cramer-Rao bound of pose refinement.

Issue 19 asks refinement to halve a median rotation error of 3, 6 and 10 degrees. Whether that is
possible depends on how much the image says about its own pose. This script answers it for the
demo data of benchmarks/pose_refine.py (same simulation, same seed): it trains cryoscape's
defaults on the TRUE poses, then, for each band of Nyquist the search could compare on, computes
every particle's Fisher information of a pose correction at its true pose
(:func:`cryoscape.train.poses.fisher_information`: the model's own decoder at the particle's
code, the noise power each image's residual shows) and its inverse, the least covariance any
unbiased estimate can reach. Reported per band: the median and 90th percentile of the rotation
(degrees) and shift (pixels) error such an estimate would have (draws from the bound's Gaussian),
over ``--particles`` particles. The map is the best this data gives (trained with the true poses),
so a refinement steered by a map trained on poses still in error can only do worse.

Usage: python benchmarks/pose_crb.py --kind continuous -o results/cpu/pose_crb_continuous.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure
from pose_refine import cli
from provenance import provenance, save_result


def bound(sim: Path, run: Path, bands: list[float], n: int, draws: int, seed: int) -> list[dict]:
    """Each band's Cramer-Rao error distribution (module docstring) for the first ``n`` particles."""
    import torch

    from cryoscape.data.dataset import particle_data
    from cryoscape.train.checkpoint import last_checkpoint
    from cryoscape.train.loop import Trainer
    from cryoscape.train.poses import fisher_information
    from cryoscape.train.run import RunConfig, plan_run

    cfg = RunConfig(sim / "particles.star", run, zdim=8, poses=sim / "poses_true.pkl")
    data = particle_data(cfg.read_particles(images="require"))
    mcfg, dcfg, tcfg = plan_run(cfg, data)
    trainer = Trainer(Path(tempfile.mkdtemp()), mcfg, dcfg, replace(tcfg, amp=False), data, progress=False)
    trainer.model.load_state_dict(last_checkpoint(run)["model_state"])
    trainer.model.eval()
    rng = np.random.default_rng(seed)
    rows = []
    for band in bands:
        rot_err, shift_err, power = [], [], []
        for idx, images in data.batches(np.arange(n), 32):
            ctf = None if data.ctf is None else data.ctf[idx]
            F, p = fisher_information(
                trainer.model, trainer.objective, images, data.rotations[idx], data.shifts_px[idx], ctf, band
            )
            cov = torch.linalg.inv(F.double())
            L = torch.linalg.cholesky(0.5 * (cov + cov.transpose(1, 2)))
            e = (L @ torch.from_numpy(rng.standard_normal((len(idx), 5, draws)))).numpy()  # (B, 5, draws)
            rot_err.append(np.degrees(np.linalg.norm(e[:, :3], axis=1)).ravel())
            shift_err.append(np.linalg.norm(e[:, 3:], axis=1).ravel())
            power.append(p.numpy())
        r, s = np.concatenate(rot_err), np.concatenate(shift_err)
        rows.append(
            {
                "band": band,
                "points": trainer.objective.pre.half.count_within(band),
                "rot_median_deg": round(float(np.median(r)), 3),
                "rot_p90_deg": round(float(np.percentile(r, 90)), 3),
                "shift_median_px": round(float(np.median(s)), 4),
                "shift_p90_px": round(float(np.percentile(s, 90)), 4),
                "noise_power_median": round(float(np.median(np.concatenate(power))), 4),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--kind", choices=("continuous", "compositional"), default="continuous")
    ap.add_argument("--bands", type=float, nargs="+", default=[0.2, 0.35, 0.5, 0.7, 1.0], help="fractions of Nyquist")
    ap.add_argument("--particles", type=int, default=320, help="particles the bound is computed for")
    ap.add_argument("--draws", type=int, default=200, help="draws per particle from the bound's Gaussian")
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-D", type=int, default=64)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sim", type=Path, help="reuse this simulation (pose_refine.py's, same settings)")
    ap.add_argument("--run", type=Path, help="reuse this run trained on --sim's true poses")
    args = ap.parse_args()
    if (args.sim is None) != (args.run is None):
        ap.error("--sim and --run go together")
    import torch

    torch.set_num_threads(args.threads)
    t0, work = time.time(), Path(tempfile.mkdtemp(prefix="pose_crb_"))
    sim, run = args.sim, args.run
    if sim is None:
        sim, run = work / "sim", work / "true"
        sim_cmd = ["simulate", "--demo", "--kind", args.kind, "-n", str(args.n), "-D", str(args.D)]
        sim_cmd += ["--snr", str(args.snr), "--rot-error", "3", "--shift-error", "1.5", "--seed", str(args.seed)]
        measure(cli(*sim_cmd, "-o", str(sim)), work / "sim.log")
        train_cmd = ["train", str(sim / "particles.star"), "--poses", str(sim / "poses_true.pkl"), "-o", str(run)]
        train_cmd += ["--zdim", "8", "-n", str(args.epochs), "--seed", str(args.seed), "--threads", str(args.threads)]
        measure(cli(*train_cmd), work / "train.log")
    result = {
        "provenance": provenance(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "bands": bound(sim, run, args.bands, args.particles, args.draws, args.seed),
        "total_s": round(time.time() - t0, 1),
    }
    save_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
