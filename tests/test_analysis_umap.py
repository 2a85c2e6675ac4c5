"""`cryoscape analyze` with and without umap-learn: the embedding keeps clusters apart, its files
and plot are written, and a missing umap-learn costs one clear line."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest


def fake_run(tmp_path, n_per: int = 100, zdim: int = 6):
    """A run folder with only ``z.npy``: three well-separated clusters (maps are skipped)."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (3, zdim))
    centres *= 6 / np.linalg.norm(centres, axis=1, keepdims=True)
    z = np.concatenate([c + rng.normal(0, 0.4, (n_per, zdim)) for c in centres]).astype(np.float32)
    run = tmp_path / "run"
    run.mkdir()
    np.save(run / "z.npy", z)
    return run, np.repeat(np.arange(3), n_per)


def analyze(run, out, *extra) -> int:
    from cryoscape.cli import analyze as cmd

    p = argparse.ArgumentParser()
    cmd.add_args(p)
    return cmd.main(p.parse_args([str(run), "-o", str(out), "--ksample", "3", "--pc", "1", *extra]))


@pytest.mark.slow  # numba compiles UMAP once per process: ~10 s
def test_umap_embedding_keeps_clusters_apart(tmp_path):
    pytest.importorskip("umap")
    from sklearn.metrics import adjusted_rand_score

    from cryoscape.analysis.latent import kmeans

    run, truth = fake_run(tmp_path)
    out = tmp_path / "an"
    assert analyze(run, out) == 0
    emb = np.load(out / "umap.npy")
    assert emb.shape == (len(truth), 2) and np.isfinite(emb).all()
    assert adjusted_rand_score(truth, kmeans(emb, 3, seed=0).labels) >= 0.95
    png = out / "umap.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "UMAP, kmeans3 centres numbered" in (out / "report.html").read_text()


def test_missing_umap_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` fails as if not installed
    with pytest.raises(ImportError):
        import umap  # noqa: F401
    run, _ = fake_run(tmp_path, n_per=30)
    out = tmp_path / "an"
    assert analyze(run, out) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.replace(str(tmp_path), "TMP").splitlines() if "umap" in ln.lower()]
    assert len(lines) == 1, err
    assert "umap-learn is not installed" in lines[0] and "PCA" in lines[0] and "Traceback" not in err
    assert not (out / "umap.npy").exists() and not (out / "umap.png").exists()
    assert (out / "z_pca.png").is_file() and (out / "report.html").is_file()


def test_installed_but_broken_umap_is_one_line_error(monkeypatch):
    """umap-learn present but failing to import (e.g. a numba mismatch) -> one InputError line."""
    import sys

    import numpy as np
    import pytest

    from cryoscape.analysis import latent
    from cryoscape.errors import InputError

    monkeypatch.setattr(latent, "umap_available", lambda: True)
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` raise ImportError
    with pytest.raises(InputError, match=r"does not import.*--skip-umap") as e:
        latent.umap_embedding(np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32))
    assert "\n" not in str(e.value)
