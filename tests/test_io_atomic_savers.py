"""The array, text and figure savers used by analysis and plots go through the one atomic write
path: the file appears whole or not at all, and a full disk is one line naming the file."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from cryoscape.analysis.fsc import plot_fsc, save_fsc_txt
from cryoscape.errors import InputError
from cryoscape.io import atomic
from cryoscape.io.atomic import save_array, save_figure, save_text_array


def test_savers_write_what_numpy_and_matplotlib_would(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_array(tmp_path / "a.npy", a)
    save_text_array(tmp_path / "a.txt", a, fmt="%.2f", header="x")
    assert np.array_equal(np.load(tmp_path / "a.npy"), a)
    assert np.array_equal(np.loadtxt(tmp_path / "a.txt"), a)
    save_array(tmp_path / "named_as_given", a)  # no ".npy" appended to the name asked for
    assert np.array_equal(np.load(tmp_path / "named_as_given"), a)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    save_figure(tmp_path / "f.png", fig)
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.txt", "f.png", "named_as_given"]


def test_a_full_disk_names_the_output_and_leaves_nothing(tmp_path, monkeypatch):
    def full(_path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "_fsync_file", full)
    freqs, curves = np.linspace(0, 0.5, 8), {"fsc": np.linspace(1, 0, 8)}
    for write, name in (
        (lambda p: save_fsc_txt(p, freqs, curves, 2.0), "fsc.txt"),
        (lambda p: plot_fsc(p, freqs, curves, 2.0), "fsc.png"),
        (lambda p: save_array(p, np.zeros(3)), "z_pca.npy"),
    ):
        with pytest.raises(InputError) as e:
            write(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []
