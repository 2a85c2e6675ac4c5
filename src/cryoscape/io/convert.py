"""Rewriting a particle set in other formats: star/cs, cryoDRGN pose and CTF pickles, an index.

What ``cryoscape convert`` does: :meth:`ConvertTargets.check` before reading (nothing to write,
an output over the input, a missing folder), :func:`write_converted` after.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.particles import ParticleSet
from cryoscape.io.write import write_cryodrgn_ctf, write_cryodrgn_poses, write_index, write_particles


@dataclass(frozen=True)
class ConvertTargets:
    """Files to write, each optional: ``particles`` (.star or .cs), cryoDRGN ``poses_pkl`` and
    ``ctf_pkl``, and ``ind_pkl``, the indices into the input of the particles written."""

    particles: str | os.PathLike | None = None
    poses_pkl: str | os.PathLike | None = None
    ctf_pkl: str | os.PathLike | None = None
    ind_pkl: str | os.PathLike | None = None

    @property
    def need_box(self) -> bool:
        """Whether the outputs need the box (all but the index do)."""
        return bool(self.particles or self.poses_pkl or self.ctf_pkl)

    def check(self, source: str | os.PathLike) -> None:
        """Raise the one-line error for outputs that cannot be written from ``source``."""
        outs = [Path(o) for o in (self.particles, self.poses_pkl, self.ctf_pkl, self.ind_pkl) if o]
        src = Path(source)
        if not outs:
            raise InputError("nothing to write: give -o, --poses-pkl, --ctf-pkl or --ind-pkl", src)
        for o in outs:
            if o.absolute() == src.absolute():
                raise InputError("output would overwrite the input", o)
            if not o.absolute().parent.is_dir():
                raise InputError("output folder does not exist", o.absolute().parent)
        if self.particles and Path(self.particles).suffix.lower() not in (".star", ".cs"):
            raise InputError("-o must end in .star or .cs", self.particles)


def write_converted(pset: ParticleSet, targets: ConvertTargets) -> list[str]:
    """Write ``pset`` to each of ``targets``; returns the paths written, in the order above."""
    if targets.poses_pkl and pset.rotations is None:
        if pset.source_format == "cs":
            raise InputError(
                f"no 3D alignments (alignments3D/pose) in {pset.source}; use a refinement job's particles or --poses",
                pset.source,
            )
        raise InputError("no poses (_rlnAngleRot/Tilt/Psi) to write; pass --poses", pset.source)
    if targets.ctf_pkl and pset.ctf is None:
        raise InputError("no CTF parameters to write; pass --ctf", pset.source)
    done = []
    if targets.particles:
        write_particles(pset, targets.particles)
        done.append(str(targets.particles))
    if targets.poses_pkl:
        write_cryodrgn_poses(pset, targets.poses_pkl)
        done.append(str(targets.poses_pkl))
    if targets.ctf_pkl:
        write_cryodrgn_ctf(pset, targets.ctf_pkl)
        done.append(str(targets.ctf_pkl))
    if targets.ind_pkl:
        sel = pset.info.subset_of_source
        write_index(np.arange(pset.n) if sel is None else sel, targets.ind_pkl)
        done.append(str(targets.ind_pkl))
    return done
