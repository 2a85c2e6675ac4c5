"""The model's architecture as data: enough to rebuild a :class:`ReconModel` from ``config.yaml``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the encoder and the Fourier decoder.

    ``D`` is the even box (px) of the training images; ``zdim == 0`` means a homogeneous model
    (decoder only, no encoder). ``pe_dim`` defaults to ``D // 2`` frequencies.
    """

    D: int  # even box of the training images, px
    zdim: int = 8  # latent dimension; 0 = homogeneous (decoder only)
    enc_width: int = 256
    enc_depth: int = 3
    dec_width: int = 256
    dec_depth: int = 3
    pe_type: str = "geom"  # "geom" (geometric sinusoids up to Nyquist) | "gaussian" (random Fourier features)
    pe_dim: int | None = None  # number of frequencies (default D // 2)
    pe_sigma: float = 0.5  # gaussian features scale
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.D < 2 or self.D % 2:
            raise ValueError(f"ModelConfig.D must be an even box size >= 2, got {self.D}")
        if self.zdim < 0:
            raise ValueError(f"ModelConfig.zdim must be >= 0, got {self.zdim}")
        if self.pe_type not in ("geom", "gaussian"):
            raise ValueError(f"ModelConfig.pe_type must be 'geom' or 'gaussian', got {self.pe_type!r}")
        if min(self.enc_width, self.enc_depth, self.dec_width, self.dec_depth) < 1:
            raise ValueError("ModelConfig widths and depths must be >= 1")
        if self.pe_dim is not None and self.pe_dim < 1:
            raise ValueError(f"ModelConfig.pe_dim must be >= 1, got {self.pe_dim}")

    @property
    def n_freqs(self) -> int:
        """Number of positional-encoding frequencies actually used."""
        return self.pe_dim if self.pe_dim is not None else self.D // 2

    def to_dict(self) -> dict:
        """Plain dict of the fields (YAML/pickle friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error so typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        if "enc_crop" in d and d["enc_crop"] is None:  # written by code with a dropped trial option, unset
            d = {k: v for k, v in d.items() if k != "enc_crop"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig keys: {sorted(unknown)}")
        return cls(**d)
