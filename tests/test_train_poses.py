"""Pose refinement (train --refine-poses): the SO(3) parametrisation, recovery of a known pose
error, checkpoints and resume, and the refined poses' way back to RELION and cryoSPARC."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from cryoscape.model.pose import PoseCorrection, so3_exp

TINY = ["--enc-width", "16", "--dec-width", "32", "--enc-depth", "1", "--dec-depth", "2", "--threads", "1"]


def _angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from cryoscape.geometry import angular_distance_deg

    return angular_distance_deg(np.asarray(a, np.float64), np.asarray(b, np.float64))


def test_so3_exp_is_a_rotation_about_w_by_its_norm():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    w = np.r_[rng.normal(0, 1, (50, 3)), rng.normal(0, 1e-6, (5, 3)), np.zeros((1, 3))]
    r = so3_exp(torch.from_numpy(w)).numpy()
    np.testing.assert_allclose(r, Rotation.from_rotvec(w).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    # differentiable at zero (the start of every particle's refinement), with the exact derivative
    z = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    so3_exp(z)[0, 1, 0].backward()  # d R_10 / d w = e_z (R ~ I + [w]x)
    np.testing.assert_allclose(z.grad.numpy(), [[0, 0, 1]], atol=1e-12)


def test_zero_corrections_leave_poses_unchanged():
    rng = np.random.default_rng(1)
    rot = torch.from_numpy(np.linalg.qr(rng.normal(size=(4, 3, 3)))[0]).float()
    shift = torch.randn(4, 2)
    r, s = PoseCorrection(10)(torch.tensor([0, 3, 9, 3]), rot, shift)
    assert torch.equal(r, rot) and torch.equal(s, shift)


class _KnownMap(torch.nn.Module):
    """A 'model' whose decoder is a known map's transform (trilinear slices): the search alone is tested."""

    zdim = 0

    def __init__(self, vol: np.ndarray) -> None:
        super().__init__()
        from cryoscape.fourier.project import Projector

        self.proj = Projector(torch.from_numpy(vol))

    def decode(self, coords: torch.Tensor, z=None) -> torch.Tensor:
        from cryoscape.fourier.slicing import sample_volume

        return sample_volume(self.proj.vol_ft, coords)


def _known_map_case(n: int = 64, D: int = 32, deg: float = 6.0, px: float = 1.0):
    """Noise-free images of a known map and poses off by ``deg`` / ``px`` (median): the model, the
    objective, the images, the true and the given poses and the CTFs."""
    from helpers import ctf_params, smooth_volume

    from cryoscape.data.preprocess import Preprocessor
    from cryoscape.geometry import random_rotations
    from cryoscape.sim.pose_error import perturb_poses
    from cryoscape.train.objective import ReconObjective

    rng = np.random.default_rng(0)
    psize = 3.0
    model = _KnownMap(smooth_volume(D, rng))
    rot = torch.from_numpy(random_rotations(n, rng)).float()
    shift = torch.from_numpy(rng.uniform(-2, 2, (n, 2))).float()
    ctf = torch.from_numpy(ctf_params(n, rng)).float()
    images = model.proj.project(rot, shift, ctf, psize)
    given = perturb_poses(rot.numpy().astype(np.float64), shift.numpy().astype(np.float64), deg, px, rng)
    rot0, shift0 = torch.from_numpy(given.rotations).float(), torch.from_numpy(given.shifts_px).float()
    return model, ReconObjective(Preprocessor(D, 1.0), psize, 1.0), images, (rot, shift), (rot0, shift0), ctf


def _errors(ref, given, truth) -> tuple[float, float]:
    """Median rotation (deg) and shift (px) error of ``ref``'s corrected poses."""
    r, s = ref.corrected(*given)
    return float(np.median(_angles_deg(r.numpy(), truth[0].numpy()))), float((s - truth[1]).norm(dim=1).median())


def test_search_against_a_known_map_recovers_rotations_and_shifts():
    """Noise-free images of a known map, poses 6 degrees and 1 px off (median): the search, given
    the map, brings both errors down to a fraction (the contract of cryoscape.train.poses)."""
    from cryoscape.train.poses import PoseRefiner

    model, objective, images, truth, given, ctf = _known_map_case()
    ref = PoseRefiner(len(images), torch.device("cpu"), 0.0)
    idx = torch.arange(len(images))
    errors = []
    for visit in range(6):
        errors.append(_errors(ref, given, truth))
        ref.search(model, objective, idx, images, *given, ctf, visit / 5)
    rot_end, shift_end = _errors(ref, given, truth)
    assert errors[0][0] > 5 and rot_end < errors[0][0] / 3, errors
    assert shift_end < errors[0][1] / 3, errors


def test_shifts_are_refined_first_and_the_rotations_from_their_own_start():
    """Before ``rotations_from`` only the shifts move (each step one decoder pass cheaper per
    rotation axis); from it on the rotations follow, as in the search test above."""
    from cryoscape.train.poses import PoseRefiner

    model, objective, images, truth, given, ctf = _known_map_case()
    ref = PoseRefiner(len(images), torch.device("cpu"), 0.0, rotations_from=0.5)
    idx = torch.arange(len(images))
    start = _errors(ref, given, truth)
    for progress in (0.0, 0.2, 0.4):
        ref.search(model, objective, idx, images, *given, ctf, progress)
    assert torch.count_nonzero(ref.table.rot) == 0
    shifted = _errors(ref, given, truth)
    assert shifted[0] == start[0] and shifted[1] < start[1] / 2, (start, shifted)
    for progress in (0.5, 0.6, 0.8, 1.0):
        ref.search(model, objective, idx, images, *given, ctf, progress)
    end = _errors(ref, given, truth)
    assert end[0] < start[0] / 3 and end[1] < start[1] / 3, (start, shifted, end)


def test_configs_written_before_shifts_first_resume_with_rotations_from_the_start(tmp_path):
    """New runs refine the shifts first (default 0.15 of the run); a config written before the
    option (no key) or while it was off by default (``null``) resumes with the rotations moving
    from ``refine_from``, as it ran, through the planner that resumed runs go through."""
    from dataclasses import replace

    import yaml
    from helpers import simulate_particles

    from cryoscape.data.dataset import particle_data
    from cryoscape.io.load import load_particles
    from cryoscape.model.config import ModelConfig
    from cryoscape.train.config import DataConfig, TrainConfig, load_config, save_config
    from cryoscape.train.poses import PoseRefiner
    from cryoscape.train.run import RunConfig, plan_run

    train = TrainConfig(refine_poses=True, refine_from=0.1)
    assert train.refine_rotations_from == 0.15  # the default: shifts first
    ref = PoseRefiner(4, torch.device("cpu"), 0.1, train.refine_rotations_from)
    assert ref.active(0.1) and not ref.rotating(0.14) and ref.rotating(0.15)
    data = DataConfig(particles="p.star", D=16, psize_A=1.0, n_particles=1)
    path = save_config(tmp_path, ModelConfig(D=16), data, train)
    raw = yaml.safe_load(path.read_text())
    del raw["train"]["refine_rotations_from"]  # as runs written before the option have it
    path.write_text(yaml.safe_dump(raw))
    assert load_config(path)[2].refine_rotations_from is None
    ref = PoseRefiner(4, torch.device("cpu"), 0.1, load_config(path)[2].refine_rotations_from)
    assert not ref.active(0.05) and ref.rotating(0.1)

    star, _ = simulate_particles(tmp_path / "sim", n=16, D=16)
    pdata = particle_data(load_particles(star, images="require"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    m, d, t = plan_run(RunConfig(star, run_dir, zdim=2, refine_poses=True), pdata, device=torch.device("cpu"))
    assert t.refine_rotations_from == 0.15
    save_config(run_dir, m, d, replace(t, refine_rotations_from=None))  # off, as the previous default wrote it
    assert plan_run(RunConfig(star, run_dir, zdim=2), pdata)[2].refine_rotations_from is None
    given = RunConfig(star, run_dir, zdim=2, refine_rotations_from=0.3)
    assert plan_run(given, pdata)[2].refine_rotations_from == 0.3  # given on resume: it wins


def _perturbed(tmp_path, deg: float, px: float, n: int = 400, D: int = 16):
    """A noise-free two-class set and a pose pickle off the truth by ``deg`` / ``px`` (median)."""
    from helpers import simulate_particles

    from cryoscape.io.cryodrgn import cryodrgn_poses, save_pickle
    from cryoscape.io.load import load_particles
    from cryoscape.sim.pose_error import perturb_poses

    star, _ = simulate_particles(tmp_path / "sim", n=n, D=D, snr=np.inf, psize_A=6.0)
    p = load_particles(star)
    given = perturb_poses(p.rotations, p.shifts_px, deg, px, np.random.default_rng(0))
    save_pickle(cryodrgn_poses(given.rotations, given.shifts_px, D), tmp_path / "pert.pkl")
    return star, p, tmp_path / "pert.pkl"


@pytest.mark.slow
def test_training_with_refinement_lowers_a_known_pose_error_and_resumes(tmp_path):
    from cryoscape.cli.main import main as cli
    from cryoscape.io.cryodrgn import read_poses
    from cryoscape.train.checkpoint import read_checkpoint

    star, truth, pert = _perturbed(tmp_path, 8.0, 0.5)
    before = np.median(_angles_deg(read_poses(pert)[0], truth.rotations))
    out = tmp_path / "run"
    args = ["train", str(star), "--poses", str(pert), "-o", str(out), "--zdim", "0", "--refine-poses", *TINY]
    assert cli([*args, "-n", "6", "--lr", "3e-3"]) == 0
    after = np.median(_angles_deg(read_poses(out / "poses.pkl")[0], truth.rotations))
    assert after < before, (before, after)  # tiny networks, 6 epochs: the search test above is the bar
    ck = read_checkpoint(out / "weights.5.pt")
    assert "pose_state" in ck and (out / "poses.5.pkl").is_file()
    shutil.copy(out / "poses.5.pkl", tmp_path / "p5.pkl")  # resuming must not rewrite an epoch it has
    assert cli([*args, "-n", "7", "--lr", "3e-3"]) == 0  # resumes with its corrections, not from zero
    again = np.median(_angles_deg(read_poses(out / "poses.pkl")[0], truth.rotations))
    assert again < before and (out / "poses.6.pkl").is_file()
    np.testing.assert_array_equal(read_poses(out / "poses.5.pkl")[0], read_poses(tmp_path / "p5.pkl")[0])


def test_off_by_default_and_refined_poses_round_trip_to_star_and_cs(tmp_path):
    from cryoscape.cli.main import main as cli
    from cryoscape.io.cryodrgn import read_poses
    from cryoscape.io.load import load_particles
    from cryoscape.train.checkpoint import read_checkpoint

    star, _, pert = _perturbed(tmp_path, 3.0, 0.5, n=60)
    plain = tmp_path / "plain"
    assert cli(["train", str(star), "--poses", str(pert), "-o", str(plain), "--zdim", "0", "-n", "1", *TINY]) == 0
    assert not list(plain.glob("poses*.pkl")) and "pose_state" not in read_checkpoint(plain / "weights.pt")
    out = tmp_path / "run"
    base = ["train", str(star), "--poses", str(pert), "-o", str(out), "--zdim", "2", "-n", "2", *TINY]
    assert cli([*base, "--refine-poses", "--refine-from", "0"]) == 0
    rot, trans = read_poses(out / "poses.pkl")
    assert _angles_deg(rot, read_poses(pert)[0]).max() > 0  # they moved
    for ext in ("star", "cs"):
        dest = tmp_path / f"refined.{ext}"
        assert cli(["convert", str(star), "--poses", str(out / "poses.pkl"), "-o", str(dest)]) == 0
        back = load_particles(dest, box=16)
        assert _angles_deg(back.rotations, rot).max() < 1e-2  # star: Euler angles in text
        np.testing.assert_allclose(back.shifts_px, trans * 16, atol=1e-4)


def test_refine_from_out_of_range_is_a_one_line_error(tmp_path, capsys):
    from cryoscape.cli.main import main as cli

    star, _, _ = _perturbed(tmp_path, 3.0, 0.5, n=20)
    rc = cli(["train", str(star), "-o", str(tmp_path / "r"), "--zdim", "0", "--refine-poses", "--refine-from", "1.5"])
    assert rc != 0 and "--refine-from must be a fraction" in capsys.readouterr().err
    rc = cli(["train", str(star), "-o", str(tmp_path / "r"), "--zdim", "0", "--refine-rotations-from", "-0.1"])
    assert rc != 0 and "--refine-rotations-from must be a fraction" in capsys.readouterr().err


def test_fisher_information_predicts_the_spread_of_the_pose_estimates():
    """Noisy images of a known map, searched from their true poses with no prior: the estimates
    scatter as the Cramer-Rao bound says an efficient estimator does, ``E[e^T F e] = 5`` for the
    five pose parameters. A wrong sign, scale or noise power in ``F`` moves it far from 5."""
    from cryoscape.train.poses import PoseRefiner, fisher_information

    model, objective, images, truth, _, ctf = _known_map_case(n=96)
    torch.manual_seed(1)
    noisy = images + 0.25 * images.std() * torch.randn_like(images)
    ref = PoseRefiner(len(images), torch.device("cpu"), 0.0)
    ref.prior.fill_(1e-9)  # the likelihood alone: an unbiased (ML) estimate
    idx = torch.arange(len(images))
    for _ in range(4):
        ref.search(model, objective, idx, noisy, *truth, ctf, 1.0)
    e = torch.cat([ref.table.rot, ref.table.shift], dim=1).double()  # the estimates' errors
    F, power = fisher_information(model, objective, noisy, *truth, ctf, ref.band(1.0))
    q = torch.einsum("bi,bij,bj->b", e, F.double(), e)
    assert 3.5 < float(q.mean()) < 6.5, float(q.mean())
    assert torch.all(power > 0) and torch.allclose(F, F.transpose(1, 2), atol=1e-3 * float(F.abs().max()))
