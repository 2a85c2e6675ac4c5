"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures`` (files written by RELION, cryoSPARC, cryoDRGN); skip if absent."""
    if not (FIXTURES / "README.md").exists():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES
