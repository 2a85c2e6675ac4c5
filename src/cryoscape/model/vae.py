"""The reconstruction model: image encoder + Fourier decoder, and maps made from it.

``zdim == 0`` gives a homogeneous model (decoder only). See docs/conventions.md and the
model/training interface: ``decode`` returns the volume's centred transform in the data's
normalised units, ``eval_volume`` the real-space map whose central slices are those values.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from cryoscape.errors import InputError
from cryoscape.fourier.fft import ifft3c
from cryoscape.model.config import ModelConfig
from cryoscape.model.decoder import FourierDecoder
from cryoscape.model.encoder import ImageEncoder
from cryoscape.model.lattice import HalfLattice, half_lattice

# Rows (latents x lattice points) per decoder call when making maps: bounds the activations
# to ~64 MB at width 256 while keeping matrix products large.
_ROWS_PER_CALL = 1 << 16
# Largest cached first-layer activation (bytes) for the map lattice, reused across latents.
_CACHE_BYTES = 256 * 2**20


class ReconModel(nn.Module):
    """VAE (or homogeneous decoder) described by a :class:`ModelConfig`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ImageEncoder(cfg) if cfg.zdim > 0 else None
        self.decoder = FourierDecoder(cfg)

    @property
    def zdim(self) -> int:
        return self.cfg.zdim

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images: (B, D, D)`` centred, windowed, normalised -> ``mu, logvar: (B, zdim)``."""
        if self.encoder is None:
            raise ValueError("a homogeneous model (zdim = 0) has no encoder")
        return self.encoder(images)

    def decode(self, coords: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``coords: (B, N, 3)`` cycles/px, ``z: (B, zdim) | None`` -> ``(B, N)`` complex64 transform."""
        return self.decoder(coords, z)

    def forward(self, coords: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(coords, z)

    def eval_volume(
        self, z: torch.Tensor | None = None, D: int | None = None, batch: int = _ROWS_PER_CALL
    ) -> torch.Tensor:
        """``(D, D, D)`` float32 real-space map [z, y, x] for one latent ``z: (zdim,)`` (None if zdim 0).

        ``D`` defaults to the training box; another box Fourier-crops or pads (see
        :func:`half_lattice`). Units are the data's normalised units; the caller rescales.
        """
        zs = None if z is None else torch.as_tensor(z).reshape(1, -1)
        return VolumeMaker(self, D, batch).volumes(zs)[0]

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> ReconModel:
        """Rebuild the model saved by the training loop (``model_config`` + ``model_state``)."""
        ckpt = load_checkpoint(path, map_location)
        try:
            model = cls(ModelConfig.from_dict(ckpt["model_config"]))
            model.load_state_dict(ckpt["model_state"])
        except KeyError as e:
            raise InputError(f"checkpoint lacks {e} (not written by cryoscape train?)", path) from None
        except (ValueError, TypeError, RuntimeError) as e:
            first = str(e).splitlines()[0]
            raise InputError(f"checkpoint does not match its model config: {first}", path) from None
        return model.eval()


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint dict at ``path``, loaded with ``weights_only=True`` (tensors and plain data
    only: a crafted file cannot run code). InputError, in cryoscape's words rather than torch's
    advice to load untrusted files unsafely, for a missing, foreign or corrupt file."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not a checkpoint", path)
    if not path.is_file():
        raise InputError("checkpoint not found", path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        named = re.search(r"GLOBAL:? ?([\w.]+)", str(e))
        if named is None:
            raise InputError("cannot read as a torch checkpoint (corrupt, or not a checkpoint)", path) from None
        raise InputError(
            f"refused: not a cryoscape checkpoint (it refers to {named.group(1)}; cryoscape "
            "loads only tensors and plain data, and ran nothing in it)",
            path,
        ) from None
    except Exception as e:  # torch raises many types for a truncated or foreign file
        first = (str(e).splitlines() or [""])[0][:200]
        raise InputError(f"cannot read as a torch checkpoint ({type(e).__name__}: {first})", path) from None
    if not isinstance(ckpt, dict):
        raise InputError("not a cryoscape checkpoint (expected a dict)", path)
    return ckpt


class VolumeMaker:
    """Makes maps from one model for many latents, building the lattice (and its encoding) once.

    The cached first-layer activations assume the weights do not change while this object lives.
    """

    def __init__(self, model: ReconModel, D: int | None = None, batch: int = _ROWS_PER_CALL) -> None:
        self.model = model
        self.D = model.cfg.D if D is None else int(D)
        device = next(model.parameters()).device
        self.lattice: HalfLattice = half_lattice(self.D, model.cfg.D, device)
        self.rows = max(1, int(batch))
        dec = model.decoder
        n, w = self.lattice.coords.shape[0], dec.inp_pe.out_features
        self._h0 = None
        if n * w * 4 <= _CACHE_BYTES:
            with torch.inference_mode():
                self._h0 = dec.point_features(self.lattice.coords)
        # Real-space values of a cropped/padded transform scale as (D_model/D)^3: undo it so a
        # map keeps its density values whatever box it is made at.
        self.scale = (self.D / model.cfg.D) ** 3

    def _transform_values(self, zs: torch.Tensor | None) -> torch.Tensor:
        """``(M, N)`` complex decoder values on the half lattice for ``zs: (M, zdim) | None``."""
        dec, lat = self.model.decoder, self.lattice
        M = 1 if zs is None else zs.shape[0]
        n = lat.coords.shape[0]
        step = max(1, self.rows // M)
        out = []
        for a in range(0, n, step):
            c = lat.coords[a : a + step]
            h0 = self._h0[a : a + step] if self._h0 is not None else dec.point_features(c)
            out.append(dec.head(h0[None], c, zs).expand(M, -1))
        return torch.cat(out, dim=1)

    def volumes(self, zs: torch.Tensor | None) -> torch.Tensor:
        """``(M, D, D, D)`` float32 maps for latents ``zs: (M, zdim)`` (None: one map, zdim 0)."""
        if (zs is None) != (self.model.zdim == 0):
            raise ValueError(f"model has zdim={self.model.zdim}; " + ("give z" if zs is None else "it takes no z"))
        lat, D = self.lattice, self.D
        with torch.inference_mode():
            if zs is not None:
                zs = torch.as_tensor(zs, dtype=torch.float32, device=lat.coords.device)
                zs = zs.reshape(-1, self.model.zdim)
            vals = self._transform_values(zs)
            grid = torch.zeros(vals.shape[0], D**3, dtype=torch.complex64, device=vals.device)
            grid[:, lat.partner] = vals.conj()
            grid[:, lat.index] = vals  # after the partners: the DC term is its own partner
            vols = ifft3c(grid.reshape(-1, D, D, D)).real * self.scale
        return vols.float().clone()
