"""Per-image FSC, plots and the self-contained HTML report; one slow end-to-end analyze run."""

from __future__ import annotations

import argparse
import base64
import re

import numpy as np
import pytest

from cryoscape.analysis import perimage
from cryoscape.analysis.report import Report, write_report
from cryoscape.viz import curves
from cryoscape.viz import latent as vl


def blobs(D: int, k: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    g = np.arange(D) - D // 2
    zz, yy, xx = np.meshgrid(g, g, g, indexing="ij")
    out = []
    for _ in range(k):
        c = rng.uniform(-D / 4, D / 4, 3)
        out.append(np.exp(-((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) / 8).astype(np.float32))
    return out


def test_perimage_fsc_is_one_for_perfect_maps():
    gts = blobs(16, 3)
    vi = np.array([0, 1, 2, 1, 0, 2])
    ind = np.array([1, 2, 5])
    res = perimage.per_image_fsc((2.5 * gts[vi[i]] for i in ind), ind, vi, lambda k: gts[k], 3.0)
    np.testing.assert_allclose(res.curves, 1, atol=1e-9)
    np.testing.assert_allclose(res.auc, 0.5, atol=1e-9)  # area of 1 over 0..0.5 cycles/px
    np.testing.assert_allclose(res.res05_A, 6.0)  # Nyquist
    assert res.summary()["mean_auc"] == pytest.approx(0.5)
    wrong = perimage.per_image_fsc((gts[(vi[i] + 1) % 3] for i in ind), ind, vi, lambda k: gts[k], 3.0)
    assert wrong.auc.max() < 0.45


def test_fourier_crop_of_ground_truth_keeps_low_frequencies():
    vol = blobs(32, 1)[0]
    small = perimage.fourier_crop_volume(vol, 16)
    f_big = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(vol)))[8:24, 8:24, 8:24]
    f_small = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(small)))
    # the small box's Nyquist planes (index 0) lose their unpaired imaginary part: compare inside
    np.testing.assert_allclose(f_small[1:, 1:, 1:] * 8, f_big[1:, 1:, 1:], atol=1e-3 * np.abs(f_big).max())


def test_read_ground_truth(tmp_path):
    from cryoscape.io.mrc import write_volume

    (tmp_path / "gt_volumes").mkdir()
    for k, v in enumerate(blobs(8, 2)):
        write_volume(tmp_path / "gt_volumes" / f"vol_{k:03d}.mrc", v, 2.0)
    np.savez(tmp_path / "ground_truth.npz", volume_index=np.array([1, 0, 1]))
    gt = perimage.read_ground_truth(tmp_path)
    assert gt.volume_index.tolist() == [1, 0, 1] and sorted(gt.paths) == [0, 1]
    np.testing.assert_allclose(gt.load(1), blobs(8, 2)[1], atol=1e-6)


def test_report_embeds_images_and_maps(tmp_path):
    from cryoscape.viz.isosurface import Mesh, surface_mesh

    rng = np.random.default_rng(0)
    coords = rng.normal(size=(500, 2))
    png = vl.plot_density(coords, tmp_path / "a.png", "PC", coords[:3])
    loss = curves.plot_losses(
        [{"epoch": 0, "loss": 2.0, "mse": 1.5, "kl": 0.5}, {"epoch": 1, "loss": 1.0, "mse": 0.8, "kl": 0.2}],
        tmp_path / "l.png",
    )
    meshes = [surface_mesh(v, psize_A=2.0) for v in blobs(16, 2)]
    rep = Report(
        "test <report>",
        figures=[("density", png), ("loss", loss)],
        table_header=["centre", "map"],
        table_rows=[["0", "kmeans20/vol_0000.mrc"]],
        maps=[("centre 0", meshes[0]), ("centre <1>", meshes[1])],
        commands=["cryoscape analyze run"],
    )
    out = write_report(rep, tmp_path / "report.html")
    text = out.read_text()
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(imgs) == 2
    assert base64.b64decode(imgs[0]) == png.read_bytes()
    assert "kmeans20/vol_0000.mrc" in text and "test &lt;report&gt;" in text
    assert "http://" not in text and "https://" not in text  # opens offline
    assert text.count("function cryoscapeIsoViewer") == 1  # the viewer once, then one call per map
    assert text.count('<canvas class="iso-canvas"') == 2 and 'data-label="centre &lt;1&gt;"' in text
    embedded = re.findall(r"previousElementSibling, (\{.*?\})\);</script>", text)
    back = Mesh.from_json(embedded[1])
    np.testing.assert_array_equal(back.faces, meshes[1].faces)
    np.testing.assert_allclose(back.verts, meshes[1].verts, atol=0.01)
    assert "plotly" not in text


def test_report_without_maps_has_no_viewer(tmp_path):
    text = write_report(Report("t", notes=["n"]), tmp_path / "r.html").read_text()
    assert "cryoscapeIsoViewer" not in text and "<p>n</p>" in text


@pytest.mark.slow
def test_train_then_analyze_end_to_end(tmp_path):
    from cryoscape.cli import analyze
    from cryoscape.sim.simulate import SimConfig, simulate_dataset

    sim = tmp_path / "sim"
    star = simulate_dataset(SimConfig(n_particles=200, D=32, progress=False), sim)
    from cryoscape.cli.main import main as cli

    run = tmp_path / "run"
    assert (
        cli(
            [
                "train",
                str(star),
                "-o",
                str(run),
                "--zdim",
                "2",
                "-n",
                "2",
                "--enc-width",
                "32",
                "--dec-width",
                "32",
                "--enc-depth",
                "1",
                "--dec-depth",
                "1",
            ]
        )
        == 0
    )
    p = argparse.ArgumentParser()
    analyze.add_args(p)
    args = p.parse_args([str(run), "--ksample", "4", "--n-per-pc", "3", "--gt", str(sim), "--gt-sample", "10"])
    assert analyze.main(args) == 0
    out = run / "analyze.1"
    for f in (
        "z_pca.npy",
        "kmeans4/labels.pkl",
        "kmeans4/centers.txt",
        "kmeans4/centers_ind.txt",
        "kmeans4/vol_0003.mrc",
        "pc1/vol_0002.mrc",
        "pc2/z_values.txt",
        "z_pca.png",
        "explained_variance.png",
        "losses.png",
        "perimage_fsc.txt",
        "report.html",
    ):
        assert (out / f).is_file(), f
    assert np.load(out / "z_pca.npy").shape == (200, 2)
    ind = np.loadtxt(out / "kmeans4/centers_ind.txt").astype(int)
    assert ind.shape == (4,) and ind.max() < 200
    text = (out / "report.html").read_text()
    assert "data:image/png;base64," in text and text.count('<canvas class="iso-canvas"') == 4
