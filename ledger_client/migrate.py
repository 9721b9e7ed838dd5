"""Alembic, driven from code: upgrade to head under a lock, and tell what state a database is in.

The migrations ship inside the package (`ledger_client/migrations`), so `pip install .` carries them.
Two processes starting on an empty database migrate it once: the upgrade runs in one transaction
holding a lock (PostgreSQL: an advisory lock; SQLite: the write lock of BEGIN IMMEDIATE), and
Alembic re-reads the revision inside it.
"""

from __future__ import annotations

import enum
import functools
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from ledger_client.database import WRITE_OPTION, lock_names, translate_errors
from ledger_client.errors import SchemaError
from ledger_client.schema import LEDGER_TABLES

MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"
_LOCK_NAME: Final = "ledger_client:migrations"


class SchemaState(enum.Enum):
    EMPTY = "empty"  # no tables at all: migrate it
    CURRENT = "current"  # at this code's head revision
    BEHIND = "behind"  # an older revision of this chain: `treasury db upgrade`
    UNKNOWN = "unknown"  # a revision this code does not know (newer code migrated it)
    UNMANAGED = "unmanaged"  # ledger tables without an Alembic version: not ours to touch


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s")  # files are named by revision: 0002_<slug>.py
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    heads = _script().get_heads()
    if len(heads) != 1:
        raise SchemaError(f"the migration chain must have one head, found {len(heads)}: {', '.join(heads)}")
    return heads[0]


def schema_state(connection: Connection) -> tuple[SchemaState, str | None]:
    """The database's state and its current revision."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables:
        if tables & {table.name for table in LEDGER_TABLES}:
            return SchemaState.UNMANAGED, None
        return SchemaState.EMPTY, None
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return SchemaState.EMPTY, None
    if current == head_revision():
        return SchemaState.CURRENT, current
    known = {revision.revision for revision in _script().walk_revisions()}
    return (SchemaState.BEHIND if current in known else SchemaState.UNKNOWN), current


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate to head; returns (revision before, revision after)."""
    with translate_errors(), engine.connect() as pooled:
        connection = pooled.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            lock_names(connection, [_LOCK_NAME])
            state, before = schema_state(connection)
            if state is SchemaState.UNKNOWN:
                raise SchemaError(f"the database is at revision {before}, unknown to this program (is it older?)")
            if state is SchemaState.UNMANAGED:
                raise SchemaError("the database has ledger tables but no Alembic version: refusing to migrate it")
            if state is not SchemaState.CURRENT:
                command.upgrade(alembic_config(connection), "head")
        return before, head_revision()


def check_current(engine: Engine, *, upgrade_if_empty: bool) -> bool:
    """SchemaError unless the database is at head; an empty one is migrated first when asked.

    Returns True when it migrated. A database behind head is not migrated implicitly: that is
    `treasury db upgrade`'s job, run when the operator chooses (an older daemon may still be running).
    """
    with translate_errors(), engine.connect() as connection, connection.begin():
        state, current = schema_state(connection)
    if state is SchemaState.CURRENT:
        return False
    if state is SchemaState.EMPTY and upgrade_if_empty:
        upgrade(engine)
        return True
    head = head_revision()
    if state is SchemaState.EMPTY:
        raise SchemaError("the ledger database is empty: run `treasury db upgrade`")
    if state is SchemaState.BEHIND:
        raise SchemaError(
            f"the ledger database is at revision {current}, this program needs {head}: run `treasury db upgrade`"
        )
    if state is SchemaState.UNKNOWN:
        raise SchemaError(f"the ledger database is at revision {current}, unknown to this program (is it older?)")
    raise SchemaError("the database has ledger tables but no Alembic version")


def new_revision(message: str, slug: str) -> Path:
    """Write an empty revision after the current head (for developers): NNNN_<slug>.py. Returns its path."""
    number = len(list(_script().walk_revisions())) + 1
    revision_id = f"{number:04d}_{slug}"
    script = command.revision(alembic_config(), message=message, rev_id=revision_id)
    if script is None or isinstance(script, list):
        raise SchemaError("alembic did not write a revision")
    _script.cache_clear()
    return Path(script.path)
