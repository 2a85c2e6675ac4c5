"""Every command on garbage inputs and damaged run folders: exit status 2 and one line, never a
traceback (an exception escaping ``cli`` fails these tests)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cryoscape.cli.main import main as cli

GARBAGE = {"empty": b"", "text": b"hello world\n", "binary": bytes(range(256)) * 8, "zeros": b"\0" * 2000}
EXTS = (".star", ".cs", ".mrcs", ".mrc", ".txt", ".pkl", ".npy")


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("cryoscape ") and ": error: " in err[-1], err
    return err[-1]


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_particle_commands_on_garbage(tmp_path, capsys, kind):
    for ext in EXTS:
        p = tmp_path / f"in{ext}"
        p.write_bytes(GARBAGE[kind])
        for cmd in (
            ["info", p],
            ["convert", p, "-o", tmp_path / "o.star"],
            ["downsample", p, "-D", "8", "-o", tmp_path / "d.mrcs"],
            ["backproject", p, "-o", tmp_path / "b.mrc"],
            ["train", p, "-o", tmp_path / "t", "--zdim", "1", "-n", "1"],
            ["fsc", p, p],
        ):
            assert cli([str(a) for a in cmd]) == 2, (kind, ext, cmd[0])
            _one_line(capsys)
        shutil.rmtree(tmp_path / "t", ignore_errors=True)


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_pickle_options_on_garbage(tmp_path, capsys, fixtures_dir, kind):
    bad = tmp_path / "x.pkl"
    bad.write_bytes(GARBAGE[kind])
    for opt in ("--poses", "--ctf", "--ind"):
        assert cli(["info", str(fixtures_dir / "toy_projections.mrcs"), opt, str(bad)]) == 2
        assert str(bad) in _one_line(capsys)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from helpers import train_tiny_run

    return train_tiny_run(tmp_path_factory.mktemp("corrupt"), n=40)


DAMAGE = {
    "config binary": ("config.yaml", bytes(range(256)) * 4),
    "config not a mapping": ("config.yaml", b"- 1\n- 2\n"),
    "config without data": ("config.yaml", b"model: {}\n"),
    "weights junk": ("weights.pt", b"junk" * 10),
    "z truncated": ("z.npy", None),
    "z text": ("z.npy", b"1 2 3\n"),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_run_commands_on_damaged_folders(run_dir, tmp_path, capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    name, data = DAMAGE[damage]
    if data is None:
        data = (run_dir / name).read_bytes()[:100]
    (run / name).unlink()
    (run / name).write_bytes(data)
    for cmd in (
        ["volumes", run, "--z", run_dir / "z.npy", "-o", tmp_path / "v"],
        ["analyze", run, "--skip-umap", "--ksample", "2", "--pc", "1", "--n-per-pc", "2", "-o", tmp_path / "a"],
        ["select", run, "--kmeans", "2", "-o", tmp_path / "s"],
        ["traverse", run, "--pc", "1", "-n", "2", "-o", tmp_path / "t"],
    ):
        rc = cli([str(a) for a in cmd])
        if rc != 0:  # some damage does not concern every command (select reads no weights)
            assert rc == 2, (damage, cmd[0])
            line = _one_line(capsys)
            assert "weights_only" not in line and "Traceback" not in line, line
    assert np.load(run_dir / "z.npy").shape == (40, 2)  # the source run is untouched
