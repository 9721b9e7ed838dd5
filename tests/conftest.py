"""Shared test helpers. Recorded data lives in tests/data (copied from ../shared/fixtures, see SOURCES.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not flake); widen a search locally with
# `pytest --hypothesis-seed=N` or HYPOTHESIS_PROFILE=explore.
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

DATA = Path(__file__).parent / "data"
SOLANA = DATA / "solana"


@pytest.fixture
def solana_data() -> Path:
    return SOLANA


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """A test that configures structlog (the CLI run in-process does) must not change the next one's."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
