"""A fingerprint of a training run's input data, recorded in config.yaml and checked on resume.

A run resumed on different data under the same paths and count (a re-extracted stack, a star
file with refined poses) would silently mix two datasets in one model. The fingerprint records
what identifies the data cheaply: the particle count, the stacks' total size and newest mtime, a
hash of a few images spread over the stack, and a hash of the poses, shifts, CTF and pixel sizes
actually used (so optics given with --amp-contrast & co. count too). Reading 16 images and
hashing a few arrays costs well under a second even for a million particles.
"""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np

from cryoscape.io.particles import ParticleSet

#: Images hashed, evenly spaced over the set.
SAMPLED_IMAGES = 16
#: Keys whose change means different data; ``stack_mtime`` alone (a copy) does not.
COMPARED = ("n_images", "stack_bytes", "images_sha256", "metadata_sha256")


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if a is not None:
            a = np.ascontiguousarray(np.asarray(a, np.float64))
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
        else:
            h.update(b"none")
    return h.hexdigest()[:16]


def data_fingerprint(pset: ParticleSet, sample: int = SAMPLED_IMAGES) -> dict:
    """Plain-YAML dict identifying ``pset``'s data (see the module docstring)."""
    fp: dict = {"n_images": int(pset.n)}
    if pset.images is not None:
        sizes, mtimes = [], []
        for f in pset.images.files:
            st = os.stat(f)
            sizes.append(st.st_size)
            mtimes.append(st.st_mtime)
        fp["stack_bytes"] = int(sum(sizes))
        fp["stack_mtime"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(max(mtimes))) if mtimes else None
        ind: np.ndarray | list[int] = []
        if pset.n:
            ind = np.unique(np.linspace(0, pset.n - 1, min(sample, pset.n)).round().astype(np.int64))
        h = hashlib.sha256()
        for i in ind:
            h.update(np.ascontiguousarray(pset.images[int(i)], np.float32).tobytes())
        fp["images_sha256"] = h.hexdigest()[:16]
    c = pset.ctf
    fp["metadata_sha256"] = _digest([pset.rotations, pset.shifts_A, pset.psize_A, None if c is None else c.as_array()])
    filled = pset.info.optics_filled
    if filled and c is not None:  # for the record: which optics came from the command line
        fp["optics_filled"] = {k: float(v) for k, v in filled.items()}
    return fp


def fingerprint_differences(old: dict | None, new: dict) -> list[str]:
    """What differs between a recorded fingerprint and the current one ([] if ``old`` is None:
    a run folder written before fingerprints)."""
    if not old:
        return []
    names = {
        "n_images": "number of images",
        "stack_bytes": "size of the image stacks (bytes)",
        "images_sha256": "content of sampled images",
        "metadata_sha256": "poses, shifts, CTF or pixel size",
    }
    out = []
    for k in COMPARED:
        if k in old and old.get(k) != new.get(k):
            out.append(f"{names[k]}: {old.get(k)} -> {new.get(k)}")
    if (old.get("optics_filled") or {}) != (new.get("optics_filled") or {}):
        out.append(
            f"optics given on the command line: {old.get('optics_filled') or 'none'} -> "
            f"{new.get('optics_filled') or 'none'}"
        )
    if out and old.get("stack_mtime") != new.get("stack_mtime"):
        out.append(f"stacks modified {old.get('stack_mtime')} -> {new.get('stack_mtime')}")
    return out
