"""Generate maps from a trained model, one per latent, as vol_0000.mrc, vol_0001.mrc, ...

Reads RUN/config.yaml and RUN/weights.pt (weights.<N>.pt with --epoch N) written by
`cryoscape train`, and the latents ZFILE (.npy array or text, one row of zdim values per map; a
single row is allowed). Maps are written in row order in the data's units (the normalisation
undone), with the training pixel size unless --apix is given. A homogeneous model (zdim 0) needs
no --z and gives one map.

example:
  cryoscape volumes train_out --z centers.txt -o maps/
  cryoscape volumes train_out --epoch 20 --z z.npy -o maps_e20 --downsample 64 --flip
"""

from __future__ import annotations

import argparse

from cryoscape.cli.common import setup_torch
from cryoscape.cli.options import add_device, add_epoch, add_outdir, add_threads


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="output folder of cryoscape train")
    p.add_argument("--z", dest="zfile", metavar="ZFILE", help="latents: .npy (N×zdim) or text, one row per map")
    add_outdir(p, required=True, metavar="VOLDIR", aliases=("--output",), help="folder for vol_0000.mrc, ...")
    add_epoch(p, reads="weights.N.pt instead of the final weights.pt")
    p.add_argument("--apix", type=float, help="pixel size in Å of the training images (default: from config.yaml)")
    p.add_argument("--flip", action="store_true", help="mirror the maps along z (fixes the wrong hand)")
    p.add_argument("--invert", action="store_true", help="negate the maps (for black-on-white data)")
    p.add_argument(
        "--downsample",
        type=int,
        metavar="D",
        help="write maps at an even box D smaller than the training box (Fourier crop)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="latents per decoder pass (default: 8)")
    add_device(p)
    add_threads(p)


def main(args: argparse.Namespace) -> int:
    import time

    from cryoscape.analysis.volumes import generate_volumes, load_run, write_volumes
    from cryoscape.io.runlock import run_lock

    device = setup_torch(args.threads, args.device)
    run = load_run(args.run, args.epoch, device)
    D_out, psize_out = run.output_grid(args.downsample, args.apix)
    zs = run.latents(args.zfile)
    t0 = time.perf_counter()
    vols = generate_volumes(run.model, zs, D_out, args.batch_size, scale=run.norm_std)
    with run_lock(args.outdir, "volumes"):
        paths = write_volumes(vols, args.outdir, psize_out, flip=args.flip, invert=args.invert)
    print(
        f"wrote {len(paths)} map(s) of {D_out}^3 voxels at {psize_out:.4g} Å to "
        f"{args.outdir} from {run.weights.name} in {time.perf_counter() - t0:.1f} s"
    )
    return 0
