"""Property-based fuzzing of every reader of user files: star, cs, MRC headers, pickles.

The property: a reader either parses (returns its result) or raises InputError — never another
exception, which would reach the user as a traceback. Inputs are real fixture files damaged at
random (lines dropped, doubled or garbled, bytes flipped, truncated) plus fully random ones.
Derandomized so CI sees the same examples each run; about 25 s in all on one core.
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cryoscape.errors import InputError  # noqa: E402
from cryoscape.io.cryodrgn import read_ctf, read_index, read_poses  # noqa: E402
from cryoscape.io.cs import read_cs  # noqa: E402
from cryoscape.io.load import load_particles  # noqa: E402
from cryoscape.io.mrc import open_stack, read_header, read_volume  # noqa: E402
from cryoscape.io.star import read_star  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
pytestmark = pytest.mark.skipif(not (FIXTURES / "README.md").exists(), reason="shared fixtures absent")

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def parses_or_input_error(fn, *args, **kwargs) -> None:
    """The property itself: anything but InputError escaping ``fn`` fails the test."""
    try:
        fn(*args, **kwargs)
    except InputError as e:
        assert str(e) and "\n" not in str(e), repr(str(e))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# star --------------------------------------------------------------------------------------------
STAR_TEXTS = [
    (FIXTURES / n).read_text() if (FIXTURES / n).exists() else ""
    for n in ("relion31.star", "empiar_10076_7.star", "relion31.6opticsgroups.star", "toy_projections.star")
]
TOKENS = [
    "",
    "loop_",
    "data_",
    "data_optics",
    "data_particles",
    "_rlnDefocusU #1",
    "_rlnImageName",
    "_rlnOpticsGroup",
    "nan",
    "inf",
    "-1",
    "0",
    "1e999",
    "abc",
    "#",
    "\x00",
    "é",
    '"',
    "1@x.mrcs",
]


@st.composite
def damaged_star(draw) -> str:
    text = draw(st.sampled_from(STAR_TEXTS))
    lines = text.splitlines()[:60]
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "garble", "token", "split"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "garble":
            words = lines[i].split() or [""]
            j = draw(st.integers(0, len(words) - 1))
            words[j] = draw(st.sampled_from(TOKENS) | st.text(max_size=8))
            lines[i] = " ".join(words)
        elif op == "token":
            lines.insert(i, draw(st.sampled_from(TOKENS)))
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=damaged_star())
def test_star_reader(work, text):
    path = work / "f.star"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    parses_or_input_error(read_star, path, images="optional")
    parses_or_input_error(load_particles, path, need_box=False, optics=None)


@FUZZ
@given(data=st.binary(max_size=400))
def test_star_reader_random_bytes(work, data):
    path = work / "r.star"
    path.write_bytes(data)
    parses_or_input_error(read_star, path, images="skip")


# cs ----------------------------------------------------------------------------------------------
CS = np.load(FIXTURES / "cryosparc_P12_J24_001_particles.cs") if (FIXTURES / "README.md").exists() else None


@st.composite
def damaged_cs(draw) -> bytes:
    names = list(CS.dtype.names)
    keep = draw(st.lists(st.sampled_from(names), min_size=0, max_size=len(names), unique=True))
    n = draw(st.integers(0, 6))
    arr = CS[:n][keep] if keep else np.zeros(n, [("x", "<f4")])
    arr = np.array(arr, dtype=[(k, arr.dtype[k]) for k in arr.dtype.names]) if keep else arr
    if keep and draw(st.booleans()):  # one field turned into text
        k = draw(st.sampled_from(keep))
        dt = [(f, "S8" if f == k else arr.dtype[f]) for f in arr.dtype.names]
        out = np.zeros(n, dt)
        for f in arr.dtype.names:
            if f != k:
                out[f] = arr[f]
        arr = out
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    raw = bytearray(buf.getvalue())
    for _ in range(draw(st.integers(0, 3))):  # flipped bytes, header included
        if raw:
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[:cut] if draw(st.booleans()) else raw)


@FUZZ
@given(data=damaged_cs(), box=st.sampled_from([None, 180, 0]))
def test_cs_reader(work, data, box):
    path = work / "f.cs"
    path.write_bytes(data)
    parses_or_input_error(read_cs, path, images="optional", box=box)
    parses_or_input_error(load_particles, path, box=box or None, need_box=False)


# MRC headers ------------------------------------------------------------------------------------
HEADER_FIELDS = {"nx": 0, "ny": 4, "nz": 8, "mode": 12, "mx": 28, "cella_x": 40, "mapc": 64, "nsymbt": 92, "stamp": 212}


@st.composite
def damaged_mrc(draw) -> bytes:
    base = FIXTURES / draw(st.sampled_from(["relion31.mrcs", "hand-vol.mrc", "toy_projections.mrcs"]))
    raw = bytearray(base.read_bytes()[: 1024 + 4 * 64 * 64 * 2])
    for _ in range(draw(st.integers(1, 4))):
        off = HEADER_FIELDS[draw(st.sampled_from(list(HEADER_FIELDS)))]
        if off == 212:
            raw[212] = draw(st.sampled_from([0x44, 0x41, 0x11, 0x00, 0xFF]))
        elif off == 40:
            raw[40:44] = struct.pack("<f", draw(st.floats(allow_nan=True, allow_infinity=True, width=32)))
        else:
            raw[off : off + 4] = struct.pack("<i", draw(st.integers(-(2**31), 2**31 - 1) | st.integers(-2, 70)))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[:cut] if draw(st.booleans()) else raw)


@FUZZ
@given(data=damaged_mrc())
def test_mrc_header_reader(work, data):
    path = work / "f.mrcs"
    path.write_bytes(data)
    parses_or_input_error(read_header, path)
    try:
        stack = open_stack(path)
    except InputError:
        return
    assert stack.shape[0] >= 1  # a header that validates maps the data it promises
    parses_or_input_error(read_volume, path)
    parses_or_input_error(load_particles, path, need_box=False)


@FUZZ
@given(data=st.binary(min_size=0, max_size=1300))
def test_mrc_random_bytes(work, data):
    path = work / "r.mrc"
    path.write_bytes(data)
    parses_or_input_error(read_header, path)


# pickles ----------------------------------------------------------------------------------------
arrays = st.builds(
    lambda shape, kind: np.zeros(shape, kind),
    st.lists(st.integers(0, 4), max_size=3).map(tuple),
    st.sampled_from(["f4", "f8", "i8", "u1", "c8", "S3"]),
)
leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | arrays
objects = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
PICKLES = [
    (FIXTURES / n).read_bytes()
    for n in ("toy_rot_trans.pkl", "test_ctf.pkl", "hand_rot.pkl")
    if (FIXTURES / n).exists()
]


@st.composite
def damaged_pickle(draw) -> bytes:
    kind = draw(st.sampled_from(["object", "fixture", "bytes"]))
    if kind == "object":
        return pickle.dumps(draw(objects), protocol=draw(st.sampled_from([2, 4, 5])))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    raw = bytearray(draw(st.sampled_from(PICKLES))[:2000])
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(raw) - 1))
        raw[i] = draw(st.integers(0, 255))
    return bytes(raw[: draw(st.integers(0, len(raw)))])


@FUZZ
@given(data=damaged_pickle())
def test_pickle_readers(work, data):
    path = work / "f.pkl"
    path.write_bytes(data)
    for reader in (read_poses, read_ctf, read_index):
        parses_or_input_error(reader, path)
