"""The run lock: one command at a time per output folder; a crashed holder never blocks the next."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from helpers import simulate_particles, train_tiny_run

from cryoscape.cli.main import main as cli
from cryoscape.errors import InputError
from cryoscape.io.runlock import LOCK_NAME, FolderBusy, run_lock
from cryoscape.train import checkpoint as ck


def test_second_holder_is_refused_naming_the_first(tmp_path):
    with run_lock(tmp_path / "run", "train"):
        assert (tmp_path / "run" / LOCK_NAME).is_file()
        with pytest.raises(FolderBusy) as e:
            with run_lock(tmp_path / "run", "analyze"):
                pass
        msg = str(e.value)
        assert msg.startswith(str(tmp_path / "run") + ": is in use by cryoscape train")
        assert f"pid {os.getpid()} on {socket.gethostname()}" in msg and "since 20" in msg
        assert "\n" not in msg
    assert not (tmp_path / "run" / LOCK_NAME).exists()  # released and removed
    with run_lock(tmp_path / "run", "train"):  # free again
        pass


def test_lock_of_a_crashed_process_is_taken_over(tmp_path):
    """A SIGKILLed holder leaves its lock file; the kernel dropped its lock, so the next run goes."""
    code = (
        "import os, sys; from cryoscape.io.runlock import run_lock\n"
        "with run_lock(sys.argv[1], 'train'):\n    os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True)
    assert proc.returncode == -9
    assert "pid=" in (tmp_path / LOCK_NAME).read_text()  # the stale record is there
    with run_lock(tmp_path, "train"):
        assert f"pid={os.getpid()}" in (tmp_path / LOCK_NAME).read_text()


def test_lock_held_by_another_process_is_refused(tmp_path):
    code = (
        "import sys, time; from cryoscape.io.runlock import run_lock\n"
        "with run_lock(sys.argv[1], 'volumes'):\n    print('held', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"held"
        with pytest.raises(FolderBusy, match=f"cryoscape volumes \\(pid {proc.pid} "):
            with run_lock(tmp_path, "train"):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_output_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        with run_lock(tmp_path / "f", "train"):
            pass


def test_train_refuses_a_locked_folder_at_once(tmp_path, capsys):
    """Before reading the particles (which here do not even exist)."""
    out = tmp_path / "run"
    with run_lock(out, "analyze"):
        rc = cli(["train", str(tmp_path / "missing.star"), "-o", str(out), "--zdim", "1"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{out}: is in use by cryoscape analyze (pid {os.getpid()}" in err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("lockrun"), n=48)


@pytest.mark.parametrize(
    "command",
    [
        ["analyze", "{run}", "-o", "{out}", "--skip-umap", "--skip-maps", "--ksample", "2"],
        ["volumes", "{run}", "--z", "{run}/z.npy", "-o", "{out}"],
        ["traverse", "{run}", "--pc", "1", "-n", "2", "-o", "{out}", "--skip-maps"],
        ["select", "{run}", "--kmeans", "2", "-o", "{out}"],
    ],
)
def test_commands_refuse_a_locked_output(tiny_run, tmp_path, capsys, command):
    """Every command that writes into a folder takes its lock before writing."""
    out = tmp_path / "out"
    with run_lock(out, "train"):
        rc = cli([a.replace("{run}", str(tiny_run)).replace("{out}", str(out)) for a in command])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{out}: is in use by cryoscape train (pid" in err
    assert not out.exists()  # nothing written (and the folder the lock made is gone)
    assert cli([a.replace("{run}", str(tiny_run)).replace("{out}", str(out)) for a in command]) == 0
    assert not (out / LOCK_NAME).exists()


@pytest.mark.slow
def test_two_trains_into_one_folder(tmp_path):
    """The second refuses at once; the first finishes with config, weights and log of one run."""
    star, _ = simulate_particles(tmp_path / "sim", n=300, D=16)
    out = tmp_path / "run"
    args = ["--zdim", "2", "-n", "4", "--enc-width", "32", "--dec-width", "32", "--batch-size", "8", "--threads", "1"]
    first = subprocess.Popen(
        [sys.executable, "-m", "cryoscape.cli.main", "train", str(star), "-o", str(out), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "config.yaml").exists():
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        t0 = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "cryoscape.cli.main", "train", str(star), "-o", str(out), *args, "--seed", "7"],
            capture_output=True,
            timeout=120,
        )
        assert second.returncode == 2
        assert f"is in use by cryoscape train (pid {first.pid} " in second.stderr.decode()
        assert time.monotonic() - t0 < 30  # refused before reading the particles or training
        assert first.wait(timeout=300) == 0, first.stderr.read().decode()
    finally:
        first.kill()
        first.wait()
    assert ck.checkpoint_epochs(out) == [0, 1, 2, 3]
    assert [r["epoch"] for r in ck.read_log(out)] == [0, 1, 2, 3]
    assert "seed: 0" in (out / "config.yaml").read_text()
    assert not (out / LOCK_NAME).exists()


def test_dashboard_locks_its_folder(tmp_path, capsys):
    """A second dashboard on one run is refused; a run folder it cannot write into is still served."""
    from cryoscape.dashboard.server import folder_lock

    with folder_lock(tmp_path / "dashboard"):
        with pytest.raises(FolderBusy, match="in use by cryoscape dashboard"):
            with folder_lock(tmp_path / "dashboard"):
                pass
    (tmp_path / "file").write_text("x")
    with folder_lock(tmp_path / "file" / "dashboard"):  # cannot be created: a warning, no lock
        pass
    assert "selections and maps cannot be saved" in capsys.readouterr().err


def test_file_system_without_locks_runs_with_a_warning(tmp_path, monkeypatch, capsys):
    import errno

    from cryoscape.io import runlock

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(runlock.fcntl, "flock", no_locks)
    with run_lock(tmp_path, "train"):
        pass
    err = capsys.readouterr().err
    assert f"cryoscape train: warning: {tmp_path}: this file system does not support locks" in err


def test_a_failed_command_leaves_no_empty_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", str(tmp_path / "missing.star"), "-o", str(out), "--zdim", "1"]) == 2
    assert "missing.star: file not found" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()  # a folder that was there stays
    assert cli(["train", str(tmp_path / "missing.star"), "-o", str(out), "--zdim", "1"]) == 2
    assert out.is_dir() and list(out.iterdir()) == []
