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
