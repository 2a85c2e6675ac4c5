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

from cryoscape.cli.common import optics_fill
from cryoscape.cli.options import add_device, add_outdir, add_particles, add_seed, add_threads
from cryoscape.model.config import ModelConfig
from cryoscape.train.config import (
    BETA_WARMUP_IMAGES,
    BETA_WARMUP_START,
    BETA_ZDIM,
    DEFAULT_BATCH,
    LR_FLOOR,
    LR_SCHEDULES,
    MARCH_START,
    SAMPLE_CORE,
    TrainConfig,
)


def add_args(p: argparse.ArgumentParser) -> None:
    add_particles(p)
    add_outdir(p, required=True, help="output folder (created; resumed if it holds this run)")
    p.add_argument("--zdim", type=int, required=True, help="latent dimension; 0 trains a homogeneous decoder")
    p.add_argument(
        "-n", "--epochs", type=int, default=TrainConfig.epochs, help=f"number of epochs (default: {TrainConfig.epochs})"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="images per minibatch, over all processes under torchrun (default: "
        f"{DEFAULT_BATCH['cpu']} on a CPU, {DEFAULT_BATCH['cuda']} on a GPU; a resumed run keeps its own)",
    )
    p.add_argument(
        "--lr",
        type=float,
        help="Adam learning rate (default, for a batch of 32: 1e-3 up to a 64 px box, "
        "1e-3*(64/D)^1.5 above: 3.5e-4 at 128 px, 1.25e-4 at 256 px; times sqrt(batch/32) for "
        "other batches; a resumed run keeps its own)",
    )
    p.add_argument(
        "--beta",
        type=float,
        help=f"KL weight after the warm-up (default: {BETA_ZDIM:g}/zdim; a resumed run keeps its own)",
    )
    p.add_argument(
        "--beta-warmup",
        type=int,
        metavar="IMAGES",
        help=f"the KL weight rises linearly from {BETA_WARMUP_START * 100:g}%% of --beta to --beta "
        f"over the first IMAGES images trained on (over epochs), then stays; 0: --beta from the "
        f"start (default: {BETA_WARMUP_IMAGES}; a resumed run keeps its own)",
    )
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help=f"learning rate over the run: cosine falls from --lr to {LR_FLOOR * 100:g}%% of it at "
        f"the last epoch of -n (default: {TrainConfig.lr_schedule}; a resumed run keeps its own)",
    )
    p.add_argument(
        "--freq-march",
        type=float,
        metavar="FRACTION",
        help=f"frequency marching: fit lattice points within a radius growing from "
        f"{MARCH_START * 100:g}%% of Nyquist to all of them over this fraction of the run; 0: all "
        f"from the start (default: {TrainConfig.freq_march:g}; a resumed run keeps its own)",
    )
    p.add_argument(
        "--hf-sample",
        type=float,
        metavar="SHARE",
        help=f"each image fits all Fourier coefficients within {SAMPLE_CORE * 100:g}%% of Nyquist and "
        "this share of those beyond, drawn afresh each step and weighted up (an unbiased estimate "
        f"of the full loss); 1: all (default: {TrainConfig.hf_sample:g}; a resumed run keeps its own)",
    )
    g = p.add_argument_group("pose refinement")
    g.add_argument(
        "--refine-poses",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refine each particle's rotation and shift with the model, around the consensus pose; "
        "refined poses go to poses.<epoch>.pkl / poses.pkl (default: off; a resumed run keeps its own)",
    )
    g.add_argument(
        "--refine-from",
        type=float,
        metavar="FRACTION",
        help=f"start refining poses after this fraction of the run (default: {TrainConfig.refine_from:g})",
    )
    g.add_argument(
        "--refine-rotations-from",
        type=float,
        metavar="FRACTION",
        help="refine the shifts alone until this fraction of the run, then the rotations too; 1: shifts "
        f"only, 0: both from --refine-from (default: {TrainConfig.refine_rotations_from:g})",
    )
    g = p.add_argument_group("architecture")
    m = ModelConfig
    g.add_argument("--enc-width", type=int, default=m.enc_width, help=f"encoder hidden width (default: {m.enc_width})")
    g.add_argument("--enc-depth", type=int, default=m.enc_depth, help=f"encoder hidden layers (default: {m.enc_depth})")
    g.add_argument("--dec-width", type=int, default=m.dec_width, help=f"decoder hidden width (default: {m.dec_width})")
    g.add_argument("--dec-depth", type=int, default=m.dec_depth, help=f"decoder hidden layers (default: {m.dec_depth})")
    g.add_argument(
        "--pe-type",
        choices=("geom", "gaussian"),
        default=m.pe_type,
        help=f"positional encoding of Fourier coordinates (default: {m.pe_type})",
    )
    g.add_argument("--pe-dim", type=int, help="number of encoding frequencies (default: D/2)")
    g = p.add_argument_group("data and run")
    g.add_argument(
        "--uninvert-data",
        action="store_true",
        help="negate the images: for black-on-white data (default: RELION white-on-black)",
    )
    g.add_argument("--no-ctf", action="store_true", help="train without a CTF (CTF-free data)")
    g.add_argument(
        "--lazy",
        action="store_true",
        help="stream images from disk (default: in memory when they fit in half the free RAM)",
    )
    g.add_argument(
        "--num-workers",
        type=int,
        default=TrainConfig.num_workers,
        help="processes reading images ahead when streaming (--lazy or too big for RAM; "
        f"default: {TrainConfig.num_workers})",
    )
    g.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mixed precision, bf16 (fp16 on older GPUs) autocast (default: on where the "
        "hardware computes it natively: CUDA GPUs and CPUs with AVX512-BF16/AMX; "
        "--no-amp for fp32 everywhere)",
    )
    add_device(g, default=TrainConfig.device)
    g.add_argument(
        "--checkpoint-every",
        type=int,
        default=TrainConfig.checkpoint_every,
        metavar="K",
        help=f"write weights and z every K epochs (the last epoch always) (default: {TrainConfig.checkpoint_every})",
    )
    g.add_argument(
        "--max-points",
        type=int,
        default=TrainConfig.max_points,
        metavar="N",
        help="most decoder points one pass evaluates (batch x points per image); a larger batch "
        "runs in chunks whose gradients add up: the same step in less memory "
        f"(default: {TrainConfig.max_points})",
    )
    g.add_argument("--load", metavar="WEIGHTS", help="start from these weights (a weights.pt of another run)")
    g.add_argument("--overwrite", action="store_true", help="delete a previous run in OUTDIR and start over")
    g.add_argument(
        "--accept-changed-data",
        action="store_true",
        help="resume even though the particles differ from those the run was trained on "
        "(checked by a fingerprint in config.yaml)",
    )
    add_seed(p)
    add_threads(p)


def main(args: argparse.Namespace) -> int:
    from cryoscape.train import distributed
    from cryoscape.train.run import RunConfig, train_run

    res = train_run(RunConfig.from_args(args, optics=optics_fill(args)))
    env = distributed.torchrun_env()
    if res.epochs_run == 0 and (env is None or env[1] == 0):  # rank 0 alone speaks
        print(
            f"cryoscape train: {args.outdir} already has {res.last_epoch + 1} epochs; raise -n to train more",
            file=sys.stderr,
        )
    return 0
