"""MRC header validation, memory-mapped stacks and the atomic volume / stack writers."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryoscape.errors import InputError
from cryoscape.io import mrc
from cryoscape.io.mrc import (
    StackWriter,
    open_stack,
    read_header,
    read_volume,
    write_volume,
)


def _write_mrc(path: Path, data: np.ndarray, voxel: float = 1.0) -> Path:
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)
        m.voxel_size = voxel
    return path


def test_volume_round_trip_header(tmp_path):
    vol = np.random.default_rng(0).normal(size=(16, 16, 16)).astype(np.float32)
    out = tmp_path / "v.mrc"
    write_volume(out, vol, 1.7)
    back, psize = read_volume(out)
    assert np.array_equal(back, vol) and back.dtype == np.float32
    assert psize == pytest.approx(1.7)
    with mrcfile.open(out) as m:
        h = m.header
        assert m.voxel_size.x == pytest.approx(1.7) and m.voxel_size.z == pytest.approx(1.7)
        assert (h.origin.x, h.origin.y, h.origin.z) == (0, 0, 0)
        assert (h.nxstart, h.nystart, h.nzstart) == (0, 0, 0)
        assert h.ispg == 1 and h.mode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mrc"]  # no temp file left


def test_volume_axis_order_is_honoured(tmp_path):
    """A map stored with sections along x (maps=1, mapc=3) still comes back as [z, y, x]."""
    stored = np.arange(4 * 4 * 4, dtype=np.float32).reshape(4, 4, 4)  # [x, y, z] on disk
    path = _write_mrc(tmp_path / "perm.mrc", stored)
    with mrcfile.open(path, mode="r+") as m:
        m.header.mapc, m.header.mapr, m.header.maps = 3, 2, 1
    vol, _ = read_volume(path)
    assert np.array_equal(vol, stored.transpose(2, 1, 0))


def test_read_volume_rejects_non_cube(tmp_path):
    path = _write_mrc(tmp_path / "box.mrc", np.zeros((8, 8, 6), np.float32))
    with pytest.raises(InputError, match="6x8x8 voxels; cryoscape needs a cube"):
        read_volume(path)


def test_stack_writer_round_trip_and_stats(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(10, 12, 12)).astype(np.float32)
    out = tmp_path / "s.mrcs"
    with StackWriter(out, 10, 12, 2.5) as w:
        w.write(6, x[6:])  # chunks may come in any order
        w.write(0, x[:6])
    with mrcfile.open(out) as m:
        assert np.array_equal(m.data, x)
        h = m.header
        assert h.ispg == 0 and m.voxel_size.x == pytest.approx(2.5)
        assert h.dmin == pytest.approx(x.min()) and h.dmax == pytest.approx(x.max())
        assert h.dmean == pytest.approx(x.mean(), rel=1e-5) and h.rms == pytest.approx(x.std(), rel=1e-5)
    assert open_stack(out).shape == (10, 12, 12)
    assert read_header(out).psize_A == pytest.approx(2.5)


def test_stack_writer_removes_temp_on_error(tmp_path):
    out = tmp_path / "s.mrcs"
    with pytest.raises(RuntimeError, match="boom"):
        with StackWriter(out, 4, 8, 1.0) as w:
            w.write(0, np.ones((2, 8, 8)))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_stack_writer_refuses_incomplete_stack(tmp_path):
    with pytest.raises(RuntimeError, match="2 of 4 images unwritten"):
        with StackWriter(tmp_path / "s.mrcs", 4, 8, 1.0) as w:
            w.write(0, np.ones((2, 8, 8)))
    assert list(tmp_path.iterdir()) == []


def test_stack_writer_full_disk_is_input_error(tmp_path, monkeypatch):
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "s.mrcs"
    with pytest.raises(InputError, match="no space left on device") as err:
        with StackWriter(out, 4, 8, 1.0) as w:
            monkeypatch.setattr(mrc.os, "pwrite", full)
            w.write(0, np.ones((4, 8, 8)))
    assert err.value.path == str(out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # mrcfile on RELION headers without MAP id
@pytest.mark.parametrize(
    "name, shape, psize",
    [
        ("relion31.mrcs", (5, 256, 256), 1.0),
        ("empiar_10076_7.mrc", (7, 320, 320), 0.0),  # a stack with a .mrc extension, no voxel size
        ("toy_projections.mrcs", (1000, 30, 30), 1.0),
        ("hand.mrcs", (100, 64, 64), 1.0),
    ],
)
def test_fixture_stacks(fixtures_dir, name, shape, psize):
    stack = open_stack(fixtures_dir / name)
    assert stack.shape == shape
    assert read_header(fixtures_dir / name).psize_A == pytest.approx(psize)
    with mrcfile.open(fixtures_dir / name, permissive=True) as m:  # independent reader
        assert np.array_equal(stack[-1], m.data.reshape(shape)[-1])


def test_fixture_volume(fixtures_dir):
    vol, psize = read_volume(fixtures_dir / "hand-vol.mrc")
    assert vol.shape == (64, 64, 64) and psize == pytest.approx(1.0)


def test_single_image_is_a_stack_of_one(tmp_path):
    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    stack = open_stack(_write_mrc(tmp_path / "one.mrc", img))
    assert stack.shape == (1, 8, 8) and np.array_equal(stack[0], img)


def test_big_endian_file(tmp_path):
    x = np.random.default_rng(2).normal(size=(3, 8, 8)).astype(">f4")
    stack = open_stack(_write_mrc(tmp_path / "be.mrcs", x))
    assert np.array_equal(np.asarray(stack, np.float32), x.astype(np.float32))


def test_open_is_lazy(tmp_path):
    """A 2 GB sparse stack opens from its header alone."""
    path = tmp_path / "big.mrcs"
    with mrcfile.new_mmap(path, (8192, 256, 256), mrc_mode=2) as m:
        m.set_image_stack()
    assert open_stack(path).shape == (8192, 256, 256)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found") as err:
        open_stack(tmp_path / "nope.mrcs")
    assert err.value.path == str(tmp_path / "nope.mrcs")


def test_not_an_mrc(tmp_path):
    path = tmp_path / "noise.mrcs"
    path.write_bytes(np.random.default_rng(3).bytes(5000))
    with pytest.raises(InputError, match="not an MRC file"):
        open_stack(path)
    (tmp_path / "short.mrc").write_bytes(b"MAP " * 10)
    with pytest.raises(InputError, match="shorter than an MRC header"):
        open_stack(tmp_path / "short.mrc")


def test_truncated_stack(fixtures_dir, tmp_path):
    path = tmp_path / "cut.mrcs"
    shutil.copy(fixtures_dir / "toy_projections.mrcs", path)
    os.chmod(path, 0o644)
    os.truncate(path, path.stat().st_size - 5000)
    with pytest.raises(InputError, match=r"truncated: .*1000 sections of 30x30.*only 998 complete") as err:
        open_stack(path)
    assert err.value.path == str(path)


def test_unsupported_mode(tmp_path):
    path = _write_mrc(tmp_path / "complex.mrc", np.zeros((2, 8, 8), np.complex64))
    with pytest.raises(InputError, match="unsupported MRC mode 4"):
        open_stack(path)


def test_write_volume_full_disk(tmp_path, monkeypatch):
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mrc.mrcfile, "new", full)
    with pytest.raises(InputError, match="no space left"):
        write_volume(tmp_path / "v.mrc", np.zeros((4, 4, 4)), 1.0)
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder(tmp_path):
    with pytest.raises(InputError, match="output folder does not exist"):
        write_volume(tmp_path / "no" / "v.mrc", np.zeros((4, 4, 4)), 1.0)
    with pytest.raises(InputError, match="output folder does not exist"):
        with StackWriter(tmp_path / "no" / "s.mrcs", 2, 4, 1.0):
            pass
