"""The daemon's tables (issue 6): leases (one scheduler among several daemons), job runs, state.
Defined in indexer/store.py.

Revision ID: 0004_daemon
Revises: 0003_reconcile_stripe_runs
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_daemon"
down_revision = "0003_reconcile_stripe_runs"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "daemon_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_daemon_leases"),
    )
    op.create_table(
        "daemon_job_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_daemon_job_runs"),
    )
    op.create_index("ix_daemon_job_runs_name_finished_at", "daemon_job_runs", ["name", "finished_at"])
    op.create_table(
        "daemon_state",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_daemon_state"),
    )


def downgrade() -> None:
    op.drop_table("daemon_state")
    op.drop_index("ix_daemon_job_runs_name_finished_at", table_name="daemon_job_runs")
    op.drop_table("daemon_job_runs")
    op.drop_table("daemon_leases")
