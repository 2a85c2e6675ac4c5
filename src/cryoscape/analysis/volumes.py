"""Maps from a trained model: load a training run, read latents, generate and write volumes.

A run folder holds ``config.yaml`` (keys ``model``: the :class:`ModelConfig` dict, ``data``: incl.
``psize_A``, ``norm`` [mean, std] and ``D``, ``train``) and ``weights.pt`` / ``weights.<epoch>.pt``.
The decoder works in the data's normalised units, so maps are multiplied by the data std to
return to the particles' units (the mean only affects the DC term and is not added back).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from cryoscape.device import tune_cpu_allocator
from cryoscape.errors import InputError
from cryoscape.io.mrc import write_volume
from cryoscape.model.config import ModelConfig
from cryoscape.model.vae import ReconModel, VolumeMaker

#: Latents per decoder pass when generating many maps.
DEFAULT_BATCH = 8


@dataclass(frozen=True)
class TrainedRun:
    """A loaded training run: the model in eval mode and the facts needed to write its maps."""

    model: ReconModel
    psize_A: float | None  # pixel size of the training images; None if the config lacks it
    norm_std: float  # multiply decoder units by this to get the data's units
    weights: Path

    def latents(self, zfile: str | Path | None) -> np.ndarray | None:
        """The codes in ``zfile`` (:func:`read_latents`), None for a homogeneous model, which
        takes none; the error says which is wrong."""
        zdim = self.model.zdim
        if zdim == 0:
            if zfile:
                raise InputError("this is a homogeneous model (zdim 0): it takes no --z", self.weights.parent)
            return None
        if not zfile:
            raise InputError(f"this model has zdim {zdim}: give latents with --z", self.weights.parent)
        return read_latents(zfile, zdim)

    def output_grid(self, box: int | None = None, psize_A: float | None = None) -> tuple[int, float]:
        """(box, voxel size in Å) of maps made at ``box`` (default: the training box; an even
        box from 2 up Fourier-crops) from training images of ``psize_A`` (default: the run's)."""
        D = self.model.cfg.D
        if box is not None and (box % 2 or not 2 <= box <= D):
            raise InputError(
                f"--downsample {box}: need an even box from 2 to the training box {D}", self.weights.parent
            )
        psize = psize_A if psize_A is not None else self.psize_A
        if psize is None or psize <= 0:
            raise InputError("config.yaml gives no data.psize_A: pass --apix", self.weights.parent)
        D_out = box or D
        return D_out, psize * D / D_out


def _read_config(outdir: Path) -> dict:
    path = outdir / "config.yaml"
    if not path.is_file():
        raise InputError("no config.yaml here: not a cryoscape train output folder", outdir)
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML: {str(e).splitlines()[0]}", path) from None
    except UnicodeDecodeError:
        raise InputError("not a text file (cryoscape train writes config.yaml as YAML text)", path) from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise InputError("lacks the 'model' section written by cryoscape train", path)
    return cfg


def weights_path(outdir: Path, epoch: int | None) -> Path:
    """``weights.pt`` or ``weights.<epoch>.pt`` in ``outdir``; InputError listing what exists."""
    path = outdir / ("weights.pt" if epoch is None else f"weights.{epoch}.pt")
    if not path.is_file():
        found = sorted(p.name for p in outdir.glob("weights*.pt"))
        have = f"found: {', '.join(found)}" if found else "no weights*.pt files"
        raise InputError(f"no {path.name} ({have})", outdir)
    return path


def load_run(outdir: str | Path, epoch: int | None = None, device: str | torch.device = "cpu") -> TrainedRun:
    """Load the model and map metadata of a training run folder."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise InputError("training output folder not found", outdir)
    cfg = _read_config(outdir)
    if torch.device(device).type == "cpu":
        tune_cpu_allocator()
    wpath = weights_path(outdir, epoch)
    model = ReconModel.from_checkpoint(wpath, map_location=device)
    if model.cfg.to_dict() != _model_dict(cfg, outdir):
        raise InputError(f"config.yaml 'model' does not match the model stored in {wpath.name}", outdir)
    data = cfg.get("data") or {}
    psize = data.get("psize_A")
    norm = data.get("norm")
    if norm is None:
        print(f"warning: {outdir / 'config.yaml'} has no data.norm; maps stay in normalised units", file=sys.stderr)
        std = 1.0
    else:
        std = float(norm[1])
    return TrainedRun(model, None if psize is None else float(psize), std, wpath)


def _model_dict(cfg: dict, outdir: Path) -> dict:
    try:
        return ModelConfig.from_dict(cfg["model"]).to_dict()
    except (TypeError, ValueError) as e:
        raise InputError(f"bad 'model' section in config.yaml: {e}", outdir) from None


def read_latents(path: str | Path, zdim: int) -> np.ndarray:
    """``(M, zdim)`` float32 latents from ``.npy`` or text (one row per map; one row allowed)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("latent file not found", path)
    try:
        z = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, ndmin=2)
    except (ValueError, OSError) as e:
        raise InputError(f"cannot read latents: {str(e).splitlines()[0]}", path) from None
    z = np.asarray(z, dtype=np.float32)
    if z.ndim == 1 and z.size == zdim:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != zdim or z.shape[0] == 0:
        raise InputError(f"latents have shape {z.shape}; the model needs rows of {zdim} values", path)
    if not np.isfinite(z).all():
        raise InputError("latents contain NaN or Inf", path)
    return z


def generate_volumes(
    model: ReconModel,
    zs: np.ndarray | torch.Tensor | None,
    D: int | None = None,
    batch: int = DEFAULT_BATCH,
    *,
    scale: float = 1.0,
) -> Iterator[np.ndarray]:
    """Yield ``(D, D, D)`` float32 maps [z, y, x], one per row of ``zs: (M, zdim)``, in order.

    ``zs`` None (homogeneous model) yields one map. ``D`` defaults to the training box (see
    :func:`cryoscape.model.lattice.half_lattice` for other boxes). Maps are in decoder units
    times ``scale`` (pass the data std for the particles' units). The lattice and its
    positional encoding are built once for all latents.
    """
    maker = VolumeMaker(model, D)
    if zs is None:
        yield maker.volumes(None)[0].cpu().numpy() * np.float32(scale)
        return
    zs = torch.as_tensor(np.asarray(zs, dtype=np.float32)).reshape(-1, model.zdim)
    for a in range(0, zs.shape[0], max(1, batch)):
        for vol in maker.volumes(zs[a : a + batch]).cpu().numpy():
            yield vol * np.float32(scale)


def mirror_z(vol: np.ndarray) -> np.ndarray:
    """Mirror ``(D, D, D)`` [z, y, x] through the plane z = 0 (index D//2 stays put): the other hand."""
    return np.roll(vol[::-1], 1, axis=0)


def write_volumes(
    vols: Iterable[np.ndarray],
    voldir: str | Path,
    psize_A: float,
    *,
    flip: bool = False,
    invert: bool = False,
    prefix: str = "vol_",
) -> list[Path]:
    """Write ``voldir/vol_0000.mrc``, ... in order; ``flip`` mirrors z, ``invert`` negates."""
    voldir = Path(voldir)
    voldir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, vol in enumerate(vols):
        if flip:
            vol = mirror_z(vol)
        if invert:
            vol = -vol
        path = voldir / f"{prefix}{i:04d}.mrc"
        write_volume(path, np.ascontiguousarray(vol, dtype=np.float32), psize_A)
        paths.append(path)
    return paths
