"""The volume landscape and the latent density: contracts on synthetic maps and codes, and one
end-to-end run of ``cryoscape landscape`` / ``analyze --landscape`` on a tiny trained run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import blob_volume, train_tiny_run

from cryoscape.analysis.density import latent_density, pc12_surface, profile
from cryoscape.analysis.landscape import LandscapeConfig, landscape_mask, path_check, volume_pca
from cryoscape.analysis.latent import pca
from cryoscape.errors import InputError


def hinge_family(p: np.ndarray, D: int = 16) -> np.ndarray:
    """``(M, D, D, D)`` maps: two fixed blobs and a third moving 2 blob widths along x with ``p`` in [0, 1]
    (much farther and PC1 folds back at the ends: the "horseshoe" of PCA on a translation)."""
    s = D / 16
    fixed = [(-4 * s, -3 * s, 0), (4 * s, -3 * s, 0)]
    return np.stack([blob_volume(D, [*fixed, ((-1.5 + 3 * t) * s, 3 * s, 0)], 1.5 * s) for t in p])


def test_volume_pc1_follows_the_parameter_and_the_maps_form_one_path():
    rng = np.random.default_rng(0)
    p = rng.permutation(np.linspace(0, 1, 40))
    maps = hinge_family(p)
    mask = landscape_mask(maps, psize_A=4.0)
    assert mask.shape == maps.shape[1:] and 0 < (mask > 0).mean() < 1  # the corners are masked
    vp = volume_pca(maps, mask, n_pcs=5, n_clusters=4)
    order = np.argsort(p)
    pc1 = vp.coords[order, 0]
    assert np.all(np.diff(pc1) > 0) or np.all(np.diff(pc1) < 0)  # monotonic in the parameter
    assert vp.explained_variance_ratio[0] > 0.5
    chk = path_check(vp.coords, p, n_neighbors=4)
    assert chk.n_components == 1 and chk.largest_fraction == 1.0
    assert chk.spearman is not None and chk.spearman > 0.99
    assert {int(chk.path[0]), int(chk.path[-1])} == {int(order[0]), int(order[-1])}  # ends are the extremes
    # clusters are contiguous stretches of the parameter
    assert np.count_nonzero(np.diff(vp.labels[order])) == 3
    # the map at the PC1 extremes resembles the family's extremes
    ends = vp.along_pc(1, 3)
    assert ends.shape == (3, *maps.shape[1:])


def test_two_separate_families_are_two_components():
    p = np.linspace(0, 1, 20)
    a = hinge_family(p * 0.2)
    b = hinge_family(0.8 + p * 0.2) * 3.0  # far away in volume space
    maps = np.concatenate([a, b])
    vp = volume_pca(maps, landscape_mask(maps, 4.0), n_pcs=5, n_clusters=2)
    chk = path_check(vp.coords, n_neighbors=3)
    assert chk.n_components == 2 and chk.largest_fraction == 0.5
    assert np.isnan(chk.order).sum() == 20 and chk.spearman is None
    assert sorted(np.bincount(vp.labels)) == [20, 20]


def test_free_energy_is_lowest_where_codes_are_densest():
    rng = np.random.default_rng(1)
    well = np.array([3.0, -1.0, 0.5, 0.0])
    z = np.concatenate([rng.normal(0, 2.0, (1500, 4)), well + rng.normal(0, 0.3, (500, 4))]).astype(np.float32)
    dens = latent_density(pca(z))
    surf = pc12_surface(dens, grid=60)
    assert surf.g.shape == (60, 60) and surf.g.min() >= 0
    iy, ix = np.unravel_index(np.argmin(surf.g), surf.g.shape)
    well_pc = (well - dens.pca.mean) @ dens.pca.components[:2].T
    step = max(np.diff(surf.x[:2])[0], np.diff(surf.y[:2])[0])
    assert np.hypot(surf.x[ix] - well_pc[0], surf.y[iy] - well_pc[1]) < 3 * step + 0.3
    # along a line through the well the profile dips there and rises on both sides
    line = np.linspace(well - 6 * np.array([1, 0, 0, 0]), well + 6 * np.array([1, 0, 0, 0]), 41)
    prof = profile(dens, "line", line)
    assert abs(int(np.argmin(prof.g)) - 20) <= 2
    assert prof.g[0] > prof.g.min() + 2 and prof.g[-1] > prof.g.min() + 2
    assert prof.s[-1] == pytest.approx(12.0)


def test_config_checks():
    with pytest.raises(InputError, match="--box"):
        LandscapeConfig(box=15).check()
    with pytest.raises(InputError, match="--n-maps"):
        LandscapeConfig(n_maps=2).check()
    with pytest.raises(InputError, match="--mask"):
        LandscapeConfig(mask="sphere").check()


@pytest.mark.slow
def test_landscape_command_and_analyze_report(tmp_path):
    from cryoscape.cli.main import main as cli
    from cryoscape.io.cryodrgn import load_pickle
    from cryoscape.io.mrc import read_header, read_volume

    run = train_tiny_run(tmp_path, n=48)
    out = tmp_path / "land"
    args = ["landscape", str(run), "-o", str(out), "--n-maps", "12", "--box", "8", "--n-clusters", "3"]
    assert cli([*args, "--threads", "1"]) == 0
    summary = json.loads((out / "landscape.json").read_text())
    assert summary["n_maps"] == 12 and summary["box"] == 8
    assert summary["psize_A"] == pytest.approx(4.0 * 16 / 8)
    assert summary["path_check"]["n_components"] >= 1
    for name in ["mean.mrc", "mask.mrc", "vpc1/vol_0004.mrc", "vpc2/vol_0000.mrc", "clusters/vol_0002.mrc"]:
        vol, psize = read_volume(out / name)
        assert vol.shape == (8, 8, 8) and psize == pytest.approx(8.0), name
        assert read_header(out / name).psize_A == pytest.approx(8.0)
    assert np.load(out / "vol_pca.npy").shape[0] == 12
    assert np.load(out / "vol_pca_particles.npy").shape[0] == 48
    assert np.load(out / "particle_centers.npy").max() < 12
    assert len(load_pickle(out / "labels.pkl")) == 48
    dens = json.loads((out / "density.json").read_text())
    assert np.load(out / "free_energy_pc12.npy").shape == (len(dens["pc2"]), len(dens["pc1"]))
    assert [p["name"] for p in dens["profiles"]] == ["latent PC1", "landscape main path"]
    for png in ["volume_pca.png", "volume_variance.png", "free_energy_pc12.png", "free_energy_profiles.png"]:
        assert (out / png).read_bytes()[:4] == b"\x89PNG", png
    # analyze --landscape writes the same into landscape/ and shows its plots in the report
    adir = tmp_path / "an"
    extra = ["--landscape", "--landscape-maps", "10", "--skip-umap", "--ksample", "3", "--pc", "0", "--threads", "1"]
    assert cli(["analyze", str(run), "-o", str(adir), *extra]) == 0
    assert (adir / "landscape" / "landscape.json").is_file()
    page = (adir / "report.html").read_text()
    assert "volume landscape" in page and "latent density" in page
    assert "cryoscape landscape" in page
