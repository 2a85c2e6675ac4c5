"""Positional encodings and the model config."""

from __future__ import annotations

import math

import pytest
import torch

from cryoscape.model.config import ModelConfig
from cryoscape.model.posenc import (
    FourierFeatures,
    geometric_frequencies,
    ladder_vectors,
    make_encoding,
)


def test_geometric_frequencies_span_box_to_nyquist():
    f = geometric_frequencies(64, 32)
    assert f.shape == (32,)
    assert f[0].item() == pytest.approx(1.0)
    assert f[-1].item() == pytest.approx(32.0)
    ratios = f[1:] / f[:-1]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios), rtol=1e-5)


def test_axis_aligned_ladder_shape_and_values():
    """The encoding of runs written before the turned ladder (their checkpoints still load)."""
    D, n = 16, 8
    enc = FourierFeatures(ladder_vectors(D, n, rotated=False))
    k = torch.rand(4, 10, 3) - 0.5
    out = enc(k)
    assert out.shape == (4, 10, 3 + 6 * n) and enc.out_dim == 3 + 6 * n
    assert torch.equal(out[..., :3], k)
    # layout: sin of x at all frequencies, then y, then z, then the same for cos
    f = geometric_frequencies(D, n)
    assert torch.allclose(out[..., 3 + n : 3 + 2 * n], torch.sin(2 * math.pi * k[..., 1:2] * f), atol=1e-5)
    assert torch.allclose(out[..., 3 + 3 * n + 2 * n :], torch.cos(2 * math.pi * k[..., 2:3] * f), atol=1e-5)


def test_top_geometric_frequency_is_lattice_nyquist():
    """At f = D/2 the cosine alternates sign between neighbouring lattice points."""
    D = 16
    j = torch.arange(D)
    k = torch.zeros(D, 3)
    k[:, 0] = (j - D // 2) / D
    out = FourierFeatures(ladder_vectors(D, D // 2, rotated=False))(k)
    cos_top_x = out[:, 3 + 3 * (D // 2) + (D // 2 - 1)]
    assert torch.allclose(cos_top_x, torch.cos(math.pi * (j - D // 2).float()), atol=1e-5)


def test_gaussian_encoding_is_seeded_saved_and_scaled():
    D, n, sigma = 64, 32, 0.5
    a, b = make_encoding("gaussian", D, n, sigma), make_encoding("gaussian", D, n, sigma)
    assert torch.equal(a.b, b.b)
    assert "b" in a.state_dict() and a.b.shape == (3, 3 * n)
    assert a.b.std().item() == pytest.approx(sigma * D / 2, rel=0.25)
    k = torch.rand(2, 5, 3) - 0.5
    out = a(k)
    assert out.shape == (2, 5, 3 + 6 * n)
    assert torch.allclose(out[..., 3 : 3 + 3 * n] ** 2 + out[..., 3 + 3 * n :] ** 2, torch.ones(2, 5, 3 * n), atol=1e-5)


def test_make_encoding_rejects_unknown():
    with pytest.raises(ValueError):
        make_encoding("fourier", 16, 8, 0.5)
    with pytest.raises(ValueError, match="3, m"):
        FourierFeatures(torch.zeros(2, 6))


def test_a_state_dict_without_b_loads_only_where_a_legacy_matrix_is_known():
    """geom: weights saved before ``b`` was get the axis-aligned ladder; gaussian always saved ``b``."""
    D, n = 16, 8
    geom = make_encoding("geom", D, n, 0.5)
    assert geom.load_state_dict({}).missing_keys == []
    assert torch.equal(geom.b, ladder_vectors(D, n, rotated=False))
    with pytest.raises(RuntimeError, match="Missing key"):
        make_encoding("gaussian", D, n, 0.5).load_state_dict({})


def test_config_round_trip_and_defaults():
    cfg = ModelConfig(D=64, zdim=4, pe_type="gaussian", pe_sigma=0.3)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.n_freqs == 32
    assert ModelConfig(D=64, pe_dim=10).n_freqs == 10


@pytest.mark.parametrize("kw", [dict(D=15), dict(D=16, zdim=-1), dict(D=16, pe_type="x"), dict(D=16, dec_depth=0)])
def test_config_rejects_bad_values(kw):
    with pytest.raises(ValueError):
        ModelConfig(**kw)


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"D": 16, "zdimm": 2})


def test_config_from_dict_reads_an_unset_dropped_trial_option():
    """Configs written while ``--enc-crop`` (a dropped trial) existed carry ``enc_crop: null``:
    unset, they describe today's model; set, they describe one this code cannot build."""
    assert ModelConfig.from_dict({"D": 16, "zdim": 2, "enc_crop": None}) == ModelConfig(D=16, zdim=2)
    with pytest.raises(ValueError, match="enc_crop"):
        ModelConfig.from_dict({"D": 16, "zdim": 2, "enc_crop": 8})
