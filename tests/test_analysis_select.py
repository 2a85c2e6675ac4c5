"""Selections are written as star/cs subsets with the right rows of the original file."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import yaml

from cryoscape.analysis import select as sel
from cryoscape.cli import select as select_cli
from cryoscape.geometry import random_rotations
from cryoscape.io.cryodrgn import read_index
from cryoscape.io.load import load_particles
from cryoscape.io.particles import CTFParams, ParticleSet
from cryoscape.io.write import write_index, write_particles

N_FILE = 40


def make_particles(tmp_path, ext: str):
    """A tiny particle file whose defocus_u_A is 10000 + row: the row is readable back."""
    rng = np.random.default_rng(0)
    ctf = CTFParams.from_columns(
        N_FILE,
        defocus_u_A=10000.0 + np.arange(N_FILE),
        defocus_v_A=10000.0,
        defocus_angle_deg=0.0,
        voltage_kV=300.0,
        cs_mm=2.7,
        amp_contrast=0.1,
    )
    pset = ParticleSet(
        box=32,
        psize_A=np.full(N_FILE, 2.0),
        rotations=random_rotations(N_FILE, rng),
        shifts_A=rng.normal(0, 2, (N_FILE, 2)),
        ctf=ctf,
    )
    path = tmp_path / f"parts{ext}"
    write_particles(pset, path)
    return path


def make_run(tmp_path, particles, run_ind, z):
    run = tmp_path / "run"
    run.mkdir()
    data = {"particles": str(particles), "n_particles": len(z), "D": 32, "psize_A": 2.0, "ind": None}
    if run_ind is not None:
        write_index(run_ind, tmp_path / "train_ind.pkl")
        data["ind"] = str(tmp_path / "train_ind.pkl")
    (run / "config.yaml").write_text(yaml.safe_dump({"model": {}, "data": data, "train": {}}))
    np.save(run / "z.npy", z.astype(np.float32))
    return run


def rows_of(path) -> np.ndarray:
    pset = load_particles(path, images="skip", need_box=False)
    return np.rint(pset.ctf.defocus_u_A - 10000).astype(int)


def run_select(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    select_cli.add_args(p)
    return select_cli.main(p.parse_args(argv))


@pytest.mark.parametrize("ext", [".star", ".cs"])
def test_threshold_selection_maps_through_run_ind(tmp_path, ext):
    particles = make_particles(tmp_path, ext)
    run_ind = np.arange(N_FILE)[::-1][:30].copy()  # the run saw rows 39..10, reversed
    z = np.stack([np.arange(30.0), np.zeros(30)], 1)
    run = make_run(tmp_path, particles, run_ind, z)
    out = tmp_path / "sel"
    assert run_select([str(run), "--threshold", "0", "ge", "20", "-o", str(out)]) == 0
    chosen = run_ind[20:]  # run rows 20..29 -> file rows 19..10
    np.testing.assert_array_equal(read_index(out / "0_ge_20.pkl"), chosen)
    np.testing.assert_array_equal(rows_of(out / "0_ge_20.star"), chosen)
    np.testing.assert_array_equal(read_index(out / "0_ge_20_complement.pkl"), run_ind[:20])
    np.testing.assert_array_equal(rows_of(out / "0_ge_20_complement.star"), run_ind[:20])
    assert (out / "0_ge_20.cs").exists() == (ext == ".cs")
    if ext == ".cs":
        np.testing.assert_array_equal(rows_of(out / "0_ge_20.cs"), chosen)
        pose_in = load_particles(particles, images="skip", need_box=False).subset(chosen).rotations
        np.testing.assert_allclose(load_particles(out / "0_ge_20.cs", images="skip").rotations, pose_in, atol=1e-6)


def test_kmeans_one_subset_per_cluster_partitions_run(tmp_path):
    particles = make_particles(tmp_path, ".star")
    rng = np.random.default_rng(1)
    truth = np.repeat([0, 1, 2], 10)
    z = np.array([[0, 0], [10, 0], [0, 10]])[truth] + rng.normal(0, 0.1, (30, 2))
    run = make_run(tmp_path, particles, None, z)
    out = tmp_path / "sel"
    assert run_select([str(run), "--kmeans", "3", "-o", str(out)]) == 0
    got = [read_index(out / f"cluster_{c:03d}.pkl") for c in range(3)]
    assert sorted(np.concatenate(got).tolist()) == list(range(30))
    for c, g in enumerate(got):
        assert len(np.unique(truth[g])) == 1
        np.testing.assert_array_equal(rows_of(out / f"cluster_{c:03d}.star"), g)
    assert not list(out.glob("*complement*"))
    out2 = tmp_path / "sel2"
    assert run_select([str(run), "--kmeans", "3", "--clusters", "0", "2", "-o", str(out2)]) == 0
    both = np.sort(np.concatenate([got[0], got[2]]))
    np.testing.assert_array_equal(read_index(out2 / "clusters_000_002.pkl"), both)
    np.testing.assert_array_equal(read_index(out2 / "clusters_000_002_complement.pkl"), got[1])


def test_index_file_selection_and_bad_input(tmp_path):
    particles = make_particles(tmp_path, ".star")
    run = make_run(tmp_path, particles, None, np.zeros((N_FILE, 2)))
    write_index(np.array([5, 3, 7]), tmp_path / "mine.pkl")
    out = tmp_path / "sel"
    assert run_select([str(run), "--ind", str(tmp_path / "mine.pkl"), "-o", str(out)]) == 0
    np.testing.assert_array_equal(rows_of(out / "mine.star"), [5, 3, 7])
    assert len(read_index(out / "mine_complement.pkl")) == N_FILE - 3
    write_index(np.array([N_FILE]), tmp_path / "bad.pkl")
    from cryoscape.errors import InputError

    with pytest.raises(InputError, match="indices must be"):
        run_select([str(run), "--ind", str(tmp_path / "bad.pkl"), "-o", str(out)])
    with pytest.raises(InputError, match="threshold dimension"):
        run_select([str(run), "--threshold", "z9", "<", "0", "-o", str(out)])


def test_write_selection_formats_from_python(tmp_path):
    """``formats`` writes a star input's subset as .cs too; an unknown format is refused."""
    particles = make_particles(tmp_path, ".star")
    run_ind = np.arange(10, 30)
    run = make_run(tmp_path, particles, run_ind, np.zeros((20, 2)))
    rp = sel.run_particles(run)
    source = sel.load_source(rp)
    files = sel.write_selection("pick", np.array([0, 4]), str(tmp_path / "out"), rp, source, formats=(".star", ".cs"))
    assert [f.name for f in files] == ["pick.pkl", "pick.star", "pick.cs"]
    for f in files[1:]:
        np.testing.assert_array_equal(rows_of(f), [10, 14])
    from cryoscape.errors import InputError

    with pytest.raises(InputError, match=r"cannot write particles as '\.mrcs'"):
        sel.write_selection("pick", np.array([0]), tmp_path / "out", rp, source, formats=(".mrcs",))


def test_threshold_helpers():
    z = np.array([[3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(sel.threshold_values(z, "norm"), [5, 1])
    np.testing.assert_allclose(sel.threshold_values(z, "z1"), [4, 1])
    assert sel.threshold_select(np.array([1, 2, 3]), "<=", 2).tolist() == [0, 1]
    assert sel.complement(np.array([1, 3]), 5).tolist() == [0, 2, 4]
