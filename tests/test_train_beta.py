"""The KL weight: ``default_beta(zdim)`` (a constant over zdim) by default, reached by a linear
warm-up from ``BETA_WARMUP_START`` of it over the first ``BETA_WARMUP_IMAGES`` images; both written
into config.yaml as the numbers used, the weight logged per epoch, and what the loss really weighs
the KL by. Runs from before (``beta: null``, which meant 1/zdim; no ``beta_warmup``: constant)
resume unchanged. The tuned values themselves are not asserted: the tests hold for any."""

from __future__ import annotations

import csv
import itertools

import pytest
import torch
import yaml

from cryoscape.cli.main import main
from cryoscape.data.preprocess import half_plane
from cryoscape.train.config import (
    BETA_WARMUP_IMAGES,
    BETA_WARMUP_START,
    TrainConfig,
    default_beta,
    load_config,
)

D = 16


def _train_cfg(run) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())["train"]


def _log(run) -> list[dict]:
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def _weights_used(run) -> list[float]:
    """beta as the loss applied it in each epoch: log.csv has loss = mse + beta * kl / N (N half-plane
    points); exact here, where an epoch is one step."""
    return [(float(r["loss"]) - float(r["mse"])) * len(half_plane(D)) / float(r["kl"]) for r in _log(run)]


@pytest.fixture
def sim_args(tmp_path):
    sim = tmp_path / "sim"
    assert main(["simulate", "--demo", "-n", "16", "-D", str(D), "--snr", "1", "-o", str(sim)]) == 0
    return [
        "train",
        str(sim / "particles.star"),
        "--zdim",
        "2",
        "--batch-size",
        "16",
        "--enc-width",
        "8",
        "--dec-width",
        "8",
        "--threads",
        "1",
        "--no-amp",
    ]


def test_warmup_goes_from_a_fraction_of_beta_to_beta_then_stays():
    assert default_beta(8) > 0 and default_beta(4) == pytest.approx(2 * default_beta(8))  # a constant / zdim
    assert default_beta(0) == 0.0
    t = TrainConfig()
    beta = default_beta(8)
    assert t.beta_for(8) == beta and TrainConfig(beta=0.1).beta_for(8) == 0.1
    assert t.beta_warmup == BETA_WARMUP_IMAGES > 0 and 0 < BETA_WARMUP_START < 1
    W = t.beta_warmup
    assert t.beta_at(8, 0) == pytest.approx(BETA_WARMUP_START * beta) and t.beta_at(8, W) == pytest.approx(beta)
    assert t.beta_at(8, W / 2) == pytest.approx(beta * (BETA_WARMUP_START + (1 - BETA_WARMUP_START) * 0.5))
    ramp = [t.beta_at(8, W * p / 50) for p in range(51)]
    assert all(b > a for a, b in itertools.pairwise(ramp))
    assert t.beta_at(8, 10 * W) == t.beta_at(8, W) == beta  # then constant
    assert TrainConfig(beta_warmup=0).beta_at(8, 0) == beta  # no warm-up
    assert t.beta_at(0, 100) == 0.0  # homogeneous: no KL term
    with pytest.raises(ValueError, match="beta_warmup"):
        TrainConfig(beta_warmup=-1)


def test_default_beta_is_recorded_and_is_what_the_loss_uses(tmp_path, sim_args):
    beta = default_beta(2)  # sim_args: --zdim 2
    default = tmp_path / "default"
    assert main([*sim_args, "-o", str(default), "-n", "1"]) == 0
    assert _train_cfg(default)["beta"] == beta and _train_cfg(default)["beta_warmup"] == BETA_WARMUP_IMAGES
    assert float(_log(default)[0]["beta"]) == pytest.approx(beta * BETA_WARMUP_START)  # the warm-up's start
    run = tmp_path / "run"
    assert main([*sim_args, "-o", str(run), "-n", "3", "--beta-warmup", "32"]) == 0  # 16 images per epoch
    t = _train_cfg(run)
    assert t["beta"] == beta and t["beta_warmup"] == 32
    assert load_config(run)[2].beta == beta and load_config(run)[2].beta_warmup == 32
    ramp = [beta * BETA_WARMUP_START, beta * (BETA_WARMUP_START + (1 - BETA_WARMUP_START) * 0.5), beta]
    assert [float(r["beta"]) for r in _log(run)] == pytest.approx(ramp, rel=1e-5)
    assert _weights_used(run) == pytest.approx(ramp, rel=1e-2)
    assert torch.load(run / "weights.pt", weights_only=True)["train_config"]["beta"] == beta  # as config.yaml
    given = tmp_path / "given"
    assert main([*sim_args, "-o", str(given), "-n", "2", "--beta", "0.3", "--beta-warmup", "0"]) == 0
    assert _train_cfg(given)["beta"] == 0.3 and _train_cfg(given)["beta_warmup"] == 0
    assert _weights_used(given) == pytest.approx([0.3, 0.3], rel=1e-2)


def test_a_resumed_run_keeps_its_warmup(tmp_path, sim_args):
    """Resuming continues the warm-up where the run is in it (the weight depends on the images
    trained on, not on how many sessions the run took) and a different warm-up is refused."""
    run, whole = tmp_path / "run", tmp_path / "whole"
    assert main([*sim_args, "-o", str(whole), "-n", "4", "--beta-warmup", "48"]) == 0
    assert main([*sim_args, "-o", str(run), "-n", "4", "--beta-warmup", "48"]) == 0
    for f in ("weights.3.pt", "weights.2.pt"):
        (run / f).unlink()
    assert main([*sim_args, "-o", str(run), "-n", "4"]) == 0  # keeps its own 48
    weights = [float(r["beta"]) for r in _log(run)]
    assert weights == [float(r["beta"]) for r in _log(whole)] and len(set(weights)) == 4
    assert main([*sim_args, "-o", str(run), "-n", "5", "--beta-warmup", "0"]) == 2


def test_a_run_from_before_keeps_a_constant_one_over_zdim(tmp_path, sim_args):
    """config.yaml files written before beta was resolved hold ``beta: null``, which then meant
    1/zdim, and no ``beta_warmup`` (the weight was constant); their checkpoints' logs have no
    ``beta``. They are read so, and resuming without --beta continues at that constant weight."""
    run = tmp_path / "run"
    args = [*sim_args, "-o", str(run)]
    assert main([*args, "-n", "1", "--beta", "0.5", "--beta-warmup", "0"]) == 0
    cfg = run / "config.yaml"
    raw = yaml.safe_load(cfg.read_text())
    raw["train"]["beta"] = None
    del raw["train"]["beta_warmup"]
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    for f in ("weights.pt", "weights.0.pt"):
        ckpt = torch.load(run / f, weights_only=False)
        ckpt["log"] = [{k: v for k, v in r.items() if k != "beta"} for r in ckpt["log"]]
        torch.save(ckpt, run / f)
    assert load_config(run)[2].beta == 0.5 and load_config(run)[2].beta_warmup == 0
    assert main([*args, "-n", "2"]) == 0
    t = _train_cfg(run)
    assert t["beta"] == 0.5 and t["beta_warmup"] == 0
    assert [float(r["beta"]) for r in _log(run)] == [0.5, 0.5]
    assert _weights_used(run) == pytest.approx([0.5, 0.5], rel=1e-2)
    assert main([*args, "-n", "3", "--beta", "1.0"]) == 2  # a different weight is refused
