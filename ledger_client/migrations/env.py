"""Alembic environment: migrations run on the connection `ledger_client.migrate` hands over.

That connection is already inside a transaction holding the migration lock (an advisory lock on
PostgreSQL, the write lock on SQLite), so concurrent first starts migrate once; Alembic joins that
transaction instead of opening its own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ledger_client.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through ledger_client (Ledger.upgrade or `treasury db upgrade`)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
