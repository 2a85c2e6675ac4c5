"""cryoSPARC .cs reading/writing: cryoDRGN's own parse of the fixture is the ground truth."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from cryoscape.errors import InputError
from cryoscape.io.cryodrgn import ctf_to_cryodrgn, poses_to_cryodrgn
from cryoscape.io.cs import read_cs, write_cs
from cryoscape.io.load import load_particles
from cryoscape.io.star import _read_blocks, write_star

CS = "cryosparc_P12_J24_001_particles.cs"


def _pkl(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def test_fixture_matches_cryodrgn_parse(fixtures_dir):
    p = read_cs(fixtures_dir / CS)
    assert p.n == 2019 and p.box == 180 and p.images is None
    np.testing.assert_allclose(p.psize_A, 2.95, rtol=1e-6)
    rot, trans = _pkl(fixtures_dir / "cryosparc_P12_J24.cryodrgn_poses.pkl")
    mine_rot, mine_trans = poses_to_cryodrgn(p)
    np.testing.assert_allclose(mine_rot, rot, atol=1e-5)
    np.testing.assert_allclose(mine_trans, trans, atol=1e-5)
    np.testing.assert_allclose(ctf_to_cryodrgn(p), _pkl(fixtures_dir / "cryosparc_P12_J24.cryodrgn_ctf.pkl"), atol=1e-5)
    raw = np.load(fixtures_dir / CS)
    assert p.shifts_A[0] == pytest.approx(raw["alignments3D/shift"][0] * 2.95, rel=1e-6)
    assert any("images not read" in w for w in p.info.warnings)


def test_cs_subset_keeps_every_field(fixtures_dir, tmp_path):
    p = load_particles(fixtures_dir / CS, ind=np.array([5, 0, 2018]))
    out = tmp_path / "sub.cs"
    write_cs(p, out)
    assert out.exists() and not (tmp_path / "sub.cs.npy").exists()
    raw, got = np.load(fixtures_dir / CS), np.load(out)
    assert got.dtype.names == raw.dtype.names
    for name in raw.dtype.names:
        a, b = raw[name][[5, 0, 2018]], got[name]
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)


def test_star_to_cs_to_star_every_column(fixtures_dir, tmp_path):
    for n in ("relion31.6opticsgroups.star", "relion31.star", "relion31.mrcs"):
        shutil.copy(fixtures_dir / n, tmp_path / n)
    for name in ("relion31.star", "relion31.6opticsgroups.star"):
        write_cs(load_particles(tmp_path / name), tmp_path / "mid.cs")
        back = load_particles(tmp_path / "mid.cs")
        write_star(back, tmp_path / "back.star")
        a, b = _read_blocks(tmp_path / name), _read_blocks(tmp_path / "back.star")
        for blk in ("particles", "optics"):
            assert set(a[blk].columns) == set(b[blk].columns), (name, blk)
            for col in a[blk].columns:
                assert a[blk][col].astype(str).tolist() == b[blk][col].astype(str).tolist(), (name, col)


def test_no_3d_alignments_and_class_fallback(fixtures_dir, tmp_path):
    raw = np.load(fixtures_dir / CS)
    keep = [n for n in raw.dtype.names if not n.startswith("alignments3D")]
    bare = tmp_path / "bare.cs"
    with open(bare, "wb") as f:
        np.save(f, raw[keep])
    p = read_cs(bare)
    assert p.rotations is None and any("no 3D alignments (alignments3D/pose)" in w for w in p.info.warnings)
    dt = [(n.replace("alignments3D", "alignments_class_1"), raw.dtype.fields[n][0]) for n in raw.dtype.names]
    cls = tmp_path / "cls.cs"
    with open(cls, "wb") as f:
        np.save(f, np.array(raw.tolist(), dtype=dt))
    q = read_cs(cls)
    np.testing.assert_allclose(q.rotations, read_cs(fixtures_dir / CS).rotations)
    assert q.info.cs_alignments == "alignments_class_1/"


def test_not_a_cs_file(tmp_path):
    bad = tmp_path / "bad.cs"
    bad.write_text("hello")
    with pytest.raises(InputError, match=r"not a cryoSPARC .cs file"):
        read_cs(bad)


def test_cryosparc_half_sets_are_the_random_subsets_of_backproject_states_and_reproduce(fixtures_dir):
    """cryoSPARC keeps its gold-standard split in alignments3D/split (0/1); cryoscape reads it as
    RELION's _rlnRandomSubset (1/2), so half-maps and `reproduce` follow the refinement's halves."""
    from cryoscape.recon.backproject import random_subset

    arr = np.load(fixtures_dir / CS)
    p = read_cs(fixtures_dir / CS)
    np.testing.assert_array_equal(random_subset(p), arr["alignments3D/split"].astype(np.int64) + 1)
    assert set(np.unique(random_subset(p))) <= {1, 2}
