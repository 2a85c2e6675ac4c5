"""The library's training run (:mod:`cryoscape.train.run`) is the command's: same defaults, same
config.yaml, same weights and latents; and a resumed run keeps its lr, schedule, beta, warm-up,
frequency marching and normalisation unless they are given."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml
from helpers import simulate_particles, train_tiny_run

from cryoscape.cli.common import optics_fill
from cryoscape.cli.main import build_parser
from cryoscape.train.config import LEGACY_BETA_ZDIM, TrainConfig, default_lr, save_config
from cryoscape.train.run import RunConfig, plan_run, train_run


def test_command_defaults_are_the_librarys():
    """The parsed command line with only the required options is the bare RunConfig."""
    args = build_parser().parse_args(["train", "p.star", "-o", "out", "--zdim", "2"])
    assert RunConfig.from_args(args, optics=optics_fill(args)) == RunConfig("p.star", "out", zdim=2)
    args = build_parser().parse_args(
        [
            "train",
            "p.star",
            "-o",
            "out",
            "--zdim",
            "2",
            "--no-ctf",
            "--lazy",
            "--lr",
            "2e-3",
            "--no-amp",
            "--dec-width",
            "8",
        ]
    )
    assert RunConfig.from_args(args) == RunConfig(
        "p.star", "out", zdim=2, use_ctf=False, lazy=True, lr=2e-3, amp=False, dec_width=8
    )
    assert TrainConfig().resolved(128, amp=True) == replace(
        TrainConfig(), batch_size=16, lr=default_lr(128, 16), amp=True
    )
    assert TrainConfig().resolved(128, amp=True, device_type="cuda") == replace(
        TrainConfig(), batch_size=32, lr=default_lr(128), amp=True
    )


def test_api_and_command_give_the_same_run(tmp_path):
    """One epoch on the same particles through the command (train_tiny_run) and through
    train_run: the same config.yaml, weights, optimiser state and latents, bit for bit."""
    cli_run = train_tiny_run(tmp_path, n=48)
    api_run = tmp_path / "api"
    res = train_run(
        RunConfig(
            tmp_path / "sim" / "particles.star",
            api_run,
            zdim=2,
            epochs=1,
            enc_width=16,
            dec_width=16,
            enc_depth=1,
            dec_depth=1,
            threads=1,
        ),
        progress=False,
    )
    assert res.epochs_run == 1 and res.last_epoch == 0
    assert (api_run / "config.yaml").read_text() == (cli_run / "config.yaml").read_text()
    assert np.array_equal(np.load(api_run / "z.npy"), np.load(cli_run / "z.npy"))
    a, b = (torch.load(r / "weights.pt", weights_only=True) for r in (api_run, cli_run))
    for key in ("model_state", "optimizer_state", "data_config", "train_config", "norm", "epoch"):
        _assert_same(a[key], b[key])


def _assert_same(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(star path, ParticleData) of 16 simulated particles."""
    from cryoscape.data.dataset import particle_data
    from cryoscape.io.load import load_particles

    star, _ = simulate_particles(tmp_path_factory.mktemp("plan"), n=16, D=16)
    return star, particle_data(load_particles(star, images="require"))


def test_resumed_run_keeps_its_settings_unless_given(tiny, tmp_path):
    star, data = tiny
    fresh = plan_run(RunConfig(star, tmp_path, zdim=2), data, device=torch.device("cpu"))
    m, d, t = fresh
    assert t.batch_size == 16 and t.lr == default_lr(16, 16)
    assert t.lr_schedule == TrainConfig.lr_schedule and t.beta is None
    assert t.beta_warmup == TrainConfig.beta_warmup and t.freq_march == TrainConfig.freq_march
    assert d.norm[0] == 0.0 and d.norm[1] > 0 and isinstance(t.amp, bool)

    old = replace(t, lr=2e-3, lr_schedule="constant", beta=0.3, beta_warmup=0, freq_march=0.5)
    save_config(tmp_path, m, replace(d, norm=(0.0, 7.5)), old)  # as if a run had begun so
    _, d2, t2 = plan_run(RunConfig(star, tmp_path, zdim=2, epochs=5), data)
    assert (t2.lr, t2.lr_schedule, t2.beta, t2.beta_warmup, t2.freq_march) == (2e-3, "constant", 0.3, 0, 0.5)
    assert d2.norm == (0.0, 7.5) and t2.epochs == 5

    given = RunConfig(star, tmp_path, zdim=2, lr=5e-4, lr_schedule="cosine", beta=0.1, beta_warmup=100, freq_march=0.0)
    _, d3, t3 = plan_run(given, data)
    assert (t3.lr, t3.lr_schedule, t3.beta, t3.beta_warmup, t3.freq_march) == (5e-4, "cosine", 0.1, 100, 0.0)
    assert d3.norm == (0.0, 7.5)  # the normalisation is never given: a resumed run keeps it

    assert plan_run(RunConfig(star, tmp_path, zdim=2, overwrite=True), data) == fresh  # the old run ignored


def test_a_run_from_before_the_defaults_resumes_as_it_ran(tiny, tmp_path):
    """A config.yaml without lr_schedule, beta_warmup, freq_march and with ``beta: null`` ran at a
    constant rate, a constant 1/zdim, every point fitted: resumed, it still does."""
    star, data = tiny
    m, d, t = plan_run(RunConfig(star, tmp_path, zdim=2), data)
    save_config(tmp_path, m, d, t)
    raw = yaml.safe_load((tmp_path / "config.yaml").read_text())
    for key in ("lr_schedule", "beta_warmup", "freq_march"):
        del raw["train"][key]
    raw["train"]["beta"] = None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _, _, t2 = plan_run(RunConfig(star, tmp_path, zdim=2), data)
    assert (t2.lr_schedule, t2.beta_warmup, t2.freq_march) == ("constant", 0, 0.0)
    assert t2.beta == LEGACY_BETA_ZDIM / 2
