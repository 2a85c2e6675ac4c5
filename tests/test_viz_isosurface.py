"""Isosurface meshes: units, centring, axis order and handedness, winding, levels, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("skimage")

from cryoscape.viz.isosurface import (
    Mesh,
    default_level,
    shrink,
    surface_mesh,
    viewer_html,
    viewer_js,
    viewer_script,
)


def ball(D: int, centre_zyx=(0, 0, 0), radius: float = 6.0, edge: float = 1.0) -> np.ndarray:
    """A smooth ball, 0.5 exactly at ``radius`` voxels from ``D//2 + centre_zyx`` (array order)."""
    g = np.arange(D) - D // 2
    zz, yy, xx = np.meshgrid(g, g, g, indexing="ij")
    r = np.sqrt((zz - centre_zyx[0]) ** 2 + (yy - centre_zyx[1]) ** 2 + (xx - centre_zyx[2]) ** 2)
    return (1 / (1 + np.exp((r - radius) / edge))).astype(np.float32)


def helix_map(D: int = 48, radius: float = 9.0, pitch: float = 16.0, tube: float = 2.2) -> np.ndarray:
    """Density of a right-handed helix along z: (x, y, z) = (R cos t, R sin t, pitch t / 2 pi)."""
    t = np.linspace(-2.5 * np.pi, 2.5 * np.pi, 2000)
    pts = np.stack([radius * np.cos(t), radius * np.sin(t), pitch * t / (2 * np.pi)], 1)  # x, y, z
    g = np.arange(D) - D // 2
    zz, yy, xx = np.meshgrid(g, g, g, indexing="ij")
    vox = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], 1).astype(np.float32)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(pts).query(vox)
    return np.exp(-((d / tube) ** 2)).reshape(D, D, D).astype(np.float32)


def helix_phase_coherence(mesh: Mesh, pitch: float, sign: int) -> float:
    """|mean exp(i (theta - sign 2 pi z / pitch))| over the vertices: 1 when every vertex lies on
    a helix of that hand (sign +1: right-handed), near 0 for the other hand."""
    x, y, z = mesh.verts.T
    return float(abs(np.exp(1j * (np.arctan2(y, x) - sign * 2 * np.pi * z / pitch)).mean()))


def test_ball_in_angstrom_centred_with_outward_normals_and_winding():
    mesh = surface_mesh(ball(32, radius=8.0), level=0.5, psize_A=2.0)
    r = np.linalg.norm(mesh.verts, axis=1)
    np.testing.assert_allclose(r, 16.0, atol=0.3)  # 8 voxels of 2 Å
    np.testing.assert_allclose(mesh.verts.mean(0), 0, atol=0.05)
    assert mesh.verts.dtype == np.float32 and mesh.faces.dtype == np.int32 and mesh.normals.dtype == np.float32
    assert (np.einsum("ij,ij->i", mesh.normals, mesh.verts / r[:, None]) > 0.95).all()  # outward
    v = mesh.verts[mesh.faces]
    cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert (np.einsum("ij,ij->i", cross, v.mean(1)) > 0).all()  # counter-clockwise from outside


def test_axis_order_is_x_y_z_from_last_to_first_array_axis():
    # ball at array offset (z, y, x) = (5, -3, 8) voxels must sit at (x, y, z) = (8, -3, 5) * psize
    mesh = surface_mesh(ball(32, (5, -3, 8), radius=4.0), level=0.5, psize_A=1.5)
    np.testing.assert_allclose(mesh.verts.mean(0), np.array([8, -3, 5]) * 1.5, atol=0.05)


@pytest.mark.parametrize("D, max_box, psize", [(64, 16, 1.0), (66, 32, 2.5)])
def test_block_averaged_map_keeps_position_and_size_in_angstrom(D, max_box, psize):
    vol = ball(D, (6, -10, 4), radius=12.0, edge=2.0)
    big = surface_mesh(vol, level=0.5, max_box=D, psize_A=psize)
    small = surface_mesh(vol, level=0.5, max_box=max_box, psize_A=psize)
    assert len(small.verts) < len(big.verts) / 3
    f = int(np.ceil(D / max_box))
    np.testing.assert_allclose(small.verts.mean(0), big.verts.mean(0), atol=0.1 * f * psize)
    r_big = np.linalg.norm(big.verts - big.verts.mean(0), axis=1).mean()
    r_small = np.linalg.norm(small.verts - small.verts.mean(0), axis=1).mean()
    assert r_small == pytest.approx(r_big, rel=0.05)
    np.testing.assert_allclose(r_big, 12.0 * psize, rtol=0.02)


def test_right_handed_helix_stays_right_handed_and_a_mirror_flips_it():
    vol = helix_map()
    mesh = surface_mesh(vol, level=0.5)
    assert helix_phase_coherence(mesh, 16.0, +1) > 0.8
    assert helix_phase_coherence(mesh, 16.0, -1) < 0.2
    mirrored = surface_mesh(vol[:, :, ::-1].copy(), level=0.5)  # x -> -x: a left-handed helix
    assert helix_phase_coherence(mirrored, 16.0, -1) > 0.8


def test_shrink_limits_box_and_keeps_mean():
    vol = np.random.default_rng(0).normal(size=(64, 64, 64))
    small = shrink(vol, 32)
    assert small.shape == (32, 32, 32)
    assert small.mean() == pytest.approx(vol.mean())
    assert shrink(vol, 64) is vol
    assert shrink(vol[:60, :60, :60], 32).shape == (30, 30, 30)


def test_default_level_encloses_about_the_molecule():
    from cryoscape.sim.molecule import demo_atoms, demo_volume

    psize = 3.0
    gt = demo_volume(0.0, D=64, psize_A=psize)
    n_res = len(demo_atoms(0.0)[0]) / 2  # two pseudo-atoms per residue
    mol_vox = n_res * 110 * 1.21 / psize**3  # 110 Da per residue, 1.21 Å^3 per Da
    enclosed = (gt > default_level(gt)).sum()
    assert 1.0 < enclosed / mol_vox < 2.0
    # a molecule filling a quarter of a tight box: mean + 2 std would show almost nothing
    D = 40
    g = np.arange(D) - D // 2
    zz, yy, xx = np.meshgrid(g, g, g, indexing="ij")
    inside = (xx / 18) ** 2 + (yy / 15) ** 2 + (zz / 12) ** 2 < 1
    noisy = inside + np.random.default_rng(0).normal(0, 0.1, inside.shape)
    lvl = default_level(noisy)
    assert abs((noisy > lvl).sum() / inside.sum() - 1) < 0.1
    assert lvl < noisy.mean() + 2 * noisy.std()


def test_no_surface_gives_an_empty_mesh_and_bad_maps_an_error():
    vol = ball(16)
    for level in (2.0, -1.0):
        empty = surface_mesh(vol, level=level)
        assert empty.empty and empty.verts.shape == (0, 3) and empty.faces.shape == (0, 3)
        back = Mesh.from_json(empty.to_json())
        assert back.empty and back.level == level
    assert surface_mesh(np.zeros((8, 8, 8), np.float32)).empty
    with pytest.raises(ValueError, match="NaN"):
        surface_mesh(np.full((8, 8, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match="3D"):
        surface_mesh(np.zeros((8, 8), np.float32))


def test_json_round_trip_and_size_of_a_64_map():
    from cryoscape.sim.molecule import demo_volume

    mesh = surface_mesh(demo_volume(0.0, D=64), psize_A=3.0)
    text = mesh.to_json()
    back = Mesh.from_json(text)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_allclose(back.verts, mesh.verts, atol=0.051)  # 0.1 Å for a 190 Å box
    np.testing.assert_allclose(back.normals, mesh.normals, atol=0.0051)
    assert back.level == pytest.approx(mesh.level, rel=1e-5)
    assert len(text) < 300_000  # about 170 kB: 20 maps in a report stay a few MB
    assert set(json.loads(text)) == {"verts", "faces", "normals", "level"}


def test_viewer_html_embeds_the_mesh_safely():
    mesh = surface_mesh(ball(16), level=0.5)
    frag = viewer_html(mesh, 'centre "0" </script>', 200, 150)
    assert '<canvas class="iso-canvas"' in frag and 'width="200" height="150"' in frag
    assert 'data-label="centre &quot;0&quot; &lt;/script&gt;"' in frag
    assert frag.count("</script>") == 1  # the label and JSON cannot end the script early
    payload = frag[frag.index("previousElementSibling, ") + len("previousElementSibling, ") : frag.rindex(");")]
    assert Mesh.from_json(payload.replace("<\\/", "</")).faces.shape == mesh.faces.shape
    js = viewer_js()
    assert js.count("\n") < 200 and "function cryoscapeIsoViewer(canvas, mesh, opts)" in js
    assert "://" not in js and 'getContext("2d")' in js and 'webgl"' not in js
    assert viewer_script() == f"<script>{js}</script>"
