"""The one training loop: homogeneous decoder (zdim 0) and VAE (zdim >= 1) alike.

Model-specific maths live in :mod:`.objective`; this module does minibatches, Adam, mixed
precision, progress, the log, checkpoints, latents and resuming. Randomness is drawn from
generators seeded by ``(seed, epoch)``, so a run resumed from epoch ``e`` draws exactly what an
uninterrupted run would have, and on the CPU reproduces its latents bit for bit.

Under torchrun (see :mod:`.distributed` and docs/distributed.md) every rank runs this same loop on
its part of each global batch, through DistributedDataParallel; rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryoscape.data.dataset import ParticleData
from cryoscape.data.preprocess import Preprocessor
from cryoscape.device import resolve_device, tune_cpu_allocator
from cryoscape.errors import InputError
from cryoscape.io.cryodrgn import cryodrgn_poses
from cryoscape.model.config import ModelConfig
from cryoscape.model.vae import ReconModel
from cryoscape.train import checkpoint as ck
from cryoscape.train.chunks import chunk_parts, forward_backward
from cryoscape.train.config import DataConfig, TrainConfig, config_dict
from cryoscape.train.distributed import BatchPart, DistContext, check_batch_divides, shard_order, split_rows
from cryoscape.train.objective import LossModule, ReconObjective
from cryoscape.train.outdir import prepare_outdir
from cryoscape.train.poses import PoseRefiner


@dataclass
class TrainResult:
    """What a call to :func:`train` did: epochs run now, the last epoch done, the final latents."""

    outdir: Path
    epochs_run: int
    last_epoch: int
    z: np.ndarray | None


def amp_supported(device: torch.device) -> bool:
    """Whether mixed precision is a win on ``device``: CUDA, or a CPU with native bf16 (AVX512-BF16
    or AMX; measured 2-4x faster per step than fp32 here at unchanged latent quality). Without
    native bf16 the CPU would emulate it, slower than fp32."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_for(device: torch.device, amp: bool) -> tuple[contextlib.AbstractContextManager, bool]:
    """(autocast context, needs a grad scaler). bf16 where supported; fp16 + scaler on older GPUs."""
    if not amp:
        return contextlib.nullcontext(), False
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.float16), True
    return torch.autocast(device.type, dtype=torch.bfloat16), False


def _epoch_seed(seed: int, epoch: int, stream: int) -> int:
    return (seed * 1_000_003 + epoch * 101 + stream) % (2**63)


class Trainer:
    """Holds the model, optimiser and data for one run (or one rank of it); :meth:`run` trains and
    checkpoints. ``dist`` (default: a single process on ``train_cfg.device``) places it in a
    torchrun job."""

    def __init__(
        self,
        outdir: Path,
        model_cfg: ModelConfig,
        data_cfg: DataConfig,
        train_cfg: TrainConfig,
        data: ParticleData,
        progress: bool | None = None,
        dist: DistContext | None = None,
    ) -> None:
        if train_cfg.lr is None or train_cfg.amp is None or train_cfg.batch_size is None:
            raise ValueError("Trainer needs a resolved TrainConfig (see TrainConfig.resolved)")
        self.batch_size: int = train_cfg.batch_size
        self.outdir, self.mcfg, self.dcfg, self.tcfg, self.data = outdir, model_cfg, data_cfg, train_cfg, data
        self.progress = progress
        self.dist = dist if dist is not None else DistContext(resolve_device(train_cfg.device))
        check_batch_divides(self.batch_size, self.dist.world_size)
        self.device = self.dist.device
        if self.device.type == "cpu":
            tune_cpu_allocator()
        torch.manual_seed(train_cfg.seed)  # the initial weights
        self.model = ReconModel(model_cfg).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=train_cfg.lr)
        self.autocast, scaled = autocast_for(self.device, train_cfg.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=scaled)
        pre = Preprocessor(model_cfg.D, data_cfg.norm[1], data_cfg.sign, self.device)
        self.objective = ReconObjective(
            pre, data_cfg.psize_A, train_cfg.beta_at(model_cfg.zdim, 0.0), train_cfg.hf_sample
        )
        self.poses = (
            PoseRefiner(len(data), self.device, train_cfg.refine_from, train_cfg.refine_rotations_from)
            if train_cfg.refine_poses
            else None
        )
        if self.poses is not None and self.dist.enabled:
            raise InputError("--refine-poses does not run under torchrun yet: train in one process")
        self.loss_module = LossModule(self.model, self.objective)
        self.forward: torch.nn.Module = self.loss_module  # wrapped in DDP by run() under torchrun
        self.log: list[dict] = []
        self.start_epoch = 0

    def restore(self, ckpt: dict) -> None:
        """Continue from a checkpoint of this run (weights, optimiser, log)."""
        self.model.load_state_dict(ckpt["model_state"])
        self.opt.load_state_dict(ckpt["optimizer_state"])
        if self.poses is not None and "pose_state" in ckpt:  # else a run that refines from here on
            self.poses.restore(ckpt["pose_state"])
        self.log = [dict(r) for r in ckpt.get("log", [])]
        for r in self.log:  # logs from before the KL warm-up: their runs had a constant weight
            r.setdefault("beta", self.tcfg.beta_for(self.mcfg.zdim))
            r.setdefault("band", 1.0)  # and from before frequency marching: every point fitted
        self.start_epoch = int(ckpt["epoch"]) + 1

    def load_initial(self, path: str) -> None:
        """``--load``: start from another run's weights (and optimiser state when it matches)."""
        from cryoscape.model.vae import load_checkpoint

        ckpt = load_checkpoint(path)
        try:
            self.model.load_state_dict(ckpt["model_state"])
        except (KeyError, RuntimeError) as e:
            raise InputError(f"--load: weights do not fit this model: {str(e).splitlines()[0]}", path) from None
        with contextlib.suppress(KeyError, ValueError, RuntimeError):
            self.opt.load_state_dict(ckpt["optimizer_state"])

    def _wrap(self) -> torch.nn.Module:
        """The loss module, under DistributedDataParallel when in a process group: it syncs the
        initial weights from rank 0 and averages the gradients over ranks during backward."""
        if not self.dist.enabled:
            return self.loss_module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        # buffers (pixel masks, encoding frequencies) never change: no need to sync them per step
        # (recent torch renamed the option)
        params = inspect.signature(DistributedDataParallel).parameters
        option = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
        no_sync: dict[str, Any] = {option: False}
        return DistributedDataParallel(self.loss_module, device_ids=ids, **no_sync)

    def _step(
        self, idx: torch.Tensor, images: torch.Tensor, gen: torch.Generator, part: BatchPart | None, progress: float
    ) -> tuple[torch.Tensor, ...]:
        d = self.data
        idx = idx.to(self.device)
        ctf = None if d.ctf is None else d.ctf[idx]
        images = images.to(self.device, non_blocking=True)
        rot, shift = d.rotations[idx], d.shifts_px[idx]
        if self.poses is not None:
            with self.autocast:
                self.poses.search(self.model, self.objective, idx, images, rot, shift, ctf, progress)
            rot, shift = self.poses.apply(idx, rot, shift)
        self.opt.zero_grad(set_to_none=True)
        # a part's loss is its share of the global mean and DDP averages over ranks: times W, the
        # averaged gradient is that of the global batch's mean, as in one process
        W = 1 if part is None else self.dist.world_size
        chunks = chunk_parts(len(images), self.objective.points_per_image, self.tcfg.max_points, part)
        terms = forward_backward(
            self.forward,
            (images, rot, shift, ctf),
            chunks,
            gen,
            self.autocast,
            lambda loss: self.scaler.scale(loss * W).backward(),
        )
        self.scaler.step(self.opt)
        self.scaler.update()
        return terms

    def _batches(self, order: np.ndarray):
        """Yield ``(idx, images, part)`` per step: the batches of ``order`` (part None) in a single
        process; under torchrun this rank's part of each global batch (see :mod:`.distributed`),
        a stand-in where a short last batch leaves it nothing, so all ranks step together."""
        B, workers, W = self.batch_size, self.tcfg.num_workers, self.dist.world_size
        if not self.dist.enabled:
            for idx, images in self.data.batches(order, B, workers):
                yield idx, images, None
            return
        local, parts = shard_order(order, B, W, self.dist.rank)
        it = self.data.batches(local, B // W, workers)
        for part in parts:
            if part.size == 0:
                stand_in = np.zeros(1, np.int64)  # any particle: its terms count 0
                yield torch.from_numpy(stand_in), self.data.read(stand_in), part
                continue
            idx, images = next(it)
            if len(idx) != part.size:
                raise RuntimeError(f"batch of {len(idx)} where the shard has {part.size}")
            yield idx, images, part
        if next(it, None) is not None:  # also runs the reader to its end, releasing it
            raise RuntimeError("more batches than the shard has")

    def train_epoch(self, epoch: int, bar) -> dict:
        """One pass over the shuffled particles; returns the log row (global means over ranks)."""
        self.model.train()
        order = torch.randperm(
            len(self.data), generator=torch.Generator().manual_seed(_epoch_seed(self.tcfg.seed, epoch, 0))
        ).numpy()
        gen = torch.Generator(device=self.device).manual_seed(_epoch_seed(self.tcfg.seed, epoch, 1))
        steps = -(-len(self.data) // self.batch_size)
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        t0, n, beta_sum, band_sum = time.perf_counter(), 0, 0.0, 0.0
        for i, (idx, images, part) in enumerate(self._batches(order)):
            progress = (epoch + i / steps) / self.tcfg.epochs
            for g in self.opt.param_groups:
                g["lr"] = self.tcfg.lr_at(progress)
            self.objective.band = self.tcfg.band_at(progress)
            seen = epoch * len(self.data) + i * self.batch_size  # images trained on before this step
            self.objective.beta = self.tcfg.beta_at(self.mcfg.zdim, seen)
            terms = self._step(idx, images, gen, part, progress)
            n_batch = len(idx) if part is None else part.total  # images in the global batch
            sums += torch.stack(terms).double() * n_batch
            n += n_batch
            beta_sum += self.objective.beta * n_batch
            band_sum += self.objective.band * n_batch
            bar.update(n_batch)
            if i % 10 == 0:
                mine = len(idx) if part is None else part.size
                shown = float(terms[0]) * n_batch / max(1, mine)  # mean over this rank's images
                bar.set_postfix(loss=f"{shown:.4g}", refresh=False)
        loss, mse, kl = (self.dist.all_reduce_sum(sums) / n).tolist()
        if not np.isfinite(loss):
            raise InputError(f"training diverged at epoch {epoch} (loss {loss}); try a lower --lr", self.outdir)
        secs = time.perf_counter() - t0
        return {
            "epoch": epoch,
            "loss": loss,
            "mse": mse,
            "kl": kl,
            "beta": beta_sum / n,
            "band": band_sum / n,
            "seconds": secs,
            "images_per_s": n / secs,
        }

    @torch.no_grad()
    def latents(self) -> np.ndarray | None:
        """``(N, zdim)`` float32 posterior means in input order (None for zdim 0); fp32, no sampling.
        Under torchrun each rank encodes a contiguous block of rows and all get the whole array."""
        if self.mcfg.zdim == 0:
            return None
        self.model.eval()
        d = self.data
        start, stop = split_rows(len(d), self.dist.world_size, self.dist.rank)
        shifts = d.shifts_px if self.poses is None else self.poses.corrected_shifts(d.shifts_px)
        mus = [torch.empty((0, self.mcfg.zdim), device=self.device)]
        for idx, images in d.batches(np.arange(start, stop), 4 * self.batch_size, self.tcfg.num_workers):
            mus.append(self.objective.latent_means(self.model, images.to(self.device), shifts[idx.to(self.device)]))
        return self.dist.gather_rows(torch.cat(mus), len(d)).cpu().numpy()

    def save(self, epoch: int) -> np.ndarray | None:
        """Latents and checkpoint of ``epoch``, in the order of :func:`.checkpoint.save_epoch`
        (the caller writes the log after). Every rank takes part in the latent pass; rank 0 alone
        writes."""
        z = self.latents()
        if not self.dist.is_main:
            return z
        cfg = config_dict(self.mcfg, self.dcfg, self.tcfg)  # what config.yaml says, beta resolved
        state = {
            "model_config": cfg["model"],
            "model_state": self.model.state_dict(),
            "optimizer_state": self.opt.state_dict(),
            "epoch": epoch,
            "norm": [float(x) for x in self.dcfg.norm],
            "rng_state": torch.get_rng_state(),
            "log": self.log,
            "data_config": cfg["data"],
            "train_config": cfg["train"],
        }
        poses = None
        if self.poses is not None:
            state["pose_state"] = self.poses.state()
            rot, shift = self.poses.corrected(self.data.rotations, self.data.shifts_px)
            poses = cryodrgn_poses(rot.cpu().numpy(), shift.cpu().numpy(), self.mcfg.D)
        ck.save_epoch(self.outdir, epoch, state, z, poses)
        return z

    def run(self) -> TrainResult:
        from tqdm.auto import tqdm

        main = self.dist.is_main
        self.forward = self._wrap()
        E, N = self.tcfg.epochs, len(self.data)
        if main:
            ck.write_log(self.outdir, self.log)
        z, last = None, self.start_epoch - 1
        total = max(0, E - self.start_epoch) * N
        disable = None if self.progress is None else not self.progress  # None: only on a terminal
        with tqdm(
            total=total, unit="img", disable=disable if main else True, file=sys.stderr, dynamic_ncols=True
        ) as bar:
            for epoch in range(self.start_epoch, E):
                bar.set_description(f"epoch {epoch + 1}/{E}")
                row = self.train_epoch(epoch, bar)
                self.log.append(row)
                if (epoch + 1) % self.tcfg.checkpoint_every == 0 or epoch == E - 1:
                    z = self.save(epoch)
                    if main:  # last: the log never runs ahead of the weights
                        ck.write_log(self.outdir, self.log)
                self.dist.barrier()  # the others wait for rank 0's files of this epoch
                last = epoch
                if main:
                    bar.write(
                        f"epoch {epoch}: loss {row['loss']:.5g}  mse {row['mse']:.5g}  kl {row['kl']:.4g}"
                        f"  (weight {row['beta']:.3g})"
                        + (f"  (band {row['band']:.2f})" if row["band"] < 1 else "")
                        + f"  ({row['seconds']:.1f} s, {row['images_per_s']:.0f} img/s)",
                        file=sys.stderr,
                    )
        self.forward = self.loss_module  # let go of the DDP wrapper (and its hold on the group)
        return TrainResult(self.outdir, max(0, E - self.start_epoch), last, z)


def _prepare(
    outdir: Path,
    model_cfg: ModelConfig,
    data_cfg: DataConfig,
    train_cfg: TrainConfig,
    overwrite: bool,
    dist: DistContext,
) -> dict | None:
    """Rank 0 readies ``outdir`` (:func:`prepare_outdir`); every rank gets the checkpoint to resume
    from, the others by loading the file rank 0 chose (so OUTDIR must be on a shared filesystem)."""
    found: dict = {}

    def prepare() -> int | None:
        found["ckpt"] = prepare_outdir(outdir, model_cfg, data_cfg, train_cfg, overwrite)
        return None if found["ckpt"] is None else int(found["ckpt"]["epoch"])

    epoch = dist.on_main(prepare)
    if dist.is_main or epoch is None:
        return found.get("ckpt")
    ckpt = ck.load_epoch(outdir, epoch)
    if ckpt is None:
        raise InputError(
            f"rank {dist.rank} cannot read weights.{epoch}.pt, which rank 0 resumes from; "
            "OUTDIR must be on a filesystem all nodes share",
            outdir,
        )
    return ckpt


def train(
    outdir: str | os.PathLike,
    model_cfg: ModelConfig,
    data_cfg: DataConfig,
    train_cfg: TrainConfig,
    data: ParticleData,
    overwrite: bool = False,
    progress: bool | None = None,
    dist: DistContext | None = None,
) -> TrainResult:
    """Train (or resume training) into ``outdir``; see docs/outputs.md for what is written.
    ``dist``: this process's place in a torchrun job (default: a single process). From files and
    keyword arguments, :func:`cryoscape.train.run.train_run` also estimates the normalisation
    and applies the resume policy."""
    outdir = Path(outdir)
    dist = dist if dist is not None else DistContext(resolve_device(train_cfg.device))
    train_cfg = train_cfg.resolved(model_cfg.D, amp_supported(dist.device), dist.device.type)
    ckpt = _prepare(outdir, model_cfg, data_cfg, train_cfg, overwrite, dist)
    trainer = Trainer(outdir, model_cfg, data_cfg, train_cfg, data, progress, dist)
    if ckpt is not None:
        trainer.restore(ckpt)
    elif train_cfg.load:
        trainer.load_initial(train_cfg.load)
    return trainer.run()
