"""CTF: values against hand arithmetic, RELION sign (= -cryoDRGN), astigmatism, envelope."""

from __future__ import annotations

import math

import pytest
import torch

from cryoscape.fourier.ctf import compute_ctf, electron_wavelength_A
from cryoscape.fourier.lattice import freqs_2d


def _params(dfu=10000.0, dfv=10000.0, ang=0.0, kv=300.0, cs=2.7, w=0.1, phase=0.0, bfac=0.0) -> torch.Tensor:
    """``(1, 8)`` parameters in CTF_COLUMNS order."""
    return torch.tensor([[dfu, dfv, ang, kv, cs, w, phase, bfac]], dtype=torch.float64)


def _at(s_A: float, alpha_deg: float = 0.0) -> torch.Tensor:
    """``(1, 2)`` frequency of magnitude ``s_A`` (1/Å) at angle ``alpha_deg`` from the x axis."""
    a = math.radians(alpha_deg)
    return torch.tensor([[s_A * math.cos(a), s_A * math.sin(a)]], dtype=torch.float64)


@pytest.mark.parametrize("kv, lam_A", [(300.0, 0.019687), (200.0, 0.025079), (100.0, 0.037014)])
def test_electron_wavelength(kv: float, lam_A: float) -> None:
    """Tabulated relativistic wavelengths (e.g. 0.01969 Å at 300 kV, 0.02508 Å at 200 kV)."""
    assert float(electron_wavelength_A(kv)) == pytest.approx(lam_A, abs=2e-6)


def test_value_matches_hand_arithmetic() -> None:
    """300 kV, df 10000 Å, Cs 2.7 mm, w 0.1, s = 0.1/Å, worked out by hand:

    lam = 12.2643247 / sqrt(3e5 * (1 + 3e5 * 0.978466e-6)) = 12.2643247 / 622.94618 = 0.01968762 Å
    pi * lam * df * s^2            = pi * 0.01968762 * 1e4 * 0.01        = 6.185047
    pi/2 * Cs * lam^3 * s^4        = pi/2 * 2.7e7 * 7.630963e-6 * 1e-4    = 0.032364
    atan(w / sqrt(1 - w^2))        = atan(0.1 / 0.994987)                 = 0.100167
    gamma = 6.185047 - 0.032364 + 0.100167 = 6.252850;  sin(gamma) = -0.030331
    """
    lam = 12.2643247 / math.sqrt(3e5 * (1 + 3e5 * 0.978466e-6))
    assert lam == pytest.approx(0.01968762, abs=1e-8)
    gamma = math.pi * lam * 1e4 * 0.01 - math.pi / 2 * 2.7e7 * lam**3 * 1e-4 + math.asin(0.1)
    assert gamma == pytest.approx(6.252850, abs=2e-6)
    got = float(compute_ctf(_at(0.1, 37.0), _params())[0, 0])
    assert got == pytest.approx(math.sin(gamma), abs=1e-9)
    assert got == pytest.approx(-0.030331, abs=2e-6)


def test_value_with_all_terms() -> None:
    """Astigmatic, phase plate and B-factor at s = 0.05/Å along alpha = 10 deg (angle 40 deg)."""
    dfu, dfv, ang, w, phase, bfac, s = 20000.0, 15000.0, 40.0, 0.07, 30.0, 50.0, 0.05
    lam = float(electron_wavelength_A(200.0))
    df = 17500.0 + 2500.0 * math.cos(2 * math.radians(10.0 - 40.0))  # = 17500 + 2500 * 0.5 = 18750
    assert df == pytest.approx(18750.0)
    gamma = (
        math.pi * lam * df * s**2
        - math.pi / 2 * 2.0e7 * lam**3 * s**4
        + math.radians(phase)
        + math.atan(w / math.sqrt(1 - w * w))
    )
    ref = math.sin(gamma) * math.exp(-bfac * s**2 / 4)
    got = compute_ctf(_at(s, 10.0), _params(dfu, dfv, ang, 200.0, 2.0, w, phase, bfac))
    assert float(got[0, 0]) == pytest.approx(ref, abs=1e-9)


def test_zero_frequency_is_amplitude_contrast_positive() -> None:
    for w in (0.07, 0.1, 0.2):
        c0 = float(compute_ctf(torch.zeros(1, 2, dtype=torch.float64), _params(w=w))[0, 0])
        assert c0 == pytest.approx(math.sin(math.atan(w / math.sqrt(1 - w * w))), abs=1e-12)
        assert c0 == pytest.approx(w, abs=1e-12) and c0 > 0


def _cryodrgn_ctf(s_A: torch.Tensor, df_A: float, kv: float, cs_mm: float, w: float, phase_deg: float) -> torch.Tensor:
    """cryoDRGN's formula (written from its documented definition): sqrt(1-w^2) sin(g) - w cos(g)."""
    lam = float(electron_wavelength_A(kv))
    g = 2 * math.pi * (-0.5 * df_A * lam * s_A**2 + 0.25 * cs_mm * 1e7 * lam**3 * s_A**4) - math.radians(phase_deg)
    return math.sqrt(1 - w * w) * torch.sin(g) - w * torch.cos(g)


@pytest.mark.parametrize("phase", [0.0, 45.0])
def test_is_minus_cryodrgn_ctf(phase: float) -> None:
    s = torch.linspace(0, 0.3, 61, dtype=torch.float64)
    freqs = torch.stack([s, torch.zeros_like(s)], dim=1)
    ours = compute_ctf(freqs, _params(dfu=12000.0, dfv=12000.0, w=0.1, phase=phase))[0]
    assert torch.allclose(ours, -_cryodrgn_ctf(s, 12000.0, 300.0, 2.7, 0.1, phase), atol=1e-12)


def test_astigmatism_angle() -> None:
    """Along alpha = angle the defocus is dfu; along angle + 90 it is dfv."""
    s = torch.linspace(0.01, 0.25, 40, dtype=torch.float64)
    astig = _params(dfu=15000.0, dfv=10000.0, ang=30.0)
    for alpha, df in ((30.0, 15000.0), (120.0, 10000.0), (210.0, 15000.0)):
        a = math.radians(alpha)
        f = torch.stack([s * math.cos(a), s * math.sin(a)], dim=1)
        iso = _params(dfu=df, dfv=df, ang=0.0)
        assert torch.allclose(compute_ctf(f, astig), compute_ctf(f, iso), atol=1e-10)


def test_bfactor_envelope() -> None:
    s = torch.linspace(0, 0.3, 31, dtype=torch.float64)
    f = torch.stack([s * 0.6, s * 0.8], dim=1)
    plain = compute_ctf(f, _params())[0]
    damped = compute_ctf(f, _params(bfac=80.0))[0]
    assert torch.allclose(damped, plain * torch.exp(-80.0 * s**2 / 4), atol=1e-12)
    assert damped[-1].abs() < 0.2 * plain[-1].abs()  # exp(-80 * 0.09 / 4) = 0.165


def test_phase_plate_90_degrees() -> None:
    w = 0.1
    c0 = float(compute_ctf(torch.zeros(1, 2, dtype=torch.float64), _params(w=w, phase=90.0))[0, 0])
    assert c0 == pytest.approx(math.sqrt(1 - w * w), abs=1e-12)  # cos(atan(w/sqrt(1-w^2))) ~ 1
    assert c0 > 0.99


def test_ctf_on_the_image_grid_layout() -> None:
    """On the projector's grid (``freqs_2d``): DC at [D//2, D//2]; kx along the last axis
    (astigmatism with angle 0 puts dfu along x)."""
    D, psize_A = 32, 1.5
    p = _params(dfu=25000.0, dfv=10000.0, ang=0.0).float()
    img = compute_ctf(freqs_2d(D).reshape(-1, 2) / psize_A, p).reshape(D, D)
    assert img[D // 2, D // 2] == pytest.approx(0.1, abs=1e-6)
    k = 5  # 5/(32*1.5) 1/Å along x (row D//2) sees dfu, along y (column D//2) sees dfv
    fx = _at(k / (D * psize_A), 0.0)
    assert img[D // 2, D // 2 + k] == pytest.approx(float(compute_ctf(fx, _params(25000.0, 25000.0))[0, 0]), abs=1e-5)
    assert img[D // 2 + k, D // 2] == pytest.approx(float(compute_ctf(fx, _params(10000.0, 10000.0))[0, 0]), abs=1e-5)
