"""``cryoscape backproject`` end to end on a tiny RELION 3.1 star + mrcs written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cryoscape.analysis.fsc import fsc
from cryoscape.cli.main import main as cli
from cryoscape.fourier.project import Projector
from cryoscape.geometry import matrix_to_euler, random_rotations
from cryoscape.io.mrc import read_header, read_volume

pytest.importorskip("cryoscape.io.load")
starfile = pytest.importorskip("starfile")

D, N, PSIZE_A = 24, 600, 4.0


def _write_dataset(tmp_path, poses: bool = True, random_subset: bool = False):
    """A noise-free RELION 3.1 dataset: particles.star + particles.mrcs; returns (star, volume)."""
    import mrcfile
    from helpers import ctf_params, smooth_volume

    rng = np.random.default_rng(2)
    vol = smooth_volume(D, rng)
    rot = random_rotations(N, rng)
    shift_px = rng.uniform(-2, 2, (N, 2))
    ctf = ctf_params(N, rng)
    imgs = (
        Projector(torch.from_numpy(vol))
        .project(torch.from_numpy(rot).float(), torch.from_numpy(shift_px).float(), torch.from_numpy(ctf), PSIZE_A)
        .numpy()
    )
    with mrcfile.new(tmp_path / "particles.mrcs", imgs.astype(np.float32)) as m:
        m.set_image_stack()
        m.voxel_size = PSIZE_A
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnAmplitudeContrast": [0.1],
            "rlnSphericalAberration": [2.7],
            "rlnVoltage": [300.0],
            "rlnImagePixelSize": [PSIZE_A],
            "rlnImageSize": [D],
            "rlnImageDimensionality": [2],
        }
    )
    cols = {
        "rlnImageName": [f"{i + 1:06d}@particles.mrcs" for i in range(N)],
        "rlnDefocusU": ctf[:, 0],
        "rlnDefocusV": ctf[:, 1],
        "rlnDefocusAngle": ctf[:, 2],
        "rlnPhaseShift": ctf[:, 6],
        "rlnOpticsGroup": np.ones(N, int),
    }
    if poses:
        e = matrix_to_euler(rot)
        cols.update(
            rlnAngleRot=e[:, 0],
            rlnAngleTilt=e[:, 1],
            rlnAnglePsi=e[:, 2],
            rlnOriginXAngst=shift_px[:, 0] * PSIZE_A,
            rlnOriginYAngst=shift_px[:, 1] * PSIZE_A,
        )
    if random_subset:
        cols["rlnRandomSubset"] = np.arange(N) % 2 + 1
    star = tmp_path / "particles.star"
    starfile.write({"optics": optics, "particles": pd.DataFrame(cols)}, star)
    return star, vol


def test_cli_backproject_writes_maps_and_fsc(tmp_path, capsys):
    star, vol = _write_dataset(tmp_path)
    out = tmp_path / "bp.mrc"
    assert cli(["backproject", str(star), "-o", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "0.143" in printed and "Å" in printed
    for name in ("bp.mrc", "bp_half1.mrc", "bp_half2.mrc", "bp_fsc.txt", "bp_fsc.png"):
        assert (tmp_path / name).exists(), name
    assert read_header(out).psize_A == pytest.approx(PSIZE_A)
    full, _ = read_volume(out)
    freqs, curve = fsc(vol, full)
    assert curve[(freqs > 0) & (freqs <= 0.4)].min() > 0.9
    table = np.loadtxt(tmp_path / "bp_fsc.txt")
    h1, h2 = read_volume(tmp_path / "bp_half1.mrc")[0], read_volume(tmp_path / "bp_half2.mrc")[0]
    np.testing.assert_allclose(table[:, 3], fsc(h1, h2)[1], atol=1e-5)


def test_cli_backproject_first_and_no_ctf(tmp_path):
    star, _ = _write_dataset(tmp_path, random_subset=True)
    out = tmp_path / "sub"
    assert cli(["backproject", str(star), "-o", str(out), "--first", "100", "--no-ctf", "--threads", "1"]) == 0
    assert (tmp_path / "sub.mrc").exists() and (tmp_path / "sub_half2.mrc").exists()


def test_cli_backproject_needs_poses(tmp_path, capsys):
    star, _ = _write_dataset(tmp_path, poses=False)
    assert cli(["backproject", str(star), "-o", str(tmp_path / "bp.mrc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cryoscape backproject: error:") and "needs poses" in err and "\n" not in err
    assert not (tmp_path / "bp.mrc").exists()


def test_cli_backproject_bad_output_folder(tmp_path, capsys):
    star, _ = _write_dataset(tmp_path)
    assert cli(["backproject", str(star), "-o", str(tmp_path / "nope" / "bp.mrc")]) == 2
    assert "output folder does not exist" in capsys.readouterr().err
