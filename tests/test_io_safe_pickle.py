"""Pickles and checkpoints are read without running anything they name."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from cryoscape.cli.main import main as cli
from cryoscape.errors import InputError
from cryoscape.io.cryodrgn import read_ctf, read_index, read_poses
from cryoscape.io.safe_pickle import load_pickle, loads

SRC = Path(__file__).resolve().parents[1] / "src" / "cryoscape"


class _Evil:
    """Unpickling this with plain pickle runs ``os.system`` (touches the marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


def test_fixture_pickles_load_as_with_plain_pickle(fixtures_dir):
    pkls = sorted(fixtures_dir.glob("*.pkl"))
    assert len(pkls) >= 5
    for p in pkls:
        with open(p, "rb") as f:
            want = pickle.load(f)  # trusted: shipped test data
        got = load_pickle(p)
        for a, b in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
            assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype, p.name


@pytest.mark.parametrize(
    "obj",
    [
        np.arange(5),
        (np.eye(3)[None].repeat(4, 0), np.zeros((4, 2), np.float32)),
        [1, 2.5, "x", None],
        {"a": np.float64(1.5), "b": [np.int64(3)]},
        np.zeros((2, 3), dtype=[("x", "<f4"), ("y", "<i8")]),
        np.array([1 + 2j]),
        True,
        b"bytes",
    ],
)
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_data_round_trips(obj, protocol):
    got = loads(pickle.dumps(obj, protocol=protocol))
    assert pickle.dumps(got, protocol=4) == pickle.dumps(obj, protocol=4)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: _Evil(m),
        lambda m: (np.eye(3)[None], _Evil(m)),
        lambda m: [_EvalEvil()],
        lambda m: {"k": _Evil(m)},
        lambda m: np.array([_Evil(m), 1], dtype=object),
        lambda m: np.array(["a", 1], dtype=object),
        lambda m: Path("x"),
    ],
)
def test_crafted_pickles_are_refused_without_running(tmp_path, make):
    marker = tmp_path / "pwned"
    bad = tmp_path / "poses.pkl"
    bad.write_bytes(pickle.dumps(make(marker), protocol=4))
    for reader in (load_pickle, read_poses, read_ctf, read_index):
        with pytest.raises(InputError) as e:
            reader(bad)
        assert str(e.value).startswith(f"{bad}: refused: the pickle ") and "\n" not in str(e.value)
    assert not marker.exists()


def test_cli_refuses_a_crafted_poses_pickle(tmp_path, capsys, fixtures_dir):
    marker = tmp_path / "pwned"
    bad = tmp_path / "poses.pkl"
    bad.write_bytes(pickle.dumps((_Evil(marker), np.zeros((1000, 2))), protocol=4))
    rc = cli(["info", str(fixtures_dir / "toy_projections.mrcs"), "--poses", str(bad)])
    assert rc == 2 and not marker.exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refers to posix.system" in err and str(bad) in err


def test_folder_and_missing_files_are_named_as_such(tmp_path):
    with pytest.raises(InputError, match="is a folder, not a pickle file"):
        load_pickle(tmp_path)
    with pytest.raises(InputError, match="file not found"):
        load_pickle(tmp_path / "none.pkl")
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        read_index(tmp_path / "d.npy")


def test_deep_nesting_is_an_input_error(tmp_path):
    p = tmp_path / "deep.pkl"
    x: list = []
    for _ in range(100):
        x = [x]
    p.write_bytes(pickle.dumps(x))
    with pytest.raises(InputError, match="not a readable pickle"):
        load_pickle(p)


def test_crafted_checkpoint_is_refused_without_running(tmp_path):
    import torch

    from cryoscape.train import checkpoint as ck

    marker = tmp_path / "pwned"
    torch.save({"epoch": 0, "x": _Evil(marker)}, tmp_path / "weights.0.pt")
    with pytest.raises(InputError) as e:
        ck.read_checkpoint(tmp_path / "weights.0.pt")
    msg = str(e.value)
    assert "refused" in msg and "posix.system" in msg and "weights_only" not in msg
    assert ck.load_epoch(tmp_path, 0) is None  # resuming skips it
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04junk" * 10)
    with pytest.raises(InputError, match=r"cannot read as a torch checkpoint \("):
        ck.read_checkpoint(tmp_path / "junk.pt")
    assert not marker.exists()


def test_every_torch_load_in_the_tree_is_weights_only():
    """No call of torch.load without weights_only=True, and no plain pickle.load of a file."""
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in m.group(1), f"{path}: {m.group(0)}"
        assert not re.search(r"pickle\.loads?\(", text) or path.name in ("safe_pickle.py", "distributed.py"), path


def test_protocol2_bytes_only_in_their_encodings(tmp_path):
    """Protocol-2 pickles build bytes with _codecs.encode(text, 'latin1'); any other codec name
    (looked up by import) is refused."""
    assert loads(pickle.dumps(b"\x00\xffabc", protocol=2)) == b"\x00\xffabc"
    crafted = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    (tmp_path / "c.pkl").write_bytes(crafted)
    with pytest.raises(InputError, match="refused: the pickle asks for text encoding 'rot13'"):
        load_pickle(tmp_path / "c.pkl")
