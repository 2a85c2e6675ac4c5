"""The steps of ``cryoscape analyze``: latent analysis, maps, per-image FSC, plots, report.

The command only parses arguments into an :class:`AnalyzeConfig` and calls :func:`run_analysis`;
``cryoscape traverse`` reuses :func:`open_maps` and :func:`write_maps`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryoscape.io.atomic import save_array, save_text_array

if TYPE_CHECKING:
    import numpy as np

    from cryoscape.analysis.latent import Clustering, PCAResult
    from cryoscape.analysis.perimage import PerImageFSC
    from cryoscape.viz.isosurface import Mesh


@dataclass(frozen=True)
class AnalyzeConfig:
    """What to compute (see ``cryoscape analyze --help``); ``command`` is shown in the report."""

    epoch: int | None = None
    ksample: int = 20
    pc: int = 2
    n_per_pc: int = 10
    gmm: bool = False
    skip_umap: bool = False
    skip_maps: bool = False
    gt: str | None = None
    gt_sample: int = 128
    landscape: bool = False  # the volume landscape and latent density in landscape/ (slower)
    landscape_maps: int = 200
    device: str | None = None
    seed: int = 0
    command: str = ""


@dataclass(frozen=True)
class LatentResults:
    """What :func:`latent_steps` computed (and wrote) from the codes."""

    pca: PCAResult
    embedding: np.ndarray  # (N, 2): UMAP, or the first two PCs without it
    embedding_name: str  # "UMAP" or "PCA"
    #: Clusterings by folder name ("kmeans20", "gmm20"); the first is the report's.
    clusters: dict[str, Clustering]
    #: Codes along each principal component by folder name ("pc1", ...): (n_per_pc, zdim).
    pcs: dict[str, np.ndarray]

    def first_clustering(self) -> tuple[str, Clustering]:
        """The report's clustering: (name, clustering)."""
        return next(iter(self.clusters.items()))


@dataclass
class MapResults:
    """What :func:`map_steps` made; empty where no maps were made (skipped, or a cryoDRGN run)."""

    #: Isosurfaces of the maps at the first clustering's centres, in order (for the report).
    centre_maps: list[Mesh] = field(default_factory=list)
    #: The map files written per clustering name.
    map_files: dict[str, list[Path]] = field(default_factory=dict)
    #: Per-image FSC against the ground truth (``--gt``), else None.
    perimage: PerImageFSC | None = None


def say(msg: str) -> None:
    print(f"cryoscape analyze: {msg}", file=sys.stderr, flush=True)


def save_clusters(cl, outdir: Path) -> None:
    """``labels.pkl`` (cryoDRGN's format), ``centers.txt`` codes and ``centers_ind.txt``."""
    from cryoscape.io.cryodrgn import save_pickle

    outdir.mkdir(parents=True, exist_ok=True)
    save_pickle(cl.labels, outdir / "labels.pkl")
    save_text_array(outdir / "centers.txt", cl.centers, fmt="%.6f")
    save_text_array(outdir / "centers_ind.txt", cl.centers_ind, fmt="%d")


def open_maps(run_dir: Path, epoch: int | None, device: str | None):
    """The trained model for maps, or None (with a message) when the run cannot make them."""
    from cryoscape.analysis.volumes import load_run
    from cryoscape.device import resolve_device

    if not (run_dir / "config.yaml").is_file():
        say("no cryoscape config.yaml in the run: skipping maps")
        return None
    return load_run(run_dir, epoch, str(resolve_device(device)))


def write_maps(run, z, voldir: Path, keep: list | None = None) -> list[Path]:
    """Maps at codes ``z: (M, zdim)`` as ``voldir/vol_0000.mrc``...; their isosurface meshes
    (:func:`cryoscape.viz.isosurface.surface_mesh`, for the report) go to ``keep``."""
    from cryoscape.analysis.volumes import generate_volumes, write_volumes

    psize = run.psize_A or 1.0

    def tee(vols):
        for v in vols:
            if keep is not None:
                keep.append(_mesh(v, psize))
            yield v

    return write_volumes(tee(generate_volumes(run.model, z, scale=run.norm_std)), voldir, psize)


def _mesh(vol, psize_A: float):
    """The map's isosurface; an empty one (the report says so) for a map with NaN or Inf."""
    from cryoscape.viz.isosurface import empty_mesh, surface_mesh

    try:
        return surface_mesh(vol, psize_A=psize_A)
    except ValueError as e:
        say(f"warning: {e}")
        return empty_mesh()


def read_log(run_dir: Path) -> list[dict]:
    """Rows of ``log.csv`` as floats (``epoch`` int); [] when absent or unreadable."""
    import csv

    path = run_dir / "log.csv"
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as f:
            return [{k: (int(float(v)) if k == "epoch" else float(v)) for k, v in r.items()} for r in csv.DictReader(f)]
    except (ValueError, TypeError):
        say(f"warning: cannot read {path}; no loss plot")
        return []


def latent_steps(cfg: AnalyzeConfig, z, outdir: Path) -> LatentResults:
    """PCA, 2D embedding, clusterings and PC traversal codes; all written to ``outdir``."""
    from cryoscape.analysis import latent

    pc = latent.pca(z)
    save_array(outdir / "z_pca.npy", pc.coords)
    if not cfg.skip_umap and not latent.umap_available():
        say(latent.UMAP_MISSING)
    elif not cfg.skip_umap:
        say("UMAP embedding (may take a few minutes for many particles)")
    emb, emb_name = latent.embed_2d(z, pc, cfg.seed, use_umap=not cfg.skip_umap)
    if emb_name == "UMAP":
        save_array(outdir / "umap.npy", emb)
    k = min(cfg.ksample, len(z))
    say(f"k-means, k = {k}")
    clusters: dict[str, Clustering] = {f"kmeans{k}": latent.kmeans(z, k, cfg.seed)}
    if cfg.gmm:
        say(f"Gaussian mixture, k = {k}")
        clusters[f"gmm{k}"] = latent.gmm(z, k, cfg.seed)
    for name, cl in clusters.items():
        save_clusters(cl, outdir / name)
    pcs: dict[str, np.ndarray] = {}
    for i in range(1, min(cfg.pc, pc.coords.shape[1]) + 1):
        pcs[f"pc{i}"] = latent.pc_traversal(pc, i, cfg.n_per_pc)
        (outdir / f"pc{i}").mkdir(exist_ok=True)
        save_text_array(outdir / f"pc{i}" / "z_values.txt", pcs[f"pc{i}"], fmt="%.6f")
    return LatentResults(pc, emb, emb_name, clusters, pcs)


def map_steps(cfg: AnalyzeConfig, run_dir: Path, lat, outdir: Path, res: LatentResults) -> MapResults:
    """Maps at every clustering's centres and along the PCs; per-image FSC with --gt."""
    out = MapResults()
    if cfg.skip_maps or lat.kind != "cryoscape":
        if lat.kind != "cryoscape":
            say("cryoDRGN run: latent analysis only (make maps with cryoDRGN's eval_vol)")
        return out
    run = open_maps(run_dir, lat.epoch if cfg.epoch is not None else None, cfg.device)
    if run is None:
        return out
    if run.model.zdim != lat.z.shape[1]:
        from cryoscape.errors import InputError

        raise InputError(f"the model has zdim {run.model.zdim} but {lat.path.name} has {lat.z.shape[1]}", run_dir)
    for i, (name, cl) in enumerate(res.clusters.items()):
        say(f"{len(cl.centers_ind)} maps at the {name} centres")
        keep: list | None = out.centre_maps if i == 0 else None
        out.map_files[name] = write_maps(run, lat.z[cl.centers_ind], outdir / name, keep)
    for name, zs in res.pcs.items():
        say(f"{len(zs)} maps along {name.upper()}")
        write_maps(run, zs, outdir / name)
    if cfg.gt:
        out.perimage = gt_step(cfg, cfg.gt, run, lat.z, run_dir, outdir)
    return out


def gt_step(cfg: AnalyzeConfig, gt: str, run, z, run_dir: Path, outdir: Path) -> PerImageFSC:
    """Per-image FSC against the simulation's ground-truth maps in ``gt`` (written and returned)."""
    from cryoscape.analysis.perimage import evaluate_run, save_perimage
    from cryoscape.analysis.select import run_particles

    say(f"per-image FSC against the ground truth in {gt} ({cfg.gt_sample} particles)")
    res = evaluate_run(run, z, gt, run_particles(run_dir).run_ind, cfg.gt_sample, cfg.seed)
    save_perimage(res, outdir)
    s = res.summary()
    say(f"per-image FSC: mean AUC {s['mean_auc']:.4f}, mean resolution at 0.5: {s['mean_res05_A']:.2f} Å")
    return res


def plot_steps(run_dir: Path, outdir: Path, res: LatentResults, maps: MapResults) -> list[tuple[str, Path]]:
    """The PNGs of the report (written to ``outdir``), as (caption, path)."""
    from cryoscape.viz import curves
    from cryoscape.viz import latent as vl

    pc, emb, emb_name = res.pca, res.embedding, res.embedding_name
    name, cl = res.first_clustering()
    pc2 = _pc2(pc.coords)
    figs = [
        (
            f"PCA of the latent codes, {name} centres numbered",
            vl.plot_density(pc2, outdir / "z_pca.png", "PC", pc2[cl.centers_ind]),
        )
    ]
    if emb_name == "UMAP":
        figs.append(
            (f"UMAP, {name} centres numbered", vl.plot_density(emb, outdir / "umap.png", "UMAP", emb[cl.centers_ind]))
        )
    figs.append(
        (
            "explained variance",
            vl.plot_explained_variance(pc.explained_variance_ratio, outdir / "explained_variance.png"),
        )
    )
    figs.append(("PC histograms", vl.plot_pc_histograms(pc.coords, outdir / "pc_histograms.png")))
    loss = curves.plot_losses(read_log(run_dir), outdir / "losses.png")
    if loss is not None:
        figs.append(("training losses per epoch", loss))
    if maps.perimage is not None:
        r = maps.perimage
        figs.append(
            (
                f"per-image FSC vs ground truth (mean AUC {r.summary()['mean_auc']:.3f})",
                curves.plot_perimage_fsc(r.freqs, r.curves, r.psize_A, outdir / "perimage_fsc.png"),
            )
        )
    return figs


def landscape_step(cfg: AnalyzeConfig, run_dir: Path, lat, outdir: Path) -> list[tuple[str, Path]]:
    """With ``--landscape``: :mod:`cryoscape.analysis.landscape` into ``outdir/landscape``; its PNGs."""
    if not cfg.landscape:
        return []
    if cfg.skip_maps or lat.kind != "cryoscape" or not (run_dir / "config.yaml").is_file():
        say("no landscape: it needs maps from a cryoscape run")
        return []
    from cryoscape.analysis.landscape import LandscapeConfig
    from cryoscape.analysis.landscape_run import run_landscape

    run = open_maps(run_dir, lat.epoch if cfg.epoch is not None else None, cfg.device)
    if run is None:
        return []
    lcfg = LandscapeConfig(n_maps=cfg.landscape_maps, seed=cfg.seed)
    say(f"volume landscape of {min(lcfg.n_maps, len(lat.z))} maps and latent density into landscape/")
    return run_landscape(run, lat.z, lcfg, outdir / "landscape", run_dir).figures


def _default_command(run_dir: Path, lat, outdir: Path) -> str:
    epoch = "" if lat.epoch is None else f" --epoch {lat.epoch}"
    return f"cryoscape analyze {run_dir}{epoch} -o {outdir}"


def _landscape_commands(cfg: AnalyzeConfig, run_dir: Path, outdir: Path) -> list[str]:
    if not (cfg.landscape and (outdir / "landscape" / "labels.pkl").is_file()):
        return []
    from cryoscape.analysis.landscape import LandscapeConfig

    lab, k = outdir / "landscape" / "labels.pkl", LandscapeConfig().n_clusters
    return [
        f"cryoscape landscape {run_dir} -o LANDDIR  # the landscape with other settings",
        f"cryoscape select {run_dir} --labels {lab} --kmeans {k} --clusters 0 -o SELDIR  # a landscape cluster",
    ]


def _pc2(coords):
    import numpy as np

    return coords[:, :2] if coords.shape[1] > 1 else np.column_stack([coords[:, 0], 0 * coords[:, 0]])


def run_analysis(cfg: AnalyzeConfig, run_dir: Path, lat, outdir: Path) -> None:
    """Every step in order, then report.html."""
    import numpy as np

    from cryoscape.analysis.report import Report, write_report

    res = latent_steps(cfg, lat.z, outdir)
    maps = map_steps(cfg, run_dir, lat, outdir, res)
    figs = plot_steps(run_dir, outdir, res, maps)
    figs += landscape_step(cfg, run_dir, lat, outdir)
    name, cl = res.first_clustering()
    files = maps.map_files.get(name)
    rep = Report(
        f"cryoscape analysis of {run_dir} ({lat.path.name})",
        figures=figs,
        table_header=["centre", "particle", "particles in cluster", "map", "code"],
        commands=[
            cfg.command or _default_command(run_dir, lat, outdir),
            f"cryoscape volumes {run_dir} --z {outdir / name / 'centers.txt'} -o MAPDIR",
            f"cryoscape select {run_dir} --labels {outdir / name / 'labels.pkl'} "
            f"--kmeans {len(cl.centers)} --clusters 0 -o SELDIR",
        ]
        + _landscape_commands(cfg, run_dir, outdir),
    )
    rep.notes.append(
        f"{len(lat.z)} particles, zdim {lat.z.shape[1]}; explained variance of PC1: "
        f"{res.pca.explained_variance_ratio[0]:.3f}"
    )
    counts = np.bincount(cl.labels, minlength=len(cl.centers))
    for i, (c, ind) in enumerate(zip(cl.centers, cl.centers_ind)):
        fname = f"{name}/{files[i].name}" if files else "-"
        rep.table_rows.append([str(i), str(ind), str(counts[i]), fname, " ".join(f"{v:.3f}" for v in c)])
    rep.maps = [(f"{name} centre {i}", mesh) for i, mesh in enumerate(maps.centre_maps)]
    write_report(rep, outdir / "report.html")
