"""FSC: exact values for known pairs, noise statistics, resolution interpolation, mask, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from cryoscape.analysis.fsc import (
    auto_mask,
    format_resolution,
    fsc,
    plot_fsc,
    resolution_at,
    save_fsc_txt,
    shell_index_3d,
)
from cryoscape.cli.main import main as cli
from cryoscape.io.mrc import read_volume, write_volume

D = 32


def shell_counts(D: int) -> np.ndarray:
    """``(D//2 + 1,)`` voxels in each shell: the noise level of an FSC shell is ``~1/sqrt(count)``."""
    s = shell_index_3d(D).ravel()
    return np.bincount(s[s <= D // 2], minlength=D // 2 + 1)


def centred_ifft3(f: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(f)))


def test_map_against_itself_is_one():
    vol = np.random.default_rng(0).standard_normal((D, D, D)).astype(np.float32)
    freqs, curve = fsc(vol, vol)
    assert freqs.shape == curve.shape == (D // 2 + 1,)
    np.testing.assert_allclose(freqs, np.arange(D // 2 + 1) / D)
    np.testing.assert_allclose(curve, 1.0, atol=1e-10)
    # and scale-invariant
    np.testing.assert_allclose(fsc(vol, 3.0 * vol)[1], 1.0, atol=1e-10)


@pytest.mark.parametrize("d_px", [0.3, 0.5])
def test_subpixel_shift_follows_the_shell_mean_of_cos(d_px):
    """A centred delta (|F| = 1) against itself moved by d along x: FSC = shell mean of cos(2 pi kx d)."""
    delta = np.zeros((D, D, D))
    delta[D // 2, D // 2, D // 2] = 1.0
    k = (np.arange(D) - D // 2) / D
    kx = np.broadcast_to(k[None, None, :], (D, D, D))
    moved = centred_ifft3(np.exp(-2j * np.pi * kx * d_px)).real
    freqs, curve = fsc(delta, moved)
    shells = shell_index_3d(D)
    expected = [np.cos(2 * np.pi * kx[shells == s] * d_px).mean() for s in range(D // 2 + 1)]
    # the Nyquist shell holds the unpaired kx = -1/2 plane, whose ramp is not Hermitian
    np.testing.assert_allclose(curve[:-1], expected[:-1], atol=1e-6)
    # and the low shells follow the 1D law cos(2 pi k d) roughly (shell average of kx is smaller)
    assert curve[1] == pytest.approx(np.cos(2 * np.pi * freqs[1] * d_px), abs=0.05)


def _soft_sphere(D: int, radius: float, edge: float) -> np.ndarray:
    f = np.arange(D) - D // 2
    r = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    t = np.clip((r - radius) / edge, 0, 1)
    return 0.5 * (1 + np.cos(np.pi * t))


def test_independent_noise_stays_within_three_sigma():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, D, D, D))
    counts = shell_counts(D)
    _, curve = fsc(a, b)
    assert (np.abs(curve[3:]) < 3 / np.sqrt(counts[3:])).all()
    # it is noise of the expected size, not just small: normalised spread ~ 1
    assert 0.6 < np.std(curve[3:] * np.sqrt(counts[3:])) < 1.4
    mask = _soft_sphere(D, 0.4 * D, 3)
    # a mask keeps fewer independent voxels: the count shrinks by the mask's effective volume fraction
    frac = (mask**2).sum() ** 2 / (mask**4).sum() / mask.size
    _, masked = fsc(a, b, mask)
    assert (np.abs(masked[3:]) < 3 / np.sqrt(frac * counts[3:])).all()


def test_shell_counts_match_the_index():
    counts = shell_counts(D)
    assert counts[0] == 1 and counts[1] == 6 + 12  # faces (1) and edges (1.41) round to 1, corners (1.73) to 2
    assert counts.sum() == (shell_index_3d(D) <= D // 2).sum()


def test_resolution_at_interpolates_the_first_crossing():
    freqs = np.arange(6) / 10
    curve = np.array([1.0, 0.9, 0.6, 0.4, 0.1, 0.3])
    assert resolution_at(freqs, curve, 0.5, 2.0) == pytest.approx(2.0 / 0.25)
    f143 = 0.3 + (0.4 - 0.143) / 0.3 * 0.1
    assert resolution_at(freqs, curve, 0.143, 2.0) == pytest.approx(2.0 / f143)
    # never crossing: Nyquist
    assert resolution_at(freqs, np.ones(6), 0.143, 1.5) == pytest.approx(3.0)


def test_auto_mask_dilates_and_softens_by_the_given_angstroms():
    psize_A, n = 2.0, 64
    blob = (_soft_sphere(n, 5, 0.01) > 0.5).astype(np.float32)  # radius 5 px = 10 Å
    mask = auto_mask(blob, psize_A, dilate_A=10.0, soft_edge_A=8.0)
    line = mask[n // 2, n // 2, n // 2 :]  # along +x from the centre; surface at 5 px
    assert mask.dtype == np.float32 and mask.min() >= 0 and mask.max() <= 1
    np.testing.assert_allclose(line[: 5 + 5 + 1], 1.0)  # core plus 10 Å = 5 px dilation
    assert line[5 + 5 + 2] == pytest.approx(0.5)  # half-way through the 8 Å = 4 px edge
    np.testing.assert_allclose(line[5 + 5 + 4 :], 0.0)


def test_txt_and_png_writers(tmp_path):
    freqs = np.arange(17) / 32
    curve = np.linspace(1, 0, 17)
    save_fsc_txt(tmp_path / "f.txt", freqs, {"a": curve}, 2.0)
    table = np.loadtxt(tmp_path / "f.txt")
    np.testing.assert_allclose(table[:, 1], freqs / 2.0, atol=1e-6)
    np.testing.assert_allclose(table[1:, 2], 2.0 / freqs[1:], rtol=1e-4)
    np.testing.assert_allclose(table[:, 3], curve, atol=1e-6)
    plot_fsc(tmp_path / "f.png", freqs, {"a": curve}, 2.0)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _two_maps(tmp_path, psize_A=2.5):
    rng = np.random.default_rng(1)
    from scipy.ndimage import gaussian_filter

    signal = gaussian_filter(rng.standard_normal((D, D, D)), 1.5) * _soft_sphere(D, 8, 3)
    signal /= signal.std()
    m1, m2 = (signal + 0.05 * rng.standard_normal((D, D, D)) for _ in range(2))
    write_volume(tmp_path / "h1.mrc", m1, psize_A)
    write_volume(tmp_path / "h2.mrc", m2, psize_A)
    return tmp_path / "h1.mrc", tmp_path / "h2.mrc"


def test_cli_fsc_writes_curves_and_prints_resolution(tmp_path, capsys):
    h1, h2 = _two_maps(tmp_path)
    out = tmp_path / "curve.png"
    assert cli(["fsc", str(h1), str(h2), "--mask", "auto", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0.143" in printed and "masked" in printed
    table = np.loadtxt(tmp_path / "curve.txt")
    assert table.shape == (D // 2 + 1, 5)
    v1, v2 = read_volume(h1)[0], read_volume(h2)[0]
    np.testing.assert_allclose(table[:, 3], fsc(v1, v2)[1], atol=1e-5)
    np.testing.assert_allclose(table[:, 1], np.arange(D // 2 + 1) / D / 2.5, atol=1e-6)
    assert out.exists()


def test_cli_fsc_errors_are_one_line(tmp_path, capsys):
    h1, _ = _two_maps(tmp_path)
    write_volume(tmp_path / "small.mrc", np.zeros((16, 16, 16)), 2.5)
    assert cli(["fsc", str(h1), str(tmp_path / "small.mrc"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cryoscape fsc: error:") and "small.mrc" in err and "\n" not in err
    write_volume(tmp_path / "nopix.mrc", np.zeros((D, D, D)), 0.0)
    assert cli(["fsc", str(tmp_path / "nopix.mrc"), str(h1), "-o", str(tmp_path / "x.png")]) == 2
    assert "--apix" in capsys.readouterr().err
    assert cli(["fsc", str(h1), str(tmp_path / "missing.mrc")]) == 2
    assert "missing.mrc" in capsys.readouterr().err


def test_format_resolution_marks_nyquist():
    freqs = np.arange(6) / 10
    assert format_resolution(freqs, np.ones(6), 0.143, 1.5) == "3.00 Å (Nyquist; never below)"
    assert format_resolution(freqs, np.array([1, 0.9, 0.6, 0.4, 0.1, 0.3]), 0.5, 2.0) == "8.00 Å"
    assert format_resolution(freqs, np.array([-1, 0.0, 0.6, 0.4, 0.1, 0.3]), 0.5, 2.0).startswith("none")
