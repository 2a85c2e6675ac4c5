"""Streaming training data (``--lazy``): exact batches from DataLoader workers, bounded memory, no
shared file descriptors, one-line errors from workers, and the same latents as in memory."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import pickle
import tracemalloc

import mrcfile
import numpy as np
import pytest
import torch
from helpers import simulate_particles

from cryoscape.cli.main import main as cli
from cryoscape.data.dataset import (
    _BatchReader,
    estimate_data_norm,
    norm_subset,
    particle_data,
)
from cryoscape.data.preprocess import estimate_norm
from cryoscape.errors import InputError
from cryoscape.io.images import ImageSource
from cryoscape.io.load import load_particles

N, D = 96, 16


@pytest.fixture(scope="module")
def star(tmp_path_factory):
    return simulate_particles(tmp_path_factory.mktemp("sim"), n=N, D=D)[0]


@pytest.fixture(scope="module")
def pset(star):
    return load_particles(star, images="require")


def split_source(pset, folder) -> ImageSource:
    """The same images from two stacks, particles alternating between them (odd/even)."""
    imgs = pset.images[np.arange(pset.n)]
    files = []
    for k in range(2):
        path = folder / f"part{k}.mrcs"
        mrcfile.new(path, imgs[k::2], overwrite=True).close()
        files += [path]
    return ImageSource.from_refs([files[i % 2] for i in range(pset.n)], np.arange(pset.n) // 2)


def assert_same_batches(got, want) -> None:
    assert len(got) == len(want)
    for (gi, gx), (wi, wx) in zip(got, want):
        assert gi.dtype == torch.int64 and torch.equal(gi, wi)
        assert gx.dtype == torch.float32 and torch.equal(gx, wx)


@pytest.mark.parametrize("workers", [0, 2])
def test_lazy_batches_equal_in_memory_exactly(pset, tmp_path, workers):
    mem = particle_data(pset, lazy=False)
    lazies = [
        particle_data(pset, lazy=True),
        dataclasses.replace(particle_data(pset, lazy=True), source=split_source(pset, tmp_path)),
    ]
    rng = np.random.default_rng(0)
    for lazy in lazies:
        assert lazy.lazy and lazy.images is None
        for order, batch in ((rng.permutation(N), 10), (np.arange(N), 4 * 10), (rng.permutation(N)[:7], 32)):
            assert_same_batches(list(lazy.batches(order, batch, workers)), list(mem.batches(order, batch)))


def test_workers_persist_across_passes_and_overlapping_passes_stay_exact(pset):
    mem, lazy = particle_data(pset, lazy=False), particle_data(pset, lazy=True)
    rng = np.random.default_rng(1)
    o1, o2 = rng.permutation(N), rng.permutation(N)
    list(lazy.batches(o1, 16, 2))
    loader = lazy._loaders[(2, False)]
    assert_same_batches(list(lazy.batches(o2, 12, 2)), list(mem.batches(o2, 12)))
    assert lazy._loaders == {(2, False): loader}  # the same workers served both epochs
    # a pass begun while another is half done gets its own workers; both stay exact
    a, b = lazy.batches(o1, 16, 2), lazy.batches(o2, 16, 2)
    got_a, got_b = [next(a)], list(b)
    got_a += list(a)
    assert_same_batches(got_a, list(mem.batches(o1, 16)))
    assert_same_batches(got_b, list(mem.batches(o2, 16)))
    # an abandoned pass stops its workers at once; the next pass starts new ones
    next(lazy.batches(o1, 8, 2))
    assert lazy._loaders == {}
    assert_same_batches(list(lazy.batches(o2, 8, 2)), list(mem.batches(o2, 8)))


def open_files() -> dict[str, str]:
    """This process's open descriptors -> what each points at (so a reused number still shows)."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is already closed
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_no_descriptor_is_held_so_none_is_shared_with_workers(pset, tmp_path):
    gc.collect()  # earlier tests' garbage closes its files now, not during the reads below
    before = open_files()
    lazy = dataclasses.replace(particle_data(pset, lazy=True), source=split_source(pset, tmp_path))
    lazy.read(np.arange(N))
    list(lazy.batches(np.arange(N), 16, 0))
    # every read opens its stack and closes it: nothing to inherit (descriptors that closed meanwhile
    # do not matter; one opened and still open does)
    assert {fd: f for fd, f in open_files().items() if before.get(fd) != f} == {}
    # what a (spawned) worker receives is picklable: no open file objects inside
    reader = pickle.loads(pickle.dumps(_BatchReader(lazy.source)))
    assert np.array_equal(reader[np.array([5, 2])][1].numpy(), pset.images[np.array([5, 2])])


def array_bytes(obj, seen=None) -> int:
    """Bytes of all numpy arrays and tensors reachable from ``obj``'s attributes and containers."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(array_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(array_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return array_bytes(vars(obj), seen)
    return 0


def test_lazy_memory_is_metadata_not_images(tmp_path):
    n, d = 300, 32
    star, _ = simulate_particles(tmp_path, n=n, D=d)
    lazy = particle_data(load_particles(star, images="require"), lazy=True)
    images_bytes = n * d * d * 4
    list(lazy.batches(np.arange(n), 32, 2))  # with its persistent loader in place
    held = array_bytes(lazy)
    assert held < 200 * n < images_bytes / 20  # rotations, shifts, CTF, file/frame per particle
    assert len(pickle.dumps(_BatchReader(lazy.source))) < 200 * n  # what a worker gets
    # a whole pass in this process allocates a batch at a time, not the stack
    tracemalloc.start()
    for _ in lazy.batches(np.random.default_rng(0).permutation(n), 32, 0):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 32 * d * d * 4 < images_bytes / 2


def test_bad_image_met_by_a_worker_is_a_one_line_input_error(pset, tmp_path):
    source = split_source(pset, tmp_path)
    with mrcfile.open(tmp_path / "part1.mrcs", "r+") as m:
        m.data[3, 0, 0] = np.nan  # particle 2 * 3 + 1 = 7
    lazy = dataclasses.replace(particle_data(pset, lazy=True), source=source)
    for workers in (0, 2):
        with pytest.raises(InputError) as e:
            list(lazy.batches(np.arange(N), 16, workers))
        assert "image 4@part1.mrcs contains NaN" in str(e.value) and "Traceback" not in str(e.value)
        assert e.value.path == str(tmp_path / "part1.mrcs")


def test_norm_read_in_chunks_equals_one_read(pset, monkeypatch):
    mem, lazy = particle_data(pset, lazy=False), particle_data(pset, lazy=True)
    idx = norm_subset(N, seed=3)
    once = estimate_norm(mem.images[idx].numpy(), mem.shifts_px[idx].numpy())
    monkeypatch.setattr("cryoscape.data.dataset.NORM_CHUNK", 16)
    chunked = [estimate_data_norm(d, 1.0, seed=3) for d in (mem, lazy)]
    assert chunked[0] == chunked[1] == (0.0, pytest.approx(once, rel=1e-12))  # lazy: bit for bit


def test_auto_streams_when_the_node_ram_is_shared_by_torchrun_ranks(pset, monkeypatch):
    stack = N * D * D * 4
    monkeypatch.setattr("cryoscape.data.dataset.available_ram_bytes", lambda: 4 * stack)
    assert not particle_data(pset).lazy  # the images take a quarter of the free RAM
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # four processes would each hold them
    assert particle_data(pset).lazy


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_are_pinned_when_training_on_cuda(pset):
    lazy = particle_data(pset, lazy=True)
    on_gpu = dataclasses.replace(lazy, rotations=lazy.rotations.cuda(), shifts_px=lazy.shifts_px.cuda())
    for workers in (0, 2):
        idx, images = next(on_gpu.batches(np.arange(N), 16, workers))
        assert images.is_pinned() and idx.is_pinned()
    assert not next(lazy.batches(np.arange(N), 16, 2))[1].is_pinned()


def test_cli_lazy_with_workers_gives_the_in_memory_latents(star, tmp_path):
    args = [
        "train",
        str(star),
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
        "--no-amp",
        "--device",
        "cpu",
    ]
    assert cli(args + ["-o", str(tmp_path / "mem")]) == 0
    assert cli(args + ["-o", str(tmp_path / "lazy"), "--lazy", "--num-workers", "2"]) == 0
    z_mem, z_lazy = (np.load(tmp_path / run / "z.npy") for run in ("mem", "lazy"))
    assert z_mem.shape == (N, 2) and np.array_equal(z_mem, z_lazy)  # bit-identical on the CPU
