"""Simulate a particle dataset with ground truth from the demo molecule, maps or atomic models.

Volumes come from the built-in demo molecule (--demo: a hinge motion and/or a removable
domain), from MRC maps (an ordered list for continuous heterogeneity, a set for compositional)
or from PDB/mmCIF models (--pdb, rendered at --resolution). Images are the shared forward
model (projection, CTF, shift) plus white Gaussian noise at the requested SNR. OUTDIR receives
particles.mrcs/.star/.cs, poses.pkl, ctf.pkl, gt_volumes/, ground_truth.npz and
simulation.json. With --rot-error/--shift-error the star/cs/poses.pkl carry poses perturbed as a
consensus refinement would leave them (the images keep the true ones, also written to
poses_true.pkl and ground_truth.npz). See docs/simulation.md.

examples:
  cryoscape simulate --demo -o sim_demo
  cryoscape simulate --demo --kind both --dist cooperative -n 50000 -o sim_both
  cryoscape simulate state_a.mrc state_b.mrc --kind compositional --proportions 0.3 0.7 -o sim_ab
  cryoscape simulate a.mrc b.mrc --proportions 0.2 0.8 --junk 0.05 -o sim_junk
  cryoscape simulate --pdb open.cif --pdb closed.cif -D 128 --apix 1.2 --resolution 4 -o sim_pdb
  cryoscape simulate --demo --rot-error 3 --shift-error 1 --pose-error-corr 0.5 -o sim_poserr
"""

from __future__ import annotations

import argparse

from cryoscape.cli.common import setup_torch
from cryoscape.cli.options import add_outdir, add_seed, add_threads


def add_args(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("volumes")
    src.add_argument("volumes", nargs="*", metavar="VOL.mrc", help="ground-truth maps sharing one box")
    src.add_argument("--demo", action="store_true", help="use the built-in demo molecule")
    src.add_argument("--pdb", action="append", metavar="FILE", help="PDB/mmCIF model (repeat for more)")
    src.add_argument(
        "--kind",
        "--demo-kind",
        dest="kind",
        choices=("continuous", "compositional", "both"),
        help="heterogeneity: continuous (hinge / ordered maps), compositional (states) or "
        "both (demo only); default continuous for --demo, compositional otherwise",
    )
    src.add_argument(
        "--dist",
        default="uniform",
        choices=("uniform", "cooperative", "noncontiguous"),
        help="distribution of the continuous coordinate t (default: uniform)",
    )
    src.add_argument(
        "--proportions", type=float, nargs="+", metavar="P", help="relative abundance of each state (default: equal)"
    )
    src.add_argument("--t-bins", type=int, default=100, help="volumes on the t grid (default: 100)")
    src.add_argument(
        "--exact-counts",
        action="store_true",
        help="use every t bin equally often (uniform --dist) and give states exactly "
        "their --proportions, instead of independent random draws",
    )
    src.add_argument("--max-angle", type=float, default=50.0, help="demo hinge angle at t=1, degrees (default: 50)")
    src.add_argument(
        "--resolution", type=float, help="rendering resolution in Å for --demo/--pdb (default: 2.5 pixels)"
    )
    img = p.add_argument_group("images")
    add_outdir(img, required=True, help="output folder")
    img.add_argument("-n", "--n-particles", type=int, default=5000, help="number of particles (default: 5000)")
    img.add_argument("-D", "--box", type=int, help="box size (demo/pdb; default 64); maps keep theirs")
    img.add_argument("--apix", type=float, help="pixel size in Å (default: demo 3*64/D, maps: header, pdb: fit)")
    img.add_argument(
        "--snr", type=float, default=0.1, help="signal variance / noise variance; inf for none (default: 0.1)"
    )
    img.add_argument(
        "--junk",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="replace this share of particles by junk: pure noise, another molecule, ice-like blobs (default: 0)",
    )
    img.add_argument("--shift-max", type=float, help="max |shift| per axis in pixels (default: D/16)")
    img.add_argument("--poses", help="take rotations (and shifts) from a cryoDRGN pose .pkl or a .star/.cs")
    err = p.add_argument_group("pose error (images use the true poses, the metadata perturbed ones)")
    err.add_argument(
        "--rot-error",
        type=float,
        default=0.0,
        metavar="DEG",
        help="median angle between written and true rotations, about random axes (default: 0)",
    )
    err.add_argument(
        "--shift-error",
        type=float,
        default=0.0,
        metavar="PX",
        help="median length of the isotropic Gaussian error of the written shifts, pixels (default: 0)",
    )
    err.add_argument(
        "--pose-error-corr",
        type=float,
        default=0.0,
        metavar="R",
        help="in [0, 1]: scale each particle's errors by (1 - R + 2R u) / mean, u its t (else state/(K-1)), "
        "so larger t gets larger errors (default: 0, the same for all)",
    )
    ctf = p.add_argument_group("CTF")
    ctf.add_argument("--no-ctf", action="store_true", help="no CTF (pure projections)")
    ctf.add_argument("--defocus-min", type=float, default=10000.0, help="Å (default: 10000)")
    ctf.add_argument("--defocus-max", type=float, default=25000.0, help="Å (default: 25000)")
    ctf.add_argument("--astigmatism", type=float, default=0.0, help="max |dfu - dfv| in Å (default: 0)")
    ctf.add_argument("--voltage", type=float, default=300.0, help="kV (default: 300)")
    ctf.add_argument("--cs", type=float, default=2.7, help="spherical aberration, mm (default: 2.7)")
    ctf.add_argument("--amp-contrast", type=float, default=0.1, help="amplitude contrast (default: 0.1)")
    ctf.add_argument("--bfactor", type=float, default=0.0, help="envelope B-factor, Å^2 (default: 0)")
    ctf.add_argument(
        "--bfactor-max", type=float, metavar="B", help="per-particle B-factor drawn uniformly in [--bfactor, B] Å^2"
    )
    ctf.add_argument(
        "--hide-bfactor",
        action="store_true",
        help="write B = 0 to the star/cs (ground_truth.npz keeps the true values), as "
        "real metadata and cryoDRGN's ctf.pkl carry none",
    )
    add_seed(p)
    add_threads(p)


def config_from_args(args: argparse.Namespace):
    """The :class:`cryoscape.sim.simulate.SimConfig` the command line describes."""
    from cryoscape.errors import InputError
    from cryoscape.sim.simulate import SimConfig

    given = [name for name, on in (("--demo", args.demo), ("VOL.mrc", args.volumes), ("--pdb", args.pdb)) if on]
    if len(given) != 1:
        raise InputError(
            "give exactly one of --demo, VOL.mrc ..., --pdb FILE" + (f" (got {', '.join(given)})" if given else "")
        )
    source = {"--demo": "demo", "VOL.mrc": "volumes", "--pdb": "pdb"}[given[0]]
    kind = args.kind or ("continuous" if source == "demo" else "compositional")
    return SimConfig(
        source=source,
        inputs=tuple(args.volumes or args.pdb or ()),
        kind=kind,
        n_particles=args.n_particles,
        D=args.box,
        psize_A=args.apix,
        resolution_A=args.resolution,
        snr=args.snr,
        shift_max_px=args.shift_max,
        ctf=not args.no_ctf,
        defocus_min_A=args.defocus_min,
        defocus_max_A=args.defocus_max,
        astigmatism_A=args.astigmatism,
        voltage_kV=args.voltage,
        cs_mm=args.cs,
        amp_contrast=args.amp_contrast,
        bfactor_A2=args.bfactor,
        bfactor_max_A2=args.bfactor_max,
        bfactor_in_metadata=not args.hide_bfactor,
        poses_path=args.poses,
        dist=args.dist,
        proportions=tuple(args.proportions) if args.proportions else None,
        t_bins=args.t_bins,
        exact_counts=args.exact_counts,
        junk_fraction=args.junk,
        max_angle_deg=args.max_angle,
        rot_error_deg=args.rot_error,
        shift_error_px=args.shift_error,
        pose_error_corr=args.pose_error_corr,
        seed=args.seed,
    )


def main(args: argparse.Namespace) -> int:
    import json
    import time

    from cryoscape.sim.simulate import simulate_dataset

    setup_torch(args.threads)
    cfg = config_from_args(args)
    t0 = time.time()
    star = simulate_dataset(cfg, args.outdir)
    rec = json.loads((star.parent / "simulation.json").read_text())
    print(
        f"wrote {rec['n_particles']} particles ({rec['box']} px, {rec['psize_A']:.3f} Å/px, "
        f"{rec['n_volumes']} volumes, noise sigma {rec['noise_sigma']:.4g}) to {star.parent} "
        f"in {time.time() - t0:.1f} s"
    )
    if err := rec["pose_error"]:
        print(
            f"pose error in the metadata: rotations median {err['rot_median_deg']:.2f}° "
            f"(90% {err['rot_p90_deg']:.2f}°), shifts median {err['shift_median_px']:.2f} px "
            f"(90% {err['shift_p90_px']:.2f} px); true poses in poses_true.pkl"
        )
    return 0
