"""Training configuration as data, round-tripped to ``OUTDIR/config.yaml``.

``config.yaml`` has three keys: ``model`` (:class:`~cryoscape.model.config.ModelConfig`),
``data`` (:class:`DataConfig`) and ``train`` (:class:`TrainConfig`). It is enough to rebuild the
model and to rescale its maps (``data.psize_A``, ``data.norm``) without the command line.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from cryoscape.errors import InputError
from cryoscape.model.config import ModelConfig

CONFIG_NAME = "config.yaml"
#: The cosine schedule's last learning rate, as a fraction of the first.
LR_FLOOR = 0.05
LR_SCHEDULES = ("cosine", "constant")
#: The default KL weight is ``BETA_ZDIM / zdim``, reached after a warm-up (cryoDRGN's default,
#: on its loss over twice as many terms, is our ``0.5 / zdim``). A strong prior straightens and
#: de-noises a continuous latent space, but held from the first step it slows the separation of
#: discrete states; the warm-up keeps both, and it must end early, while the latent space forms
#: (the measurements, on earlier code: benchmarks/HISTORY.md, "KL weight").
BETA_ZDIM = 4.0
#: The warm-up's first KL weight, as a fraction of ``beta``; it rises linearly to ``beta`` over the
#: first ``TrainConfig.beta_warmup`` images trained on (counted over epochs).
BETA_WARMUP_START = 0.25
#: The default warm-up length, images (recorded per run in config.yaml).
BETA_WARMUP_IMAGES = 20_000
#: Frequency marching: the band the loss fits starts at this fraction of the Nyquist radius.
MARCH_START = 0.25
#: Sampled high frequencies: every step fits all lattice points within this fraction of Nyquist and a
#: random share (``TrainConfig.hf_sample``) of those beyond it.
SAMPLE_CORE = 0.35
#: Default most decoder points one chunk of a step evaluates (``TrainConfig.max_points``).
MAX_POINTS = 65_536
#: What ``beta: null`` meant in config.yaml files written before the default was resolved there.
LEGACY_BETA_ZDIM = 1.0
#: The default batch per device type (other accelerators get the GPU's). On a CPU twice the steps
#: per epoch reach a latent quality in fewer epochs, which outweighs batch 16's somewhat higher cost
#: per image; a GPU is bound by per-step overhead and wants the larger batch (benchmarks/README.md,
#: "Per-image work and steps to quality", batch 16 on a CPU; HISTORY.md, "GPU pass").
DEFAULT_BATCH = {"cpu": 16, "cuda": 32}
#: The batch :func:`default_lr`'s rate is for; other batches scale it by ``sqrt(batch / LR_BATCH)``.
LR_BATCH = 32


@dataclass(frozen=True)
class DataConfig:
    """Which particles, how they were read, and the normalisation the model's units refer to.

    ``norm = (mean, std)``: the Fourier data the model fits are ``fft2c(image) / std`` (mean is
    0), so a map from the model times ``std`` is in the images' density units.
    """

    particles: str
    D: int
    psize_A: float
    n_particles: int
    norm: tuple[float, float] = (0.0, 1.0)
    datadir: str | None = None
    poses: str | None = None
    ctf: str | None = None
    ind: str | None = None
    box: int | None = None
    apix: float | None = None
    uninvert_data: bool = False
    use_ctf: bool = True
    #: :func:`cryoscape.io.fingerprint.data_fingerprint` of the particles, checked on resume
    #: (None in runs written before it existed: they resume unchecked).
    fingerprint: dict | None = None

    @property
    def sign(self) -> float:
        """Multiplier applied to the images before anything else."""
        return -1.0 if self.uninvert_data else 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the defaults are ``cryoscape train``'s. ``batch_size=None`` means
    :data:`DEFAULT_BATCH` of the device, ``lr=None`` :func:`default_lr` of the box and the batch,
    and ``amp=None`` mixed precision where the device computes it natively (all made concrete by
    :meth:`resolved` before a run records them); ``beta=None`` means :func:`default_beta`;
    ``device='auto'`` picks CUDA if present."""

    epochs: int = 20
    batch_size: int | None = None
    lr: float | None = None
    beta: float | None = None
    seed: int = 0
    amp: bool | None = None
    checkpoint_every: int = 1
    lazy: bool = False
    #: Processes reading images ahead when streaming (unused for images held in memory).
    num_workers: int = 2
    device: str = "auto"
    threads: int | None = None
    load: str | None = None
    #: "cosine": from ``lr`` down to ``LR_FLOOR * lr`` at the last step of ``epochs`` (it lets the
    #: latent space settle at the end of a run: benchmarks/HISTORY.md, "Training to cryoDRGN's final
    #: quality"); "constant".
    lr_schedule: str = "cosine"
    #: The KL weight rises linearly from ``BETA_WARMUP_START * beta`` to ``beta`` over this many
    #: images, then stays (discrete states begin to separate as under a weak prior; the latent space
    #: then forms under the strong one); 0: ``beta`` from the first step.
    beta_warmup: int = BETA_WARMUP_IMAGES
    #: Frequency marching: the loss fits lattice points within a radius that grows linearly from
    #: ``MARCH_START`` of Nyquist to all of them over this fraction of the run's steps (0: all from
    #: the first step). A step costs in proportion to the points it fits, and early on the codes
    #: and the coarse map are learned from low frequencies alone. The default, 30% of the run, was
    #: chosen on the demo-sized benchmarks (benchmarks/README.md, "Per-image work and steps to quality").
    freq_march: float = 0.3
    #: Share of the lattice points beyond ``SAMPLE_CORE`` of Nyquist that each image fits per step,
    #: drawn at random per image and step and weighted by its inverse (an unbiased estimate of the
    #: full loss); 1: every point. The decoder's cost is per point, and beyond the low frequencies
    #: at cryo-EM SNRs a point's gradient is mostly noise, so a share of them, fresh each step, steers
    #: the map nearly as well. Chosen on the demo-sized benchmarks (benchmarks/README.md,
    #: "Sampled high frequencies").
    hf_sample: float = 0.35
    #: Most decoder points one forward pass evaluates (batch x points per image): a larger batch
    #: runs in chunks whose gradients add up before the step, the same step in less memory
    #: (:mod:`cryoscape.train.chunks`). Chosen on the 128 and 256 px step benchmarks
    #: (benchmarks/README.md, "Memory at 128 and 256 px").
    max_points: int = MAX_POINTS
    #: Refine each particle's pose (rotation and shift) with the model: see
    #: :mod:`cryoscape.train.poses`; refined poses are written with every checkpoint.
    refine_poses: bool = False
    #: Fraction of the run after which the pose corrections start moving (the map is coarse before;
    #: the low band the search starts on needs only a coarse one: :data:`cryoscape.train.poses.SEARCH_BAND`).
    refine_from: float = 0.05
    #: Fraction of the run after which the rotations move too (before, the shifts alone); None (or
    #: any value up to ``refine_from``): with the shifts, from ``refine_from``, as runs written
    #: before shifts first did. Shifts first keeps a rotation from turning to make up for a shift
    #: still off; two epochs of 20 on the shifts alone gave better maps and rotations at every
    #: error level tried, where 0.3 lost at ten degrees (docs/poses.md, "Shifts first").
    refine_rotations_from: float | None = 0.15

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"TrainConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.beta_warmup < 0:
            raise ValueError(f"TrainConfig.beta_warmup must be >= 0 images, got {self.beta_warmup}")
        if not 0.0 <= self.freq_march <= 1.0:
            raise ValueError(f"TrainConfig.freq_march must be a fraction of the run in [0, 1], got {self.freq_march}")
        if not 0.0 < self.hf_sample <= 1.0:
            raise ValueError(f"TrainConfig.hf_sample must be a share in (0, 1], got {self.hf_sample}")
        if self.max_points < 1:
            raise ValueError(f"TrainConfig.max_points must be >= 1, got {self.max_points}")
        if not 0.0 <= self.refine_from < 1.0:
            raise ValueError(f"TrainConfig.refine_from must be a fraction of the run in [0, 1), got {self.refine_from}")
        if self.refine_rotations_from is not None and not 0.0 <= self.refine_rotations_from <= 1.0:
            raise ValueError(
                "TrainConfig.refine_rotations_from must be a fraction of the run in [0, 1], "
                f"got {self.refine_rotations_from}"
            )

    def resolved(self, D: int, amp: bool, device_type: str = "cpu") -> TrainConfig:
        """This config with its automatic choices made for a box of ``D`` px on a device of
        ``device_type`` ("cpu", "cuda") where mixed precision pays or not (``amp``): what a run
        uses and records."""
        batch = self.batch_size
        if batch is None:
            batch = DEFAULT_BATCH.get(device_type, DEFAULT_BATCH["cuda"])
        return replace(
            self,
            batch_size=batch,
            lr=default_lr(D, batch) if self.lr is None else self.lr,
            amp=amp if self.amp is None else self.amp,
        )

    def lr_at(self, progress: float) -> float:
        """Learning rate at ``progress`` = fraction of the run's steps done (0..1); needs a
        :meth:`resolved` ``lr``."""
        if self.lr is None:
            raise ValueError("TrainConfig.lr_at needs a resolved lr (see TrainConfig.resolved)")
        if self.lr_schedule == "constant":
            return self.lr
        f = 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))  # cosine
        return self.lr * (LR_FLOOR + (1.0 - LR_FLOOR) * f)

    def band_at(self, progress: float) -> float:
        """Fraction of the Nyquist radius the loss fits at ``progress`` (fraction of the run's steps)."""
        if self.freq_march == 0.0:
            return 1.0
        f = min(1.0, max(0.0, progress / self.freq_march))
        return MARCH_START + (1.0 - MARCH_START) * f

    def beta_for(self, zdim: int) -> float:
        """The KL weight ``beta`` (the warm-up's end) for a model of ``zdim``."""
        return self.beta if self.beta is not None else default_beta(zdim)

    def beta_at(self, zdim: int, images_seen: float) -> float:
        """KL weight at the step that follows ``images_seen`` training images (all epochs so far)."""
        beta = self.beta_for(zdim)
        if self.beta_warmup == 0:
            return beta
        f = min(1.0, max(0.0, images_seen / self.beta_warmup))
        return beta * (BETA_WARMUP_START + (1.0 - BETA_WARMUP_START) * f)


def default_beta(zdim: int, per_zdim: float = BETA_ZDIM) -> float:
    """The KL weight when none is given: ``per_zdim / zdim`` (0 for a homogeneous model)."""
    return per_zdim / zdim if zdim > 0 else 0.0


def default_lr(D: int, batch_size: int = LR_BATCH) -> float:
    """Adam's default learning rate for a box of ``D`` px and a batch of ``batch_size``: at the
    batch of 32, 1e-3 up to D = 64, then ``1e-3 (64/D)^1.5`` (3.5e-4 at D = 128, 1.25e-4 at
    D = 256, near cryoDRGN's fixed 1e-4); other batches scale it by ``sqrt(batch_size / 32)``.

    Why it falls with the box: on one H100, 1e-3 trained well at D = 64 but diverged at D = 128
    (also in fp32), while 3e-4 was stable there and reached a better latent space; at D = 64 a
    lower rate would cost little but slows short runs such as the demo, so small boxes keep 1e-3
    (the measurements, on earlier code: benchmarks/HISTORY.md, "GPU pass").

    Why the square root of the batch: Adam's step does not grow with the gradient, so a rate that
    suits one batch is too high for a smaller one, whose gradients are noisier; the square root
    keeps the noise of the steps in proportion. At 64 px on the CPU, batch 16 at 7e-4 formed the
    latent space in fewer epochs than batch 32 at 1e-3, and batch 32 at 2e-3 in more; on one GPU,
    batch 128 at 2e-3 trained well where 4e-3 did not (benchmarks/README.md, "Per-image work and
    steps to quality", batch 16 on a CPU; HISTORY.md, "GPU pass").
    """
    if batch_size < 1:
        raise ValueError(f"default_lr needs a batch of at least 1 image, got {batch_size}")
    return 1e-3 * min(1.0, 64.0 / D) ** 1.5 * math.sqrt(batch_size / LR_BATCH)


#: Settings that change what a resumed run computes; others (epochs, device, workers...) may differ.
RESUME_KEYS = {
    "model": None,  # all of them
    "data": ("particles", "D", "psize_A", "n_particles", "poses", "ctf", "ind", "uninvert_data", "use_ctf"),
    "train": ("batch_size", "lr", "beta", "seed", "load", "lr_schedule", "beta_warmup", "freq_march", "hf_sample"),
}


def config_dict(model: ModelConfig, data: DataConfig, train: TrainConfig) -> dict:
    """The ``config.yaml`` content as plain YAML-friendly types; ``beta`` as the number used, so
    the file still says what the run did if the default changes."""
    d = asdict(data)
    d["norm"] = [float(x) for x in data.norm]
    t = asdict(train)
    t["beta"] = float(train.beta_for(model.zdim))
    return {"model": model.to_dict(), "data": d, "train": t}


def _build(cls: type, d: dict, path: Path):
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise InputError(f"unknown {cls.__name__} keys {sorted(unknown)}", path)
    return cls(**d)


def load_config(path: str | os.PathLike) -> tuple[ModelConfig, DataConfig, TrainConfig]:
    """Read ``config.yaml`` (a file or the folder holding it)."""
    import yaml

    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.is_file():
        raise InputError("config not found", path)
    try:
        raw = yaml.safe_load(path.read_text())
        data = dict(raw["data"])
        data["norm"] = tuple(float(x) for x in data.get("norm", (0.0, 1.0)))
        train = dict(raw["train"])
        train.setdefault("lr_schedule", "constant")  # written before schedules: it ran at a constant rate
        train.setdefault("beta_warmup", 0)  # written before the warm-up: a constant weight
        train.setdefault("freq_march", 0.0)  # written before frequency marching: every point fitted
        train.setdefault("hf_sample", 1.0)  # written before sampled high frequencies: every point fitted
        # written before shifts first: the rotations moved with the shifts
        train.setdefault("refine_rotations_from", None)
        if train.get("beta") is None:  # written before beta was resolved: it ran at 1/zdim
            train["beta"] = default_beta(int(raw["model"]["zdim"]), LEGACY_BETA_ZDIM)
        return (ModelConfig.from_dict(raw["model"]), _build(DataConfig, data, path), _build(TrainConfig, train, path))
    except InputError:
        raise
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise InputError(f"not a cryoscape training config: {e}", path) from None


def save_config(outdir: str | os.PathLike, model: ModelConfig, data: DataConfig, train: TrainConfig) -> Path:
    """Write ``OUTDIR/config.yaml`` atomically; returns its path."""
    import yaml

    from cryoscape.io.atomic import atomic_write_bytes

    path = Path(outdir) / CONFIG_NAME
    text = yaml.safe_dump(config_dict(model, data, train), sort_keys=False)
    atomic_write_bytes(path, text.encode())
    return path


def resume_differences(old: dict, new: dict) -> list[str]:
    """``"section.key: old -> new"`` for every :data:`RESUME_KEYS` setting that differs."""
    diffs = []
    for section, keys in RESUME_KEYS.items():
        a, b = old.get(section, {}), new.get(section, {})
        for k in keys if keys is not None else sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                diffs.append(f"{section}.{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return diffs
