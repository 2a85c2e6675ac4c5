"""`cryoscape demo` (the README's first command) runs the whole pipeline and says how well it did."""

from __future__ import annotations

import numpy as np

from cryoscape.cli.main import main


def test_demo_runs_every_step_and_reports_the_latent_score(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-n", "200", "-D", "32", "--epochs", "2", "--zdim", "2", "--no-amp"]) == 0
    text = capsys.readouterr().out
    for step in ("simulate", "backproject", "train", "volumes"):
        assert f"$ cryoscape {step} " in text
    assert "--no-amp" in text
    assert "|Spearman| between latent PC1 and the true hinge coordinate:" in text
    assert (out / "backproject" / "consensus.mrc").is_file()
    assert np.load(out / "train" / "z.npy").shape == (200, 2)
    assert sorted(p.name for p in (out / "maps_pc1").glob("*.mrc")) == [f"vol_{i:04d}.mrc" for i in range(6)]
