"""A `cryoscape train` process killed mid-run (SIGKILL) resumes cleanly from its last checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch
from helpers import simulate_particles

from cryoscape.train import checkpoint as ck

ARGS = [
    "--zdim",
    "2",
    "-n",
    "8",
    "--enc-width",
    "32",
    "--dec-width",
    "32",
    "--enc-depth",
    "2",
    "--dec-depth",
    "2",
    "--batch-size",
    "8",
    "--threads",
    "1",
]


def _cmd(star, out) -> list[str]:
    return [sys.executable, "-m", "cryoscape.cli.main", "train", str(star), "-o", str(out), *ARGS]


@pytest.mark.slow
def test_sigkill_then_rerun_finishes(tmp_path):
    star, _ = simulate_particles(tmp_path / "sim", n=400, D=16)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cmd(star, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "weights.0.pt").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        time.sleep(0.3)  # well into a later epoch
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -9, "finished before it could be killed; make the run longer"
    done = ck.checkpoint_epochs(out)
    assert done and done[-1] < 7
    res = subprocess.run(_cmd(star, out), capture_output=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    assert [r["epoch"] for r in ck.read_log(out)] == list(range(8))
    assert ck.checkpoint_epochs(out) == list(range(8))
    for e in range(8):
        assert torch.load(out / f"weights.{e}.pt", weights_only=True)["epoch"] == e
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
