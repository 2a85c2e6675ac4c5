"""`cryoscape train` under torchrun (gloo, 2 CPU processes) equals the single-process run.

The sharding maths is checked in-process (parts of a batch add up to the batch, in value and in
gradient); two end-to-end runs launch real torchrun jobs: one compares loss curves and latents
with a single process at the same global batch, one kills a rank and resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import simulate_particles

from cryoscape.cli.main import main as cli
from cryoscape.data.preprocess import Preprocessor
from cryoscape.model.config import ModelConfig
from cryoscape.model.vae import ReconModel
from cryoscape.train import checkpoint as ck
from cryoscape.train.distributed import (
    BatchPart,
    DistContext,
    session,
    shard_order,
    split_rows,
)
from cryoscape.train.objective import LossModule, ReconObjective

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")

SMALL = [
    "--zdim",
    "2",
    "--enc-width",
    "32",
    "--dec-width",
    "32",
    "--enc-depth",
    "2",
    "--dec-depth",
    "2",
    "--threads",
    "1",
    "--no-amp",
]
#: Agreement of a 2-rank run with the single-process run: relative, per epoch, on loss/mse/kl
#: (log.csv keeps 6 significant digits); absolute on z (spread ~0.5) and its correlation. The
#: runs differ only in float summation order, which training amplifies (about 10x per epoch
#: here: a 1e-6 change of --lr moves z by 6e-4 after one epoch). Measured: log equal to its 6
#: digits and z within 5e-7 for 5 epochs; the slack is for other CPUs' rounding.
LOSS_RTOL, Z_ATOL, Z_CORR = 1e-4, 1e-3, 0.99999


def _torchrun(star: Path, out: Path, *extra: str) -> list[str]:
    """The torchrun command of this venv (no PATH lookup: CI's venv is the one under test)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        "-m",
        "cryoscape.cli.main",
        "train",
        str(star),
        "-o",
        str(out),
        *SMALL,
        *extra,
    ]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize(
    "n,batch,world", [(256, 32, 2), (250, 32, 2), (193, 24, 2), (100, 12, 3), (5, 8, 4), (64, 64, 1)]
)
def test_shards_cover_each_global_batch_once(n, batch, world):
    order = np.random.default_rng(0).permutation(n)
    shards = [shard_order(order, batch, world, r) for r in range(world)]
    steps = -(-n // batch)
    assert all(len(parts) == steps for _, parts in shards)  # every rank takes every step
    for g in range(steps):
        glob = order[g * batch : (g + 1) * batch]
        got = []
        for local, parts in shards:
            p = parts[g]
            assert p.total == len(glob) and p.size <= batch // world
            start = sum(q.size for q in parts[:g])
            got.append(local[start : start + p.size])
            assert np.array_equal(local[start : start + p.size], glob[p.offset : p.offset + p.size])
        assert np.array_equal(np.concatenate(got), glob)  # rank order = batch order, nothing lost


def test_split_rows_is_array_split():
    for total, world in [(10, 3), (2, 4), (0, 2), (7, 1)]:
        ref = np.array_split(np.arange(total), world)
        for r in range(world):
            a, b = split_rows(total, world, r)
            assert np.array_equal(np.arange(a, b), ref[r])


def _batch(B: int = 10, D: int = 16):
    g = torch.Generator().manual_seed(1)
    rot = torch.linalg.qr(torch.randn(B, 3, 3, generator=g))[0]
    rot = rot * torch.linalg.det(rot)[:, None, None]  # proper rotations
    ctf = torch.tensor([[9000.0, 11000.0, 30.0, 300.0, 2.7, 0.1, 0.0, 0.0]]).repeat(B, 1)
    return torch.randn(B, D, D, generator=g), rot, torch.randn(B, 2, generator=g), ctf.double()


@pytest.mark.parametrize("world", [2, 3, 4])
def test_parts_add_up_to_the_batch(world):
    """The ranks' shares of loss/mse/kl sum to the single-process batch means, and W times their
    mean gradient (what DDP averages) is the batch gradient; also with an empty part's stand-in."""
    torch.manual_seed(0)
    D, B = 16, 10 if world != 4 else 3  # 3 images on 4 ranks: one rank gets only a stand-in
    module = LossModule(
        ReconModel(ModelConfig(D=D, zdim=2, enc_width=32, dec_width=32)), ReconObjective(Preprocessor(D, 3.0), 4.0, 0.5)
    )
    images, rot, shift, ctf = (t[:B] for t in _batch())

    def run(rows: slice | list, part: BatchPart | None):
        module.zero_grad()
        gen = torch.Generator().manual_seed(7)
        terms = module(images[rows], rot[rows], shift[rows], ctf[rows], gen, part)
        (terms[0] * (1 if part is None else world)).backward()
        return torch.stack(terms).detach(), [p.grad.clone() for p in module.parameters()]

    ref_terms, ref_grads = run(slice(None), None)
    sum_terms, sum_grads = torch.zeros(3), [torch.zeros_like(g) for g in ref_grads]
    for r in range(world):
        a, b = split_rows(B, world, r)
        rows = list(range(a, b)) or [0]  # an empty part computes on a stand-in image
        terms, grads = run(rows, BatchPart(a, b - a, B))
        sum_terms += terms
        sum_grads = [s + g / world for s, g in zip(sum_grads, grads)]
    assert torch.allclose(sum_terms, ref_terms, rtol=1e-5, atol=0)
    for s, g in zip(sum_grads, ref_grads):
        assert torch.allclose(s, g, rtol=1e-4, atol=1e-6 * g.abs().max())


def test_single_process_context_is_a_no_op(monkeypatch):
    for v in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(v, raising=False)
    with session("cpu") as ctx:
        assert ctx == DistContext(torch.device("cpu")) and ctx.is_main and not ctx.enabled
        t = torch.arange(6.0).reshape(3, 2)
        assert ctx.gather_rows(t, 3) is t and ctx.all_reduce_sum(t) is t
        assert ctx.on_main(lambda: 5) == 5
        ctx.barrier()


def test_batch_size_must_divide_among_ranks(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    rc = cli(["train", str(tmp_path / "p.star"), "-o", str(tmp_path / "o"), *SMALL, "--batch-size", "30"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size 30" in err[0] and "4 torchrun processes" in err[0]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_particles(tmp_path_factory.mktemp("sim"), n=250, D=16, snr=2.0)[0]


@pytest.mark.slow
def test_two_ranks_match_one_process(sim, tmp_path):
    """250 particles, global batch 32 (the last batch short: 26, 13 per rank), 3 epochs."""
    opts = ["-n", "3", "--batch-size", "32", "--lr", "2e-3"]
    assert cli(["train", str(sim), "-o", str(tmp_path / "one"), *SMALL, *opts]) == 0
    res = subprocess.run(
        _torchrun(sim, tmp_path / "two", *opts), check=False, capture_output=True, env=_env(), timeout=300
    )
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    one, two = tmp_path / "one", tmp_path / "two"
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # one set
    assert res.stderr.decode().count("epoch 2: loss") == 1  # rank 0 alone reports
    log1, log2 = ck.read_log(one), ck.read_log(two)
    assert [r["epoch"] for r in log2] == [0, 1, 2]
    for r1, r2 in zip(log1, log2):
        for k in ("loss", "mse", "kl"):
            assert r2[k] == pytest.approx(r1[k], rel=LOSS_RTOL), (r1, r2)
    z1, z2 = np.load(one / "z.npy"), np.load(two / "z.npy")
    assert z2.shape == (250, 2) and np.abs(z1 - z2).max() < Z_ATOL
    assert all(np.corrcoef(z1[:, i], z2[:, i])[0, 1] > Z_CORR for i in range(2))
    full = [r for r in log1 if r["band"] == 1.0]  # epochs whose loss sums the whole lattice
    assert len(full) >= 2 and full[-1]["loss"] < full[0]["loss"]  # it did learn something to agree on


def _worker_pids(launcher: int) -> dict[int, int]:
    """``{rank: pid}`` of torchrun's worker processes (children of ``launcher``), from /proc."""
    found = {}
    for d in Path("/proc").iterdir():
        try:
            status = (d / "status").read_text() if d.name.isdigit() else ""
            if f"\nPPid:\t{launcher}\n" not in status:
                continue
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        rank = [int(e[5:]) for e in env if e.startswith(b"RANK=")]
        if rank:
            found[rank[0]] = int(d.name)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to find the workers")
def test_killed_rank_fails_the_job_and_rerun_resumes(tmp_path):
    star, _ = simulate_particles(tmp_path / "sim", n=400, D=16)
    out, n_epochs = tmp_path / "run", 8
    cmd = _torchrun(star, out, "-n", str(n_epochs), "--batch-size", "8")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    try:
        deadline = time.monotonic() + 120
        while not (out / "weights.0.pt").exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        time.sleep(0.2)  # into epoch 1
        workers = _worker_pids(proc.pid)
        assert set(workers) == {0, 1}
        os.kill(workers[1], signal.SIGKILL)
        killed = time.monotonic()
        proc.communicate(timeout=60)
        assert time.monotonic() - killed < 30  # torchrun tears the job down, nobody hangs
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode not in (0, None)
    done = ck.checkpoint_epochs(out)
    assert done and done[-1] < n_epochs - 1, "finished before the kill; make the run longer"
    for e in done:  # whole checkpoints only
        assert ck.load_epoch(out, e) is not None
    res = subprocess.run(cmd, check=False, capture_output=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    assert [r["epoch"] for r in ck.read_log(out)] == list(range(n_epochs))  # continued, not restarted
    assert ck.checkpoint_epochs(out) == list(range(n_epochs))
    assert f"epoch {done[0]}: loss" not in res.stderr.decode()  # epochs before the kill not redone
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
