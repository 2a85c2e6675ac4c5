"""Train a heterogeneous (--zdim >= 1, VAE) or homogeneous (--zdim 0) model on posed particles.

Needs images, poses and CTF parameters (from the .star/.cs, or --poses/--ctf pickles; --no-ctf
for CTF-free data). Writes into OUTDIR: config.yaml, log.csv, weights.<epoch>.pt and weights.pt
(latest), z.<epoch>.npy and z.npy (latent means, one row per particle in input order); see
docs/outputs.md. Re-running the same command resumes from the last complete checkpoint.

Launched by torchrun (one process per GPU, any number of nodes) it trains with
DistributedDataParallel; --batch-size is then the global batch, split over the processes, so the
result does not depend on their number; see docs/distributed.md.

Images are expected white-on-black (RELION's convention); pass --uninvert-data for black-on-white
data (the same flag gives cryoDRGN users the same map as cryoDRGN's --uninvert-data).

example:
  cryoscape train particles.star -o run1 --zdim 8 -n 20
  cryoscape train particles.mrcs --poses poses.pkl --ctf ctf.pkl -o run0 --zdim 0 -n 10
  torchrun --nproc-per-node 4 -m cryoscape.cli.main train particles.star -o run2 --zdim 8 --device cuda
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryoscape.cli.common import (
    add_particle_args,
    add_seed_arg,
    add_threads_arg,
    optics_fill,
    print_warnings,
    setup_torch,
)
from cryoscape.train.config import (
    BETA_WARMUP_IMAGES,
    BETA_WARMUP_START,
    BETA_ZDIM,
    LR_FLOOR,
    LR_SCHEDULES,
    MARCH_START,
    TrainConfig,
)


def add_args(p: argparse.ArgumentParser) -> None:
    add_particle_args(p)
    p.add_argument("-o", "--outdir", required=True, help="output folder (created; resumed if it holds this run)")
    p.add_argument("--zdim", type=int, required=True, help="latent dimension; 0 trains a homogeneous decoder")
    p.add_argument("-n", "--epochs", type=int, default=20, help="number of epochs (default: 20)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="images per minibatch, over all processes under torchrun (default: 32)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: 1e-3 up to a 64 px box, "
                   "1e-3*(64/D)^1.5 above: 3.5e-4 at 128 px, 1.25e-4 at 256 px; a resumed run keeps its own)")
    p.add_argument("--beta", type=float, help=f"KL weight after the warm-up (default: {BETA_ZDIM:g}/zdim; "
                   "a resumed run keeps its own)")
    p.add_argument("--beta-warmup", type=int, metavar="IMAGES",
                   help=f"the KL weight rises linearly from {BETA_WARMUP_START * 100:g}%% of --beta to --beta "
                   f"over the first IMAGES images trained on (over epochs), then stays; 0: --beta from the "
                   f"start (default: {BETA_WARMUP_IMAGES}; a resumed run keeps its own)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                   help=f"learning rate over the run: cosine falls from --lr to {LR_FLOOR * 100:g}%% of it at "
                   f"the last epoch of -n (default: {TrainConfig.lr_schedule}; a resumed run keeps its own)")
    p.add_argument("--freq-march", type=float, metavar="FRACTION",
                   help=f"frequency marching: fit lattice points within a radius growing from "
                   f"{MARCH_START * 100:g}%% of Nyquist to all of them over this fraction of the run; 0: all "
                   f"from the start (default: {TrainConfig.freq_march:g}; a resumed run keeps its own)")
    g = p.add_argument_group("architecture")
    g.add_argument("--enc-width", type=int, default=256, help="encoder hidden width (default: 256)")
    g.add_argument("--enc-depth", type=int, default=3, help="encoder hidden layers (default: 3)")
    g.add_argument("--dec-width", type=int, default=256, help="decoder hidden width (default: 256)")
    g.add_argument("--dec-depth", type=int, default=3, help="decoder hidden layers (default: 3)")
    g.add_argument("--pe-type", choices=("geom", "gaussian"), default="geom",
                   help="positional encoding of Fourier coordinates (default: geom)")
    g.add_argument("--pe-dim", type=int, help="number of encoding frequencies (default: D/2)")
    g = p.add_argument_group("data and run")
    g.add_argument("--uninvert-data", action="store_true",
                   help="negate the images: for black-on-white data (default: RELION white-on-black)")
    g.add_argument("--no-ctf", action="store_true", help="train without a CTF (CTF-free data)")
    g.add_argument("--lazy", action="store_true",
                   help="stream images from disk (default: in memory when they fit in half the free RAM)")
    g.add_argument("--num-workers", type=int, default=2,
                   help="processes reading images ahead when streaming (--lazy or too big for RAM; default: 2)")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision, bf16 (fp16 on older GPUs) autocast (default: on where the "
                        "hardware computes it natively: CUDA GPUs and CPUs with AVX512-BF16/AMX; "
                        "--no-amp for fp32 everywhere)")
    g.add_argument("--device", default="auto", help="torch device (default: cuda if available, else cpu)")
    g.add_argument("--checkpoint-every", type=int, default=1, metavar="K",
                   help="write weights and z every K epochs (the last epoch always) (default: 1)")
    g.add_argument("--load", metavar="WEIGHTS", help="start from these weights (a weights.pt of another run)")
    g.add_argument("--overwrite", action="store_true", help="delete a previous run in OUTDIR and start over")
    g.add_argument("--accept-changed-data", action="store_true",
                   help="resume even though the particles differ from those the run was trained on "
                        "(checked by a fingerprint in config.yaml)")
    add_seed_arg(p)
    add_threads_arg(p)


def _check_args(args: argparse.Namespace, world_size: int = 1) -> None:
    from cryoscape.errors import InputError

    for name, low in (("zdim", 0), ("epochs", 1), ("batch_size", 1), ("checkpoint_every", 1),
                      ("num_workers", 0), ("enc_width", 1), ("enc_depth", 1), ("dec_width", 1),
                      ("dec_depth", 1)):
        if getattr(args, name) < low:
            raise InputError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    if (args.lr is not None and args.lr <= 0) or (args.beta is not None and args.beta < 0):
        raise InputError("--lr must be > 0 and --beta >= 0")
    if args.freq_march is not None and not 0 <= args.freq_march <= 1:
        raise InputError(f"--freq-march must be a fraction of the run in [0, 1], got {args.freq_march}")
    if args.beta_warmup is not None and args.beta_warmup < 0:
        raise InputError(f"--beta-warmup must be >= 0 images, got {args.beta_warmup}")
    if args.pe_dim is not None and args.pe_dim < 1:
        raise InputError(f"--pe-dim must be >= 1, got {args.pe_dim}")
    if args.no_ctf and args.ctf:
        raise InputError("--ctf and --no-ctf contradict each other: give one")
    if args.batch_size % world_size:
        raise InputError(f"--batch-size {args.batch_size} is the global batch and must be divisible by "
                         f"the {world_size} torchrun processes (each takes an equal share)")


def _abs(p: str | None) -> str | None:
    return None if p is None else str(Path(p).absolute())


def main(args: argparse.Namespace) -> int:
    from cryoscape.train import distributed

    _check_args(args, distributed.world_size_from_env())
    with distributed.session(args.device) as dist:
        with _lock(args.outdir, dist.is_main):
            return _train(args, dist)


def _lock(outdir: str, main: bool):
    """The run lock on OUTDIR (rank 0 holds it for the whole job): a second run refuses at once."""
    import contextlib

    from cryoscape.io.runlock import run_lock

    return run_lock(outdir, "train") if main else contextlib.nullcontext()


def _train(args: argparse.Namespace, dist) -> int:
    """The command in one process of the run (the only one without torchrun); ``dist`` says which."""
    from cryoscape.data.dataset import estimate_data_norm, particle_data
    from cryoscape.io.load import load_particles
    from cryoscape.model.config import ModelConfig
    from cryoscape.train.config import DataConfig, TrainConfig, default_lr
    from cryoscape.train.loop import amp_supported, train
    from cryoscape.train.outdir import previous_config

    setup_torch(args.threads)
    pset = load_particles(args.particles, datadir=args.datadir, poses=args.poses, ctf=args.ctf,
                          ind=args.ind, box=args.box, apix=args.apix, optics=optics_fill(args),
                          use_ctf=not args.no_ctf, images="require")
    if dist.is_main:
        print_warnings("train", pset)
    fingerprint = dist.on_main(lambda: _check_data(args, pset))
    data = particle_data(pset, use_ctf=not args.no_ctf, lazy=True if args.lazy else None)

    dcfg = DataConfig(particles=_abs(args.particles), D=data.D, psize_A=data.psize_A, n_particles=len(data),
                      datadir=_abs(args.datadir), poses=_abs(args.poses), ctf=_abs(args.ctf),
                      ind=_abs(args.ind), box=args.box, apix=args.apix,
                      uninvert_data=args.uninvert_data, use_ctf=not args.no_ctf, fingerprint=fingerprint)

    def kept_settings() -> tuple[float, str, float | None, int, float, tuple[float, float]]:
        """A resumed run keeps its learning rate and schedule, beta and warm-up, frequency marching
        (unless given) and its normalisation."""
        prev = None if args.overwrite else previous_config(args.outdir)

        def kept(given, name: str, default):
            """The value given on the command line, else the resumed run's, else the default."""
            if given is not None:
                return given
            return getattr(prev[2], name) if prev is not None else default

        norm = tuple(prev[1].norm) if prev is not None else estimate_data_norm(data, dcfg.sign, args.seed)
        return (kept(args.lr, "lr", default_lr(data.D)),
                kept(args.lr_schedule, "lr_schedule", TrainConfig.lr_schedule),
                kept(args.beta, "beta", None),
                kept(args.beta_warmup, "beta_warmup", TrainConfig.beta_warmup),
                kept(args.freq_march, "freq_march", TrainConfig.freq_march), norm)

    # rank 0 decides (it alone reads a previous run's config), so all ranks use the same numbers
    lr, schedule, beta, warmup, march, norm = dist.on_main(kept_settings)
    dcfg = DataConfig(**{**dcfg.__dict__, "norm": tuple(norm)})
    tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=float(lr),
                       beta=beta, seed=args.seed, amp=amp_supported(dist.device) if args.amp is None else args.amp,
                       checkpoint_every=args.checkpoint_every,
                       lazy=args.lazy, num_workers=args.num_workers, device=args.device,
                       threads=args.threads, load=_abs(args.load), lr_schedule=schedule,
                       beta_warmup=int(warmup), freq_march=float(march))
    mcfg = ModelConfig(D=data.D, zdim=args.zdim, enc_width=args.enc_width, enc_depth=args.enc_depth,
                       dec_width=args.dec_width, dec_depth=args.dec_depth, pe_type=args.pe_type,
                       pe_dim=args.pe_dim)
    data = _to_device(data, dist.device)
    res = train(args.outdir, mcfg, dcfg, tcfg, data, overwrite=args.overwrite, dist=dist)
    if res.epochs_run == 0 and dist.is_main:
        print(f"cryoscape train: {args.outdir} already has {res.last_epoch + 1} epochs; "
              "raise -n to train more", file=sys.stderr)
    return 0


def _check_data(args: argparse.Namespace, pset) -> dict:
    """The particles' fingerprint; a run in OUTDIR trained on other data is refused (or, with
    --accept-changed-data, resumed with a warning)."""
    from cryoscape.io.fingerprint import data_fingerprint
    from cryoscape.train.outdir import check_same_data

    fp = data_fingerprint(pset)
    if not args.overwrite:
        for d in check_same_data(args.outdir, fp, args.accept_changed_data):
            print(f"cryoscape train: warning: the data changed since this run began: {d}", file=sys.stderr)
    return fp


def _to_device(data, dev):  # dev: the torch.device training runs on
    """Move the per-particle tensors to the training device, and in-memory images too when that is
    a GPU with room for them (at most 40% of its free memory): a batch is then an index into GPU
    memory instead of a host-to-device copy per step."""
    import dataclasses

    import torch

    mv = lambda t: None if t is None else t.to(dev)
    images = data.images
    if images is not None and dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        images = images.to(dev) if images.numel() * 4 <= 0.4 * free else images.pin_memory()
    return dataclasses.replace(data, rotations=mv(data.rotations), shifts_px=mv(data.shifts_px),
                               ctf=mv(data.ctf), images=images)
