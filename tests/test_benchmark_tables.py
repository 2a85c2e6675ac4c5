"""The generated CryoBench section of benchmarks/README.md matches the committed results files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _make_tables():
    spec = importlib.util.spec_from_file_location("make_tables", BENCH / "make_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_tables_are_up_to_date():
    assert _make_tables().main(["--check"]) == 0


def test_check_sees_a_stale_readme(tmp_path):
    mt = _make_tables()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{mt.BEGIN}\nold table\n{mt.END}\nafter\n")
    res = tmp_path / "results"
    res.mkdir()
    assert mt.main(["--check", "--readme", str(readme), "--results", str(res)]) == 1
    assert mt.main(["--readme", str(readme), "--results", str(res)]) == 0
    assert mt.main(["--check", "--readme", str(readme), "--results", str(res)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\nafter\n") and "(no results yet)" in text
    for p in (BENCH / "results" / "cryobench").glob("*.json"):  # committed results carry provenance
        prov = json.loads(p.read_text())["provenance"]
        assert prov["command"] and prov["git"]["commit"] and "cpu_model" in prov["machine"]


def test_prose_figures_must_come_from_a_generated_table():
    mt = _make_tables()
    readme = (
        "Intro: ran for 617 s, 4.9x sooner, PC1 0.956 and AUC 0.3657 at SNR 0.01.\n"
        "<!-- regime:begin -->\n| 617 | 4.9x | 0.956 |\n<!-- regime:end -->\n"
        "```bash\nrun --for 99.5 s\n```\nAnd `inline 12.5 s` is code.\n"
    )
    assert mt.untraced_figures(readme) == ["0.3657"]  # a setting (0.01) and code spans do not count
    assert mt.untraced_figures(readme.replace("0.3657", "0.956")) == []


def test_every_section_has_its_results_file():
    mt = _make_tables()
    text = (BENCH / "README.md").read_text()
    assert "(no results file yet" not in text
    assert mt.untraced_figures(text) == []


def test_results_files_are_written_alike(tmp_path):
    """``provenance.save_result``, the one writer of the benchmarks' results files: JSON with numpy
    figures as floats, a final newline, the folder made."""
    import numpy as np

    spec = importlib.util.spec_from_file_location("provenance", BENCH / "provenance.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = mod.save_result(tmp_path / "new" / "r.json", {"auc": np.float32(0.25), "rows": [1, 2]})
    text = path.read_text()
    assert text.endswith("}\n") and json.loads(text) == {"auc": 0.25, "rows": [1, 2]}
