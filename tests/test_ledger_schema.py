"""Migrations: they create exactly the models, ship inside the package, migrate an empty database once
even when several processes start together, and refuse databases they do not know.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import indexer.store  # noqa: F401 - the indexer's tables are on the same MetaData and in the same chain
import ledger_client
import reconcile.proof_runs  # its tables: chain reconciliation and audit runs (issue 9), same chain
import reconcile.runs  # noqa: F401 - its table is on the ledger's MetaData and in the migration chain
from ledger_client import Ledger, SchemaError
from ledger_client.migrate import MIGRATIONS, SchemaState, head_revision, schema_state
from ledger_client.schema import LEDGER_TABLES, metadata
from tests import pg
from tests.pg import PgServer

HEAD = "0005_reconcile_proof_runs"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = pg.unique_name("ledger_empty")
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


def test_the_migrations_create_exactly_the_models(ledger: Ledger) -> None:
    with ledger.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_an_empty_database_is_migrated_on_first_use_and_only_then(empty_url: str) -> None:
    with Ledger.open(empty_url) as ledger:
        assert ledger.ensure_schema() is True
        assert ledger.ensure_schema() is False
        assert ledger.upgrade() == (head_revision(), head_revision())
        with ledger.engine.connect() as connection:
            assert schema_state(connection) == (SchemaState.CURRENT, head_revision())
            assert {t.name for t in LEDGER_TABLES} <= set(inspect(connection).get_table_names())


def test_processes_starting_together_on_an_empty_database_migrate_it_once(empty_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            with Ledger.open(empty_url) as ledger:
                barrier.wait(timeout=30)
                ledger.ensure_schema()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with Ledger.open(empty_url) as ledger, ledger.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]


def test_an_unknown_revision_or_unmanaged_tables_are_refused(empty_url: str) -> None:
    with Ledger.open(empty_url) as ledger:
        ledger.upgrade()
        with ledger.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
        with pytest.raises(SchemaError, match="0099_from_the_future"):
            ledger.ensure_schema()
        with pytest.raises(SchemaError, match="unknown to this program"):
            ledger.upgrade()
        with ledger.engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
        with pytest.raises(SchemaError, match="no Alembic version"):
            ledger.ensure_schema()


def test_migrations_ship_inside_the_package() -> None:
    package = Path(ledger_client.__file__).parent
    assert package / "migrations" == MIGRATIONS
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "script.py.mako").is_file()
    # Subpackages (with __init__.py) are found by setuptools; the .mako template is package data.
    assert (MIGRATIONS / "__init__.py").is_file()
    assert (MIGRATIONS / "versions" / "__init__.py").is_file()
    assert (MIGRATIONS / "versions" / "0001_ledger.py").is_file()
    pyproject = (package.parent / "pyproject.toml").read_text()
    assert '"*.mako"' in pyproject


def test_the_chain_has_one_head() -> None:
    # One chain for the whole database: the ledger, the indexer (issue 5), the Stripe runs (7), the daemon (6),
    # the chain reconciliation and audit runs (9).
    assert head_revision() == HEAD
