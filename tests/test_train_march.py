"""Frequency marching: the loss fits a band of lattice points that grows over the run."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import torch
import yaml
from helpers import TINY_TRAIN, noise_free_demo

from cryoscape.cli.main import main
from cryoscape.data.preprocess import Preprocessor, half_plane
from cryoscape.geometry import random_rotations
from cryoscape.model.config import ModelConfig
from cryoscape.model.vae import ReconModel
from cryoscape.train.config import MARCH_START, TrainConfig
from cryoscape.train.objective import ReconObjective


def test_band_grows_linearly_from_the_start_to_all_points_then_stays():
    t = TrainConfig(freq_march=0.5)
    assert t.band_at(0.0) == pytest.approx(MARCH_START)
    assert t.band_at(0.25) == pytest.approx((MARCH_START + 1) / 2)
    assert t.band_at(0.5) == t.band_at(0.9) == 1.0
    bands = [t.band_at(p / 100) for p in range(101)]
    assert all(a <= b for a, b in itertools.pairwise(bands))
    assert TrainConfig(freq_march=0.0).band_at(0.0) == 1.0
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="freq_march"):
            TrainConfig(freq_march=bad)


@pytest.mark.parametrize("D", [16, 33, 64])
def test_half_plane_is_sorted_by_radius_so_a_band_is_a_prefix(D):
    hp = half_plane(D)
    r = hp.freqs.square().sum(-1).sqrt()
    assert torch.all(r[1:] >= r[:-1])
    for band in (0.1, 0.25, 0.5, 0.77):
        n = hp.count_within(band)
        assert n == max(1, int((r < 0.5 * band).sum()))
        assert torch.all(r[:n] < 0.5 * band) or n == 1
    assert hp.count_within(1.0) == len(hp)


def _objective(D: int, band: float) -> tuple[ReconModel, ReconObjective]:
    torch.manual_seed(0)
    model = ReconModel(ModelConfig(D=D, zdim=0, dec_width=16, dec_depth=2))
    obj = ReconObjective(Preprocessor(D, 1.0), psize_A=3.0, beta=0.0)
    obj.band = band
    return model, obj


def test_loss_sees_only_the_band_and_decodes_only_its_points():
    D, band = 32, 0.5
    model, obj = _objective(D, band)
    rot = torch.as_tensor(random_rotations(4, np.random.default_rng(1))).float()
    shifts = torch.zeros(4, 2)
    images = torch.randn(4, D, D, generator=torch.Generator().manual_seed(2))
    # the same images with their Fourier data changed at the points outside the band only
    n = obj.pre.half.count_within(band)
    delta = torch.zeros(len(obj.pre.half), dtype=torch.complex64)
    delta[n:] = 30.0
    clean = obj.pre

    class Perturbed:
        half = clean.half

        def __call__(self, imgs, sh):
            enc, data = clean(imgs, sh)
            return enc, data + delta

    seen = []
    hook = model.decoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[1]))
    with torch.no_grad():
        a = obj(model, images, rot, shifts, None).loss
        obj.pre = Perturbed()
        b = obj(model, images, rot, shifts, None).loss
        obj.band = 1.0
        d = obj(model, images, rot, shifts, None).loss
        obj.pre = clean
        c = obj(model, images, rot, shifts, None).loss
    hook.remove()
    assert torch.equal(a, b)  # outside the band: no effect on the loss
    assert not torch.allclose(c, d, rtol=1e-2)  # the whole lattice: it counts
    assert seen[0] == n < seen[2] == len(obj.pre.half)


def test_training_logs_the_band_records_the_setting_and_keeps_it_on_resume(tmp_path):
    run = tmp_path / "run"
    args = [
        "train",
        str(noise_free_demo(tmp_path, n=32)),
        "-o",
        str(run),
        *TINY_TRAIN,
    ]
    assert main([*args, "-n", "4", "--freq-march", "0.5"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["freq_march"] == 0.5
    with open(run / "log.csv", newline="") as f:
        bands = [float(r["band"]) for r in csv.DictReader(f)]
    t = TrainConfig(freq_march=0.5, epochs=4)
    # epoch e's logged band is the mean over its 4 steps of band_at((e + i/4) / 4)
    want = [np.mean([t.band_at((e + i / 4) / 4) for i in range(4)]) for e in range(4)]
    assert bands == pytest.approx(want, abs=1e-5)
    assert bands[0] < bands[1] < 1.0 == bands[2] == bands[3]
    # resuming without the flag keeps the run's own; a different one is refused
    assert main([*args, "-n", "5"]) == 0
    assert main([*args, "-n", "6", "--freq-march", "0"]) == 2
    assert main([*args, "-n", "6", "--freq-march", "2"]) == 2


def test_a_run_from_before_marching_reads_as_fitting_every_point(tmp_path):
    run = tmp_path / "run"
    args = [
        "train",
        str(noise_free_demo(tmp_path)),
        "-o",
        str(run),
        *TINY_TRAIN,
        "--freq-march",
        "0",
    ]
    assert main([*args, "-n", "1"]) == 0
    cfg = run / "config.yaml"
    raw = yaml.safe_load(cfg.read_text())
    del raw["train"]["freq_march"]
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main([*args[:-2], "-n", "2"]) == 0
    assert yaml.safe_load(cfg.read_text())["train"]["freq_march"] == 0.0


def test_a_march_meets_few_point_counts_and_never_fits_fewer_than_its_band():
    """Each new point count is a new tensor shape, whose cached kernels stay in memory: a march of
    thousands of steps must reuse a handful of shapes, each covering at least the band it stands for."""
    from cryoscape.train.objective import BAND_STEPS

    pre = Preprocessor(64, 1.0)
    obj = ReconObjective(pre, psize_A=3.0, beta=0.1)
    t = TrainConfig(freq_march=0.3)
    counts = set()
    for step in range(5000):
        obj.band = t.band_at(step / 5000)
        counts.add(obj.n_fit)
        assert obj.n_fit >= pre.half.count_within(obj.band)
    assert len(counts) <= BAND_STEPS
    obj.band = 1.0
    assert obj.n_fit == len(pre.half)
