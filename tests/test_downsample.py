"""Fourier-crop downsampling: physical invariants, the written stack, and the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryoscape.cli.main import main as cli
from cryoscape.data.downsample import downsample_stack, fourier_crop
from cryoscape.errors import InputError
from cryoscape.io.images import ImageSource


def _stack(path: Path, data: np.ndarray, voxel: float = 1.0) -> Path:
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.asarray(data, np.float32))
        m.set_image_stack()
        m.voxel_size = voxel
    return path


def _cosines(D: int, step: float) -> np.ndarray:
    """Sum of cosines below the coarse Nyquist, sampled at pixels (j - D//2) * step of a D grid.

    Frequencies are integers per 64-px field of view, so the fine (64 px, step 1) and coarse
    (32 px, step 2) grids sample the same band-limited function.
    """
    c = (np.arange(D) - D // 2) * step
    y, x = np.meshgrid(c, c, indexing="ij")
    waves = [(1.0, 0, 0, 0.0), (0.7, 3, 1, 0.3), (0.4, -5, 7, 1.1), (0.25, 15, -12, 2.0)]
    return sum(a * np.cos(2 * np.pi * (kx * x + ky * y) / 64 + ph) for a, kx, ky, ph in waves)


def test_constant_stays_constant():
    out = fourier_crop(np.full((3, 64, 64), 2.5, np.float32), 16)
    assert out.shape == (3, 16, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, 2.5, rtol=1e-6)


def test_band_limited_image_matches_analytic_coarse_sampling():
    fine = _cosines(64, 1.0)[None]
    coarse = fourier_crop(fine, 32)[0]
    np.testing.assert_allclose(coarse, _cosines(32, 2.0), atol=2e-6)


def test_same_box_is_identity():
    x = np.random.default_rng(0).normal(size=(2, 32, 32)).astype(np.float32)
    assert np.array_equal(fourier_crop(x, 32), x)


@pytest.mark.parametrize("D_new", [15, 0, 66])
def test_bad_new_box(D_new):
    with pytest.raises(InputError, match="must be even, positive and at most"):
        fourier_crop(np.zeros((1, 64, 64), np.float32), D_new)


def test_odd_input_box(tmp_path):
    src = ImageSource.from_file(_stack(tmp_path / "odd.mrcs", np.zeros((2, 31, 31))))
    with pytest.raises(InputError, match="31 px, an odd box"):
        downsample_stack(src, tmp_path / "out.mrcs", 16)


def test_downsample_stack_chunks_and_pixel_size(tmp_path):
    x = np.random.default_rng(1).normal(size=(7, 48, 48)).astype(np.float32)
    a = _stack(tmp_path / "a.mrcs", x[:4], 1.25)
    b = _stack(tmp_path / "b.mrcs", x[4:], 1.25)
    src = ImageSource.from_refs([a] * 4 + [b] * 3, np.r_[0:4, 0:3])
    done: list[int] = []
    psize = downsample_stack(src, tmp_path / "out.mrcs", 24, chunk=3, progress=done.append)
    assert psize == pytest.approx(2.5) and done == [3, 3, 1]
    with mrcfile.open(tmp_path / "out.mrcs") as m:
        assert m.voxel_size.x == pytest.approx(1.25 * 48 / 24) and m.header.ispg == 0
        np.testing.assert_allclose(m.data, fourier_crop(x, 24), atol=1e-6)  # chunking changes nothing
        assert m.header.dmax == pytest.approx(m.data.max())


def test_downsample_refuses_to_overwrite_input(tmp_path):
    path = _stack(tmp_path / "a.mrcs", np.zeros((2, 16, 16)))
    with pytest.raises(InputError, match="overwrite an input stack"):
        downsample_stack(ImageSource.from_file(path), path, 8)


def test_cli_on_fixture_stack(fixtures_dir, tmp_path, capsys):
    out = tmp_path / "hand32.mrcs"
    assert cli(["downsample", str(fixtures_dir / "hand.mrcs"), "-D", "32", "-o", str(out)]) == 0
    src = ImageSource.from_file(out)
    assert src.shape == (100, 32, 32) and src.header_psize_A == pytest.approx(2.0)
    orig = ImageSource.from_file(fixtures_dir / "hand.mrcs")
    np.testing.assert_allclose(src[5].mean(), orig[5].mean(), rtol=1e-4)


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope.mrcs"
    assert cli(["downsample", str(missing), "-D", "32", "-o", str(tmp_path / "o.mrcs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"cryoscape downsample: error: {missing}: file not found"
    assert not (tmp_path / "o.mrcs").exists()


def test_cli_star_writes_matching_star(fixtures_dir, tmp_path):
    load = pytest.importorskip("cryoscape.io.load")
    pytest.importorskip("cryoscape.io.write")
    for name in ("empiar_10076_7.star", "empiar_10076_7.mrc"):
        shutil.copy(fixtures_dir / name, tmp_path / name)
    out = tmp_path / "small" / "p64.mrcs"
    out.parent.mkdir()
    assert cli(["downsample", str(tmp_path / "empiar_10076_7.star"), "-D", "64", "-o", str(out)]) == 0
    before = load.load_particles(tmp_path / "empiar_10076_7.star")
    after = load.load_particles(out.with_suffix(".star"))
    assert after.images.shape == (7, 64, 64) and after.box == 64
    np.testing.assert_allclose(after.psize_A, before.psize_A * 320 / 64, rtol=1e-5)
    assert np.array_equal(after.images[:], ImageSource.from_file(out)[:])
    np.testing.assert_allclose(after.ctf.defocus_u_A, before.ctf.defocus_u_A)
