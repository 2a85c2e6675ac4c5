"""The KL weight: 2/zdim by default, written into config.yaml as the number used, and what the loss
really weighs the KL by; runs from before (``beta: null``, which meant 1/zdim) resume unchanged."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml

from cryoscape.cli.main import main
from cryoscape.data.preprocess import half_plane
from cryoscape.train.config import BETA_ZDIM, TrainConfig, default_beta, load_config

D = 16


def _beta(run) -> float:
    return yaml.safe_load((run / "config.yaml").read_text())["train"]["beta"]


def _weight_used(run) -> float:
    """beta as the loss applied it: log.csv has loss = mse + beta * kl / N (N half-plane points)."""
    with open(run / "log.csv") as f:
        row = list(csv.DictReader(f))[-1]
    return (float(row["loss"]) - float(row["mse"])) * len(half_plane(D)) / float(row["kl"])


@pytest.fixture
def sim_args(tmp_path):
    sim = tmp_path / "sim"
    assert main(["simulate", "--demo", "-n", "16", "-D", str(D), "--snr", "1", "-o", str(sim)]) == 0
    return ["train", str(sim / "particles.star"), "--zdim", "2", "--batch-size", "16",
            "--enc-width", "8", "--dec-width", "8", "--threads", "1", "--no-amp"]


def test_default_beta_is_recorded_and_is_what_the_loss_uses(tmp_path, sim_args):
    assert BETA_ZDIM == 2.0 and default_beta(8) == 0.25 and default_beta(0) == 0.0
    assert TrainConfig().beta_for(8) == 0.25 and TrainConfig(beta=0.1).beta_for(8) == 0.1
    run = tmp_path / "run"
    assert main([*sim_args, "-o", str(run), "-n", "1"]) == 0
    assert _beta(run) == 1.0 and load_config(run)[2].beta == 1.0   # 2 / zdim, as a number
    assert _weight_used(run) == pytest.approx(1.0, rel=1e-2)
    assert torch.load(run / "weights.pt", weights_only=True)["train_config"]["beta"] == 1.0  # as config.yaml
    given = tmp_path / "given"
    assert main([*sim_args, "-o", str(given), "-n", "1", "--beta", "0.3"]) == 0
    assert _beta(given) == 0.3 and _weight_used(given) == pytest.approx(0.3, rel=1e-2)


def test_a_run_from_before_keeps_one_over_zdim(tmp_path, sim_args):
    """config.yaml files written before beta was resolved hold ``beta: null``, which then meant
    1/zdim: they are read so, and resuming without --beta continues at that weight."""
    run = tmp_path / "run"
    args = [*sim_args, "-o", str(run)]
    assert main([*args, "-n", "1", "--beta", "0.5"]) == 0
    cfg = run / "config.yaml"
    raw = yaml.safe_load(cfg.read_text())
    raw["train"]["beta"] = None
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert load_config(run)[2].beta == 0.5
    assert main([*args, "-n", "2"]) == 0
    assert _beta(run) == 0.5 and _weight_used(run) == pytest.approx(0.5, rel=1e-2)
    assert main([*args, "-n", "3", "--beta", "1.0"]) == 2   # a different weight is refused
