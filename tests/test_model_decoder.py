"""Fourier decoder: Hermitian symmetry by construction, support, dtype."""

from __future__ import annotations

import pytest
import torch

from cryoscape.model.config import ModelConfig
from cryoscape.model.decoder import FourierDecoder, canonicalize


def _points_with_ties(B: int = 2, N: int = 200) -> torch.Tensor:
    """Random points plus points on the kz = 0 plane, the ky = kz = 0 axis and the origin."""
    g = torch.Generator().manual_seed(1)
    k = (torch.rand(B, N, 3, generator=g) - 0.5) * 0.55  # inside the support sphere
    k[:, :40, 2] = 0
    k[:, 40:60, 1:] = 0
    k[:, 60] = 0
    return k


def test_canonicalize_maps_k_and_minus_k_to_the_same_point():
    k = _points_with_ties()
    c, flip = canonicalize(k)
    cm, flipm = canonicalize(-k)
    assert torch.equal(c, cm)
    kx, ky, kz = c.unbind(-1)
    assert bool(((kz > 0) | ((kz == 0) & ((ky > 0) | ((ky == 0) & (kx >= 0))))).all())
    nonzero = k.abs().sum(-1) > 0
    assert torch.equal(flip[nonzero], ~flipm[nonzero])


@pytest.mark.parametrize("zdim,pe_type", [(0, "geom"), (3, "geom"), (3, "gaussian")])
def test_decode_is_exactly_hermitian(zdim, pe_type):
    torch.manual_seed(0)
    dec = FourierDecoder(ModelConfig(D=16, zdim=zdim, dec_width=32, dec_depth=2, pe_type=pe_type))
    k = _points_with_ties()
    z = torch.randn(2, zdim) if zdim else None
    with torch.no_grad():
        a, b = dec(k, z), dec(-k, z)
    assert a.dtype == torch.complex64 and a.shape == (2, 200)
    assert torch.equal(b, a.conj())
    assert torch.equal(a[:, 60].imag, torch.zeros(2))  # the DC term is real
    assert a[:, :60].abs().min() > 0


def test_decode_is_zero_outside_the_nyquist_sphere():
    dec = FourierDecoder(ModelConfig(D=16, zdim=0, dec_width=16, dec_depth=1))
    k = torch.tensor([[[0.5, 0, 0], [0, -0.5, 0], [0.3, 0.3, 0.3], [0.49, 0, 0]]])
    with torch.no_grad():
        out = dec(k)
    assert torch.equal(out[0, :3], torch.zeros(3, dtype=torch.complex64))
    assert out[0, 3].abs() > 0


def test_decode_needs_z_when_zdim_positive():
    dec = FourierDecoder(ModelConfig(D=16, zdim=2, dec_width=16, dec_depth=1))
    with pytest.raises(ValueError):
        dec(torch.zeros(1, 3, 3))


def test_decode_under_bf16_autocast_stays_complex64_and_close():
    torch.manual_seed(0)
    dec = FourierDecoder(ModelConfig(D=16, zdim=2, dec_width=32, dec_depth=2))
    k, z = torch.rand(2, 50, 3) - 0.5, torch.randn(2, 2)
    with torch.no_grad():
        ref = dec(k, z)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = dec(k, z)
    assert low.dtype == torch.complex64
    assert (low - ref).abs().max() < 0.05 * ref.abs().max()


def test_geom_ladder_is_saved_and_old_checkpoints_keep_their_axis_ladder(tmp_path):
    """New weights carry the turned ladder; a state_dict from before it (no ``pe.b``) was trained
    with the axis-aligned ladder, gets it back on loading, and gives the same map as before."""
    from cryoscape.model.posenc import ladder_vectors
    from cryoscape.model.vae import ReconModel

    cfg = ModelConfig(D=16, zdim=0, dec_width=32, dec_depth=2)
    torch.manual_seed(0)
    old = ReconModel(cfg).eval()
    old.decoder.pe.b.copy_(ladder_vectors(cfg.D, cfg.n_freqs, rotated=False))  # what older runs trained with
    state = old.state_dict()
    del state["decoder.pe.b"]  # which their weights did not store
    path = tmp_path / "weights.pt"
    torch.save({"model_config": cfg.to_dict(), "model_state": state}, path)
    loaded = ReconModel.from_checkpoint(path)
    assert torch.equal(loaded.decoder.pe.b, ladder_vectors(cfg.D, cfg.n_freqs, rotated=False))
    assert torch.equal(loaded.eval_volume(), old.eval_volume())

    new = ReconModel(cfg).eval()
    assert torch.equal(new.state_dict()["decoder.pe.b"], ladder_vectors(cfg.D, cfg.n_freqs))
    again = ReconModel(cfg)
    again.load_state_dict(new.state_dict())
    assert torch.equal(again.eval().eval_volume(), new.eval_volume())
