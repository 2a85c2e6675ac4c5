"""Pose error in simulations: the samplers hit the requested medians, the images keep the true poses,
the metadata carries the perturbed ones and the ground truth the true ones."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoscape.cli.main import main as cli
from cryoscape.errors import InputError
from cryoscape.geometry import angular_distance_deg, random_rotations, rotvec_to_matrix
from cryoscape.io.cryodrgn import read_poses
from cryoscape.io.load import load_particles
from cryoscape.io.mrc import open_stack
from cryoscape.sim.pose_error import (
    CHI3_MEDIAN,
    RAYLEIGH_MEDIAN,
    error_scale,
    perturb_poses,
    rotation_errors,
    shift_errors,
)
from cryoscape.sim.simulate import SimConfig, build_bank, sample_particles
from cryoscape.sim.sources import VolumeBank

D = 16
ARGS = ["simulate", "--demo", "-D", str(D), "-n", "120", "--t-bins", "4", "--snr", "1", "--seed", "7"]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_angular_distance_is_the_rotation_angle():
    rng = np.random.default_rng(0)
    a = random_rotations(50, rng)
    axes = _unit(rng.standard_normal((50, 3)))
    for deg in (0.0, 1e-5, 0.3, 37.0, 179.0, 180.0):
        e = rotvec_to_matrix(np.deg2rad(deg) * axes)
        np.testing.assert_allclose(angular_distance_deg(a, e @ a), deg, atol=1e-9)
        np.testing.assert_allclose(angular_distance_deg(a @ e, a), deg, atol=1e-9)  # either side, symmetric
    assert angular_distance_deg(np.eye(3), a).shape == (50,) and angular_distance_deg(a[0], a[0]) == 0
    assert angular_distance_deg(a, a.astype(np.float32)).max() < 1e-4  # float32 pose files: no arccos noise


def test_constants_are_the_distribution_medians():
    stats = pytest.importorskip("scipy.stats")
    assert CHI3_MEDIAN == pytest.approx(stats.chi(3).median(), rel=1e-12)
    assert RAYLEIGH_MEDIAN == pytest.approx(stats.rayleigh.median(), rel=1e-12)


@pytest.mark.parametrize("median", [0.5, 4.0, 30.0])
def test_samplers_hit_the_requested_median(median):
    rng = np.random.default_rng(1)
    e = rotation_errors(2000, median, rng)
    angle = angular_distance_deg(np.eye(3), e)
    assert np.median(angle) == pytest.approx(median, rel=0.15)
    axis = _unit(np.stack([e[:, 2, 1] - e[:, 1, 2], e[:, 0, 2] - e[:, 2, 0], e[:, 1, 0] - e[:, 0, 1]], 1))
    assert np.abs(axis.mean(0)).max() < 0.1  # uniformly random axes
    s = shift_errors(2000, median / 4, rng)
    assert np.median(np.linalg.norm(s, axis=1)) == pytest.approx(median / 4, rel=0.15)
    assert np.abs(s.mean(0)).max() < 0.1 * median / 4


def test_error_size_changes_only_the_scale_and_zero_leaves_poses_exact():
    rng = np.random.default_rng(2)
    rot, shift = random_rotations(100, rng), rng.uniform(-1, 1, (100, 2))
    small = perturb_poses(rot, shift, 2.0, 0.5, np.random.default_rng(3))
    large = perturb_poses(rot, shift, 4.0, 0.0, np.random.default_rng(3))
    np.testing.assert_allclose(large.rot_error_deg, 2 * small.rot_error_deg, rtol=1e-9)  # same axes, same draws
    np.testing.assert_array_equal(large.shifts_px, shift)
    assert (large.shift_error_px == 0).all()
    none = perturb_poses(rot, shift, 0.0, 1.0, np.random.default_rng(3))
    np.testing.assert_array_equal(none.rotations, rot)
    np.testing.assert_allclose(none.shift_error_px, small.shift_error_px * 2, rtol=1e-12)


def test_error_scale_follows_the_coordinate():
    u = np.linspace(0, 1, 101)
    np.testing.assert_array_equal(error_scale(u, 0.0), np.ones(101))
    f = error_scale(u, 1.0)
    assert f[0] == 0 and f.mean() == pytest.approx(1.0) and np.all(np.diff(f) > 0)
    half = error_scale(u, 0.5)
    assert half[-1] / half[0] == pytest.approx(3.0)  # (1 - R + 2R) / (1 - R)


def test_corr_makes_large_t_worse_and_needs_heterogeneity():
    cfg = SimConfig(D=D, n_particles=3000, t_bins=11, rot_error_deg=5.0, shift_error_px=1.0, pose_error_corr=1.0)
    parts = sample_particles(cfg, build_bank(cfg))
    err, t = parts.pose_error, parts.t
    assert err is not None and t is not None and err.coordinate == "t"
    assert (err.rot_error_deg[t == 0] < 1e-9).all() and (err.shift_error_px[t == 0] == 0).all()
    assert np.median(err.rot_error_deg[t >= 0.8]) > 4 * np.median(err.rot_error_deg[(t > 0) & (t <= 0.2)])
    assert np.median(err.rot_error_deg) == pytest.approx(5.0, rel=0.25)  # near the request (docs: ~12 % lower)
    comp = SimConfig(D=D, n_particles=500, kind="compositional", rot_error_deg=5.0, pose_error_corr=0.5)
    perr = sample_particles(comp, build_bank(comp)).pose_error
    assert perr is not None and perr.coordinate == "state"
    one = VolumeBank(D, 1.0, 1, 1, lambda k: np.zeros((D, D, D), np.float32))
    with pytest.raises(InputError, match="needs heterogeneity"):
        sample_particles(SimConfig(D=D, n_particles=10, rot_error_deg=1.0, pose_error_corr=0.5), one)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same seed without and with pose error, through the command line."""
    root = tmp_path_factory.mktemp("poserr")
    assert cli(ARGS + ["-o", str(root / "exact")]) == 0
    err = ARGS + ["--rot-error", "4", "--shift-error", "1.5", "--pose-error-corr", "0.5", "-o", str(root / "err")]
    assert cli(err) == 0
    return root / "exact", root / "err"


def test_images_and_truth_do_not_depend_on_pose_error(runs):
    exact, err = runs
    np.testing.assert_array_equal(open_stack(exact / "particles.mrcs")[:], open_stack(err / "particles.mrcs")[:])
    g0, g1 = np.load(exact / "ground_truth.npz"), np.load(err / "ground_truth.npz")
    for key in g0:
        np.testing.assert_array_equal(g0[key], g1[key], err_msg=key)
    # without pose error: the files are as before the option existed (written = true poses, no extra keys)
    assert not (exact / "poses_true.pkl").exists() and "rot_true" not in g0
    assert json.loads((exact / "simulation.json").read_text())["pose_error"] is None
    assert (exact / "poses.pkl").read_bytes() == (err / "poses_true.pkl").read_bytes()  # one writer, same truth


def test_metadata_carries_the_perturbed_poses(runs):
    _, err = runs
    gt = np.load(err / "ground_truth.npz")
    rec = json.loads((err / "simulation.json").read_text())
    psize = rec["psize_A"]
    np.testing.assert_array_equal(gt["rot_true"], gt["rotations"])
    np.testing.assert_allclose(gt["shift_px_true"] * psize, gt["shifts_A"], rtol=1e-12)
    for fname in ("particles.star", "particles.cs"):
        p = load_particles(err / fname)
        np.testing.assert_allclose(angular_distance_deg(gt["rot_true"], p.rotations), gt["rot_error_deg"], atol=1e-3)
        d = np.linalg.norm(p.shifts_A / psize - gt["shift_px_true"], axis=1)
        np.testing.assert_allclose(d, gt["shift_error_px"], atol=1e-4)
    rot, trans = read_poses(err / "poses.pkl")
    np.testing.assert_allclose(angular_distance_deg(gt["rot_true"], rot), gt["rot_error_deg"], atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(trans * D - gt["shift_px_true"], axis=1), gt["shift_error_px"], atol=1e-4)
    true_rot, true_trans = read_poses(err / "poses_true.pkl")
    assert angular_distance_deg(true_rot, gt["rot_true"]).max() < 1e-3
    np.testing.assert_allclose(true_trans * D, gt["shift_px_true"], atol=1e-5)
    assert np.median(gt["rot_error_deg"]) > 1.0 and np.median(gt["shift_error_px"]) > 0.4
    summary = rec["pose_error"]
    assert summary["rot_median_deg"] == pytest.approx(np.median(gt["rot_error_deg"]))
    assert summary["shift_p90_px"] == pytest.approx(np.percentile(gt["shift_error_px"], 90))
    assert summary["follows"] == "t"
    cfg = rec["config"]
    assert (cfg["rot_error_deg"], cfg["shift_error_px"], cfg["pose_error_corr"]) == (4.0, 1.5, 0.5)


@pytest.mark.parametrize(
    "bad",
    [
        dict(rot_error_deg=-1.0),
        dict(rot_error_deg=120.0),
        dict(shift_error_px=float("nan")),
        dict(rot_error_deg=1.0, pose_error_corr=1.5),
        dict(pose_error_corr=0.5),
    ],
)
def test_bad_values_are_refused(bad):
    with pytest.raises(InputError):
        SimConfig(**bad)


def test_bad_values_are_one_line_on_the_command_line(tmp_path, capsys):
    assert cli(ARGS + ["--rot-error=-2", "-o", str(tmp_path / "x")]) == 2
    assert cli(ARGS + ["--rot-error", "2", "--pose-error-corr", "2", "-o", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--rot-error" in err[0] and "--pose-error-corr must be in [0, 1]" in err[1]
    assert not (tmp_path / "x").exists()
