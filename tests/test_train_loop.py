"""`cryoscape train` end to end on a tiny simulated set: outputs, order, seeds, resume, atomicity."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import yaml
from helpers import simulate_particles

from cryoscape.cli.main import main as cli
from cryoscape.model.config import ModelConfig
from cryoscape.model.vae import ReconModel
from cryoscape.train import checkpoint as ck
from cryoscape.train.config import load_config

N, D = 96, 16
SMALL = [
    "--enc-width",
    "32",
    "--dec-width",
    "32",
    "--enc-depth",
    "2",
    "--dec-depth",
    "2",
    "--batch-size",
    "16",
    "--lr",
    "2e-3",
    "--threads",
    "1",
]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_particles(tmp_path_factory.mktemp("sim"), n=N, D=D, snr=2.0)


def run(star, out, *extra: str, epochs: int = 2, zdim: int = 2) -> int:
    return cli(["train", str(star), "-o", str(out), "--zdim", str(zdim), "-n", str(epochs), *SMALL, *extra])


def test_outputs_follow_the_contract(sim, tmp_path):
    out = tmp_path / "run"
    assert run(sim[0], out, epochs=3) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {
        "config.yaml",
        "log.csv",
        "weights.pt",
        "z.npy",
        *(f"weights.{e}.pt" for e in range(3)),
        *(f"z.{e}.npy" for e in range(3)),
    }
    for e in range(3):
        z = np.load(out / f"z.{e}.npy")
        assert z.shape == (N, 2) and z.dtype == np.float32 and np.isfinite(z).all()
    assert np.array_equal(np.load(out / "z.npy"), np.load(out / "z.2.npy"))
    log = ck.read_log(out)
    assert [r["epoch"] for r in log] == [0, 1, 2]
    assert list(log[0]) == list(ck.LOG_COLUMNS)
    # it learns: the loss falls between epochs that fitted the whole lattice (the first one, under
    # frequency marching, fitted a band only, so its loss sums fewer terms)
    full = [r for r in log if r["band"] == 1.0]
    assert log[0]["band"] < 1.0 and len(full) == 2 and full[-1]["loss"] < full[0]["loss"]
    assert all(r["images_per_s"] > 0 and r["kl"] >= 0 for r in log)
    ckpt = torch.load(out / "weights.pt", weights_only=True)
    assert {"model_config", "model_state", "optimizer_state", "epoch", "norm", "rng_state"} <= set(ckpt)
    assert ckpt["epoch"] == 2 and ckpt["model_config"]["zdim"] == 2
    raw = yaml.safe_load((out / "config.yaml").read_text())
    assert set(raw) == {"model", "data", "train"}
    mcfg, dcfg, tcfg = load_config(out)
    assert mcfg == ModelConfig.from_dict(ckpt["model_config"]) and mcfg.D == D
    assert dcfg.psize_A == pytest.approx(4.0) and dcfg.n_particles == N
    assert list(dcfg.norm) == ckpt["norm"] and dcfg.norm[1] > 0
    assert tcfg.epochs == 3 and tcfg.beta == 2.0  # the default 4/zdim, recorded as a number
    model = ReconModel.from_checkpoint(out / "weights.pt")
    assert model.eval_volume(torch.zeros(2)).shape == (D, D, D)


def _encode(model: ReconModel, star, norm_std: float, ind=None) -> np.ndarray:
    """Latent means of the particles of ``star`` (``ind`` order), computed by hand."""
    from cryoscape.data.dataset import particle_data
    from cryoscape.data.preprocess import Preprocessor
    from cryoscape.io.load import load_particles

    data = particle_data(load_particles(star, images="require", ind=ind))
    enc, _ = Preprocessor(D, norm_std)(data.images, data.shifts_px)
    with torch.no_grad():
        return model.encode(enc)[0].numpy()


def test_z_is_in_input_order(sim, tmp_path):
    """Row i of z.npy is particle i of the input (after --ind, in the --ind order)."""
    perm = np.random.default_rng(3).permutation(N)
    np.save(tmp_path / "perm.npy", perm)
    assert run(sim[0], tmp_path / "a", epochs=1) == 0
    assert run(sim[0], tmp_path / "b", "--ind", str(tmp_path / "perm.npy"), epochs=1) == 0
    for name, ind in (("a", None), ("b", perm)):
        model = ReconModel.from_checkpoint(tmp_path / name / "weights.pt")
        norm_std = load_config(tmp_path / name)[1].norm[1]
        z = np.load(tmp_path / name / "z.npy")
        assert np.allclose(z, _encode(model, sim[0], norm_std, ind), atol=1e-5)
        if name == "a":  # the same model on the permuted input gives the permuted rows
            assert np.allclose(z[perm], _encode(model, sim[0], norm_std, perm), atol=1e-5)


def test_seed_reproduces_and_differs(sim, tmp_path):
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert run(sim[0], tmp_path / name, "--seed", seed, epochs=1) == 0
    za, zb, zc = (np.load(tmp_path / n / "z.npy") for n in "abc")
    assert np.array_equal(za, zb)
    assert not np.allclose(za, zc)


def test_zdim0_trains_a_homogeneous_decoder(sim, tmp_path):
    out = tmp_path / "hom"
    assert run(sim[0], out, "--freq-march", "0", zdim=0, epochs=2) == 0  # mse of whole lattices
    assert not list(out.glob("z*.npy"))  # no latents to report
    log = ck.read_log(out)
    assert log[-1]["mse"] < log[0]["mse"] and all(r["kl"] == 0 for r in log)
    model = ReconModel.from_checkpoint(out / "weights.pt")
    assert model.zdim == 0 and model.eval_volume(None).shape == (D, D, D)


def test_resume_continues_and_matches_uninterrupted(sim, tmp_path):
    # raising -n continues exactly where a longer run would be only at a constant rate and without
    # frequency marching (both stretch with -n; the KL warm-up counts images, so it does not); a
    # killed run resuming exactly on both: tests/test_train_lr.py
    const = ("--lr-schedule", "constant", "--freq-march", "0")
    assert run(sim[0], tmp_path / "full", *const, epochs=2) == 0
    assert run(sim[0], tmp_path / "res", *const, epochs=1) == 0
    assert run(sim[0], tmp_path / "res", epochs=2) == 0  # the run's own schedule is kept
    assert [r["epoch"] for r in ck.read_log(tmp_path / "res")] == [0, 1]
    assert np.array_equal(np.load(tmp_path / "full" / "z.npy"), np.load(tmp_path / "res" / "z.npy"))
    # nothing left to do: a no-op that keeps the outputs
    assert run(sim[0], tmp_path / "res", epochs=2) == 0
    assert [r["epoch"] for r in ck.read_log(tmp_path / "res")] == [0, 1]


def test_resume_refuses_changed_settings_and_overwrite_restarts(sim, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(sim[0], out, epochs=1) == 0
    assert run(sim[0], out, "--beta", "0.1", epochs=2) == 2
    assert "train.beta" in capsys.readouterr().err and not (out / "weights.1.pt").exists()
    assert run(sim[0], out, "--beta", "0.1", "--overwrite", epochs=1) == 0
    assert load_config(out)[2].beta == 0.1 and ck.checkpoint_epochs(out) == [0]


def test_resume_after_lost_latest_checkpoint(sim, tmp_path):
    """A killed run leaves no partial files; resuming trusts the newest checkpoint that loads."""
    out = tmp_path / "run"
    assert run(sim[0], out, "--checkpoint-every", "2", epochs=3) == 0
    assert ck.checkpoint_epochs(out) == [1, 2]
    (out / "weights.2.pt").write_bytes(b"garbage")  # as if the disk lost it
    assert run(sim[0], out, "--checkpoint-every", "2", epochs=3) == 0
    assert [r["epoch"] for r in ck.read_log(out)] == [0, 1, 2]
    assert torch.load(out / "weights.pt", weights_only=True)["epoch"] == 2


def test_failed_save_keeps_previous_checkpoint(sim, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run(sim[0], out, epochs=1) == 0
    before = (out / "weights.pt").read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", boom)
    assert run(sim[0], out, epochs=2) == 2  # the CLI reports the OSError in one line
    assert (out / "weights.pt").read_bytes() == before
    assert not (out / "weights.1.pt").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    monkeypatch.undo()
    assert run(sim[0], out, epochs=2) == 0
    assert ck.checkpoint_epochs(out) == [0, 1]


def test_load_starts_from_given_weights(sim, tmp_path):
    whole = ("--freq-march", "0")  # so that the epochs' mse compare (each over the whole lattice)
    assert run(sim[0], tmp_path / "a", *whole, epochs=2) == 0
    assert run(sim[0], tmp_path / "b", *whole, "--load", str(tmp_path / "a" / "weights.pt"), epochs=1) == 0
    la, lb = ck.read_log(tmp_path / "a"), ck.read_log(tmp_path / "b")
    assert lb[0]["mse"] < la[0]["mse"]  # starts where a left off, not from scratch


def test_input_errors(sim, tmp_path, capsys):
    shutil.copy(sim[0].parent / "particles.mrcs", tmp_path / "p.mrcs")
    assert cli(["train", str(tmp_path / "p.mrcs"), "-o", str(tmp_path / "o"), "--zdim", "2"]) == 2
    assert "training needs poses" in capsys.readouterr().err
    assert run(sim[0], tmp_path / "o2", "--batch-size", "0") == 2


def test_rerun_removes_temp_files_of_a_killed_write(sim, tmp_path):
    """A kill during a checkpoint write leaves a temp file (never a partial checkpoint); re-running
    the command cleans it up and leaves other files alone."""
    star, _ = sim
    out = tmp_path / "run"
    assert run(star, out, epochs=1) == 0
    debris = [out / ".weights.pt.4242.tmp", out / ".z.0.npy.abc123.tmp"]
    for p in debris:
        p.write_bytes(b"partial")
    (out / "notes.txt").write_text("mine")
    assert run(star, out, epochs=2) == 0
    assert not any(p.exists() for p in debris)
    assert (out / "notes.txt").read_text() == "mine"
