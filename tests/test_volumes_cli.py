"""`cryoscape volumes` and the analysis.volumes library on a hand-built training run folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from cryoscape.analysis.volumes import (
    generate_volumes,
    load_run,
    mirror_z,
    read_latents,
)
from cryoscape.cli.main import main
from cryoscape.errors import InputError
from cryoscape.io.mrc import read_volume
from cryoscape.model.config import ModelConfig
from cryoscape.model.vae import ReconModel

PSIZE_A, STD = 2.5, 3.0


def _make_run(path, zdim: int = 2, D: int = 16, epochs=(None,)) -> ReconModel:
    """A run folder in the documented format: config.yaml + weights[.<epoch>].pt."""
    torch.manual_seed(zdim)
    cfg = ModelConfig(D=D, zdim=zdim, enc_width=16, enc_depth=1, dec_width=32, dec_depth=2)
    model = ReconModel(cfg).eval()
    path.mkdir()
    conf = {"model": cfg.to_dict(), "data": {"psize_A": PSIZE_A, "norm": [0.0, STD], "D": D}, "train": {"epochs": 1}}
    (path / "config.yaml").write_text(yaml.safe_dump(conf))
    for e in epochs:
        ckpt = {
            "model_config": cfg.to_dict(),
            "model_state": model.state_dict(),
            "epoch": e or 0,
            "optimizer_state": {},
            "norm": [0.0, STD],
        }
        torch.save(ckpt, path / ("weights.pt" if e is None else f"weights.{e}.pt"))
    return model


def test_writes_one_map_per_row_in_order_in_data_units(tmp_path, capsys):
    model = _make_run(tmp_path / "run")
    zs = np.array([[0.0, 0.0], [1.0, -1.0], [-2.0, 0.5]], np.float32)
    np.savetxt(tmp_path / "z.txt", zs)
    rc = main(["volumes", str(tmp_path / "run"), "--z", str(tmp_path / "z.txt"), "-o", str(tmp_path / "maps")])
    assert rc == 0 and "wrote 3 map(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["vol_0000.mrc", "vol_0001.mrc", "vol_0002.mrc"]
    for i, z in enumerate(zs):
        vol, psize = read_volume(tmp_path / "maps" / f"vol_{i:04d}.mrc")
        assert psize == pytest.approx(PSIZE_A)
        expect = model.eval_volume(torch.from_numpy(z)).numpy() * STD
        np.testing.assert_allclose(vol, expect, atol=1e-5 * np.abs(expect).max())


def test_flip_invert_downsample_epoch_and_npy(tmp_path):
    model = _make_run(tmp_path / "run", epochs=(None, 4))
    z = np.array([0.3, -0.7], np.float32)
    np.save(tmp_path / "z.npy", z[None])
    run, out = str(tmp_path / "run"), tmp_path / "m"
    assert (
        main(
            [
                "volumes",
                run,
                "--z",
                str(tmp_path / "z.npy"),
                "-o",
                str(out),
                "--epoch",
                "4",
                "--flip",
                "--invert",
                "--downsample",
                "8",
                "--apix",
                "1.5",
            ]
        )
        == 0
    )
    vol, psize = read_volume(out / "vol_0000.mrc")
    assert vol.shape == (8, 8, 8) and psize == pytest.approx(1.5 * 16 / 8)
    expect = -mirror_z(model.eval_volume(torch.from_numpy(z), D=8).numpy() * STD)
    np.testing.assert_allclose(vol, expect, atol=1e-5 * np.abs(expect).max())


def test_mirror_keeps_the_box_centre():
    vol = np.zeros((8, 8, 8), np.float32)
    vol[4, 1, 2], vol[6, 3, 3] = 1, 2  # z = 0 and z = +2
    m = mirror_z(vol)
    assert m[4, 1, 2] == 1 and m[2, 3, 3] == 2 and m.sum() == 3


def test_homogeneous_model_needs_no_z(tmp_path):
    model = _make_run(tmp_path / "run", zdim=0)
    assert main(["volumes", str(tmp_path / "run"), "-o", str(tmp_path / "maps")]) == 0
    vol, _ = read_volume(tmp_path / "maps" / "vol_0000.mrc")
    np.testing.assert_allclose(vol, model.eval_volume().numpy() * STD, atol=1e-5)
    assert len(list((tmp_path / "maps").iterdir())) == 1


def test_single_row_text_file_and_generate_volumes(tmp_path):
    model = _make_run(tmp_path / "run")
    (tmp_path / "z.txt").write_text("0.5 0.25\n")
    zs = read_latents(tmp_path / "z.txt", 2)
    assert zs.shape == (1, 2)
    run = load_run(tmp_path / "run")
    assert run.psize_A == PSIZE_A and run.norm_std == STD
    many = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    vols = list(generate_volumes(run.model, many, batch=2, scale=2.0))
    assert len(vols) == 5
    np.testing.assert_allclose(vols[3], 2.0 * model.eval_volume(torch.from_numpy(many[3])).numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--z", "Z3"], "rows of 2 values"),
        ([], "give latents with --z"),
        (["--z", "Z2", "--epoch", "9"], "no weights.9.pt"),
        (["--z", "Z2", "--downsample", "7"], "--downsample 7"),
        (["--z", "missing.txt"], "latent file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    _make_run(tmp_path / "run")
    np.savetxt(tmp_path / "Z3", np.zeros((2, 3)))
    np.savetxt(tmp_path / "Z2", np.zeros((2, 2)))
    args = [str(tmp_path / a) if a in ("Z3", "Z2", "missing.txt") else a for a in args]
    rc = main(["volumes", str(tmp_path / "run"), "-o", str(tmp_path / "maps"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1 and err.startswith("cryoscape volumes: error:")


def test_not_a_run_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"config.yaml"):
        load_run(tmp_path / "empty")
