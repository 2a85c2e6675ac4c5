"""One Adam step of the default model on random images, poses and a CTF: what step_throughput.py
times and profile_step.py profiles, built in one place so both measure the same step."""

from __future__ import annotations

from collections.abc import Callable


def training_step(
    D: int, B: int, fmt: str, hf_sample: float = 1.0, dec_width: int = 256, max_points: int | None = None
) -> Callable[[], None]:
    """A closure taking one training step (zdim 8, batch ``B`` at ``D`` px, ``fmt`` "fp32" or
    "bf16" autocast, ``hf_sample`` share of the coefficients beyond the core, chunks of at most
    ``max_points`` decoder points as ``train --max-points``; None: the whole batch at once),
    seeded the same way every time; the caller sets threads and the allocator first."""
    import contextlib

    import numpy as np
    import torch

    from cryoscape.data.preprocess import Preprocessor
    from cryoscape.geometry import random_rotations
    from cryoscape.model.config import ModelConfig
    from cryoscape.model.vae import ReconModel
    from cryoscape.train.chunks import chunk_parts, forward_backward
    from cryoscape.train.objective import LossModule, ReconObjective

    torch.manual_seed(0)
    model = ReconModel(ModelConfig(D=D, zdim=8, dec_width=dec_width))
    objective = ReconObjective(Preprocessor(D, 1.0), psize_A=3.0, beta=0.5, hf_sample=hf_sample)
    step_module = LossModule(model, objective)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    rot = torch.as_tensor(random_rotations(B, np.random.default_rng(0))).float()
    img, shift = torch.randn(B, D, D), torch.randn(B, 2)
    ctf = torch.tensor([[15000.0, 14000.0, 30.0, 300.0, 2.7, 0.1, 0.0, 0.0]]).repeat(B, 1)  # CTF_COLUMNS order

    objective.band = 1.0
    chunks = chunk_parts(B, objective.points_per_image, max_points or B * objective.points_per_image, None)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if fmt == "bf16" else contextlib.nullcontext()

    def step() -> None:
        opt.zero_grad()
        forward_backward(step_module, (img, rot, shift, ctf), chunks, None, autocast, torch.Tensor.backward)
        opt.step()

    return step
