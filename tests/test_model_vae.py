"""ReconModel: encoder contract, maps consistent with the decoder and the projector, fitting, checkpoints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cryoscape.analysis.fsc import fsc
from cryoscape.errors import InputError
from cryoscape.fourier.fft import fft3c, ifft3c
from cryoscape.fourier.lattice import freqs_1d, freqs_2d, radius_2d
from cryoscape.fourier.project import Projector
from cryoscape.fourier.slicing import rotate_lattice
from cryoscape.geometry import random_rotations
from cryoscape.model.config import ModelConfig
from cryoscape.model.encoder import pixel_mask
from cryoscape.model.vae import ReconModel, VolumeMaker


def _model(D: int = 16, zdim: int = 2, **kw) -> ReconModel:
    torch.manual_seed(0)
    kw = dict(enc_width=32, enc_depth=2, dec_width=32, dec_depth=2) | kw
    return ReconModel(ModelConfig(D=D, zdim=zdim, **kw)).eval()


def _cube_rotations() -> torch.Tensor:
    """The 24 proper rotations that map the lattice onto itself (signed permutations, det +1)."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = torch.zeros(3, 3)
            for r, (c, s) in enumerate(zip(perm, signs)):
                m[r, c] = s
            if torch.det(m) > 0:
                mats.append(m)
    return torch.stack(mats)


def _full_lattice(D: int) -> torch.Tensor:
    f = freqs_1d(D)
    kz, ky, kx = torch.meshgrid(f, f, f, indexing="ij")
    return torch.stack([kx, ky, kz], -1).reshape(1, -1, 3)


def test_encoder_shapes_and_inputs():
    m = _model(D=16, zdim=3)
    mu, logvar = m.encode(torch.randn(5, 16, 16))
    assert mu.shape == logvar.shape == (5, 3)
    assert m.encoder.n_in == int(pixel_mask(16).sum()) == m.encoder.mlp.inp.in_features
    # pixels outside the circle of radius D/2 do not matter
    img = torch.randn(1, 16, 16)
    noisy = img.clone()
    noisy[:, ~pixel_mask(16)] += 100
    assert torch.equal(m.encode(img)[0], m.encode(noisy)[0])


def test_homogeneous_model_has_no_encoder():
    m = _model(zdim=0)
    assert m.encoder is None
    assert not any(k.startswith("encoder") for k in m.state_dict())
    with pytest.raises(ValueError):
        m.encode(torch.zeros(1, 16, 16))
    assert m.eval_volume().shape == (16, 16, 16)


@pytest.mark.parametrize("zdim", [0, 2])
def test_eval_volume_is_the_real_inverse_of_the_decoded_lattice(zdim):
    """Half-lattice + conjugate fill equals decoding every lattice point, whose inverse is real."""
    D = 16
    m = _model(D=D, zdim=zdim)
    z = torch.randn(zdim) if zdim else None
    with torch.no_grad():
        full = m.decode(_full_lattice(D), None if z is None else z[None]).reshape(D, D, D)
    vol_c = ifft3c(full)
    assert vol_c.imag.abs().max() < 1e-6 * vol_c.real.abs().max()
    vol = m.eval_volume(z)
    assert vol.dtype == torch.float32 and vol.shape == (D, D, D)
    assert torch.allclose(vol, vol_c.real, atol=1e-6 * vol.abs().max().item())


def test_eval_volume_slices_match_decode_on_lattice_aligned_poses():
    D = 16
    m = _model(D=D, zdim=2)
    z = torch.randn(2)
    rot = _cube_rotations()
    slices = Projector(m.eval_volume(z), oversample=1, gridding=False).slices(rot)
    with torch.no_grad():
        dec = m.decode(rotate_lattice(freqs_2d(D).reshape(-1, 2), rot), z.expand(len(rot), 2))
    assert (slices - dec).abs().max() < 1e-5 * dec.abs().max()


def test_smaller_box_is_a_fourier_crop_that_keeps_density_values():
    D, Dp = 16, 8
    m = _model(D=D, zdim=0)
    big, small = m.eval_volume(), m.eval_volume(D=Dp)
    a = D // 2 - Dp // 2
    crop = fft3c(big)[a : a + Dp, a : a + Dp, a : a + Dp].clone()
    crop[0], crop[:, 0], crop[:, :, 0] = 0, 0, 0  # Nyquist planes of the small box
    expect = ifft3c(crop).real * (Dp / D) ** 3
    assert small.shape == (Dp, Dp, Dp)
    assert torch.allclose(small, expect, atol=1e-5 * expect.abs().max().item())
    assert small.mean().item() == pytest.approx(big.mean().item(), rel=1e-4)


def test_batched_maps_equal_single_maps():
    m = _model(zdim=2)
    zs = torch.randn(3, 2)
    vols = VolumeMaker(m, batch=500).volumes(zs)  # small row budget: several chunks
    for z, v in zip(zs, vols):
        assert torch.allclose(v, m.eval_volume(z), atol=1e-6)
    with pytest.raises(ValueError):
        VolumeMaker(m).volumes(None)


def _blobs(D: int) -> torch.Tensor:
    x = torch.arange(D) - D // 2
    zz, yy, xx = torch.meshgrid(x, x, x, indexing="ij")
    vol = torch.zeros(D, D, D)
    for (cx, cy, cz), s, a in [((2, 0, -1), 1.5, 1.0), ((-2, 2, 1), 1.2, 0.7), ((0, -3, 2), 1.0, 0.5)]:
        vol += a * torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2 + (zz - cz) ** 2) / (2 * s * s))
    return vol


def test_homogeneous_decoder_overfits_the_slices_of_a_known_volume():
    D, n_img = 16, 300
    torch.manual_seed(0)
    truth = _blobs(D)
    rot = torch.tensor(random_rotations(n_img, np.random.default_rng(0)), dtype=torch.float32)
    f = freqs_2d(D).reshape(-1, 2)
    half = (radius_2d(D).reshape(-1) <= D // 2) & ((f[:, 1] > 0) | ((f[:, 1] == 0) & (f[:, 0] >= 0)))
    data = Projector(truth).slices(rot)[:, half]
    std = data.abs().pow(2).mean().sqrt()
    data, coords = data / std, rotate_lattice(f[half], rot)
    m = ReconModel(ModelConfig(D=D, zdim=0, dec_width=64, dec_depth=2))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(400):
        i = torch.randint(0, n_img, (32,))
        loss = (m.decode(coords[i]) - data[i]).abs().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    vol = (m.eval_volume() * std).numpy()
    assert np.corrcoef(vol.ravel(), truth.numpy().ravel())[0, 1] > 0.99
    _, curve = fsc(vol, truth.numpy())
    assert curve[:5].min() > 0.95  # to 1/4 cycles/px, where the blobs have their power


@pytest.mark.parametrize("pe_type", ["geom", "gaussian"])
def test_checkpoint_round_trip(tmp_path, pe_type):
    m = _model(zdim=2, pe_type=pe_type)
    path = tmp_path / "weights.pt"
    torch.save(
        {
            "model_config": m.cfg.to_dict(),
            "model_state": m.state_dict(),
            "epoch": 3,
            "optimizer_state": torch.optim.Adam(m.parameters()).state_dict(),
            "norm": [0.0, 2.5],
        },
        path,
    )
    m2 = ReconModel.from_checkpoint(path)
    assert m2.cfg == m.cfg and not m2.training
    z = torch.randn(2)
    assert torch.equal(m2.eval_volume(z), m.eval_volume(z))
    img = torch.randn(2, 16, 16)
    assert torch.equal(m2.encode(img)[0], m.encode(img)[0])


def test_checkpoint_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ReconModel.from_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(InputError, match="cannot read"):
        ReconModel.from_checkpoint(bad)
    partial = tmp_path / "partial.pt"
    torch.save({"model_state": {}}, partial)
    with pytest.raises(InputError, match="model_config"):
        ReconModel.from_checkpoint(partial)
    wrong = tmp_path / "wrong.pt"
    m = _model(zdim=2)
    torch.save({"model_config": dict(m.cfg.to_dict(), dec_width=64), "model_state": m.state_dict()}, wrong)
    with pytest.raises(InputError, match="does not match"):
        ReconModel.from_checkpoint(wrong)
