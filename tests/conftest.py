"""Shared test helpers. Recorded data lives in tests/data (copied from ../shared/fixtures, see SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SOLANA = DATA / "solana"


@pytest.fixture
def solana_data() -> Path:
    return SOLANA
