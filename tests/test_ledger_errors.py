"""Foreign errors become ledger errors in one place (`database.translate_errors`), and the mapping is complete.

The completeness test raises every exception class psycopg, sqlite3, SQLAlchemy and Alembic define
inside the translator; the other tests provoke the real failures (a locked SQLite file, a unique
violation, a missing table, a refused connection) and check each lands on the right class.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import alembic.util.exc
import psycopg
import psycopg.errors
import pytest
import sqlalchemy.exc
from sqlalchemy import text

from ledger_client import (
    DatabaseError,
    DatabaseUnavailableError,
    IntegrityViolationError,
    InvalidInputError,
    Ledger,
    LedgerError,
    SchemaError,
    SerializationConflictError,
    TransientDatabaseError,
)
from ledger_client.database import classify, create_engine_for, translate_errors
from tests.pg import free_port


def _all_subclasses(root: type[BaseException]) -> Iterator[type[BaseException]]:
    seen: set[type[BaseException]] = set()
    todo = [root]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.add(cls)
            todo.extend(cls.__subclasses__())
    yield from sorted(seen, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _build(cls: type[BaseException]) -> BaseException:
    """An instance of any of the foreign classes, whatever its constructor wants."""
    candidates: list[tuple[Any, ...]] = [
        ("boom",),
        ("SELECT 1", {}, Exception("boom")),
        ("boom", "SELECT 1", {}, Exception("boom")),
    ]
    candidates += [("boom",) * count for count in range(2, 7)]
    candidates += [(None,) * count for count in range(2, 7)]
    for args in candidates:
        try:
            built = cls(*args)
            str(built)
        except (TypeError, AttributeError):
            continue
        return built
    raise AssertionError(f"cannot build {cls}")


FOREIGN_ROOTS = (sqlalchemy.exc.SQLAlchemyError, psycopg.Error, sqlite3.Error, alembic.util.exc.CommandError)


@pytest.mark.parametrize("root", FOREIGN_ROOTS, ids=lambda r: f"{r.__module__}.{r.__name__}")
def test_every_foreign_error_class_becomes_a_ledger_error_raised_from_it(root: type[BaseException]) -> None:
    classes = list(_all_subclasses(root))
    assert len(classes) > (200 if root is psycopg.Error else 2)  # psycopg has one class per SQLSTATE
    for cls in classes:
        original = _build(cls)
        with pytest.raises(LedgerError) as caught, translate_errors():
            raise original
        assert caught.value.__cause__ is original, cls
        assert "\n" not in str(caught.value), cls  # one line: no statement, no parameters


def test_ledger_errors_and_unrelated_errors_pass_through_untouched() -> None:
    mine = SchemaError("already ours")
    with pytest.raises(SchemaError) as caught, translate_errors():
        raise mine
    assert caught.value is mine
    with pytest.raises(KeyError), translate_errors():
        raise KeyError("a bug is not a database failure")


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("40001", SerializationConflictError),  # serialization_failure
        ("40P01", SerializationConflictError),  # deadlock_detected
        ("55P03", SerializationConflictError),  # lock_not_available (lock_timeout)
        ("57P01", DatabaseUnavailableError),  # admin_shutdown (pg_terminate_backend)
        ("57P03", DatabaseUnavailableError),  # cannot_connect_now (starting up)
        ("08006", DatabaseUnavailableError),  # connection_failure
        ("53300", DatabaseUnavailableError),  # too_many_connections
        ("23505", IntegrityViolationError),  # unique_violation
        ("23503", IntegrityViolationError),  # foreign_key_violation
        ("42P01", SchemaError),  # undefined_table
        ("42703", SchemaError),  # undefined_column
        ("57014", DatabaseError),  # query_canceled (statement_timeout): not retried
        ("22003", DatabaseError),  # numeric_value_out_of_range
    ],
)
def test_postgresql_errors_are_classified_by_sqlstate(sqlstate: str, expected: type[LedgerError]) -> None:
    original = psycopg.errors.lookup(sqlstate)("server said no")
    wrapped = sqlalchemy.exc.OperationalError("SELECT secret_column FROM t WHERE x = %(x)s", {"x": "p@ss"}, original)
    for error in (original, wrapped):
        mapped = classify(error)
        assert type(mapped) is expected
        assert "secret_column" not in str(mapped) and "p@ss" not in str(mapped)


def test_a_lost_connection_without_sqlstate_is_unavailable_and_transient() -> None:
    lost = psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
    assert isinstance(classify(lost), DatabaseUnavailableError)
    invalidated = sqlalchemy.exc.OperationalError("SELECT 1", {}, lost, connection_invalidated=True)
    assert isinstance(classify(invalidated), DatabaseUnavailableError)
    assert isinstance(classify(sqlalchemy.exc.TimeoutError("QueuePool limit reached")), TransientDatabaseError)
    assert not isinstance(classify(sqlalchemy.exc.ArgumentError("bad")), TransientDatabaseError)


def test_a_real_locked_sqlite_database_is_a_transient_conflict(tmp_path: Any) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as raw:
            other.execute("BEGIN IMMEDIATE")
        assert isinstance(classify(raw.value), SerializationConflictError)
        holder.execute("ROLLBACK")
        holder.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        holder.execute("INSERT INTO t VALUES ('a')")
        with pytest.raises(sqlite3.IntegrityError) as duplicate:
            holder.execute("INSERT INTO t VALUES ('a')")
        assert isinstance(classify(duplicate.value), IntegrityViolationError)
        with pytest.raises(sqlite3.OperationalError) as missing:
            holder.execute("SELECT * FROM no_such_table")
        assert isinstance(classify(missing.value), SchemaError)
    finally:
        holder.close()
        other.close()


def test_a_sqlite_file_that_cannot_be_opened_fails_without_retrying(tmp_path: Any) -> None:
    with (
        Ledger.open(f"sqlite:///{tmp_path}/missing-folder/ledger.db", max_attempts=5) as ledger,
        pytest.raises(DatabaseError) as caught,
    ):
        ledger.balance("agt_a")
    assert not isinstance(caught.value, TransientDatabaseError)
    assert "unable to open database file" in str(caught.value)


@pytest.mark.postgres
def test_real_postgresql_failures_map_to_their_classes(pg_url: str) -> None:
    engine = create_engine_for(pg_url)
    try:
        with pytest.raises(IntegrityViolationError), translate_errors(), engine.begin() as connection:
            connection.execute(
                text("INSERT INTO ledger_accounts (name, kind, opened_at) VALUES ('agt_x', 'customer', now())")
            )
            connection.execute(
                text("INSERT INTO ledger_accounts (name, kind, opened_at) VALUES ('agt_x', 'customer', now())")
            )
        with pytest.raises(SchemaError), translate_errors(), engine.begin() as connection:
            connection.execute(text("SELECT * FROM ledger_no_such_table"))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_refused_connection_is_unavailable_and_never_shows_the_password() -> None:
    url = f"postgresql://treasury:s3cret-pw@127.0.0.1:{free_port()}/ledger"
    with (
        Ledger.open(url, max_attempts=2, retry_deadline_s=5, connect_timeout_s=2) as ledger,
        pytest.raises(DatabaseUnavailableError) as caught,
    ):
        ledger.balance("agt_a")
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user@host/db",
        "postgresql+psycopg2://user@host/db",
        "postgresql://user@host",
        "not a url",
    ],
)
def test_unusable_database_urls_are_bad_input(url: str) -> None:
    with pytest.raises(InvalidInputError):
        Ledger.open(url)


def test_plain_postgresql_urls_get_the_psycopg_driver() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"):
        engine = create_engine_for(url)
        try:
            assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
        finally:
            engine.dispose()
