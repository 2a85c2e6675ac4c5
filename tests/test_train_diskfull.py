"""A full disk at any write of a training run: one line naming the file, exit 2, a consistent
folder (nothing ahead of weights.pt), and a rerun once there is space finishes the same run."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch
from helpers import simulate_particles

from cryoscape.cli.main import main as cli
from cryoscape.io import atomic
from cryoscape.train import checkpoint as ck

ARGS = [
    "--zdim",
    "2",
    "-n",
    "2",
    "--enc-width",
    "16",
    "--dec-width",
    "16",
    "--enc-depth",
    "1",
    "--dec-depth",
    "1",
    "--batch-size",
    "16",
    "--threads",
    "1",
]


@pytest.fixture(scope="module")
def star(tmp_path_factory):
    return simulate_particles(tmp_path_factory.mktemp("sim"), n=48, D=16)[0]


def _train(star, out) -> int:
    return cli(["train", str(star), "-o", str(out), *ARGS])


def assert_consistent(out) -> None:
    """weights.pt and z.npy are the newest complete epoch; no log row, z or temp file beyond it.
    A run whose very first write failed leaves no folder at all (the lock removes one it made)."""
    if not out.exists():
        return
    names = os.listdir(out)
    assert not [n for n in names if n.endswith(".tmp")], names
    epochs = ck.checkpoint_epochs(out)
    last = epochs[-1] if epochs else -1
    if epochs:
        assert torch.load(out / "weights.pt", weights_only=True)["epoch"] == last
        assert np.array_equal(np.load(out / "z.npy"), np.load(out / f"z.{last}.npy"))
    else:
        assert "weights.pt" not in names and "z.npy" not in names
    assert all(int(n.split(".")[1]) <= last for n in names if n.startswith("z.") and n != "z.npy")
    assert all(r["epoch"] <= last for r in ck.read_log(out))


class FullDisk:
    """Fail the k-th durable write (fsync of a temp file, or a hard link) with ENOSPC."""

    def __init__(self, monkeypatch, k: int) -> None:
        self.k, self.calls = k, 0
        real_fsync, real_link = atomic._fsync_file, os.link

        def fsync(p):
            self._tick()
            real_fsync(p)

        def link(a, b):
            self._tick()
            real_link(a, b)

        monkeypatch.setattr(atomic, "_fsync_file", fsync)
        monkeypatch.setattr(atomic.os, "link", link)

    def _tick(self) -> None:
        self.calls += 1
        if self.calls == self.k:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.slow
def test_full_disk_at_every_write_then_resume(star, tmp_path, monkeypatch, capsys):
    ref = tmp_path / "ref"
    with monkeypatch.context() as m:
        counter = FullDisk(m, k=0)
        assert _train(star, ref) == 0
    writes = counter.calls
    assert writes >= 8  # config, the log, and per epoch z, weights, two links, the log
    for k in range(1, writes + 1):
        out = tmp_path / f"run{k}"
        with monkeypatch.context() as m:
            FullDisk(m, k)
            capsys.readouterr()
            assert _train(star, out) == 2, k
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"cryoscape train: error: {out}/") and err.endswith(
            ": cannot write: no space left on device"
        ), err
        assert ".tmp" not in err
        assert_consistent(out)
        assert _train(star, out) == 0, k  # space again: the same command finishes the run
        assert_consistent(out)
        assert [r["epoch"] for r in ck.read_log(out)] == [0, 1]
        assert np.array_equal(np.load(out / "z.npy"), np.load(ref / "z.npy")), k
