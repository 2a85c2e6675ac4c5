"""The input fingerprint in config.yaml: a resumed run on other data is refused, a copy is not."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml
from helpers import simulate_particles

from cryoscape.cli.main import main as cli
from cryoscape.io.fingerprint import data_fingerprint, fingerprint_differences
from cryoscape.io.load import load_particles
from cryoscape.train import checkpoint as ck

ARGS = [
    "--zdim",
    "1",
    "--enc-width",
    "16",
    "--dec-width",
    "16",
    "--enc-depth",
    "1",
    "--dec-depth",
    "1",
    "--threads",
    "1",
]


@pytest.fixture
def sim(tmp_path):
    star, _ = simulate_particles(tmp_path / "sim", n=40, D=16)
    return star


def _train(star, out, epochs: int, *extra: str) -> int:
    return cli(["train", str(star), "-o", str(out), "-n", str(epochs), *ARGS, *extra])


def test_fingerprint_is_recorded(sim, tmp_path):
    old = os.umask(0o027)
    try:
        assert _train(sim, tmp_path / "run", 1) == 0
    finally:
        os.umask(old)
    for p in (tmp_path / "run").iterdir():  # the umask's mode, not mkstemp's 0600
        assert p.stat().st_mode & 0o777 == 0o640, p.name
    fp = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["fingerprint"]
    assert fp["n_images"] == 40 and fp["stack_bytes"] == (sim.parent / "particles.mrcs").stat().st_size
    assert len(fp["images_sha256"]) == 16 and len(fp["metadata_sha256"]) == 16
    assert fp == data_fingerprint(load_particles(sim, images="require"))


def test_replaced_stack_same_path_and_count_is_refused(sim, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(sim, out, 1) == 0
    # other images, same path, size and count (a re-extraction)
    simulate_particles(sim.parent, n=40, D=16, seed=5)
    assert _train(sim, out, 2) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"cryoscape train: error: {out}: holds a run trained on other data")
    assert "content of sampled images" in err and "--accept-changed-data" in err
    assert ck.checkpoint_epochs(out) == [0]  # untouched
    assert _train(sim, out, 2, "--accept-changed-data") == 0
    assert "warning: the data changed since this run began" in capsys.readouterr().err
    assert ck.checkpoint_epochs(out) == [0, 1]
    assert _train(sim, out, 3) == 0  # the new data's fingerprint was recorded


def test_a_copy_with_a_new_mtime_resumes(sim, tmp_path):
    out = tmp_path / "run"
    assert _train(sim, out, 1) == 0
    stack = sim.parent / "particles.mrcs"
    os.utime(stack, (1e9, 1e9))
    assert _train(sim, out, 2) == 0


def test_changed_poses_are_refused(sim, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(sim, out, 1) == 0
    text = sim.read_text()
    lines = text.splitlines()
    i = next(k for k, ln in enumerate(lines) if "@" in ln)
    fields = lines[i].split()
    fields[1] = str(float(fields[1]) + 10.0)  # _rlnAngleRot of the first particle
    lines[i] = " ".join(fields)
    sim.write_text("\n".join(lines) + "\n")
    assert _train(sim, out, 2) == 2
    assert "poses, shifts, CTF or pixel size" in capsys.readouterr().err


def test_old_run_without_fingerprint_resumes(sim, tmp_path):
    out = tmp_path / "run"
    assert _train(sim, out, 1) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    del cfg["data"]["fingerprint"]
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert _train(sim, out, 2) == 0
    assert ck.checkpoint_epochs(out) == [0, 1]
    assert "fingerprint" in yaml.safe_load((out / "config.yaml").read_text())["data"]


def test_differences_ignore_mtime_alone():
    a = {"n_images": 3, "stack_bytes": 10, "stack_mtime": "x", "images_sha256": "a", "metadata_sha256": "m"}
    assert fingerprint_differences(a, {**a, "stack_mtime": "y"}) == []
    assert fingerprint_differences(None, a) == []
    d = fingerprint_differences(a, {**a, "images_sha256": "b", "stack_mtime": "y"})
    assert d == ["content of sampled images: a -> b", "stacks modified x -> y"]
    assert np.all([isinstance(v, (int, str)) for v in a.values()])
