"""Networks: positional encoding, Fourier decoder, image encoder and the VAE built from them.

``from cryoscape.model import ModelConfig, ReconModel``. Names resolve lazily so that importing
the config (e.g. to build a command line) does not import torch.
"""

from __future__ import annotations

import importlib

__all__ = ["ModelConfig", "ReconModel", "VolumeMaker"]

_WHERE = {"ModelConfig": "config", "ReconModel": "vae", "VolumeMaker": "vae"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"cryoscape.model.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'cryoscape.model' has no attribute {name!r}")
