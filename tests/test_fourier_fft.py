"""Centred FFT layout: round-trips, DC position, axis order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryoscape.fourier.fft import fft2c, fft3c, ifft2c, ifft3c


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("D", [8, 16, 9])
def test_fft2c_round_trip(D: int, gen: torch.Generator) -> None:
    x = torch.randn(3, D, D, generator=gen, dtype=torch.float64)
    assert torch.allclose(ifft2c(fft2c(x)).real, x, atol=1e-12)
    assert ifft2c(fft2c(x)).imag.abs().max() < 1e-12


def test_fft3c_round_trip(gen: torch.Generator) -> None:
    x = torch.randn(12, 12, 12, generator=gen, dtype=torch.float64)
    assert torch.allclose(ifft3c(fft3c(x)).real, x, atol=1e-12)


def test_fft2c_matches_numpy_centred_definition(gen: torch.Generator) -> None:
    """F = fftshift(fftn(ifftshift(x))) exactly as docs/conventions.md states."""
    x = torch.randn(16, 16, generator=gen, dtype=torch.float64)
    ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x.numpy())))
    assert np.allclose(fft2c(x).numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("D", [8, 16])
def test_constant_has_only_dc_at_centre(D: int) -> None:
    f2 = fft2c(torch.full((D, D), 2.0, dtype=torch.float64))
    assert f2[D // 2, D // 2].real == pytest.approx(2.0 * D * D)
    f2[D // 2, D // 2] = 0
    assert f2.abs().max() < 1e-9
    f3 = fft3c(torch.ones(D, D, D, dtype=torch.float64))
    assert f3[D // 2, D // 2, D // 2].real == pytest.approx(D**3)
    f3[D // 2, D // 2, D // 2] = 0
    assert f3.abs().max() < 1e-9


def test_delta_at_centre_has_flat_real_transform() -> None:
    """A delta at index D//2 is the origin: its transform is 1 everywhere, no phase ramp."""
    x = torch.zeros(16, 16, dtype=torch.float64)
    x[8, 8] = 1
    assert torch.allclose(fft2c(x), torch.ones(16, 16, dtype=torch.complex128))


def test_frequency_of_index_and_axis_order() -> None:
    """A cosine of 3 cycles along x puts its peaks at x-index D//2 +- 3 (last axis)."""
    D = 16
    j = torch.arange(D, dtype=torch.float64) - D // 2
    x = torch.cos(2 * np.pi * 3 * j / D)[None, :].expand(D, D)
    f = fft2c(x).abs()
    peaks = {tuple(int(i) for i in p) for p in torch.nonzero(f > 1)}
    assert peaks == {(D // 2, D // 2 + 3), (D // 2, D // 2 - 3)}
