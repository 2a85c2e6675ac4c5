"""Particle selection from latent space, written back as star/cs subsets and index pickles.

Selections are made on the run's particles (rows of ``z.npy``). A run trained with ``--ind``
saw only those rows of its particle file, so indices are mapped through that index to rows of
the original file before writing: ``NAME.pkl`` can then be passed as ``--ind`` together with
the original file, and ``NAME.star`` / ``NAME.cs`` hold exactly those rows.
"""

from __future__ import annotations

import operator
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryoscape.errors import InputError

if TYPE_CHECKING:
    from cryoscape.io.particles import ParticleSet

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class RunParticles:
    """Where a run's particles came from (``config.yaml`` ``data``) and which rows it used."""

    particles: Path | None
    load_kwargs: dict
    run_ind: np.ndarray | None  # (n_run,) rows of the original file, or None for all of them
    n_run: int | None


def run_particles(run_dir: str | Path) -> RunParticles:
    """Read ``run_dir/config.yaml``'s data section (no torch needed); without one (a cryoDRGN
    run) nothing is known and selections stay relative to the run's particles."""
    import yaml

    from cryoscape.io.cryodrgn import read_index

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        print(
            f"warning: {run_dir} has no config.yaml: indices are written relative to the run's "
            "particles and no star/cs subsets are made",
            file=sys.stderr,
        )
        return RunParticles(None, {}, None, None)
    try:
        data = (yaml.safe_load(path.read_text()) or {}).get("data") or {}
    except (yaml.YAMLError, AttributeError, UnicodeDecodeError) as e:  # not YAML, not a mapping, not text
        raise InputError(f"not a cryoscape training config: {str(e).splitlines()[0]}", path) from None
    run_ind = None if not data.get("ind") else read_index(data["ind"])
    kwargs = {k: data.get(k) for k in ("datadir", "poses", "ctf", "box", "apix")}
    part = data.get("particles")
    return RunParticles(None if part is None else Path(part), kwargs, run_ind, data.get("n_particles"))


def to_source_rows(ind: np.ndarray, run_ind: np.ndarray | None) -> np.ndarray:
    """Rows of the original particle file for run-relative indices ``ind``."""
    ind = np.asarray(ind, np.int64)
    return ind if run_ind is None else np.asarray(run_ind, np.int64)[ind]


def complement(ind: np.ndarray, n: int) -> np.ndarray:
    """Sorted ``0..n-1`` indices not in ``ind``."""
    keep = np.ones(n, bool)
    keep[np.asarray(ind, np.int64)] = False
    return np.flatnonzero(keep)


def threshold_values(z: np.ndarray, dim: str, pc_coords: np.ndarray | None = None) -> np.ndarray:
    """``(N,)`` the quantity a threshold applies to: ``z`` column ``dim`` (0-based, "3" or
    "z3"), ``norm`` (|z|), or ``pcK`` (1-based principal component, needs ``pc_coords``)."""
    d = dim.lower()
    if d in ("norm", "|z|"):
        return np.linalg.norm(z, axis=1)
    if d.startswith("pc") and d[2:].isdigit():
        k = int(d[2:])
        if pc_coords is None or not 1 <= k <= pc_coords.shape[1]:
            raise InputError(f"no principal component {k} (zdim {z.shape[1]})")
        return pc_coords[:, k - 1]
    d = d.removeprefix("z")
    if not d.isdigit() or int(d) >= z.shape[1]:
        raise InputError(f"threshold dimension {dim!r}: use 0..{z.shape[1] - 1}, norm or pc1..pc{z.shape[1]}")
    return z[:, int(d)]


def threshold_select(values: np.ndarray, op: str, value: float) -> np.ndarray:
    """Indices where ``values OP value``."""
    if op not in OPS:
        raise InputError(f"unknown comparison {op!r}; use one of {' '.join(OPS)}")
    return np.flatnonzero(OPS[op](values, value))


def polygon_select(coords: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Sorted indices of the rows of ``coords: (N, 2)`` inside ``polygon: (M, 2)`` (a lasso in
    the same 2D embedding; closed implicitly), by the even-odd rule.

    Works on every particle, not only those drawn, so a lasso on a subsampled plot still
    selects all the particles it encloses.
    """
    xy = np.asarray(coords, np.float64)
    poly = np.asarray(polygon, np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise InputError(f"coordinates must be (N, 2), got shape {xy.shape}")
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3 or not np.isfinite(poly).all():
        raise InputError("a selection polygon needs at least 3 finite (x, y) vertices")
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    cand = np.flatnonzero(np.all((xy >= lo) & (xy <= hi), axis=1))  # cheap box test first
    x, y = xy[cand, 0], xy[cand, 1]
    inside = np.zeros(len(cand), bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        if y0 == y1:
            continue  # a horizontal edge never crosses the horizontal ray
        crosses = (y0 > y) != (y1 > y)
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_cross)
    return cand[inside]


def cluster_selections(labels: np.ndarray, clusters: list[int] | None = None) -> dict[str, np.ndarray]:
    """One selection per cluster (``cluster_000``, ...), or the union of ``clusters``."""
    labels = np.asarray(labels)
    k = int(labels.max()) + 1
    if clusters is None:
        return {f"cluster_{c:03d}": np.flatnonzero(labels == c) for c in range(k)}
    bad = [c for c in clusters if not 0 <= c < k]
    if bad:
        raise InputError(f"cluster {bad[0]} does not exist (0..{k - 1})")
    name = "clusters_" + "_".join(f"{c:03d}" for c in sorted(set(clusters)))
    return {name: np.flatnonzero(np.isin(labels, clusters))}


def load_source(rp: RunParticles) -> ParticleSet | None:
    """The original particle file as a ParticleSet (poses/CTF overrides of the run applied),
    or None with a warning when it cannot be read (index files are still written)."""
    from cryoscape.io.load import load_particles

    if rp.particles is None or rp.particles.suffix.lower() not in (".star", ".cs"):
        return None
    try:
        pset = load_particles(
            rp.particles,
            images="optional",
            need_box=False,
            **{k: v for k, v in rp.load_kwargs.items() if v is not None},
        )
    except InputError as e:
        print(f"warning: cannot read the run's particles ({e}); writing index files only", file=sys.stderr)
        return None
    if rp.run_ind is not None and len(rp.run_ind) and rp.run_ind.max() >= pset.n:
        raise InputError(f"the run's --ind refers to row {rp.run_ind.max()} but the file has {pset.n}", rp.particles)
    return pset


def write_selection(
    name: str,
    ind: np.ndarray,
    outdir: str | os.PathLike,
    rp: RunParticles,
    source: ParticleSet | None = None,
    formats: Sequence[str] | None = None,
) -> list[Path]:
    """Write ``NAME.pkl`` (rows of the original file) and, with a readable star/cs ``source``,
    the subset in each of ``formats`` (``.star``, ``.cs``; default ``.star``, and ``.cs`` too
    for cryoSPARC input). ``ind`` are run-relative (rows of ``z.npy``). Returns the files written."""
    from cryoscape.io.write import WRITABLE, write_index, write_particles

    if formats is None:
        formats = (".star", ".cs") if source is not None and source.source_format == "cs" else (".star",)
    bad = [f for f in formats if f not in WRITABLE]
    if bad:
        raise InputError(f"cannot write particles as {bad[0]!r}; use one of {', '.join(WRITABLE)}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = to_source_rows(ind, rp.run_ind)
    written = [outdir / f"{name}.pkl"]
    write_index(rows, written[0])
    if source is not None:
        sub = source.subset(rows)
        for ext in formats:
            write_particles(sub, outdir / f"{name}{ext}")
            written.append(outdir / f"{name}{ext}")
    return written


def write_selections(
    selections: dict[str, np.ndarray], n_run: int, outdir: Path, rp: RunParticles, with_complement: bool
) -> dict[str, int]:
    """Write every selection (and ``NAME_complement`` when asked); returns name -> count."""
    source = load_source(rp)
    counts = {}
    for name, ind in selections.items():
        write_selection(name, ind, outdir, rp, source)
        counts[name] = len(ind)
        if with_complement:
            comp = complement(ind, n_run)
            write_selection(f"{name}_complement", comp, outdir, rp, source)
            counts[f"{name}_complement"] = len(comp)
    return counts


#: Word spellings of the comparisons, for shells where ``<`` and ``>`` need quoting.
OP_ALIASES = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}


@dataclass(frozen=True)
class SelectConfig:
    """One way of choosing particles from a run's latent codes (exactly one of ``kmeans``,
    ``gmm``, ``threshold``, ``ind``, ``junk``), as ``cryoscape select`` takes it."""

    kmeans: int | None = None  # K: one subset per k-means cluster
    gmm: int | None = None  # K: one subset per Gaussian-mixture cluster
    threshold: tuple[str, str, str] | None = None  # (DIM, OP, VALUE), e.g. ("pc1", "gt", "1.5")
    ind: str | None = None  # index file (.pkl/.npy) of the run's particles
    clusters: tuple[int, ...] | None = None  # with kmeans/gmm: keep the union of these
    labels: str | None = None  # with kmeans/gmm: cluster labels to use instead of clustering
    junk: bool = False  # keep/junk subsets from the junk score (cryoscape.analysis.junk)
    junk_threshold: float = 4.0  # robust standard deviations
    device: str = "cpu"  # for the junk score's decoder pass
    seed: int = 0


def _cluster_labels(cfg: SelectConfig, z: np.ndarray) -> np.ndarray:
    """The labels of ``cfg.labels``, or of clustering ``z`` afresh (the same clusters as
    ``cryoscape analyze --ksample K`` with the same seed)."""
    from cryoscape.analysis.latent import cluster
    from cryoscape.io.cryodrgn import read_index

    if cfg.labels:
        labels = read_index(cfg.labels)
        if len(labels) != len(z):
            raise InputError(f"{len(labels)} labels for {len(z)} particles", cfg.labels)
        return np.asarray(labels)
    k = cfg.kmeans if cfg.kmeans is not None else cfg.gmm
    assert k is not None
    return np.asarray(cluster(z, k, cfg.seed, "kmeans" if cfg.kmeans is not None else "gmm").labels)


def make_selections(cfg: SelectConfig, z: np.ndarray) -> tuple[dict[str, np.ndarray], bool]:
    """``({name: run-relative indices}, write complements?)`` for ``z: (N, zdim)``.

    Per-cluster subsets already partition the run, so only they come without complements.
    """
    from cryoscape.io.cryodrgn import read_index

    if cfg.ind:
        ind = read_index(cfg.ind)
        if len(ind) and (ind.min() < 0 or ind.max() >= len(z)):
            raise InputError(f"indices must be 0..{len(z) - 1} (the run's particles)", cfg.ind)
        return {Path(cfg.ind).stem: ind}, True
    if cfg.threshold:
        dim, op, value = cfg.threshold
        op = OP_ALIASES.get(op, op)
        try:
            v = float(value)
        except ValueError:
            raise InputError(f"threshold value {value!r} is not a number") from None
        pcs = None
        if dim.lower().startswith("pc"):
            from cryoscape.analysis.latent import pca

            pcs = pca(z).coords
        vals = threshold_values(z, dim, pcs)
        op_name = {v: k for k, v in OP_ALIASES.items()}.get(op, op)
        return {f"{dim}_{op_name}_{value}": threshold_select(vals, op, v)}, True
    if cfg.kmeans is None and cfg.gmm is None:
        raise InputError("choose --kmeans, --gmm, --threshold or --ind")
    clusters = None if cfg.clusters is None else list(cfg.clusters)
    return cluster_selections(_cluster_labels(cfg, z), clusters), cfg.clusters is not None


def select_run(run_dir: str | Path, outdir: str | Path, cfg: SelectConfig, epoch: int | None = None) -> dict[str, int]:
    """Select particles of a trained run (``z.npy``, or ``z.<epoch>.npy``) and write each
    selection into ``outdir`` (see :func:`write_selection`); returns name -> particle count."""
    from cryoscape.analysis.latent import read_run_latents
    from cryoscape.io.runlock import run_lock

    if cfg.clusters is not None and cfg.kmeans is None and cfg.gmm is None:
        raise InputError("--clusters needs --kmeans or --gmm")
    if cfg.junk:
        return select_junk(run_dir, outdir, cfg, epoch)
    lat = read_run_latents(run_dir, epoch)
    rp = run_particles(run_dir)
    if rp.n_run is not None and rp.n_run != len(lat.z):
        raise InputError(f"config.yaml says {rp.n_run} particles but {lat.path.name} has {len(lat.z)}", run_dir)
    sels, with_comp = make_selections(cfg, lat.z)
    with run_lock(outdir, "select"):
        return write_selections(sels, len(lat.z), Path(outdir), rp, with_comp)


def select_junk(run_dir: str | Path, outdir: str | Path, cfg: SelectConfig, epoch: int | None = None) -> dict[str, int]:
    """Score every particle of the run for junk (:mod:`cryoscape.analysis.junk`) and write
    ``keep`` and ``junk`` selections plus ``junk_scores.txt`` / ``.png`` into ``outdir``."""
    from cryoscape.analysis.junk import score_run, write_junk
    from cryoscape.analysis.run_data import load_run_data
    from cryoscape.io.runlock import run_lock

    rd = load_run_data(run_dir, epoch, cfg.device)
    js = score_run(rd, cfg.junk_threshold)
    sels = {"keep": np.flatnonzero(~js.junk), "junk": np.flatnonzero(js.junk)}
    with run_lock(outdir, "select"):
        write_junk(outdir, js)
        return write_selections(sels, len(rd.z), Path(outdir), rd.rp, with_complement=False)
