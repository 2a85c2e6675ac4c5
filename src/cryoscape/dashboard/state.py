"""Everything the dashboard knows about one run, loaded once at start (the model on demand).

A run folder gives the latents (``z.npy`` / ``z.<epoch>.npy``), ``config.yaml`` (which particle
file and rows it was trained on) and the weights. An ``analyze`` folder, when there is one, adds
its PCA, UMAP and cluster labels; otherwise PCA is computed here and k-means on first use.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryoscape.dashboard.columns import Column, file_columns, latent_columns
from cryoscape.errors import InputError

if TYPE_CHECKING:
    from cryoscape.io.images import ImageSource
    from cryoscape.io.particles import ParticleSet

#: Points drawn at most; more particles are subsampled for display (selections use all of them).
DEFAULT_MAX_POINTS = 10000
#: k of the k-means computed on demand when the run has no analyze folder.
DEFAULT_K = 20


@dataclass(frozen=True)
class Embedding:
    """``coords: (N, 2)`` float64 of every particle in a 2D view of the latent space."""

    id: str
    label: str
    axes: tuple[str, str]
    coords: np.ndarray

    def describe(self) -> dict:
        return {"id": self.id, "label": self.label, "axes": list(self.axes)}


def say(msg: str) -> None:
    print(f"cryoscape dashboard: {msg}", file=sys.stderr, flush=True)


def find_analysis(run_dir: Path, epoch: int | None, analysis: str | Path | None) -> Path | None:
    """``analysis`` (must exist), else ``RUN/analyze.<epoch>`` or ``RUN/analyze`` if present."""
    if analysis is not None:
        path = Path(analysis)
        if not path.is_dir():
            raise InputError("analysis folder not found", path)
        return path
    names = ([f"analyze.{epoch}"] if epoch is not None else []) + ["analyze"]
    return next((run_dir / n for n in names if (run_dir / n).is_dir()), None)


def _load_2d(path: Path, n: int, warnings: list[str]) -> np.ndarray | None:
    """``(n, 2)`` float64 from the first two columns of a saved embedding, or None."""
    if not path.is_file():
        return None
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        warnings.append(f"{path}: cannot read ({e}); ignored")
        return None
    if a.ndim != 2 or a.shape[0] != n or not np.isfinite(a).all():
        warnings.append(f"{path}: shape {a.shape} does not fit {n} particles; ignored")
        return None
    a = a[:, :2].astype(np.float64)
    return a if a.shape[1] == 2 else np.column_stack([a[:, 0], np.zeros(n)])


def load_embeddings(z: np.ndarray, adir: Path | None, warnings: list[str]) -> dict[str, Embedding]:
    """PCA (the analyze folder's, else computed); UMAP and volume PCA (the analyze folder's, if any)."""
    from cryoscape.analysis.latent import pca

    out = {}
    pc = None if adir is None else _load_2d(adir / "z_pca.npy", len(z), warnings)
    axes = ("PC1", "PC2")
    if pc is None:
        res = pca(z, 2)
        pc = res.coords.astype(np.float64)
        if pc.shape[1] < 2:
            pc = np.column_stack([pc[:, 0], np.zeros(len(z))])
        ev = list(res.explained_variance_ratio) + [0.0]
        axes = (f"PC1 ({100 * ev[0]:.0f} %)", f"PC2 ({100 * ev[1]:.0f} %)")
    out["pca"] = Embedding("pca", "PCA", axes, pc)
    um = None if adir is None else _load_2d(adir / "umap.npy", len(z), warnings)
    if um is not None:
        out["umap"] = Embedding("umap", "UMAP", ("UMAP1", "UMAP2"), um)
    # analyze --landscape: each particle at its nearest sampled map's volume-PC coordinates
    vp = None if adir is None else _load_2d(adir / "landscape" / "vol_pca_particles.npy", len(z), warnings)
    if vp is not None:
        out["volpca"] = Embedding("volpca", "volume PCA (landscape)", ("volume PC1", "volume PC2"), vp)
    return out


def cluster_columns(z: np.ndarray, adir: Path | None, seed: int, warnings: list[str]) -> list[Column]:
    """Labels saved by ``cryoscape analyze`` (kmeans<K>/, gmm<K>/), else k-means computed on use."""
    from cryoscape.io.cryodrgn import read_index

    cols = []
    for path in sorted(adir.glob("*/labels.pkl")) if adir is not None else []:
        try:
            labels = read_index(path).astype(np.float64)
        except InputError as e:
            warnings.append(f"{e}; ignored")
            continue
        if len(labels) != len(z):
            warnings.append(f"{path}: {len(labels)} labels for {len(z)} particles; ignored")
            continue
        name = path.parent.name
        cols.append(Column(f"cluster:{name}", _cluster_label(name), "categorical", labels))
    if not cols:
        k = min(DEFAULT_K, len(z))

        def compute() -> np.ndarray:
            from cryoscape.analysis.latent import kmeans

            say(f"k-means, k = {k}")
            return kmeans(z, k, seed).labels

        cols.append(Column(f"cluster:kmeans{k}", f"k-means k={k}", "categorical", compute=compute))
    return cols


def _cluster_label(folder: str) -> str:
    """ "kmeans20" -> "k-means k=20 (analyze)"; other names as they are."""
    if folder == "landscape":
        return "volume landscape clusters (analyze)"
    method = folder.rstrip("0123456789")
    k = folder[len(method) :]
    names = {"kmeans": "k-means", "gmm": "GMM"}
    if method not in names or not k:
        return f"{folder} (analyze)"
    return f"{names[method]} k={k} (analyze)"


def display_subset(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted particle indices drawn on the plot: all, or a seeded random ``max_points``."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


@dataclass(frozen=True)
class RunParticleData:
    """The run's particle file: ``source`` (star/cs, for writing selections), ``images``, and
    ``rows: (N,)`` the file row of each run particle; parts that cannot be read are None."""

    source: ParticleSet | None
    images: ImageSource | None
    rows: np.ndarray
    columns: list[Column]


def load_particle_data(rp, n: int, warnings: list[str]) -> RunParticleData:
    """Read the particle file named in ``config.yaml`` for colour columns and thumbnails; a file
    that is missing, changed or unreadable only costs those (with a warning), not the dashboard."""
    from cryoscape.analysis.select import to_source_rows
    from cryoscape.io.load import load_particles

    rows = to_source_rows(np.arange(n), rp.run_ind)
    none = RunParticleData(None, None, rows, [])
    if rp.particles is None:
        warnings.append(
            "no config.yaml: the particle file is unknown, so no thumbnails or file "
            "columns; selections are saved as index pickles only"
        )
        return none
    say(f"reading {rp.particles}")
    try:
        pset = load_particles(
            rp.particles,
            images="optional",
            need_box=False,
            **{k: v for k, v in rp.load_kwargs.items() if v is not None},
        )
    except InputError as e:
        warnings.append(
            f"cannot read the run's particles ({e}): no thumbnails or file columns; "
            "selections are saved as index pickles only"
        )
        return none
    if (rp.run_ind is None and pset.n != n) or (len(rows) and rows.max() >= pset.n):
        warnings.append(
            f"{rp.particles} has {pset.n} particles, which does not fit the run's {n} "
            "(changed since training?): no thumbnails or file columns"
        )
        return none
    warnings.extend(f"{rp.particles.name}: {w}" for w in pset.info.warnings)
    source = pset if pset.source_format in ("star", "cs") else None
    return RunParticleData(source, pset.images, rows, file_columns(pset, rows))


class DashboardState:
    """One run, loaded for the dashboard. Methods raise InputError for bad requests."""

    def __init__(
        self,
        run_dir: str | Path,
        epoch: int | None = None,
        analysis: str | Path | None = None,
        device: str | None = None,
        max_points: int = DEFAULT_MAX_POINTS,
        seed: int = 0,
    ) -> None:
        from cryoscape.analysis.latent import read_run_latents
        from cryoscape.analysis.select import run_particles
        from cryoscape.dashboard.maps import MapMaker

        if max_points < 1:
            raise InputError(f"--max-points must be positive, got {max_points}")
        self.run_dir = Path(run_dir)
        self.lat = read_run_latents(self.run_dir, epoch)
        self.z = self.lat.z
        self.n = len(self.z)
        self.warnings: list[str] = []
        self.rp = run_particles(self.run_dir)
        if self.rp.n_run is not None and self.rp.n_run != self.n:
            raise InputError(
                f"config.yaml says {self.rp.n_run} particles but {self.lat.path.name} has {self.n}", self.run_dir
            )
        self.out_dir = self.run_dir / "dashboard"
        self.analysis_dir = find_analysis(self.run_dir, self.lat.epoch, analysis)
        if self.analysis_dir is not None:
            say(f"using the analysis in {self.analysis_dir}")
        self.embeddings = load_embeddings(self.z, self.analysis_dir, self.warnings)
        self.particles = load_particle_data(self.rp, self.n, self.warnings)
        cols = (
            cluster_columns(self.z, self.analysis_dir, seed, self.warnings)
            + latent_columns(self.z)
            + self.particles.columns
        )
        self.columns = {c.id: c for c in cols}
        self.shown = display_subset(self.n, max_points, seed)
        self.maps = MapMaker(
            self.run_dir, self.lat.epoch if epoch is not None else None, device, self.out_dir, self.lat.kind
        )
        self._save_lock = threading.Lock()

    def info(self) -> dict:
        """What the page needs to build its controls."""
        return {
            "run": str(self.run_dir.resolve()),
            "latents": self.lat.path.name,
            "n": self.n,
            "zdim": int(self.z.shape[1]),
            "epoch": self.lat.epoch,
            "shown": len(self.shown),
            "embeddings": [e.describe() for e in self.embeddings.values()],
            "columns": [c.describe() for c in self.columns.values()],
            # clusters if known, else |z|: k-means of 10^6 codes must not delay the first view
            "default_column": next(c.id for c in self.columns.values() if c.values is not None),
            "has_images": self.particles.images is not None,
            "can_map": self.maps.available,
            "map_note": self.maps.note,
            "analysis": None if self.analysis_dir is None else str(self.analysis_dir),
            "out_dir": str(self.out_dir),
            "warnings": self.warnings,
        }

    def embedding(self, eid: str) -> Embedding:
        if eid not in self.embeddings:
            raise InputError(f"unknown embedding {eid!r}; this run has {', '.join(self.embeddings)}")
        return self.embeddings[eid]

    def column(self, cid: str) -> Column:
        if cid not in self.columns:
            raise InputError(f"unknown colour column {cid!r}")
        return self.columns[cid]

    def check_index(self, index: int) -> int:
        if not 0 <= index < self.n:
            raise InputError(f"particle index {index} out of range 0..{self.n - 1}")
        return index

    def image(self, index: int) -> np.ndarray:
        """``(D, D)`` float32 image of run particle ``index``."""
        if self.particles.images is None:
            raise InputError("the run's particle images could not be read (see the warnings)")
        return self.particles.images[int(self.particles.rows[self.check_index(index)])]

    def particle(self, index: int) -> dict:
        """The particle's file row, code and every computed colour value (but z[i]: in ``z``)."""
        self.check_index(index)
        vals = {
            c.label: _plain(c.values[index])
            for c in self.columns.values()
            if c.values is not None and not c.id.startswith("latent:z")
        }
        return {
            "index": index,
            "file_row": int(self.particles.rows[index]),
            "z": [round(float(v), 4) for v in self.z[index]],
            "values": vals,
        }

    def map_at(self, index: int | None = None, z: list | None = None) -> dict:
        """The map at particle ``index``'s code, or at code ``z``."""
        import hashlib

        if index is not None:
            code = self.z[self.check_index(index)]
            suffix = "" if self.maps.epoch is None else f".epoch{self.maps.epoch}"
            return {"index": index, **self.maps.make(code, f"particle_{index:06d}{suffix}")}
        code = np.asarray(z, np.float32)
        if code.shape != (self.z.shape[1],) or not np.isfinite(code).all():
            raise InputError(f"a latent code needs {self.z.shape[1]} finite values")
        return self.maps.make(code, "code_" + hashlib.sha1(code.tobytes()).hexdigest()[:10])

    def lasso(self, eid: str, polygon) -> np.ndarray:
        """Run particles (ALL of them, drawn or not) inside ``polygon`` in embedding ``eid``."""
        from cryoscape.analysis.select import polygon_select

        return polygon_select(self.embedding(eid).coords, polygon)

    def save_selection(self, name: str, ind: np.ndarray) -> dict:
        """``selections/NAME/NAME.{pkl,star[,cs]}`` and ``NAME_complement.*``; refuses to overwrite."""
        from cryoscape.analysis.select import complement, write_selection

        if len(ind) == 0:
            raise InputError("the selection is empty")
        outdir = self.out_dir / "selections" / name
        with self._save_lock:
            if outdir.exists():
                raise InputError(f"a selection named {name!r} exists already; choose another name")
            src = self.particles.source
            comp = complement(ind, self.n)
            files = write_selection(name, ind, outdir, self.rp, src)
            files += write_selection(f"{name}_complement", comp, outdir, self.rp, src)
        return {
            "name": name,
            "count": len(ind),
            "complement": len(comp),
            "folder": str(outdir),
            "files": [str(f) for f in files],
        }


def _plain(v: float):
    """A JSON-safe number: ints as int, NaN as None."""
    if not np.isfinite(v):
        return None
    return int(v) if v == int(v) and abs(v) < 2**53 else round(float(v), 6)
