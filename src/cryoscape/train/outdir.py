"""The output folder of a training run: start fresh, resume, or refuse.

Re-running the same command into the same folder resumes from the last complete checkpoint;
a folder holding a run with different settings (see :data:`.config.RESUME_KEYS`) is refused
unless ``overwrite``, which deletes cryoscape's own files there (and nothing else).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryoscape.errors import InputError
from cryoscape.model.config import ModelConfig
from cryoscape.train import checkpoint as ck
from cryoscape.train.config import (
    CONFIG_NAME,
    DataConfig,
    TrainConfig,
    config_dict,
    load_config,
    resume_differences,
    save_config,
)

#: Files a training run writes; ``--overwrite`` removes exactly these.
OUTPUT_RE = re.compile(r"^(config\.yaml|log\.csv|weights(\.\d+)?\.pt|z(\.\d+)?\.npy)$")
#: Temporary files of those (``.NAME.<random>.tmp``, :mod:`cryoscape.io.atomic`, or older
#: cryoscape's pid-numbered ones): a run killed mid-write leaves one behind.
TEMP_RE = re.compile(r"^\.(config\.yaml|log\.csv|weights(\.\d+)?\.pt|z(\.\d+)?\.npy)\..+\.tmp$")


def previous_config(outdir: str | os.PathLike) -> tuple[ModelConfig, DataConfig, TrainConfig] | None:
    """The configs of the run in ``outdir``, or None if there is none."""
    path = Path(outdir) / CONFIG_NAME
    return load_config(path) if path.is_file() else None


def check_same_data(outdir: str | os.PathLike, fingerprint: dict, accept: bool = False) -> list[str]:
    """Refuse to resume the run in ``outdir`` on data that differ from what it was trained on
    (same paths and count, other content); ``accept``: return the differences instead."""
    from cryoscape.io.fingerprint import fingerprint_differences

    prev = previous_config(outdir)
    diffs = [] if prev is None else fingerprint_differences(prev[1].fingerprint, fingerprint)
    if diffs and not accept:
        raise InputError(
            "holds a run trained on other data than the particles given now ("
            + "; ".join(diffs)
            + "); pass --accept-changed-data to resume on them anyway, "
            "--overwrite to start over, or choose another -o",
            outdir,
        )
    return diffs


def clear_outputs(outdir: Path) -> None:
    """Delete the files a training run writes (``--overwrite``)."""
    for p in outdir.iterdir():
        if OUTPUT_RE.match(p.name) and p.is_file():
            p.unlink()


def prepare_outdir(
    outdir: Path, model_cfg: ModelConfig, data_cfg: DataConfig, train_cfg: TrainConfig, overwrite: bool
) -> dict | None:
    """Create or check ``outdir``, write ``config.yaml``; return the checkpoint to resume from, if any."""
    if outdir.exists() and not outdir.is_dir():
        raise InputError("output exists and is not a folder", outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for p in outdir.iterdir():  # debris of a run killed while writing; the real files are intact
        if TEMP_RE.match(p.name) and p.is_file():
            p.unlink()
    if overwrite:
        clear_outputs(outdir)
    ckpt = None
    prev = previous_config(outdir)
    if prev is not None:
        diffs = resume_differences(config_dict(*prev), config_dict(model_cfg, data_cfg, train_cfg))
        if diffs:
            raise InputError(
                "holds a training run with different settings ("
                + "; ".join(diffs)
                + "); use --overwrite to start over or choose another -o",
                outdir,
            )
        ckpt = ck.last_checkpoint(outdir)
        ck.tidy_after(outdir, None if ckpt is None else int(ckpt["epoch"]))
    elif ck.checkpoint_epochs(outdir):
        raise InputError(
            f"has weights files but no {CONFIG_NAME}; use --overwrite to start over or choose another -o", outdir
        )
    save_config(outdir, model_cfg, data_cfg, train_cfg)
    return ckpt
