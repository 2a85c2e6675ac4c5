"""docs/api.md runs: every ```python block, in order, in one namespace, in an empty folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a markdown text, in order."""
    return BLOCK.findall(text)


def test_blocks_are_found():
    blocks = python_blocks(API_MD.read_text())
    assert len(blocks) >= 7
    assert all(b.strip() for b in blocks)


@pytest.mark.slow
def test_api_page_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_api"}
    for i, block in enumerate(python_blocks(API_MD.read_text())):
        code = compile(block, f"{API_MD.name}, python block {i + 1}", "exec")
        exec(code, namespace)  # the page's own examples
    # what the page says its steps leave behind
    for name in (
        "sim/particles.star",
        "run1/z.npy",
        "cluster0.mrc",
        "pc1/vol_0004.mrc",
        "sel/cluster0.pkl",
        "sel/cluster0.star",
        "sel/cluster0.cs",
        "sel/pc1_high.star",
    ):
        assert (tmp_path / name).is_file(), name
    assert namespace["apix"] == pytest.approx(namespace["run"].psize_A)
    assert "sim/particles.star" in capsys.readouterr().out
