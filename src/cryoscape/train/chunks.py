"""One step's forward and backward passes in chunks of images, so memory is bounded by the box.

A step's activations grow with the decoder points it evaluates: batch x points per image. At
64 px a batch of 32 is small; at 256 px the same batch held several times cryoDRGN's memory
(benchmarks/README.md, "Memory at 128 and 256 px"). Cutting the batch into chunks of at most
``max_points`` points and adding their gradients before the optimiser's step keeps the step
itself (the same batch, learning rate and sampling draws) while only one chunk's activations live
at a time.

Each chunk is a :class:`~cryoscape.train.distributed.BatchPart` of the batch, the same device that
splits a global batch over torchrun ranks: its loss is its share of the batch mean, and its random
draws are its rows of the draw for the whole batch, taken from the generator as it stood at the
step's start. So the chunked step computes what the whole-batch step computes, up to the order of
floating-point sums (``tests/test_train_chunks.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from cryoscape.train.distributed import BatchPart, split_rows


def chunk_parts(rows: int, points_per_image: int, max_points: int, part: BatchPart | None) -> list[BatchPart | None]:
    """The chunks of a batch of ``rows`` images (``part``: the rows of a global batch this process
    holds, None: the whole batch): ``[part]`` when it fits in ``max_points``, else the fewest
    near-equal consecutive parts of at most ``max_points // points_per_image`` images (at least
    one): few distinct shapes, as each costs the CPU's bf16 kernels memory (see ``BAND_STEPS``)."""
    per_chunk = max(1, max_points // max(1, points_per_image))
    if rows <= per_chunk or (part is not None and part.size == 0):
        return [part]
    offset, total = (0, rows) if part is None else (part.offset, part.total)
    k = -(-rows // per_chunk)
    bounds = [split_rows(rows, k, i) for i in range(k)]
    return [BatchPart(offset + a, b - a, total) for a, b in bounds]


def forward_backward(
    module: torch.nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None],
    chunks: list[BatchPart | None],
    generator: torch.Generator | None,
    autocast: contextlib.AbstractContextManager,
    backward: Callable[[torch.Tensor], None],
) -> tuple[torch.Tensor, ...]:
    """Run ``module`` (a :class:`~cryoscape.train.objective.LossModule`, maybe under DDP) on
    ``batch = (images, rot, shift_px, ctf)`` chunk by chunk, calling ``backward(loss)`` on each
    chunk's loss, and return the batch's detached ``(loss, mse, kl)`` (the chunks' shares added
    up). The caller zeroes the gradients before and steps the optimiser after."""
    if len(chunks) == 1:
        with autocast:
            loss, mse, kl = module(*batch, generator, chunks[0])
        backward(loss)
        return loss.detach(), mse.detach(), kl.detach()
    start = chunks[0].offset if chunks[0] is not None else 0
    state = generator.get_state() if generator is not None else None
    no_sync = getattr(module, "no_sync", contextlib.nullcontext)  # DDP: reduce once, at the last chunk
    sums = [torch.zeros((), device=batch[0].device) for _ in range(3)]
    for i, part in enumerate(chunks):
        assert part is not None
        if generator is not None and state is not None:
            generator.set_state(state)  # every chunk draws its rows of the whole batch's draw
        rows = slice(part.offset - start, part.offset - start + part.size)
        images, rot, shift, ctf = (None if x is None else x[rows] for x in batch)
        with no_sync() if i < len(chunks) - 1 else contextlib.nullcontext():
            with autocast:
                terms = module(images, rot, shift, ctf, generator, part)
            backward(terms[0])
        for s, t in zip(sums, terms):
            s += t.detach().float()
    return tuple(sums)
