"""The command's default learning rate follows the box, is recorded, and a resumed run keeps its own."""

from __future__ import annotations

import yaml

from cryoscape.cli.main import main


def _lr(run) -> float:
    return float(yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"])


def test_default_lr_from_box_recorded_and_kept_on_resume(tmp_path):
    sim, run = tmp_path / "sim", tmp_path / "run"
    assert main(["simulate", "--demo", "-n", "16", "-D", "96", "--snr", "inf", "-o", str(sim)]) == 0
    args = ["train", str(sim / "particles.star"), "-o", str(run), "--zdim", "2", "--batch-size", "8",
            "--enc-width", "16", "--dec-width", "16", "--threads", "1", "--no-amp"]
    assert main([*args, "-n", "1"]) == 0
    assert abs(_lr(run) - 1e-3 * (64 / 96) ** 1.5) < 1e-9
    # an explicit --lr that differs from the run's is refused on resume; none keeps the run's own
    assert main([*args, "-n", "2", "--lr", "1e-3"]) == 2
    assert main([*args, "-n", "2"]) == 0
    assert abs(_lr(run) - 1e-3 * (64 / 96) ** 1.5) < 1e-9
