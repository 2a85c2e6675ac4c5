"""cryoDRGN pickles and the overrides load_particles applies with them."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cryoscape.errors import InputError
from cryoscape.io.cryodrgn import read_ctf, read_index, read_poses
from cryoscape.io.load import load_particles
from cryoscape.io.write import write_cryodrgn_ctf, write_cryodrgn_poses, write_index


def _dump(obj, path):
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


def test_read_fixture_pickles(fixtures_dir):
    rot, trans = read_poses(fixtures_dir / "toy_rot_trans.pkl")
    assert rot.shape == (1000, 3, 3) and trans.shape == (1000, 2)
    rot, trans = read_poses(fixtures_dir / "hand_rot.pkl")
    assert rot.shape == (100, 3, 3) and trans is None
    ctf = read_ctf(fixtures_dir / "test_ctf.pkl")
    assert ctf.shape == (1000, 9) and ctf[0, 8] == pytest.approx(90)


def test_overrides_on_stack(fixtures_dir):
    p = load_particles(
        fixtures_dir / "toy_projections.mrcs",
        poses=fixtures_dir / "toy_rot_trans.pkl",
        ctf=fixtures_dir / "test_ctf.pkl",
    )
    rot, trans = read_poses(fixtures_dir / "toy_rot_trans.pkl")
    np.testing.assert_allclose(p.rotations, rot)
    np.testing.assert_allclose(p.shifts_px / p.box, trans)  # fraction of box -> Å and back
    assert p.ctf.phase_shift_deg[0] == pytest.approx(90) and p.ctf.voltage_kV[0] == 300
    h = load_particles(fixtures_dir / "hand.mrcs", poses=fixtures_dir / "hand_rot.pkl")
    assert h.shifts_A is None and h.has_poses


def test_pickle_round_trip(fixtures_dir, tmp_path):
    p = load_particles(
        fixtures_dir / "toy_projections.mrcs",
        poses=fixtures_dir / "toy_rot_trans.pkl",
        ctf=fixtures_dir / "test_ctf.pkl",
    )
    write_cryodrgn_poses(p, tmp_path / "p.pkl")
    write_cryodrgn_ctf(p, tmp_path / "c.pkl")
    rot, trans = read_poses(tmp_path / "p.pkl")
    np.testing.assert_allclose(rot, read_poses(fixtures_dir / "toy_rot_trans.pkl")[0], atol=1e-7)
    np.testing.assert_allclose(trans, read_poses(fixtures_dir / "toy_rot_trans.pkl")[1], atol=1e-7)
    np.testing.assert_allclose(read_ctf(tmp_path / "c.pkl"), read_ctf(fixtures_dir / "test_ctf.pkl"))
    for ext in ("pkl", "npy"):
        write_index(np.array([3, 1, 2]), tmp_path / f"i.{ext}")
        assert read_index(tmp_path / f"i.{ext}").tolist() == [3, 1, 2]


def test_ind_subsets_in_given_order(fixtures_dir, tmp_path):
    ind = _dump(np.array([4, 0]), tmp_path / "ind.pkl")
    p = load_particles(fixtures_dir / "relion31.star", ind=ind)
    full = load_particles(fixtures_dir / "relion31.star")
    np.testing.assert_array_equal(p.rotations, full.rotations[[4, 0]])
    np.testing.assert_array_equal(p.images[:], full.images[[4, 0]])
    with pytest.raises(InputError, match="index 5 out of range for 5 particles"):
        load_particles(fixtures_dir / "relion31.star", ind=_dump(np.array([5]), tmp_path / "bad.pkl"))


def test_bad_pickles(fixtures_dir, tmp_path):
    with pytest.raises(InputError, match="100 poses for 1000 images"):
        load_particles(fixtures_dir / "toy_projections.mrcs", poses=fixtures_dir / "hand_rot.pkl")
    with pytest.raises(InputError, match=r"expected \(N, 9\)"):
        read_ctf(_dump(np.zeros((3, 4)), tmp_path / "c.pkl"))
    with pytest.raises(InputError, match="expected"):
        read_poses(_dump({"a": 1}, tmp_path / "d.pkl"))
    with pytest.raises(InputError, match="not orthonormal"):
        read_poses(_dump(np.ones((2, 3, 3)), tmp_path / "r.pkl"))
    (tmp_path / "junk.pkl").write_text("junk")
    with pytest.raises(InputError, match="not a readable pickle"):
        read_poses(tmp_path / "junk.pkl")


def test_unknown_extension_and_box(fixtures_dir, tmp_path):
    with pytest.raises(InputError, match="unknown extension"):
        load_particles(fixtures_dir / "README.md")
    bare = tmp_path / "nobox.star"
    bare.write_text("data_\nloop_\n_rlnAngleRot\n_rlnAngleTilt\n_rlnAnglePsi\n1 2 3\n")
    with pytest.raises(InputError, match="pass -D/--box"):
        load_particles(bare)
    assert load_particles(bare, box=64).box == 64
    p = load_particles(fixtures_dir / "relion31.star", apix=3.0)
    assert p.psize_A[0] == 3.0 and any("differs" in w for w in p.info.warnings)
