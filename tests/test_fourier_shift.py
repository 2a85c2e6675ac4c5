"""Phase-ramp translations: sign convention, sub-pixel inverse, the projector's shift."""

from __future__ import annotations

import pytest
import torch

from cryoscape.fourier.fft import fft2c, ifft2c
from cryoscape.fourier.lattice import freqs_2d
from cryoscape.fourier.project import Projector
from cryoscape.fourier.shift import phase_ramp, translate

D = 16


@pytest.fixture
def images() -> torch.Tensor:
    """``(2, D, D)`` float64 random images."""
    return torch.randn(2, D, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _translate_images(x: torch.Tensor, t_px: torch.Tensor) -> torch.Tensor:
    """Translate real images ``x: (B, D, D)`` by ``t_px: (B, 2)`` (tx, ty) through their transforms."""
    freqs = freqs_2d(x.shape[-1]).double().reshape(-1, 2)
    f = translate(fft2c(x).reshape(len(x), -1), freqs, t_px.double())
    return ifft2c(f.reshape(x.shape)).real


def test_integer_translation_is_roll(images: torch.Tensor) -> None:
    """Moving by +t puts pixel [y, x] at [y + ty, x + tx] (periodic)."""
    t = torch.tensor([[3.0, -2.0], [-5.0, 7.0]])
    out = _translate_images(images, t)
    for i, (tx, ty) in enumerate(t.long().tolist()):
        ref = torch.roll(images[i], shifts=(ty, tx), dims=(0, 1))
        assert torch.allclose(out[i], ref, atol=1e-10)


def test_subpixel_shift_then_back_is_identity(images: torch.Tensor) -> None:
    t = torch.tensor([[0.37, -1.61], [2.25, 0.5]], dtype=torch.float64)
    freqs = freqs_2d(D).double().reshape(-1, 2)
    f = fft2c(images).reshape(2, -1)
    back = translate(translate(f, freqs, t), freqs, -t)
    assert torch.allclose(back, f, atol=1e-10)


def test_phase_ramp_is_unit_modulus_and_one_at_dc() -> None:
    freqs = freqs_2d(D).reshape(-1, 2)
    r = phase_ramp(freqs, torch.tensor([[0.3, 1.7]]))
    assert torch.allclose(r.abs(), torch.ones_like(r.abs()), atol=1e-6)
    assert r[0, (D // 2) * D + D // 2] == 1


def test_project_shift_moves_image_by_minus_shift() -> None:
    """Convention: ``project(shift_px=s)`` is the unshifted projection translated by ``-s``."""
    g = torch.Generator().manual_seed(2)
    vol = torch.randn(D, D, D, generator=g)
    proj = Projector(vol, oversample=1)
    rot = torch.eye(3)[None].repeat(2, 1, 1)
    s = torch.tensor([[2.0, -3.0], [-1.0, 4.0]])
    plain = proj.project(rot)
    shifted = proj.project(rot, shift_px=s)
    for i, (sx, sy) in enumerate(s.long().tolist()):
        ref = torch.roll(plain[i], shifts=(-sy, -sx), dims=(0, 1))
        assert torch.allclose(shifted[i], ref, atol=1e-4)
