"""``--enc-crop``: the encoder sees the images' low frequencies, Fourier-cropped as `downsample` does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from cryoscape.data.downsample import fourier_crop as crop_stack
from cryoscape.model.config import ModelConfig
from cryoscape.model.encoder import ImageEncoder, fourier_crop


def test_encoder_crop_is_downsample_scaled_to_keep_noise_variance():
    rng = np.random.default_rng(0)
    smooth = gaussian_filter(rng.standard_normal((3, 48, 48)), (0, 3, 3), mode="wrap").astype(np.float32)
    ours = fourier_crop(torch.from_numpy(smooth), 24).numpy()
    # downsample keeps a constant's value ((24/48)^2); the encoder keeps white noise's variance (24/48)
    np.testing.assert_allclose(ours, crop_stack(smooth, 24) * 2, atol=1e-4 * np.abs(ours).max())
    noise = torch.randn(256, 48, 48)
    assert fourier_crop(noise, 24).var().item() == pytest.approx(1.0, abs=0.05)
    assert fourier_crop(noise, 48) is noise  # the whole box: untouched


def test_encoder_with_a_crop_reads_only_the_low_frequencies():
    cfg = ModelConfig(D=32, zdim=2, enc_width=8, enc_depth=1, enc_crop=16)
    enc = ImageEncoder(cfg)
    assert enc.n_in == int(ImageEncoder(ModelConfig(D=16, zdim=2)).n_in)  # the 16 px box's pixels
    x = torch.randn(4, 32, 32)
    high = torch.zeros(32, 32)
    high[::2, ::2], high[1::2, 1::2] = 1.0, 1.0  # a checkerboard: Nyquist only
    high = high - high.mean()
    mu, _ = enc(x)
    mu_high, _ = enc(x + 5 * high)  # invisible beyond the crop
    torch.testing.assert_close(mu_high, mu, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="enc_crop"):
        ModelConfig(D=32, enc_crop=40)
    assert ModelConfig.from_dict(ModelConfig(D=32).to_dict()).enc_crop is None  # older configs: whole box
