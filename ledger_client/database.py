"""The SQL adapter: engines for SQLite and PostgreSQL, and the one place driver errors are translated.

`create_engine_for(url)` picks the driver: a plain `postgresql://` or `postgres://` URL gets psycopg 3
(READ COMMITTED, bounded connect/lock/statement timeouts, pre-ping); `sqlite:///path` gets WAL mode,
a busy timeout and foreign keys on, so readers keep working while a daemon writes. On SQLite a write
transaction starts with BEGIN IMMEDIATE: it takes the write lock up front (waiting up to the busy
timeout) instead of failing half-way when it first writes after reading.

`translate_errors()` maps psycopg, sqlite3, SQLAlchemy and Alembic errors into the tree of
ledger_client.errors, raising `from` the original; `classify()` is the mapping, closed by default
(anything not recognised is a non-transient DatabaseError).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import alembic.util.exc
import psycopg
import sqlalchemy.exc
from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from ledger_client.entries import decode_json, encode_json
from ledger_client.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    IntegrityViolationError,
    InvalidInputError,
    LedgerError,
    SchemaError,
    SerializationConflictError,
)

WRITE_OPTION: Final = "ledger_write"  # execution option: this connection's transaction writes

# SQLSTATEs (PostgreSQL appendix A) and SQLite result codes the ledger treats specially.
_PG_CONFLICT: Final = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock timeout
_PG_UNAVAILABLE: Final = frozenset({"57P01", "57P02", "57P03", "53300", "53400"})  # shutdowns, too many
_PG_SCHEMA: Final = frozenset({"42P01", "42703", "42883", "3F000"})  # undefined table/column/function/schema
_SQLITE_BUSY: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_SQLITE_UNUSABLE: Final = frozenset({sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL})


def normalize_url(url: str) -> URL:
    """The SQLAlchemy URL with our driver: psycopg 3 for PostgreSQL, the stdlib sqlite3 for SQLite."""
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise InvalidInputError("not a database URL (use sqlite:///path or postgresql://…)") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise InvalidInputError(f"PostgreSQL is used through psycopg 3, not {driver!r}: use postgresql://…")
        if not parsed.database:
            raise InvalidInputError("a PostgreSQL URL names a database: postgresql://user@host:port/dbname")
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise InvalidInputError(f"SQLite is used through the standard sqlite3 module, not {driver!r}")
        return parsed.set(drivername="sqlite+pysqlite")
    raise InvalidInputError(f"unsupported database scheme {backend!r} (use sqlite:/// or postgresql://)")


def create_engine_for(
    url: str,
    *,
    busy_timeout_s: float = 30.0,
    connect_timeout_s: int = 10,
    lock_timeout_s: int = 30,
    statement_timeout_s: int = 600,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout_s: float = 30.0,
) -> Engine:
    """An engine for `url` with the ledger's connection settings (see the module docstring)."""
    target = normalize_url(url)
    if target.get_backend_name() == "postgresql":
        options = (
            f"-c lock_timeout={lock_timeout_s * 1000} -c statement_timeout={statement_timeout_s * 1000}"
            f" -c idle_in_transaction_session_timeout={statement_timeout_s * 1000}"
        )
        return create_engine(
            target,
            isolation_level="READ COMMITTED",
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout_s,
            connect_args={
                "connect_timeout": connect_timeout_s,
                "application_name": "treasury-ledger",
                "options": options,
            },
            json_serializer=encode_json,
            json_deserializer=decode_json,
        )
    memory = target.database in (None, "", ":memory:")
    engine = create_engine(
        target,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
        json_serializer=encode_json,
        json_deserializer=decode_json,
        **({"poolclass": StaticPool} if memory else {"pool_size": pool_size, "max_overflow": max_overflow}),
    )
    busy_timeout_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Transactions are begun by us (below), not by the sqlite3 module's implicit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def insert_ignoring_conflicts(connection: Connection, table: Table) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING` (every unique constraint) in the connection's dialect."""
    insert = pg_dialect.insert if is_postgresql(connection) else sqlite_dialect.insert
    return insert(table).on_conflict_do_nothing()


def lock_names(connection: Connection, names: Iterable[str]) -> None:
    """Transaction-scoped locks on names (sorted, so two lockers never deadlock).

    PostgreSQL: advisory locks. SQLite: nothing to do, a write transaction already holds the
    database's only write lock (BEGIN IMMEDIATE).
    """
    if not is_postgresql(connection):
        return
    for name in sorted(set(names)):
        digest = hashlib.sha256(name.encode()).digest()
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest[:8], "big", signed=True)}
        )


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored time as aware UTC (SQLite keeps no offset; we only ever write UTC)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def first_block_second(moment: dt.datetime) -> int:
    """The first whole-second block time at or after `moment` (the moment rounded up)."""
    micros = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return -(-micros // 1_000_000)


def block_time_bounds(since: dt.datetime, until: dt.datetime) -> tuple[int, int]:
    """The window [since, until) as whole-second block times [start_s, end_s). Both ends round up:
    truncating would take in a block from just before `since` and leave out one just before `until`."""
    return first_block_second(since), first_block_second(until)


def to_storage_time(value: dt.datetime) -> dt.datetime:
    """A time to store: aware UTC; a naive time is refused (it would be ambiguous)."""
    if value.tzinfo is None:
        raise InvalidInputError("times stored in the ledger must carry a UTC offset")
    return value.astimezone(dt.UTC)


# --- the posting hot path: a few statements per batch, whatever its size ---
#
# These run on the driver connection under the SQLAlchemy transaction (same connection, same
# transaction), with the evidence already encoded once by check_draft. On PostgreSQL: key lookups
# and accounts as binary arrays expanded by unnest() (one short statement instead of thousands of
# placeholders to convert), transactions as a pipelined executemany of one prepared INSERT …
# RETURNING, postings by binary COPY (docs/BENCHMARKS.md has the figures that chose these). SQLite
# runs in-process, where executemany and a multi-row VALUES … RETURNING cost nothing per round trip.

_SQLITE_ROWS_PER_INSERT: Final = 1_000  # 6 parameters a row: 6,000, well under SQLite's 32,766
_SQLITE_KEYS_PER_SELECT: Final = 500
_INSERT_TRANSACTIONS: Final = (
    "INSERT INTO ledger_transactions (idempotency_key, kind, content_hash, evidence, reverses_id, created_at) VALUES"
)


def _driver(connection: Connection) -> Any:
    driver = connection.connection.driver_connection
    if driver is None:  # pragma: no cover - a checked-out connection always has one
        raise DatabaseUnavailableError("the database connection is closed")
    return driver


def _sqlite_time(value: dt.datetime) -> str:
    """A UTC time the way SQLAlchemy stores DateTime on SQLite (naive, microseconds)."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def fetch_keys(connection: Connection, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
    """key -> (transaction id, content hash) for the keys already posted."""
    found: dict[str, tuple[int, str]] = {}
    if not keys:
        return found
    if is_postgresql(connection):
        rows = _driver(connection).execute(
            "SELECT idempotency_key, id, content_hash FROM ledger_transactions WHERE idempotency_key = ANY(%b::text[])",
            (list(keys),),
        )
        return {key: (transaction_id, digest) for key, transaction_id, digest in rows}
    driver = _driver(connection)
    for start in range(0, len(keys), _SQLITE_KEYS_PER_SELECT):
        chunk = keys[start : start + _SQLITE_KEYS_PER_SELECT]
        placeholders = ",".join("?" * len(chunk))  # only placeholders go into the text; values are bound
        query = "SELECT idempotency_key, id, content_hash FROM ledger_transactions WHERE idempotency_key IN "
        rows = driver.execute(f"{query}({placeholders})", chunk)
        found.update({key: (transaction_id, digest) for key, transaction_id, digest in rows})
    return found


def insert_accounts(connection: Connection, accounts: Sequence[tuple[str, str]], at: dt.datetime) -> None:
    """(name, kind) rows; an account that exists already is left as it is."""
    if not accounts:
        return
    if is_postgresql(connection):
        names, kinds = zip(*accounts, strict=True)
        _driver(connection).execute(
            "INSERT INTO ledger_accounts (name, kind, opened_at) SELECT name, kind, %b FROM "
            "unnest(%b::text[], %b::text[]) AS batch(name, kind) ON CONFLICT DO NOTHING",
            (at, list(names), list(kinds)),
        )
        return
    stamp = _sqlite_time(at)
    _driver(connection).executemany(
        "INSERT INTO ledger_accounts (name, kind, opened_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [(name, kind, stamp) for name, kind in accounts],
    )


def insert_transactions(
    connection: Connection, rows: Sequence[tuple[str, str, str, str, int | None]], at: dt.datetime
) -> dict[str, int]:
    """Insert (key, kind, content hash, evidence JSON, reverses) rows with ON CONFLICT DO NOTHING RETURNING.

    Returns key -> id of the rows this statement inserted; a key absent from it was not inserted
    (it exists, or the transaction it reverses is already reversed). Never decided by a rowcount.
    """
    if not rows:
        return {}
    if is_postgresql(connection):
        # executemany pipelines one prepared single-row INSERT per row: cheaper here than one
        # statement over arrays of multi-KB evidence strings.
        created_pg: dict[str, int] = {}
        with _driver(connection).cursor() as cursor:
            cursor.executemany(
                f"{_INSERT_TRANSACTIONS} (%s, %s, %s, %s::json, %s::bigint, %s) "
                "ON CONFLICT DO NOTHING RETURNING idempotency_key, id",
                [(*row, at) for row in rows],
                returning=True,
            )
            while True:
                created_pg.update(cursor.fetchall())
                if not cursor.nextset():
                    break
        return created_pg
    stamp = _sqlite_time(at)
    created: dict[str, int] = {}
    driver = _driver(connection)
    for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
        values = ",".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
        parameters = [value for row in chunk for value in (*row, stamp)]
        cursor = driver.execute(
            f"{_INSERT_TRANSACTIONS} {values} ON CONFLICT DO NOTHING RETURNING idempotency_key, id", parameters
        )
        created.update(cursor.fetchall())
    return created


def insert_postings(connection: Connection, rows: Sequence[tuple[int, str, str, int]]) -> None:
    """(transaction id, account, currency, amount) rows."""
    if not rows:
        return
    if is_postgresql(connection):
        # COPY: the cheapest way into a table, and nothing to return (the ids are ours already).
        with (
            _driver(connection).cursor() as cursor,
            cursor.copy(
                "COPY ledger_postings (transaction_id, account, currency, amount) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["int8", "text", "text", "int8"])
            for row in rows:
                copy.write_row(row)
        return
    _driver(connection).executemany(
        "INSERT INTO ledger_postings (transaction_id, account, currency, amount) VALUES (?, ?, ?, ?)", rows
    )


# --- the one place foreign errors become ledger errors ---


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise driver, SQLAlchemy and Alembic errors as LedgerError subclasses (`from` the original)."""
    try:
        yield
    except LedgerError:
        raise
    except (sqlalchemy.exc.SQLAlchemyError, psycopg.Error, sqlite3.Error, alembic.util.exc.CommandError) as exc:
        raise classify(exc) from exc


def classify(exc: BaseException) -> LedgerError:
    """The ledger error for a foreign one. Closed by default: unknown failures are not retried."""
    if isinstance(exc, alembic.util.exc.CommandError):
        return SchemaError(f"migration failed: {_first_line(exc)}")
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return DatabaseUnavailableError(f"database connection lost: {_first_line(exc.orig)}")
        if isinstance(exc.orig, psycopg.Error | sqlite3.Error):
            return _classify_driver(exc.orig)
        return DatabaseError(f"database error: {_first_line(exc.orig)}")
    if isinstance(exc, psycopg.Error | sqlite3.Error):
        return _classify_driver(exc)
    if isinstance(exc, sqlalchemy.exc.DisconnectionError | sqlalchemy.exc.TimeoutError):
        return DatabaseUnavailableError(f"database unavailable: {_first_line(exc)}")
    if isinstance(exc, sqlalchemy.exc.NoSuchTableError | sqlalchemy.exc.NoReferencedTableError):
        return SchemaError(f"database schema: {_first_line(exc)}")
    return DatabaseError(f"database error: {type(exc).__name__}: {_first_line(exc)}")


def _classify_driver(exc: BaseException) -> LedgerError:
    message = _first_line(exc)
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        if state in _PG_CONFLICT:
            return SerializationConflictError(f"transaction conflict ({state}): {message}")
        if state.startswith("08") or state in _PG_UNAVAILABLE:
            return DatabaseUnavailableError(f"database unavailable ({state}): {message}")
        if state.startswith("23"):
            return IntegrityViolationError(f"constraint violated ({state}): {message}")
        if state in _PG_SCHEMA:
            return SchemaError(f"database schema ({state}): {message} (run `treasury db upgrade`)")
        if not state and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            # No SQLSTATE: the client could not connect or lost the connection.
            return DatabaseUnavailableError(f"database unavailable: {message}")
        return DatabaseError(f"database error ({state or 'no SQLSTATE'}): {message}")
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary in _SQLITE_BUSY:
            return SerializationConflictError(f"SQLite database busy: {message}")
        if isinstance(exc, sqlite3.IntegrityError):
            return IntegrityViolationError(f"constraint violated: {message}")
        if primary in _SQLITE_UNUSABLE:
            return DatabaseError(f"SQLite database unusable: {message}")
        if message.startswith(("no such table", "no such column")):
            return SchemaError(f"database schema: {message} (run `treasury db upgrade`)")
        return DatabaseError(f"SQLite error: {message}")
    return DatabaseError(f"database error: {message}")


def _first_line(exc: BaseException | None) -> str:
    """The first line of an error's text: SQLAlchemy appends the statement and its parameters below it."""
    if exc is None:
        return "unknown error"
    lines = str(exc).strip().splitlines()
    return (lines[0].strip() if lines else type(exc).__name__)[:300]
