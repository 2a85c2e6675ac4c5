"""A step run in chunks of images (``train --max-points``) is the whole-batch step, in less memory."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from cryoscape.data.preprocess import Preprocessor
from cryoscape.geometry import random_rotations
from cryoscape.model.config import ModelConfig
from cryoscape.model.vae import ReconModel
from cryoscape.train.chunks import chunk_parts, forward_backward
from cryoscape.train.distributed import BatchPart
from cryoscape.train.objective import LossModule, ReconObjective


def test_chunk_parts_cover_the_batch_in_order():
    assert chunk_parts(32, 1000, 65_536, None) == [None]  # fits: the whole batch at once
    parts = chunk_parts(10, 100, 350, None)  # at most 3 images per chunk: 4 chunks, near-equal
    assert [(p.offset, p.size, p.total) for p in parts] == [(0, 3, 10), (3, 3, 10), (6, 2, 10), (8, 2, 10)]
    assert chunk_parts(4, 10_000, 100, None)[0] == BatchPart(0, 1, 4)  # at least one image per chunk
    # a torchrun rank's rows 8..15 of a global batch of 32, in chunks of 3: still shares of the 32
    parts = chunk_parts(8, 100, 300, BatchPart(8, 8, 32))
    assert [(p.offset, p.size, p.total) for p in parts] == [(8, 3, 32), (11, 3, 32), (14, 2, 32)]
    stand_in = BatchPart(0, 0, 3)  # a rank's empty part: its one stand-in image is never split
    assert chunk_parts(1, 100, 1, stand_in) == [stand_in]


def _step_grads(max_points: int, hf_sample: float) -> tuple[list[torch.Tensor], list[float], torch.Tensor]:
    """Gradients, terms and the generator's next draw after one step of a batch of 12 at 24 px."""
    D, B = 24, 12
    torch.manual_seed(0)
    model = ReconModel(ModelConfig(D=D, zdim=3, enc_width=16, dec_width=16))
    objective = ReconObjective(Preprocessor(D, 1.0), psize_A=3.0, beta=0.5, hf_sample=hf_sample)
    objective.band = 0.8
    module = LossModule(model, objective)
    rng = np.random.default_rng(1)
    rot = torch.as_tensor(random_rotations(B, rng)).float()
    images = torch.as_tensor(rng.standard_normal((B, D, D))).float()
    shift = torch.as_tensor(rng.normal(0, 1, (B, 2))).float()
    ctf = torch.tensor([[15000.0, 14000.0, 30.0, 300.0, 2.7, 0.1, 0.0, 0.0]]).repeat(B, 1)
    gen = torch.Generator().manual_seed(5)
    chunks = chunk_parts(B, objective.points_per_image, max_points, None)
    batch = (images, rot, shift, ctf)
    terms = forward_backward(module, batch, chunks, gen, contextlib.nullcontext(), torch.Tensor.backward)
    grads = [p.grad.clone() for p in model.parameters()]
    return grads, [float(t) for t in terms], torch.rand(1, generator=gen)


@pytest.mark.parametrize("hf_sample", [1.0, 0.35])
def test_chunked_step_equals_the_whole_batch_step(hf_sample):
    whole_grads, whole_terms, whole_next = _step_grads(10**9, hf_sample)
    ppi = ReconObjective(Preprocessor(24, 1.0), 3.0, 0.5, hf_sample)
    ppi.band = 0.8
    assert len(chunk_parts(12, ppi.points_per_image, 5 * ppi.points_per_image, None)) == 3  # 4 + 4 + 4
    grads, terms, nxt = _step_grads(5 * ppi.points_per_image, hf_sample)
    np.testing.assert_allclose(terms, whole_terms, rtol=1e-5)
    for g, w in zip(grads, whole_grads):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
    # the chunks drew what the whole batch draws (latent noise, sampled points) and left the
    # generator where the whole-batch step leaves it: the run's later steps are unchanged
    assert torch.equal(nxt, whole_next)


def test_points_per_image_counts_what_the_step_evaluates():
    obj = ReconObjective(Preprocessor(32, 1.0), psize_A=3.0, beta=0.5, hf_sample=0.35)
    obj.band = 1.0
    idx, _ = obj._sample(obj.n_fit, 2, torch.Generator().manual_seed(0), None)
    assert idx is not None and idx.shape[1] == obj.points_per_image < obj.n_fit
    obj.band = 0.25  # within the sampled core: every point of the band
    assert obj.points_per_image == obj.n_fit


def test_training_in_chunks_matches_training_whole_batches(tmp_path):
    """End to end through ``cryoscape train``: the same latents with every step split in chunks."""
    from helpers import TINY_TRAIN, simulate_particles

    from cryoscape.cli.main import main

    star, _ = simulate_particles(tmp_path / "sim", n=48, D=16)
    z = {}
    for name, extra in (("whole", []), ("chunks", ["--max-points", "300"])):
        out = tmp_path / name
        assert main(["train", str(star), "-o", str(out), "-n", "2", *TINY_TRAIN, *extra]) == 0
        z[name] = np.load(out / "z.npy")
    np.testing.assert_allclose(z["chunks"], z["whole"], rtol=1e-3, atol=1e-4)
