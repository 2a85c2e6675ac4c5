"""``cryoscape landscape``: the volume landscape and the latent density of a run, written to a folder.

Used by the command and by ``cryoscape analyze --landscape`` (which puts it in ``landscape/``
and shows its pictures in the report). What each file holds is listed in docs/analysis.md.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cryoscape.analysis.density import LatentDensity, Profile, latent_density, pc12_surface, profile
from cryoscape.analysis.landscape import (
    LandscapeConfig,
    PathCheck,
    VolumePCA,
    cluster_means,
    landscape_mask,
    path_check,
    sample_maps,
    volume_pca,
)
from cryoscape.io.atomic import atomic_write_bytes, save_array, save_text_array


@dataclass(frozen=True)
class LandscapeOutput:
    """What was written: ``figures`` (caption, PNG) for a report, ``summary`` as in landscape.json."""

    outdir: Path
    figures: list[tuple[str, Path]]
    summary: dict


def say(msg: str) -> None:
    print(f"cryoscape landscape: {msg}", file=sys.stderr, flush=True)


def run_landscape(
    run, z: np.ndarray, cfg: LandscapeConfig, outdir: Path, run_dir: Path | None = None
) -> LandscapeOutput:
    """Sample maps at ``cfg.n_maps`` on-data centres of ``z: (N, zdim)``, PCA and cluster them,
    check they form one path, estimate the latent density; write it all to ``outdir``."""
    from cryoscape.analysis.latent import pca

    cfg.check()
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    say(f"k-means of {len(z)} codes into {min(cfg.n_maps, len(z))} centres; maps at box {cfg.box}")
    cl, maps, psize = sample_maps(run, z, cfg)
    t_maps = time.perf_counter() - t0
    mask = landscape_mask(maps, psize, cfg.mask, cfg.dilate_px)
    vp = volume_pca(maps, mask, cfg.n_pcs, cfg.n_clusters)
    zpc = pca(z)
    check = path_check(vp.coords, zpc.coords[cl.centers_ind, 0], cfg.n_neighbors)
    say(
        f"{check.n_components} connected component(s) of {len(maps)} maps; main-path order vs latent PC1: "
        f"|Spearman| {check.spearman if check.spearman is not None else float('nan'):.3f}"
    )
    _write_landscape(outdir, cl, maps, vp, check, psize, cfg.n_per_pc)
    dens = latent_density(zpc, seed=cfg.seed)
    profiles = _profiles(dens, z[cl.centers_ind], check)
    figures = _write_density(outdir, dens, profiles) + _plots(outdir, vp, check)
    summary = {
        "run": str(run_dir) if run_dir else None,
        "weights": str(run.weights),
        "config": asdict(cfg),
        "n_particles": len(z),
        "n_maps": len(maps),
        "box": int(maps.shape[-1]),
        "psize_A": psize,
        "mask_voxels": int((mask > 0).sum()),
        "explained_variance_ratio": [round(float(v), 6) for v in vp.explained_variance_ratio],
        "cluster_sizes_maps": np.bincount(vp.labels).tolist(),
        "path_check": _check_dict(check),
        "density_dims": dens.dims,
        "seconds": {"maps": round(t_maps, 2), "total": round(time.perf_counter() - t0, 2)},
    }
    atomic_write_bytes(outdir / "landscape.json", (_json(summary) + "\n").encode())
    return LandscapeOutput(outdir, figures, summary)


def landscape_of_run(
    run_dir: Path, cfg: LandscapeConfig, outdir: Path | None = None, epoch: int | None = None, device: str | None = None
) -> LandscapeOutput:
    """Read a cryoscape run's codes and weights and :func:`run_landscape` into ``outdir``
    (default ``RUN/landscape.<epoch>``), holding the folder's run lock."""
    from cryoscape.analysis.latent import read_run_latents
    from cryoscape.analysis.volumes import load_run
    from cryoscape.device import resolve_device
    from cryoscape.errors import InputError
    from cryoscape.io.runlock import run_lock

    cfg.check()
    lat = read_run_latents(run_dir, epoch)
    if lat.kind != "cryoscape" or not (run_dir / "config.yaml").is_file():
        raise InputError("a landscape needs a cryoscape run (config.yaml and weights) to make maps", run_dir)
    label = "" if lat.epoch is None else f".{lat.epoch}"
    outdir = outdir or run_dir / f"landscape{label}"
    run = load_run(run_dir, epoch, str(resolve_device(device)))
    if run.model.zdim != lat.z.shape[1]:
        raise InputError(f"the model has zdim {run.model.zdim} but {lat.path.name} has {lat.z.shape[1]}", run_dir)
    with run_lock(outdir, "landscape"):
        return run_landscape(run, lat.z, cfg, outdir, run_dir)


def _check_dict(c: PathCheck) -> dict:
    return {
        "n_components": c.n_components,
        "largest_fraction": round(c.largest_fraction, 6),
        "n_neighbors": c.n_neighbors,
        "spearman_order_vs_latent_pc1": None if c.spearman is None else round(c.spearman, 6),
        "main_path": c.path.tolist(),
    }


def _json(obj) -> str:
    import json

    return json.dumps(obj, indent=1)


def _write_landscape(
    outdir: Path, cl, maps: np.ndarray, vp: VolumePCA, check: PathCheck, psize: float, n_per_pc: int
) -> None:
    """Coordinates, labels and maps of the landscape (see docs/analysis.md)."""
    from cryoscape.analysis.volumes import write_volumes
    from cryoscape.io.cryodrgn import save_pickle
    from cryoscape.io.mrc import write_volume

    save_text_array(outdir / "centers_ind.txt", cl.centers_ind, fmt="%d")
    save_text_array(outdir / "z_centers.txt", cl.centers, fmt="%.6f")
    save_array(outdir / "vol_pca.npy", vp.coords)
    save_array(outdir / "particle_centers.npy", cl.labels)  # per particle: its sampled map (nearest centre)
    save_array(outdir / "vol_pca_particles.npy", vp.coords[cl.labels])
    save_array(outdir / "path_order.npy", check.order)
    save_text_array(outdir / "map_labels.txt", vp.labels, fmt="%d")
    save_pickle(vp.labels[cl.labels], outdir / "labels.pkl")  # per particle: the cluster of its centre
    write_volume(outdir / "mask.mrc", vp.mask, psize)
    write_volume(outdir / "mean.mrc", maps.mean(0), psize)
    for pc in range(1, min(2, vp.coords.shape[1]) + 1):
        write_volumes(vp.along_pc(pc, n_per_pc), outdir / f"vpc{pc}", psize)
    write_volumes(cluster_means(maps, vp.labels), outdir / "clusters", psize)


def _profiles(dens: LatentDensity, centers: np.ndarray, check: PathCheck, per_step: int = 4) -> list[Profile]:
    """Along latent PC1 (1st-99th percentile) and along the landscape's main path: the codes of
    its maps in order (``centers: (M, zdim)``), ``per_step`` points on each step between them so
    a sparse gap between neighbouring maps shows as a barrier."""
    from cryoscape.analysis.latent import pc_traversal

    out = [profile(dens, "latent PC1", pc_traversal(dens.pca, 1, 40, 1.0, 99.0))]
    if len(check.path) > 1:
        c = centers[check.path].astype(np.float64)
        f = np.arange(per_step)[:, None, None] / per_step
        steps = ((1 - f) * c[None, :-1] + f * c[None, 1:]).transpose(1, 0, 2).reshape(-1, c.shape[1])
        out.append(profile(dens, "landscape main path", np.concatenate([steps, c[-1:]])))
    return out


def _write_density(outdir: Path, dens: LatentDensity, profiles: list[Profile]) -> list[tuple[str, Path]]:
    from cryoscape.viz.landscape import plot_free_energy, plot_profiles

    surf = pc12_surface(dens)
    save_array(outdir / "free_energy_pc12.npy", surf.g)
    pcs = {p.name: (p.z.astype(np.float64) - dens.pca.mean) @ dens.pca.components[:2].T for p in profiles}
    doc = {
        "what": "-log(density / max) of the latent codes (Gaussian KDE in latent PCs); not a physical free energy",
        "dims": dens.dims,
        "pc1": surf.x.tolist(),
        "pc2": surf.y.tolist(),
        "profiles": [{"name": p.name, "s": p.s.tolist(), "g": p.g.tolist(), "z": p.z.tolist()} for p in profiles],
    }
    atomic_write_bytes(outdir / "density.json", (_json(doc) + "\n").encode())
    return [
        (
            "latent density as -log density on PC1-PC2, with paths",
            plot_free_energy(surf.x, surf.y, surf.g, outdir / "free_energy_pc12.png", list(pcs.items())),
        ),
        (
            "latent density along the paths",
            plot_profiles([(p.name, p.s, p.g) for p in profiles], outdir / "free_energy_profiles.png"),
        ),
    ]


def _plots(outdir: Path, vp: VolumePCA, check: PathCheck) -> list[tuple[str, Path]]:
    from cryoscape.viz.landscape import plot_volume_pcs
    from cryoscape.viz.latent import plot_explained_variance

    n = check.n_components
    return [
        (
            f"volume landscape: sampled maps on volume PC1-PC2 by cluster ({n} connected component{'s' * (n > 1)})",
            plot_volume_pcs(vp.coords, vp.labels, outdir / "volume_pca.png", check.path),
        ),
        (
            "volume PCA explained variance",
            plot_explained_variance(vp.explained_variance_ratio, outdir / "volume_variance.png"),
        ),
    ]
