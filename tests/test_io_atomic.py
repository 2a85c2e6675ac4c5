"""The one write path: whole files or none, the umask's mode, one-line errors naming the target."""

from __future__ import annotations

import errno
import os
import re
import stat

import numpy as np
import pytest

from cryoscape.errors import InputError
from cryoscape.io import atomic
from cryoscape.io.atomic import atomic_link, atomic_write_bytes, temp_name


@pytest.fixture
def umask():
    """Set a umask for the test and restore the old one."""
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_writer_honours_the_umask(tmp_path, umask, mask, mode):
    from cryoscape.io.cryodrgn import save_pickle
    from cryoscape.io.mrc import StackWriter, write_volume
    from cryoscape.train import checkpoint as ck

    umask(mask)
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    save_pickle(np.arange(3), tmp_path / "i.pkl")
    write_volume(tmp_path / "v.mrc", np.zeros((4, 4, 4), np.float32), 1.0)
    with StackWriter(tmp_path / "s.mrcs", 2, 4, 1.0) as w:
        w.write(0, np.zeros((2, 4, 4), np.float32))
    ck.save_latents(tmp_path / "z.0.npy", np.zeros((3, 2)))
    for name in ("a.bin", "i.pkl", "v.mrc", "s.mrcs", "z.0.npy"):
        assert _mode(tmp_path / name) == mode, name


def test_temp_names_are_short_hidden_and_recognised():
    long = "p" * 251 + ".pkl"  # a legal 255-byte name
    t = temp_name(long)
    assert t.startswith(".ppp") and t.endswith(".tmp") and len(t.encode()) <= 56
    assert re.fullmatch(r"\.p+\.[0-9a-f]{8}\.tmp", t)
    assert len(temp_name("é" * 100).encode()) <= 56  # cut on a character boundary


def test_a_255_byte_output_name_is_written(tmp_path):
    target = tmp_path / ("p" * 251 + ".pkl")
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data"
    assert os.listdir(tmp_path) == [target.name]


def _fail(err: int):
    def boom(*a, **k):
        raise OSError(err, os.strerror(err))

    return boom


@pytest.mark.parametrize(
    "err, words",
    [
        (errno.ENOSPC, "no space left on device"),
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only file system"),
    ],
)
def test_disk_errors_are_one_line_naming_the_target(tmp_path, monkeypatch, err, words):
    target = tmp_path / "out.star"
    target.write_bytes(b"old")
    monkeypatch.setattr(atomic, "_fsync_file", _fail(err))
    with pytest.raises(InputError) as e:
        atomic_write_bytes(target, b"new")
    assert str(e.value) == f"{target}: cannot write: {words}"
    assert target.read_bytes() == b"old"  # the previous file is untouched
    assert os.listdir(tmp_path) == ["out.star"]  # and no temp file is left


def test_permission_denied_creating_the_temp_names_the_target(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "create_temp", _fail(errno.EACCES))
    with pytest.raises(InputError, match=r"out\.mrc: cannot write: permission denied$"):
        atomic_write_bytes(tmp_path / "out.mrc", b"x")


def test_full_disk_in_a_stack_and_a_map_names_the_target(tmp_path, monkeypatch):
    from cryoscape.io import mrc

    monkeypatch.setattr(mrc.os, "pwrite", _fail(errno.ENOSPC))
    with pytest.raises(InputError, match=r"s\.mrcs: cannot write: no space left on device$"):
        with mrc.StackWriter(tmp_path / "s.mrcs", 2, 4, 1.0) as w:
            w.write(0, np.zeros((2, 4, 4), np.float32))
    monkeypatch.undo()
    monkeypatch.setattr(atomic, "_fsync_file", _fail(errno.ENOSPC))
    with pytest.raises(InputError, match=r"v\.mrc: cannot write: no space left on device$"):
        mrc.write_volume(tmp_path / "v.mrc", np.zeros((4, 4, 4), np.float32), 1.0)
    assert os.listdir(tmp_path) == []


def test_other_os_errors_stay_os_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_fsync_file", _fail(errno.EIO))
    with pytest.raises(OSError) as e:
        atomic_write_bytes(tmp_path / "x", b"x")
    assert e.value.errno == errno.EIO and not isinstance(e.value, InputError)
    assert os.listdir(tmp_path) == []


def test_targets_that_cannot_be_files(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        atomic_write_bytes(tmp_path / "d", b"x")
    with pytest.raises(InputError, match="output folder does not exist"):
        atomic_write_bytes(tmp_path / "nope" / "x", b"x")


def test_link_points_at_the_source_and_leaves_no_temp(tmp_path):
    a, b = tmp_path / "weights.3.pt", tmp_path / "weights.4.pt"
    a.write_bytes(b"3")
    b.write_bytes(b"4")
    latest = tmp_path / "weights.pt"
    atomic_link(a, latest)
    atomic_link(a, latest)  # again: rename() between two links of one file is a no-op
    assert os.path.samefile(a, latest)
    atomic_link(b, latest)
    assert latest.read_bytes() == b"4"
    assert sorted(os.listdir(tmp_path)) == ["weights.3.pt", "weights.4.pt", "weights.pt"]


def test_link_falls_back_to_a_copy(tmp_path, monkeypatch):
    a = tmp_path / "z.1.npy"
    a.write_bytes(b"z")
    monkeypatch.setattr(atomic.os, "link", _fail(errno.EXDEV))
    atomic_link(a, tmp_path / "z.npy")
    assert (tmp_path / "z.npy").read_bytes() == b"z" and not os.path.samefile(a, tmp_path / "z.npy")
