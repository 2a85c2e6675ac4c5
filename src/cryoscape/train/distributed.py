"""Training on several processes launched by ``torchrun``: who am I, the others, the shard I train on.

``torchrun`` starts one process per GPU (or per CPU slot) on every node and tells each its place
through the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); :func:`session` reads it,
joins the process group (NCCL on CUDA, gloo on CPU) and leaves it again, also on errors. Without
those variables it is a no-op and every helper here does what a single process would.

The sharding rule keeps the optimisation independent of the number of ranks ``W``: ``--batch-size
B`` is the *global* batch. The epoch's permutation is the same on every rank; global batch ``g``
is ``order[g*B:(g+1)*B]`` and rank ``r`` takes part ``r`` of ``W`` near-equal contiguous parts of
it (``np.array_split``): ``B/W`` particles of every full batch, and ``floor`` or ``ceil`` of
``L/W`` of a last, short batch of ``L`` (possibly none: see :class:`BatchPart`). Every rank thus
takes the same number of steps (DDP requires it) and the union of the parts is exactly the
single-process batch: nothing is dropped or counted twice.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import inspect
import os
import pickle
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as tdist

from cryoscape.device import resolve_device
from cryoscape.errors import InputError

T = TypeVar("T")
#: Environment variables every torchrun worker has.
TORCHRUN_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


@dataclass(frozen=True)
class BatchPart:
    """This rank's rows ``[offset, offset + size)`` of a global batch of ``total`` rows.

    ``size == 0`` (a short last batch with fewer particles than ranks): the rank still takes the
    step, on one stand-in image whose terms are multiplied by 0, because DDP needs every rank in
    every step and FFT libraries refuse empty batches.
    """

    offset: int
    size: int
    total: int


def split_rows(total: int, world_size: int, rank: int) -> tuple[int, int]:
    """``(start, stop)`` of part ``rank`` of ``total`` rows cut into ``world_size`` near-equal
    contiguous parts (the first ``total % world_size`` parts one longer, as ``np.array_split``)."""
    base, extra = divmod(total, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard_order(order: np.ndarray, batch_size: int, world_size: int, rank: int) -> tuple[np.ndarray, list[BatchPart]]:
    """This rank's share of an epoch: its particles (its part of each global batch of ``order``, in
    order) and one :class:`BatchPart` per global batch, so ``len(parts)`` is the same on all ranks.

    With ``batch_size % world_size == 0`` every part but the last is ``batch_size // world_size``
    long and the last at most that, so ``data.batches(local, batch_size // world_size)`` yields
    exactly the non-empty parts, in order.
    """
    local, parts = [], []
    for a in range(0, len(order), batch_size):
        total = min(batch_size, len(order) - a)
        start, stop = split_rows(total, world_size, rank)
        local.append(order[a + start : a + stop])
        parts.append(BatchPart(start, stop - start, total))
    flat = np.concatenate(local) if local else np.asarray(order)[:0]
    return flat, parts


def torchrun_env() -> tuple[int, int, int] | None:
    """``(world_size, rank, local_rank)`` when launched by torchrun, else None."""
    if not all(v in os.environ for v in TORCHRUN_VARS):
        return None
    try:
        world, rank, local = (int(os.environ[v]) for v in TORCHRUN_VARS)
    except ValueError:
        raise InputError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun)") from None
    if not (world >= 1 and 0 <= rank < world and local >= 0):
        raise InputError(f"inconsistent torchrun environment: WORLD_SIZE={world} RANK={rank}")
    return world, rank, local


def world_size_from_env() -> int:
    """Number of training processes: ``WORLD_SIZE`` under torchrun, else 1."""
    env = torchrun_env()
    return 1 if env is None else env[0]


def check_batch_divides(batch_size: int, world_size: int) -> None:
    """Refuse a global batch the ``world_size`` processes cannot share equally."""
    if batch_size % world_size:
        raise InputError(
            f"--batch-size {batch_size} is the global batch and must be divisible by "
            f"the {world_size} torchrun processes (each takes an equal share)"
        )


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run. ``enabled``: a process group exists (under torchrun, even
    with one rank); otherwise every collective below is a no-op."""

    device: torch.device
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    enabled: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank got here (e.g. until rank 0 finished writing a checkpoint)."""
        if self.enabled:
            tdist.barrier(device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over ranks, in place (it must live on :attr:`device`); returns ``t``."""
        if self.enabled:
            tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
        return t

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only and hand its result to every rank; if it raises, every rank
        raises the same error (so all stop together instead of waiting for rank 0 forever)."""
        if not self.enabled:
            return fn()
        box: list = [None]
        if self.is_main:
            try:
                box[0] = (True, fn())
            except Exception as e:
                box[0] = (False, _portable(e))
                tdist.broadcast_object_list(box, src=0, device=self._obj_device())
                raise
        tdist.broadcast_object_list(box, src=0, device=self._obj_device())
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def gather_rows(self, part: torch.Tensor, total: int) -> torch.Tensor:
        """Concatenate every rank's ``part`` (rows ``split_rows(total, W, rank)`` of a ``(total, ...)``
        array, on :attr:`device`) in rank order, i.e. in row order; the result is on every rank."""
        if not self.enabled:
            return part
        longest = split_rows(total, self.world_size, 0)[1]
        padded = part.new_zeros((longest, *part.shape[1:]))
        padded[: len(part)] = part
        got = [torch.empty_like(padded) for _ in range(self.world_size)]
        tdist.all_gather(got, padded)
        sizes = [b - a for a, b in (split_rows(total, self.world_size, r) for r in range(self.world_size))]
        return torch.cat([g[:n] for g, n in zip(got, sizes)])

    def _obj_device(self) -> torch.device | None:
        return self.device if self.device.type == "cuda" else None


def _portable(e: Exception) -> Exception:
    """``e`` if it survives pickling (to be re-raised on the other ranks), else a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return RuntimeError(f"{type(e).__name__}: {e}")


def _lost_peer(e: RuntimeError) -> bool:
    """Whether ``e`` reports a failed collective (a peer died, the network broke): the user's
    environment, not a bug. Errors inside backward (DDP's all-reduce) arrive as plain
    RuntimeErrors that only their text tells apart."""
    return isinstance(e, tdist.DistError) or any(k in str(e) for k in _COMM_WORDS)


def _lost_contact(e: RuntimeError, rank: int) -> ConnectionError:
    """The one-line error a rank reports for a failed collective (an OSError: the CLI prints it)."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]  # no source location, one sentence
    return ConnectionError(
        errno.ECONNRESET,
        f"rank {rank}: lost contact with the other training "
        f"processes ({first}); re-run the same command to resume from the last "
        "checkpoint",
    )


#: Words of gloo/NCCL communication failures.
_COMM_WORDS = (
    "gloo/transport",
    "Connection reset by peer",
    "Connection closed by peer",
    "NCCL error",
    "ProcessGroupNCCL",
    "ProcessGroupGloo",
)


def _torchrun_device(name: str | None, local_rank: int) -> torch.device:
    """The device of the worker with ``local_rank``: ``cuda:LOCAL_RANK`` for CUDA (one GPU per
    process), else what ``--device`` says."""
    dev = resolve_device(name)
    if dev.type != "cuda":
        return dev
    if dev.index is not None and dev.index != local_rank:
        raise InputError(
            f"--device {name}: under torchrun each process uses the GPU of its "
            f"LOCAL_RANK (here cuda:{local_rank}); pass --device cuda"
        )
    if local_rank >= torch.cuda.device_count():
        raise InputError(
            f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs here; lower torchrun's --nproc-per-node"
        )
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def session(device_name: str | None) -> Iterator[DistContext]:
    """The run's :class:`DistContext`: joins torchrun's process group (NCCL for CUDA, gloo for CPU)
    when launched by torchrun and always leaves it on exit; a plain single process otherwise."""
    env = torchrun_env()
    if env is None:
        yield DistContext(resolve_device(device_name))
        return
    world, rank, local = env
    device = _torchrun_device(device_name, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        eager = "device_id" in inspect.signature(tdist.init_process_group).parameters  # torch >= 2.3
        eager_opt: dict[str, Any] = {"device_id": device} if eager else {}
        tdist.init_process_group("nccl", **eager_opt)
    else:
        tdist.init_process_group("gloo")
    ctx = DistContext(device, world, rank, local, enabled=True)
    try:
        yield ctx
        ctx.barrier()  # nobody leaves while another still talks to it
    except RuntimeError as e:
        if not _lost_peer(e):
            raise
        raise _lost_contact(e, rank) from None
    finally:
        # DDP's reducer keeps the group alive through reference cycles: free it now, not during
        # interpreter shutdown (where gloo's threads may abort the process)
        gc.collect()
        tdist.destroy_process_group()
