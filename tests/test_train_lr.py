"""The command's default learning rate follows the box, is recorded, and a resumed run keeps its
own; the rate's schedule over the run (cosine by default) likewise."""

from __future__ import annotations

import itertools

import pytest
import yaml
from helpers import TINY_TRAIN, noise_free_demo

from cryoscape.cli.main import main
from cryoscape.train.config import DEFAULT_BATCH, LR_FLOOR, TrainConfig, default_lr


def _lr(run) -> float:
    return float(yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"])


def test_default_learning_rate_falls_with_the_box():
    """Constant up to a 64 px box (stable there), then falling as D^-1.5 (the small boxes' rate
    diverged at 128 px), so it approaches cryoDRGN's fixed rate at the largest boxes."""
    assert default_lr(16) == default_lr(32) == default_lr(64)
    for d in (64, 128, 256):
        assert default_lr(2 * d) == pytest.approx(default_lr(d) / 2**1.5, rel=1e-12)
    assert default_lr(360) < default_lr(256) < default_lr(128) < default_lr(64)


def test_default_lr_scales_with_the_square_root_of_the_batch():
    """Adam's step does not grow with the gradient, so a smaller (noisier) batch gets a lower rate:
    sqrt(batch / 32) of the batch-32 rate, at every box; the CPU's default batch gets 1e-3/sqrt(2)."""
    for d in (64, 128, 256):
        assert default_lr(d, 32) == default_lr(d)
        assert default_lr(d, 128) == pytest.approx(2 * default_lr(d), rel=1e-12)
        assert default_lr(d, 8) == pytest.approx(default_lr(d) / 2, rel=1e-12)
    assert DEFAULT_BATCH == {"cpu": 16, "cuda": 32}
    assert default_lr(64, DEFAULT_BATCH["cpu"]) == pytest.approx(7.071e-4, rel=1e-4)
    with pytest.raises(ValueError, match="batch"):
        default_lr(64, 0)


def test_default_batch_follows_the_device_and_a_resumed_run_keeps_its_own(tmp_path):
    """No --batch-size: the CPU's default batch and the rate for it are recorded; resuming without
    one keeps the run's batch (even if the default changed since), an explicit other one is refused."""
    run = tmp_path / "run"
    star = noise_free_demo(tmp_path, n=40)
    args = ["train", str(star), "-o", str(run), "--zdim", "2", "--enc-width", "8", "--dec-width", "8"]
    args += ["--threads", "1", "--no-amp"]
    assert main([*args, "-n", "1"]) == 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())["train"]
    assert cfg["batch_size"] == DEFAULT_BATCH["cpu"] and _lr(run) == pytest.approx(default_lr(16, 16))
    cfg["batch_size"] = 20  # as if written when the default was another
    text = yaml.safe_load((run / "config.yaml").read_text())
    text["train"] = cfg
    (run / "config.yaml").write_text(yaml.safe_dump(text))
    assert main([*args, "-n", "2"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["batch_size"] == 20
    assert main([*args, "-n", "3", "--batch-size", "8"]) == 2


def test_default_lr_from_box_recorded_and_kept_on_resume(tmp_path):
    run = tmp_path / "run"
    star = noise_free_demo(tmp_path, D=96)
    args = ["train", str(star), "-o", str(run), *TINY_TRAIN, "--enc-width", "16", "--dec-width", "16"]
    assert main([*args, "-n", "1"]) == 0
    assert abs(_lr(run) - default_lr(96, 8)) < 1e-9  # TINY_TRAIN: batch 8
    # an explicit --lr that differs from the run's is refused on resume; none keeps the run's own
    assert main([*args, "-n", "2", "--lr", "1e-3"]) == 2
    assert main([*args, "-n", "2"]) == 0
    assert abs(_lr(run) - default_lr(96, 8)) < 1e-9  # TINY_TRAIN: batch 8


def test_cosine_schedule_falls_from_lr_to_the_floor():
    t = TrainConfig(lr=2e-3, lr_schedule="cosine", epochs=10)
    assert abs(t.lr_at(0.0) - 2e-3) < 1e-12
    assert abs(t.lr_at(1.0) - 2e-3 * LR_FLOOR) < 1e-12
    assert abs(t.lr_at(0.5) - 2e-3 * (1 + LR_FLOOR) / 2) < 1e-12
    rates = [t.lr_at(p / 100) for p in range(101)]
    assert all(a >= b for a, b in itertools.pairwise(rates))
    assert TrainConfig(lr=1e-3, lr_schedule="constant").lr_at(0.9) == 1e-3
    assert TrainConfig().lr_schedule == "cosine"
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="cos")


def test_schedule_defaults_to_cosine_and_a_run_from_before_schedules_stays_constant(tmp_path):
    """A config.yaml written before the schedule existed (no ``lr_schedule``) ran at a constant
    rate: it is read so, and resuming it without --lr-schedule keeps it so."""
    run = tmp_path / "run"
    args = [
        "train",
        str(noise_free_demo(tmp_path)),
        "-o",
        str(run),
        *TINY_TRAIN,
    ]
    assert main([*args, "-n", "1"]) == 0
    cfg = run / "config.yaml"
    raw = yaml.safe_load(cfg.read_text())
    assert raw["train"]["lr_schedule"] == "cosine"
    del raw["train"]["lr_schedule"]
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main([*args, "-n", "2"]) == 0
    assert yaml.safe_load(cfg.read_text())["train"]["lr_schedule"] == "constant"
    assert main([*args, "-n", "3", "--lr-schedule", "cosine"]) == 2  # a different schedule is refused


def test_optimizer_follows_the_schedule_and_a_killed_run_resumes_on_it(tmp_path):
    """The rate the optimiser ends with is the schedule's, and a run that lost its last epoch
    and is re-run ends bit for bit where the uninterrupted run did (the schedule is a function
    of the step, not of what the process remembers)."""
    import numpy as np
    import torch

    args = ["train", str(noise_free_demo(tmp_path)), *TINY_TRAIN, "--lr", "1e-3", "--lr-schedule", "cosine", "-n", "3"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*args, "-o", str(one)]) == 0
    assert main([*args, "-o", str(two)]) == 0
    (two / "weights.2.pt").write_bytes(b"lost")  # as if killed while writing the last epoch
    assert main([*args, "-o", str(two)]) == 0
    last = TrainConfig(lr=1e-3, lr_schedule="cosine", epochs=3).lr_at((2 + 1 / 2) / 3)  # 2 steps/epoch
    for run in (one, two):
        ckpt = torch.load(run / "weights.pt", weights_only=True)
        assert ckpt["epoch"] == 2
        assert abs(ckpt["optimizer_state"]["param_groups"][0]["lr"] - last) < 1e-12
    assert np.array_equal(np.load(one / "z.npy"), np.load(two / "z.npy"))
    assert yaml.safe_load((one / "config.yaml").read_text())["train"]["lr_schedule"] == "cosine"
