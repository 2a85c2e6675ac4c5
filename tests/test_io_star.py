"""RELION star reading/writing checked against the numbers in the fixture files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cryoscape.errors import InputError
from cryoscape.geometry import euler_to_matrix
from cryoscape.io.load import load_particles
from cryoscape.io.star import _read_blocks, read_star, write_star


def _copy(fixtures_dir, tmp_path, *names):
    for n in names:
        shutil.copy(fixtures_dir / n, tmp_path / n)
    return tmp_path / names[0]


def test_relion31_first_particle(fixtures_dir):
    p = read_star(fixtures_dir / "relion31.star")
    assert p.n == 5 and p.box == 256 and p.info.star_version == "3.1"
    assert p.psize_A[0] == pytest.approx(2.806)
    assert p.ctf.defocus_u_A[0] == pytest.approx(13108.082418)
    assert p.ctf.defocus_v_A[0] == pytest.approx(12845.582418)
    assert p.ctf.defocus_angle_deg[0] == pytest.approx(-160.39)
    assert (p.ctf.voltage_kV[0], p.ctf.cs_mm[0], p.ctf.amp_contrast[0]) == pytest.approx((300, 0.01, 0.1))
    assert p.shifts_A[0] == pytest.approx([0.019324, -0.64686])
    np.testing.assert_allclose(p.rotations[0], euler_to_matrix([-102.30296, 82.318041, 124.706463]))
    assert p.images is not None and p.images.shape == (5, 256, 256)
    assert p.metadata["_rlnNrOfSignificantSamples"].tolist()[:2] == [450, 254]


def test_block_order_does_not_matter(fixtures_dir):
    a, b = (read_star(fixtures_dir / n) for n in ("relion31.star", "relion31.v2.star"))
    np.testing.assert_array_equal(a.rotations, b.rotations)
    np.testing.assert_array_equal(a.shifts_A, b.shifts_A)
    np.testing.assert_array_equal(a.ctf.as_array(), b.ctf.as_array())
    np.testing.assert_array_equal(a.psize_A, b.psize_A)
    assert a.metadata.equals(b.metadata) and a.box == b.box


def test_relion30_pixel_size_from_magnification(fixtures_dir):
    p = read_star(fixtures_dir / "empiar_10076_7.star")
    assert p.info.star_version == "3.0" and p.n == 7 and p.box == 320
    np.testing.assert_allclose(p.psize_A, 5 * 1e4 / 38168)
    assert p.ctf.defocus_u_A[2] == pytest.approx(15150.7) and p.ctf.cs_mm[0] == pytest.approx(2.7)
    assert p.rotations is None and p.shifts_A is None


def test_six_optics_groups_per_particle_values(fixtures_dir):
    p = read_star(fixtures_dir / "relion31.6opticsgroups.star", images="skip")
    table = p.optics.set_index("_rlnOpticsGroup")
    np.testing.assert_allclose(p.psize_A, table["_rlnImagePixelSize"].reindex(p.optics_group).to_numpy())
    np.testing.assert_allclose(p.ctf.cs_mm, table["_rlnSphericalAberration"].reindex(p.optics_group).to_numpy())
    assert p.optics_group[0] == 6 and p.psize_A[0] == pytest.approx(1.25)
    assert set(np.round(p.psize_A, 3)) == {1.24, 1.25} and p.box == 196
    assert p.shifts_A[0] == pytest.approx([13.284554, -3.21701])


def test_toy_star_keeps_unknown_column(fixtures_dir):
    p = load_particles(fixtures_dir / "toy_projections.star")
    assert p.n == 1000 and p.box == 30 and p.metadata["_dummyVariable"].iloc[12] == 42
    assert p.ctf.phase_shift_deg[0] == pytest.approx(90)


@pytest.mark.parametrize("name", ["relion31.star", "relion31.6opticsgroups.star"])
def test_star_round_trip_every_column(fixtures_dir, tmp_path, name):
    src = _copy(fixtures_dir, tmp_path, name, "relion31.mrcs")
    out = tmp_path / "out" / "copy.star"
    out.parent.mkdir()
    write_star(load_particles(src), out)
    a, b = _read_blocks(src), _read_blocks(out)
    for blk in ("particles", "optics"):
        assert list(a[blk].columns) == list(b[blk].columns)
        for col in a[blk].columns:
            if col != "_rlnImageName":
                assert a[blk][col].astype(str).tolist() == b[blk][col].astype(str).tolist(), col
    again = load_particles(out)
    if name == "relion31.star":  # image names rewritten relative to the new folder, same images
        assert b["particles"]["_rlnImageName"][0] == "000001@../relion31.mrcs"
        np.testing.assert_array_equal(again.images[:], load_particles(src).images[:])


def test_relion30_upgraded_and_subset_written(fixtures_dir, tmp_path):
    src = _copy(fixtures_dir, tmp_path, "empiar_10076_7.star", "empiar_10076_7.mrc")
    p = load_particles(src).subset([6, 2])
    write_star(p, tmp_path / "sub.star")
    text = (tmp_path / "sub.star").read_text()
    assert "# version 30001" in text and "data_optics" in text and "_rlnMagnification" not in text
    q = load_particles(tmp_path / "sub.star")
    assert q.info.star_version == "3.1" and q.n == 2
    np.testing.assert_allclose(q.psize_A, 5 * 1e4 / 38168)
    np.testing.assert_allclose(q.ctf.defocus_u_A, [15177.4, 15150.7])
    np.testing.assert_array_equal(q.images[:], p.images[:])


def test_missing_columns_name_them(tmp_path):
    bad = tmp_path / "bad.star"
    bad.write_text("data_\nloop_\n_rlnImageName\n_rlnDefocusU\n1@x.mrcs 1000\n")
    with pytest.raises(InputError, match="_rlnVoltage, _rlnSphericalAberration, _rlnAmplitudeContrast"):
        read_star(bad)
    nonames = tmp_path / "nonames.star"
    nonames.write_text("data_\nloop_\n_rlnAngleRot\n_rlnAngleTilt\n_rlnAnglePsi\n1 2 3\n")
    with pytest.raises(InputError, match="_rlnImageName"):
        read_star(nonames, images="require")
    p = read_star(nonames)
    assert p.images is None and p.rotations.shape == (1, 3, 3)


def test_missing_stack_require_vs_optional(fixtures_dir, tmp_path):
    src = _copy(fixtures_dir, tmp_path, "relion31.star")  # stack not copied
    with pytest.raises(InputError, match=r"relion31.mrcs not found"):
        read_star(src, images="require")
    p = read_star(src, images="optional")
    assert p.images is None and any("relion31.mrcs" in w for w in p.info.warnings)
    assert read_star(src, datadir=fixtures_dir, images="require").images is not None


def test_not_a_star_file(tmp_path):
    bad = tmp_path / "junk.star"
    bad.write_bytes(b"\x00\x01 binary junk")
    with pytest.raises(InputError):
        read_star(bad)


def test_written_star_always_has_phase_shift(tmp_path):
    """cryoDRGN's parse_ctf_star turns a missing _rlnPhaseShift into NaN (seen with cryoDRGN 4.3.1),
    so a star with a CTF must carry the column even when every value is 0."""
    from cryoscape.io.particles import CTFParams, ParticleSet

    n = 3
    ctf = CTFParams.from_columns(
        n,
        defocus_u_A=[1e4, 2e4, 3e4],
        defocus_v_A=[1e4, 2e4, 3e4],
        defocus_angle_deg=0.0,
        voltage_kV=300.0,
        cs_mm=2.7,
        amp_contrast=0.1,
    )
    pset = ParticleSet(
        box=32, psize_A=np.full(n, 2.0), rotations=np.tile(np.eye(3), (n, 1, 1)), shifts_A=np.zeros((n, 2)), ctf=ctf
    )
    out = tmp_path / "p.star"
    write_star(pset, out)
    blocks = _read_blocks(out)
    particles = blocks["particles"] if "particles" in blocks else list(blocks.values())[-1]
    assert "_rlnPhaseShift" in particles.columns
    assert np.all(particles["_rlnPhaseShift"].astype(float) == 0)
