"""Sampled high frequencies: each image fits the core and a random share of the points beyond."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from helpers import TINY_TRAIN, noise_free_demo

from cryoscape.cli.main import main
from cryoscape.data.preprocess import Preprocessor
from cryoscape.geometry import random_rotations
from cryoscape.model.config import ModelConfig
from cryoscape.model.vae import ReconModel
from cryoscape.train.config import SAMPLE_CORE, TrainConfig
from cryoscape.train.distributed import BatchPart
from cryoscape.train.objective import BAND_STEPS, ReconObjective

D, B = 24, 6


def _batch(seed: int = 0):
    rot = torch.as_tensor(random_rotations(B, np.random.default_rng(seed))).float()
    ctf = torch.tensor([[15000.0, 14000.0, 30.0, 300.0, 2.7, 0.1, 0.0, 0.0]]).repeat(B, 1)
    images = torch.randn(B, D, D, generator=torch.Generator().manual_seed(seed))
    return images, rot, torch.zeros(B, 2), ctf


def _setup(share: float, zdim: int = 0) -> tuple[ReconModel, ReconObjective]:
    torch.manual_seed(0)
    model = ReconModel(ModelConfig(D=D, zdim=zdim, enc_width=16, dec_width=16, dec_depth=2))
    return model, ReconObjective(Preprocessor(D, 1.0), psize_A=3.0, beta=0.5, hf_sample=share)


def test_the_sampled_loss_is_an_unbiased_estimate_of_the_full_one():
    model, sampled = _setup(0.2)
    full = ReconObjective(Preprocessor(D, 1.0), psize_A=3.0, beta=0.5, hf_sample=1.0)
    batch = _batch()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        want = float(full(model, *batch).mse)
        draws = torch.stack([sampled(model, *batch, generator=gen).mse for _ in range(400)]).double()
    assert draws.std() > 0  # it samples: each draw differs
    assert abs(float(draws.mean()) - want) < 4 * float(draws.std()) / 20  # 4 standard errors of the mean


def test_each_image_decodes_the_core_and_its_own_share_of_the_rest():
    model, obj = _setup(0.25)
    hp = obj.pre.half
    core = hp.count_within(SAMPLE_CORE)
    tail = len(hp) - core
    seen = []
    hook = model.decoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    with torch.no_grad():
        obj(model, *_batch(), generator=torch.Generator().manual_seed(3))
    hook.remove()
    n_points = seen[0].shape[1]
    assert n_points == core + round(0.25 * tail)
    idx, weight = obj._sample(len(hp), B, torch.Generator().manual_seed(3), None)
    assert weight == pytest.approx(tail / round(0.25 * tail))
    assert torch.equal(idx[:, :core], torch.arange(core).expand(B, core))  # the core: every point, always
    picked = [set(row[core:].tolist()) for row in idx]
    assert all(len(p) == n_points - core and min(p) >= core and max(p) < len(hp) for p in picked)
    assert len({frozenset(p) for p in picked}) == B  # a fresh draw per image


def test_share_one_fits_every_point_and_bands_inside_the_core_are_not_sampled():
    model, one = _setup(1.0)
    _, sampled = _setup(0.2)
    batch = _batch()
    with torch.no_grad():
        a = one(model, *batch).loss
        inside = math.floor(SAMPLE_CORE * BAND_STEPS) / BAND_STEPS  # a band (as rounded) inside the core
        sampled.band = inside
        b = sampled(model, *batch, generator=torch.Generator().manual_seed(0)).loss
        one.band = inside
        c = one(model, *batch).loss
    assert torch.isfinite(a)
    assert torch.equal(b, c)


def test_parts_of_a_batch_draw_what_one_process_draws():
    """Under torchrun each rank keeps its rows of the whole batch's draw: the shares add up."""
    model, obj = _setup(0.3, zdim=2)
    images, rot, shifts, ctf = _batch()
    with torch.no_grad():
        whole = obj(model, images, rot, shifts, ctf, generator=torch.Generator().manual_seed(5))
        total = 0.0
        for lo, hi in ((0, 2), (2, B)):
            part = BatchPart(offset=lo, size=hi - lo, total=B)
            t = obj(
                model,
                images[lo:hi],
                rot[lo:hi],
                shifts[lo:hi],
                ctf[lo:hi],
                generator=torch.Generator().manual_seed(5),
                part=part,
            )
            total += float(t.loss)
    assert total == pytest.approx(float(whole.loss), rel=1e-5)


def test_config_validates_and_old_runs_read_as_fitting_every_point(tmp_path):
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="hf_sample"):
            TrainConfig(hf_sample=bad)
    run = tmp_path / "run"
    args = [
        "train",
        str(noise_free_demo(tmp_path)),
        "-o",
        str(run),
        *TINY_TRAIN,
    ]
    assert main([*args, "-n", "1", "--hf-sample", "0"]) == 2
    assert main([*args, "-n", "1", "--hf-sample", "0.5"]) == 0
    cfg = run / "config.yaml"
    assert yaml.safe_load(cfg.read_text())["train"]["hf_sample"] == 0.5
    assert main([*args, "-n", "2"]) == 0  # resumed without the flag: keeps its own
    assert yaml.safe_load(cfg.read_text())["train"]["hf_sample"] == 0.5
    assert main([*args, "-n", "3", "--hf-sample", "1"]) == 2  # a different one is refused
    raw = yaml.safe_load(cfg.read_text())
    del raw["train"]["hf_sample"]
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main([*args, "-n", "3"]) == 0
    assert yaml.safe_load(cfg.read_text())["train"]["hf_sample"] == 1.0
