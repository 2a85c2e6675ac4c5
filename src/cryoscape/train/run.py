"""One training run from plain settings: read the particles, settle the configs, train.

:class:`RunConfig` is what a run is told, by ``cryoscape train``'s options (one field each) or by
a Python caller; its defaults are those of :class:`~cryoscape.model.config.ModelConfig` and
:class:`~cryoscape.train.config.TrainConfig` (referenced, not copied). :func:`plan_run` applies
the resume policy and makes the configs :func:`cryoscape.train.loop.train` takes;
:func:`train_run` does the whole run, so the command and the API give the same run::

    from cryoscape.train.run import RunConfig, train_run
    train_run(RunConfig("particles.star", "run1", zdim=8, epochs=20))
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cryoscape.errors import InputError
from cryoscape.io.optics import OpticsFill
from cryoscape.model.config import ModelConfig
from cryoscape.train.config import DataConfig, TrainConfig

if TYPE_CHECKING:
    import torch

    from cryoscape.data.dataset import ParticleData
    from cryoscape.io.particles import ParticleSet
    from cryoscape.train.distributed import DistContext
    from cryoscape.train.loop import TrainResult

#: Settings a resumed run keeps from its config.yaml unless given (as well as its normalisation):
#: they change what it computes, and their defaults (the box's lr...) may have changed since.
KEPT_ON_RESUME = {
    "batch_size": int,
    "lr": float,
    "lr_schedule": str,
    "beta": float,
    "beta_warmup": int,
    "freq_march": float,
    "hf_sample": float,
    "refine_poses": bool,
    "refine_from": float,
    "refine_rotations_from": float,
}


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run is told. None in :data:`KEPT_ON_RESUME`: the resumed run's
    value, else TrainConfig's default; ``lr=None``: the box's :func:`~.config.default_lr`;
    ``amp=None``: where the device computes it natively; ``lazy=None``: stream only images too
    big for RAM. ``overwrite`` ignores (and deletes) a run in ``outdir``; ``accept_changed_data``
    resumes on particles whose fingerprint changed. Paths are recorded absolute.
    """

    particles: str | os.PathLike
    outdir: str | os.PathLike
    zdim: int = ModelConfig.zdim
    datadir: str | os.PathLike | None = None
    poses: str | os.PathLike | None = None
    ctf: str | os.PathLike | None = None
    ind: str | os.PathLike | None = None
    box: int | None = None
    apix: float | None = None
    optics: OpticsFill | None = None
    use_ctf: bool = True
    uninvert_data: bool = False
    lazy: bool | None = None
    enc_width: int = ModelConfig.enc_width
    enc_depth: int = ModelConfig.enc_depth
    dec_width: int = ModelConfig.dec_width
    dec_depth: int = ModelConfig.dec_depth
    pe_type: str = ModelConfig.pe_type
    pe_dim: int | None = ModelConfig.pe_dim
    epochs: int = TrainConfig.epochs
    batch_size: int | None = TrainConfig.batch_size
    max_points: int = TrainConfig.max_points
    lr: float | None = None
    lr_schedule: str | None = None
    beta: float | None = None
    beta_warmup: int | None = None
    freq_march: float | None = None
    hf_sample: float | None = None
    refine_poses: bool | None = None
    refine_from: float | None = None
    refine_rotations_from: float | None = None
    amp: bool | None = TrainConfig.amp
    seed: int = TrainConfig.seed
    checkpoint_every: int = TrainConfig.checkpoint_every
    num_workers: int = TrainConfig.num_workers
    device: str = TrainConfig.device
    threads: int | None = TrainConfig.threads
    load: str | os.PathLike | None = TrainConfig.load
    overwrite: bool = False
    accept_changed_data: bool = False

    def __post_init__(self) -> None:
        # named as the command's options: the messages are the command's (as OpticsFill's)
        for name, low in (
            ("zdim", 0),
            ("epochs", 1),
            ("batch_size", 1),
            ("max_points", 1),
            ("checkpoint_every", 1),
            ("num_workers", 0),
            ("enc_width", 1),
            ("enc_depth", 1),
            ("dec_width", 1),
            ("dec_depth", 1),
        ):
            if getattr(self, name) is not None and getattr(self, name) < low:
                raise InputError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(self, name)}")
        if (self.lr is not None and self.lr <= 0) or (self.beta is not None and self.beta < 0):
            raise InputError("--lr must be > 0 and --beta >= 0")
        if self.freq_march is not None and not 0 <= self.freq_march <= 1:
            raise InputError(f"--freq-march must be a fraction of the run in [0, 1], got {self.freq_march}")
        if self.hf_sample is not None and not 0 < self.hf_sample <= 1:
            raise InputError(f"--hf-sample must be a share in (0, 1], got {self.hf_sample}")
        if self.refine_from is not None and not 0.0 <= self.refine_from < 1.0:
            raise InputError(f"--refine-from must be a fraction of the run in [0, 1), got {self.refine_from}")
        if self.refine_rotations_from is not None and not 0.0 <= self.refine_rotations_from <= 1.0:
            raise InputError(
                f"--refine-rotations-from must be a fraction of the run in [0, 1], got {self.refine_rotations_from}"
            )
        if self.beta_warmup is not None and self.beta_warmup < 0:
            raise InputError(f"--beta-warmup must be >= 0 images, got {self.beta_warmup}")
        if self.pe_dim is not None and self.pe_dim < 1:
            raise InputError(f"--pe-dim must be >= 1, got {self.pe_dim}")
        if not self.use_ctf and self.ctf is not None:
            raise InputError("--ctf and --no-ctf contradict each other: give one")

    def read_particles(self, **options: object) -> ParticleSet:
        """The run's particles as training reads them (file, overrides, ``ind``, optics, CTF use);
        ``options`` go to :func:`cryoscape.io.load.load_particles` and may replace those."""
        from cryoscape.io.load import load_particles

        given: dict[str, object] = {
            "datadir": self.datadir,
            "poses": self.poses,
            "ctf": self.ctf,
            "ind": self.ind,
            "box": self.box,
            "apix": self.apix,
            "optics": self.optics,
            "use_ctf": self.use_ctf,
        }
        return load_particles(self.particles, **{**given, **options})  # type: ignore[arg-type]

    @classmethod
    def from_args(cls, args: argparse.Namespace, **given: object) -> RunConfig:
        """From parsed ``cryoscape train`` options: each field from the option of its name,
        ``use_ctf`` from ``--no-ctf``, ``lazy`` True or None (auto) from ``--lazy``; ``given``
        (e.g. ``optics``) adds or replaces fields."""
        ns = vars(args)
        kw = {f.name: ns[f.name] for f in fields(cls) if f.name in ns}
        kw.update(use_ctf=not ns.get("no_ctf", False), lazy=True if ns.get("lazy") else None)
        return cls(**{**kw, **given})


def plan_run(
    run: RunConfig, data: ParticleData, fingerprint: dict | None = None, device: torch.device | None = None
) -> tuple[ModelConfig, DataConfig, TrainConfig]:
    """The configs :func:`cryoscape.train.loop.train` takes for ``run`` on ``data``, every default
    resolved. A run already in ``run.outdir`` (unless ``overwrite``) supplies what ``run`` leaves
    None in :data:`KEPT_ON_RESUME`, and its normalisation; otherwise the normalisation is
    estimated from the images. ``device`` (default: ``run.device``) decides an automatic amp."""
    from cryoscape.data.dataset import estimate_data_norm
    from cryoscape.device import resolve_device
    from cryoscape.train.loop import amp_supported
    from cryoscape.train.outdir import previous_config

    prev = None if run.overwrite else previous_config(run.outdir)
    data_cfg = DataConfig(
        particles=str(Path(run.particles).absolute()),
        D=data.D,
        psize_A=data.psize_A,
        n_particles=len(data),
        datadir=_abs(run.datadir),
        poses=_abs(run.poses),
        ctf=_abs(run.ctf),
        ind=_abs(run.ind),
        box=run.box,
        apix=run.apix,
        uninvert_data=run.uninvert_data,
        use_ctf=run.use_ctf,
        fingerprint=fingerprint,
    )
    norm = tuple(prev[1].norm) if prev is not None else estimate_data_norm(data, data_cfg.sign, run.seed)
    kept: dict = {}
    for name, kind in KEPT_ON_RESUME.items():
        if getattr(run, name) is not None:
            kept[name] = kind(getattr(run, name))
        elif prev is not None:  # the resumed run's own value, None included (e.g. rotations with shifts)
            value = getattr(prev[2], name)
            kept[name] = None if value is None else kind(value)
        # else TrainConfig's default
    train_cfg = TrainConfig(
        epochs=run.epochs,
        max_points=run.max_points,
        seed=run.seed,
        amp=run.amp,
        checkpoint_every=run.checkpoint_every,
        lazy=bool(run.lazy),
        num_workers=run.num_workers,
        device=run.device,
        threads=run.threads,
        load=_abs(run.load),
        **kept,
    )
    model_cfg = ModelConfig(
        D=data.D,
        zdim=run.zdim,
        enc_width=run.enc_width,
        enc_depth=run.enc_depth,
        dec_width=run.dec_width,
        dec_depth=run.dec_depth,
        pe_type=run.pe_type,
        pe_dim=run.pe_dim,
    )
    dev = device if device is not None else resolve_device(run.device)
    mean, std = norm
    return (
        model_cfg,
        replace(data_cfg, norm=(float(mean), float(std))),
        train_cfg.resolved(data.D, amp_supported(dev), dev.type),
    )


def train_run(run: RunConfig, progress: bool | None = None) -> TrainResult:
    """Read the particles, settle the configs (:func:`plan_run`) and train (or resume) into
    ``run.outdir`` while holding its run lock. Under torchrun each process calls it: rank 0
    alone checks the data and decides the configs, so every rank trains with the same numbers."""
    from cryoscape.train import distributed

    if run.batch_size is not None:  # at once; a default or resumed batch is checked by the trainer
        distributed.check_batch_divides(run.batch_size, distributed.world_size_from_env())
    with distributed.session(run.device) as dist, _lock(run.outdir, dist.is_main):
        return _train(run, dist, progress)


def _lock(outdir: str | os.PathLike, main: bool) -> contextlib.AbstractContextManager:
    """The run lock on OUTDIR (rank 0 holds it for the whole job): a second run refuses at once."""
    from cryoscape.io.runlock import run_lock

    return run_lock(outdir, "train") if main else contextlib.nullcontext()


def _train(run: RunConfig, dist: DistContext, progress: bool | None) -> TrainResult:
    """The run in one process of the job (the only one without torchrun)."""
    import torch

    from cryoscape.data.dataset import particle_data
    from cryoscape.train.loop import train

    if run.threads:
        torch.set_num_threads(run.threads)
    pset = run.read_particles(images="require")
    if dist.is_main:
        for msg in pset.info.warnings:
            _warn(msg)
    fingerprint = dist.on_main(lambda: _check_data(run, pset))
    data = particle_data(pset, use_ctf=run.use_ctf, lazy=run.lazy)
    # rank 0 decides (it alone reads a previous run's config), so all ranks use the same numbers
    model_cfg, data_cfg, train_cfg = dist.on_main(lambda: plan_run(run, data, fingerprint, dist.device))
    return train(
        run.outdir,
        model_cfg,
        data_cfg,
        train_cfg,
        _to_device(data, dist.device),
        overwrite=run.overwrite,
        progress=progress,
        dist=dist,
    )


def _warn(msg: str) -> None:
    print(f"cryoscape train: warning: {msg}", file=sys.stderr)


def _abs(p: str | os.PathLike | None) -> str | None:
    return None if p is None else str(Path(p).absolute())


def _check_data(run: RunConfig, pset: ParticleSet) -> dict:
    """The particles' fingerprint; a run in OUTDIR trained on other data is refused (or, with
    ``accept_changed_data``, resumed with a warning)."""
    from cryoscape.io.fingerprint import data_fingerprint
    from cryoscape.train.outdir import check_same_data

    fp = data_fingerprint(pset)
    if not run.overwrite:
        for d in check_same_data(run.outdir, fp, run.accept_changed_data):
            _warn(f"the data changed since this run began: {d}")
    return fp


def _to_device(data: ParticleData, dev: torch.device) -> ParticleData:
    """Move the per-particle tensors to the training device, and in-memory images too when that is
    a GPU with room for them (at most 40% of its free memory): a batch is then an index into GPU
    memory instead of a host-to-device copy per step."""
    import torch

    images = data.images
    if images is not None and dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        images = images.to(dev) if images.numel() * 4 <= 0.4 * free else images.pin_memory()
    return replace(
        data,
        rotations=data.rotations.to(dev),
        shifts_px=data.shifts_px.to(dev),
        ctf=None if data.ctf is None else data.ctf.to(dev),
        images=images,
    )
