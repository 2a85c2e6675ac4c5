"""--voltage/--cs/--amp-contrast: used only where the file lacks the value, and always reported."""

from __future__ import annotations

import numpy as np
import pytest
import starfile
from helpers import simulate_particles

from cryoscape.cli.main import main as cli
from cryoscape.errors import InputError
from cryoscape.io.load import load_particles
from cryoscape.io.optics import OpticsFill


def relion30_export(src_star, out, drop=("_rlnAmplitudeContrast",), cs=0.01):
    """What a common cryoSPARC -> RELION exporter writes: one data_ loop (RELION 3.0), optics
    columns per particle, no _rlnAmplitudeContrast, a near-zero Cs."""
    blocks = starfile.read(src_star, always_dict=True)
    parts, optics = blocks["particles"], blocks["optics"]
    for col in optics.columns:
        if col not in parts.columns and col not in ("rlnOpticsGroupName", "rlnImageSize", "rlnImageDimensionality"):
            parts[col] = optics[col].iloc[0]
    parts = parts.drop(columns=[c.lstrip("_") for c in drop] + ["rlnOpticsGroup"], errors="ignore")
    parts["rlnSphericalAberration"] = cs
    psize = parts.pop("rlnImagePixelSize")
    parts["rlnOriginX"] = parts.pop("rlnOriginXAngst") / psize
    parts["rlnOriginY"] = parts.pop("rlnOriginYAngst") / psize
    parts["rlnDetectorPixelSize"] = psize
    parts["rlnMagnification"] = 10000.0
    starfile.write({"": parts}, out, overwrite=True)
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("optics")
    star, _ = simulate_particles(tmp, n=48, D=16)
    return star, relion30_export(star, tmp / "export.star")


def test_missing_amplitude_contrast_names_column_and_flag(sim):
    with pytest.raises(InputError) as e:
        load_particles(sim[1])
    msg = str(e.value)
    assert msg.startswith(f"{sim[1]}: missing _rlnAmplitudeContrast needed for the CTF; pass --amp-contrast")


def test_fill_is_used_only_where_missing_and_reported(sim):
    pset = load_particles(sim[1], optics=OpticsFill(amp_contrast=0.07, voltage_kV=200.0))
    assert pset.info.star_version == "3.0"
    assert np.all(pset.ctf.amp_contrast == 0.07)
    assert np.all(pset.ctf.voltage_kV == 300.0)  # the file's, not the flag's
    assert np.all(pset.ctf.cs_mm == 0.01)
    assert pset.info.optics_filled == {"amp_contrast": 0.07}
    w = pset.info.warnings
    assert "amplitude contrast 0.07 from --amp-contrast: the file has no _rlnAmplitudeContrast" in w
    assert "--voltage 200 not used: the file gives _rlnVoltage" in w


def test_several_missing_are_named_together(sim, tmp_path):
    bad = relion30_export(sim[0], sim[0].parent / "x.star", drop=("_rlnAmplitudeContrast", "_rlnVoltage"))
    with pytest.raises(
        InputError, match=r"missing _rlnVoltage, _rlnAmplitudeContrast .* pass --voltage, --amp-contrast"
    ):
        load_particles(bad)
    pset = load_particles(bad, optics=OpticsFill(voltage_kV=300, amp_contrast=0.1))
    assert pset.info.optics_filled == {"voltage_kV": 300.0, "amp_contrast": 0.1}


def test_cs_file_without_optics_fields(fixtures_dir, tmp_path):
    import numpy.lib.recfunctions as rf

    arr = np.load(fixtures_dir / "cryosparc_P12_J24_001_particles.cs")
    np.save(tmp_path / "p.npy", rf.drop_fields(arr, ["ctf/amp_contrast", "ctf/cs_mm"]), allow_pickle=False)
    (tmp_path / "p.npy").rename(tmp_path / "p.cs")
    with pytest.raises(InputError, match=r"missing ctf/cs_mm, ctf/amp_contrast .* pass --cs, --amp-contrast"):
        load_particles(tmp_path / "p.cs", box=180, need_box=False)
    pset = load_particles(tmp_path / "p.cs", box=180, optics=OpticsFill(cs_mm=2.7, amp_contrast=0.1))
    assert np.all(pset.ctf.cs_mm == 2.7) and np.all(pset.ctf.amp_contrast == 0.1)


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--voltage", "-3", "--voltage must be in kV"),
        ("--amp-contrast", "1.5", "--amp-contrast must be a fraction"),
        ("--cs", "nan", "--cs must be in mm"),
    ],
)
def test_bad_values_are_refused(sim, capsys, flag, value, words):
    assert cli(["info", str(sim[1]), flag, value]) == 2
    assert words in capsys.readouterr().err


def test_info_reports_the_fill(sim, capsys):
    assert cli(["info", str(sim[1]), "--amp-contrast", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "amplitude contrast: 0.1" in out
    assert "not in the file, given on the command line: amplitude contrast 0.1 (--amp-contrast)" in out


def test_every_particle_command_has_the_flags():
    from cryoscape.cli.main import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    for name in ("info", "convert", "downsample", "backproject", "train"):
        opts = {o for a in sub[name]._actions for o in a.option_strings}
        assert {"--voltage", "--cs", "--amp-contrast"} <= opts, name


def test_relion30_export_trains_after_one_flag(sim, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        str(sim[1]),
        "-o",
        str(out),
        "--zdim",
        "1",
        "-n",
        "1",
        "--enc-width",
        "16",
        "--dec-width",
        "16",
        "--enc-depth",
        "1",
        "--dec-depth",
        "1",
        "--threads",
        "1",
    ]
    assert cli(args) == 2
    assert "pass --amp-contrast" in capsys.readouterr().err
    assert cli([*args, "--amp-contrast", "0.1"]) == 0
    err = capsys.readouterr().err
    assert "warning: amplitude contrast 0.1 from --amp-contrast: the file has no _rlnAmplitudeContrast" in err
    assert (out / "weights.0.pt").is_file()
    import yaml

    fp = yaml.safe_load((out / "config.yaml").read_text())["data"]["fingerprint"]
    assert fp["optics_filled"] == {"amp_contrast": 0.1}  # the run records the value it used
    assert cli([*args, "-n", "2", "--amp-contrast", "0.07"]) == 2  # resuming with another value
    err = capsys.readouterr().err
    assert "optics given on the command line: {'amp_contrast': 0.1} -> {'amp_contrast': 0.07}" in err


def test_no_ctf_needs_no_optics(sim):
    """--no-ctf: the CTF is not read, so a file's missing optics do not matter."""
    pset = load_particles(sim[1], use_ctf=False)
    assert pset.ctf is None and pset.rotations is not None
    with pytest.raises(InputError, match="--ctf and --no-ctf contradict"):
        load_particles(sim[1], use_ctf=False, ctf=sim[1])
