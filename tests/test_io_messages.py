"""Corrupt, lying and misplaced inputs: one line naming the file (or option) and the problem,
exit status 2, never a traceback and never silent acceptance."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from cryoscape.cli.main import main as cli
from cryoscape.errors import InputError
from cryoscape.io.load import load_particles


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith(f"cryoscape {command}: error: "), err
    return last


@pytest.fixture
def empiar(tmp_path, fixtures_dir):
    """The RELION 3.0 EMPIAR star and its stack, copied so they can be damaged."""
    for name in ("empiar_10076_7.star", "empiar_10076_7.mrc"):
        shutil.copy(fixtures_dir / name, tmp_path / name)
    return tmp_path / "empiar_10076_7.star"


def _rewrite(star, fn) -> None:
    star.write_text(fn(star.read_text()))


def test_duplicated_star_column(empiar, capsys):
    def dup(text):
        text = text.replace("_rlnDetectorPixelSize #10\n", "_rlnDetectorPixelSize #10\n_rlnDefocusU #11\n")
        return "\n".join(ln + " 15000" if "@" in ln else ln for ln in text.splitlines()) + "\n"

    _rewrite(empiar, dup)
    assert cli(["info", str(empiar)]) == 2
    assert _one_error_line(capsys, "info").endswith(
        f"{empiar}: column _rlnDefocusU appears twice in data_ (columns #3 and #11)"
    )


def test_non_numeric_column_names_file_column_and_row(empiar, capsys):
    _rewrite(empiar, lambda t: t.replace("3@empiar_10076_7.mrc 3 15150.7", "3@empiar_10076_7.mrc 3 abc"))
    assert cli(["info", str(empiar)]) == 2
    assert _one_error_line(capsys, "info").endswith(
        f"{empiar}: column _rlnDefocusU is not numeric: row 3 of the particle table has 'abc'"
    )


def test_empty_particle_table(empiar, capsys):
    _rewrite(empiar, lambda t: "\n".join(ln for ln in t.splitlines() if "@" not in ln) + "\n")
    with pytest.raises(InputError, match="no particles: the particle table is empty"):
        load_particles(empiar)
    assert cli(["backproject", str(empiar), "-o", str(empiar.parent / "m.mrc")]) == 2
    assert "no particles" in _one_error_line(capsys, "backproject")


def test_stack_header_undercounting_its_images(empiar, capsys):
    stack = empiar.parent / "empiar_10076_7.mrc"
    raw = bytearray(stack.read_bytes())
    raw[8:12] = struct.pack("<i", 5)  # the file holds 7
    stack.write_bytes(bytes(raw))
    assert cli(["info", str(stack)]) == 2
    line = _one_error_line(capsys, "info")
    assert f"{stack}: the header says 5 sections of 320x320 but the file holds 7" in line


def test_folders_are_called_folders(tmp_path, capsys, fixtures_dir):
    for name in ("d.star", "d.cs", "d.mrcs", "d.txt", "d.pkl"):
        (tmp_path / name).mkdir()
        assert cli(["info", str(tmp_path / name)]) == 2
        line = _one_error_line(capsys, "info")
        assert "is a folder" in line and "not found" not in line, line
    toy = str(fixtures_dir / "toy_projections.mrcs")
    for opt in ("--poses", "--ctf", "--ind"):
        assert cli(["info", toy, opt, str(tmp_path / "d.pkl")]) == 2
        assert f"{tmp_path / 'd.pkl'}: is a folder" in _one_error_line(capsys, "info")


def test_stack_that_is_a_folder_is_named(empiar, capsys):
    stack = empiar.parent / "empiar_10076_7.mrc"
    stack.unlink()
    stack.mkdir()
    assert cli(["backproject", str(empiar), "-o", str(empiar.parent / "m.mrc")]) == 2
    assert f"image stack {stack} is a folder" in _one_error_line(capsys, "backproject")


def test_broken_stack_is_reported_under_its_own_name(empiar):
    stack = empiar.parent / "empiar_10076_7.mrc"
    stack.write_bytes(stack.read_bytes()[:5000])  # truncated
    with pytest.raises(InputError) as e:
        load_particles(empiar, images="require")
    assert e.value.path == str(stack) and "truncated" in str(e.value)
    pset = load_particles(empiar, need_box=False)  # optional: a warning, which names the stack too
    assert any(str(stack) in w and "truncated" in w for w in pset.info.warnings)


def test_config_that_is_not_text(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_bytes(bytes(range(256)) * 4)
    (run / "z.npy").write_bytes(b"")
    assert cli(["volumes", str(run), "-o", str(tmp_path / "v")]) == 2
    assert f"{run / 'config.yaml'}: not a text file" in _one_error_line(capsys, "volumes")
    from cryoscape.train.config import load_config

    with pytest.raises(InputError, match=r"config.yaml: not a cryoscape training config"):
        load_config(run)


def test_ctf_with_no_ctf_is_refused(tmp_path, capsys, fixtures_dir):
    assert (
        cli(
            [
                "train",
                str(fixtures_dir / "toy_projections.mrcs"),
                "--ctf",
                str(fixtures_dir / "test_ctf.pkl"),
                "--no-ctf",
                "-o",
                str(tmp_path / "run"),
                "--zdim",
                "1",
            ]
        )
        == 2
    )
    assert "--ctf and --no-ctf contradict each other" in _one_error_line(capsys, "train")
    assert not (tmp_path / "run").exists()


def test_traverse_does_not_skip_its_maps_silently(tmp_path, capsys):
    """A cryoDRGN run has latents but no cryoscape weights: say so under traverse's own name."""
    import pickle

    run = tmp_path / "drgn"
    run.mkdir()
    (run / "z.9.pkl").write_bytes(pickle.dumps(np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)))
    out = tmp_path / "path"
    assert cli(["traverse", str(run), "--pc", "1", "-n", "3", "-o", str(out)]) == 2
    line = _one_error_line(capsys, "traverse")
    assert "cannot make maps" in line and "--skip-maps" in line and "analyze" not in line
    assert not out.exists()
    assert cli(["traverse", str(run), "--pc", "1", "-n", "3", "-o", str(out), "--skip-maps"]) == 0
    assert np.loadtxt(out / "z.path.txt").shape == (3, 2)
    assert "cryoscape traverse: wrote 3 codes" in capsys.readouterr().err


def test_output_over_an_input_folder_name(tmp_path, capsys, fixtures_dir):
    """An output path that is an existing folder: named as the output, not as a temp file."""
    (tmp_path / "out.star").mkdir()
    assert cli(["convert", str(fixtures_dir / "relion31.star"), "-o", str(tmp_path / "out.star")]) == 2
    line = _one_error_line(capsys, "convert")
    assert f"{tmp_path / 'out.star'}: is a folder" in line and ".tmp" not in line
