"""`cryoscape info` and `cryoscape convert` end to end through the CLI dispatcher."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cryoscape.cli.main import main as cli

CS = "cryosparc_P12_J24_001_particles.cs"


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "relion31.star",
            [
                "RELION 3.1",
                "particles: 5",
                "box: 256 px",
                "2.806 Å/px",
                "poses: yes",
                "12506 / 12730.8 / 13108.1",
                "WARNING: pixel size 2.8060",
            ],
        ),
        ("relion31.v2.star", ["particles: 5", "box: 256 px"]),
        (
            "relion31.6opticsgroups.star",
            [
                "optics groups: 6",
                "group 4: 7 particles, 1.25 Å/px, 200 kV, Cs 2.6 mm",
                "images: not found",
                "WARNING: images not read",
            ],
        ),
        (
            "empiar_10076_7.star",
            ["RELION 3.0", "particles: 7", "box: 320 px", "1.31 Å/px", "poses: no", "300 kV", "images: 7 found"],
        ),
        ("toy_projections.star", ["particles: 1000", "box: 30 px", "WARNING: 1000 particles have defocus 0"]),
        (CS, ["cryoSPARC", "particles: 2019", "box: 180 px", "2.95 Å/px", "from alignments3D", "200 kV"]),
        ("toy_projections.txt", ["list of MRC stacks", "particles: 1000"]),
        ("hand.mrcs", ["MRC stack", "particles: 100", "box: 64 px", "CTF: no"]),
        ("empiar_10076_7.mrc", ["particles: 7"]),
    ],
)
def test_info_on_fixtures(fixtures_dir, capsys, name, expected):
    assert cli(["info", str(fixtures_dir / name)]) == 0
    out = capsys.readouterr().out
    for text in expected:
        assert text in out, text


def test_info_bad_file_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.cs"
    bad.write_text("not numpy")
    assert cli(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"cryoscape info: error: {bad}: not a cryoSPARC .cs file")


def test_convert_cs_equals_cryodrgn_pickles(fixtures_dir, tmp_path, capsys):
    p, c = tmp_path / "p.pkl", tmp_path / "c.pkl"
    assert cli(["convert", str(fixtures_dir / CS), "-D", "180", "--poses-pkl", str(p), "--ctf-pkl", str(c)]) == 0
    with open(p, "rb") as f:
        rot, trans = pickle.load(f)
    with open(fixtures_dir / "cryosparc_P12_J24.cryodrgn_poses.pkl", "rb") as f:
        rot0, trans0 = pickle.load(f)
    assert rot.dtype == trans.dtype == np.float32
    np.testing.assert_allclose(rot, rot0, atol=1e-5)
    np.testing.assert_allclose(trans, trans0, atol=1e-5)
    with open(c, "rb") as f, open(fixtures_dir / "cryosparc_P12_J24.cryodrgn_ctf.pkl", "rb") as g:
        ctf, ctf0 = pickle.load(f), pickle.load(g)
    assert ctf.dtype == np.float32
    np.testing.assert_allclose(ctf, ctf0, atol=1e-5)


def test_convert_star_to_cs_with_subset(fixtures_dir, tmp_path):
    ind = tmp_path / "ind.pkl"
    with open(ind, "wb") as f:
        pickle.dump(np.array([3, 1]), f)
    out, ind_out = tmp_path / "sub.cs", tmp_path / "ind_out.pkl"
    assert (
        cli(
            [
                "convert",
                str(fixtures_dir / "relion31.star"),
                "--ind",
                str(ind),
                "-o",
                str(out),
                "--ind-pkl",
                str(ind_out),
            ]
        )
        == 0
    )
    arr = np.load(out)
    assert len(arr) == 2 and arr["ctf/df1_A"][0] == pytest.approx(12506.042289)
    with open(ind_out, "rb") as f:
        assert pickle.load(f).tolist() == [3, 1]


def test_convert_errors(fixtures_dir, tmp_path, capsys):
    assert cli(["convert", str(fixtures_dir / "empiar_10076_7.star"), "--poses-pkl", str(tmp_path / "p.pkl")]) == 2
    assert "no poses" in capsys.readouterr().err
    assert cli(["convert", str(fixtures_dir / "relion31.star")]) == 2
    assert "nothing to write" in capsys.readouterr().err
    assert cli(["convert", str(fixtures_dir / "relion31.star"), "-o", str(tmp_path / "x.txt")]) == 2
    assert not (tmp_path / "p.pkl").exists()


def test_info_reads_every_fixture_file(fixtures_dir, capsys):
    """Every file other tools wrote (stacks, maps, stars, cs, cryoDRGN pickles) is described."""
    from cryoscape.cli.main import main

    files = sorted(p for p in fixtures_dir.iterdir() if p.suffix != ".md")
    assert len(files) >= 17
    expect = {
        ".pkl": "cryoDRGN",
        ".star": "RELION star",
        ".cs": "cryoSPARC",
        ".mrcs": "MRC stack",
        ".txt": "list of MRC stacks",
    }
    for f in files:
        assert main(["info", str(f)]) == 0, f
        out = capsys.readouterr().out
        kind = "MRC volume" if f.name == "hand-vol.mrc" else expect.get(f.suffix, "MRC stack")
        assert kind in out, (f.name, out)
