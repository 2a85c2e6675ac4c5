"""ImageSource: lazy multi-file image access, RELION image names, and every way refs go wrong."""

from __future__ import annotations

import pickle
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryoscape.errors import InputError
from cryoscape.io.images import ImageSource, image_refs_from_names, resolve_image_path


def _stack(path: Path, data: np.ndarray, voxel: float = 1.0) -> Path:
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)
        m.set_image_stack()
        m.voxel_size = voxel
    return path


@pytest.fixture
def two_stacks(tmp_path):
    """Stacks a (5 images) and b (3 images) of 8 px; image value = 10*file + frame."""
    a = np.stack([np.full((8, 8), i, np.float32) for i in range(5)])
    b = np.stack([np.full((8, 8), 10 + i, np.float32) for i in range(3)])
    return _stack(tmp_path / "a.mrcs", a, 2.0), _stack(tmp_path / "b.mrcs", b, 2.0)


def test_from_file_fixtures(fixtures_dir):
    src = ImageSource.from_file(fixtures_dir / "toy_projections.mrcs")
    via_txt = ImageSource.from_file(fixtures_dir / "toy_projections.txt")
    assert src.shape == via_txt.shape == (1000, 30, 30) and src.box == 30
    assert src.header_psize_A == pytest.approx(1.0)
    assert np.array_equal(src[[0, 500, 999]], via_txt[[0, 500, 999]])
    emp = ImageSource.from_file(fixtures_dir / "empiar_10076_7.mrc")
    assert emp.shape == (7, 320, 320) and emp.header_psize_A is None
    with mrcfile.open(fixtures_dir / "empiar_10076_7.mrc") as m:  # independent reader
        assert np.array_equal(emp[3], m.data[3])
    assert ImageSource.from_file(fixtures_dir / "hand.mrcs").shape == (100, 64, 64)
    assert ImageSource.from_file(fixtures_dir / "relion31.mrcs").shape == (5, 256, 256)


def test_indexing_keeps_requested_order_across_files(two_stacks):
    a, b = two_stacks
    src = ImageSource.from_refs([b, a, b, a, a], np.array([2, 4, 0, 0, 1]), origin="x.star")
    assert src.shape == (5, 8, 8) and src.header_psize_A == pytest.approx(2.0)
    values = lambda imgs: imgs[:, 0, 0].tolist()
    assert values(src[:]) == [12, 4, 10, 0, 1]
    assert values(src[[4, 0, 3]]) == [1, 12, 0]
    assert values(src[np.array([True, False, False, True, False])]) == [12, 0]
    assert values(src[1:4]) == [4, 10, 0]
    assert src[-1].shape == (8, 8) and src[-1][0, 0] == 1 and src[-1].dtype == np.float32
    with pytest.raises(IndexError):
        src[5]


def test_subset_refs_chunks(two_stacks):
    a, b = two_stacks
    src = ImageSource.from_refs([a, b, a], np.array([3, 1, 0]))
    sub = src.subset([2, 0])
    assert sub[:, 0, 0].tolist() == [0, 3]
    files, frames = sub.refs()
    assert list(files) == [str(a.absolute())] * 2 and frames.tolist() == [0, 3]
    got = [(ind.tolist(), imgs[:, 0, 0].tolist()) for ind, imgs in src.chunks(2)]
    assert got == [([0, 1], [3, 11]), ([2], [0])]
    restored = pickle.loads(pickle.dumps(src))  # DataLoader workers pickle sources
    assert np.array_equal(restored[:], src[:])


def test_integer_mode_reads_as_float32(tmp_path):
    x = np.arange(2 * 4 * 4, dtype=np.int16).reshape(2, 4, 4) - 10
    src = ImageSource.from_file(_stack(tmp_path / "i.mrcs", x))
    assert src[1].dtype == np.float32 and np.array_equal(src[:], x.astype(np.float32))


def test_image_names(two_stacks, tmp_path):
    a, b = two_stacks
    files, frames = image_refs_from_names(
        ["000003@a.mrcs", "1@sub/dir/b.mrcs", "b.mrcs"], base_dir=tmp_path, origin="p.star"
    )
    assert files == [a.absolute(), b.absolute(), b.absolute()]  # basename fallback for sub/dir
    assert frames.tolist() == [2, 0, 0]
    files, _ = image_refs_from_names([f"2@{b}"], base_dir="/nonexistent", origin="p.star")
    assert files == [b]


def test_image_names_with_datadir(two_stacks, tmp_path):
    a, _ = two_stacks
    files, _ = image_refs_from_names(
        ["1@Extract/job1/a.mrcs"], base_dir="/elsewhere", datadir=tmp_path, origin="p.star"
    )
    assert files == [a.absolute()]


def test_missing_stack_names_origin_and_suggests_datadir(tmp_path):
    with pytest.raises(InputError, match=r"Extract/job133/x.mrcs not found.*--datadir") as err:
        image_refs_from_names(["1@Extract/job133/x.mrcs"], base_dir=tmp_path, origin=tmp_path / "p.star")
    assert err.value.path == str(tmp_path / "p.star")


def test_bad_image_index(two_stacks, tmp_path):
    with pytest.raises(InputError, match="indices start at 1"):
        image_refs_from_names(["0@a.mrcs"], base_dir=tmp_path, origin="p.star")
    with pytest.raises(InputError, match="INDEX@FILE"):
        image_refs_from_names(["x@a.mrcs"], base_dir=tmp_path, origin="p.star")


def test_cryosparc_path(two_stacks, tmp_path):
    a, _ = two_stacks
    assert resolve_image_path(">J12/extract/a.mrcs", tmp_path) == a.absolute()


def test_frame_beyond_stack(two_stacks):
    a, _ = two_stacks
    with pytest.raises(InputError, match=r"image 6@a.mrcs is beyond the stack's 5 images") as err:
        ImageSource.from_refs([a, a], np.array([0, 5]), origin="parts.star")
    assert err.value.path == "parts.star"


@pytest.mark.filterwarnings("ignore:Data array contains NaN")
def test_nan_and_inf_images(tmp_path):
    x = np.zeros((20, 8, 8), np.float32)
    x[16, 3, 3] = np.nan
    x[18, 0, 0] = np.inf
    src = ImageSource.from_file(_stack(tmp_path / "x.mrcs", x))
    assert src[:16].shape == (16, 8, 8)  # reading other images is fine
    with pytest.raises(InputError, match=r"image 17@x.mrcs contains NaN"):
        src[10:20]
    with pytest.raises(InputError, match=r"image 19@x.mrcs contains Inf"):
        src[18]


def test_non_square_images(tmp_path):
    path = _stack(tmp_path / "r.mrcs", np.zeros((2, 8, 10), np.float32))
    with pytest.raises(InputError, match="10x8 px; cryoscape needs square images"):
        ImageSource.from_file(path)


def test_mixed_box_sizes(tmp_path):
    a = _stack(tmp_path / "a.mrcs", np.zeros((2, 8, 8), np.float32))
    b = _stack(tmp_path / "b.mrcs", np.zeros((2, 16, 16), np.float32))
    with pytest.raises(InputError, match=r"different box sizes.*8 px in a.mrcs, 16 px in b.mrcs"):
        ImageSource.from_refs([a, b], np.array([0, 0]), origin="p.star")
    (tmp_path / "list.txt").write_text("a.mrcs\nb.mrcs\n")
    with pytest.raises(InputError, match="different box sizes"):
        ImageSource.from_file(tmp_path / "list.txt")


def test_txt_with_missing_stack(tmp_path):
    (tmp_path / "list.txt").write_text("gone.mrcs\n")
    with pytest.raises(InputError, match=r"gone.mrcs not found") as err:
        ImageSource.from_file(tmp_path / "list.txt")
    assert err.value.path == str(tmp_path / "list.txt")


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        ImageSource.from_file(tmp_path / "nope.mrcs")
    (tmp_path / "junk.mrcs").write_bytes(b"\x07" * 4096)
    with pytest.raises(InputError, match="not an MRC"):
        ImageSource.from_refs([tmp_path / "junk.mrcs"], np.array([0]), origin="p.star")
