"""Shared test helpers. Recorded data lives in tests/data (copied from ../shared/fixtures, see SOURCES.md)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import settings

from ledger_client import Ledger
from tests import pg
from tests.pg import PgServer

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


# --- ledger databases: SQLite files and PostgreSQL databases, fresh for every test ---


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """127.0.0.1:5432 when it answers, else a throwaway server started for this session (tests/pg.py)."""
    server = pg.session_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> Iterator[str]:
    """A database migrated once per session; each test's database is a copy of it."""
    name = pg.unique_name("ledger_template")
    url = pg_server.create_database(name)
    try:
        with Ledger.open(url) as ledger:
            ledger.upgrade()
        yield name
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def pg_url(pg_server: PgServer, pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test (dropped afterwards)."""
    name = pg.unique_name("ledger_test")
    url = pg_server.create_database(name, template=pg_template)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger-template") / "ledger.db"
    with Ledger.open(f"sqlite:///{path}") as ledger:
        ledger.upgrade()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite ledger file for this test."""
    path = tmp_path / "ledger.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """The contract suite's database: each test runs once on SQLite and once on PostgreSQL."""
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger.open(ledger_url) as opened:
        yield opened
