"""Chain reconciliation and audit runs (issue 9): one row per run of `treasury reconcile chain` and
`treasury audit` (or the daemon's jobs).

The tables are defined in `reconcile/proof_runs.py` (on the ledger's MetaData); this revision creates
exactly them.

Revision ID: 0005_reconcile_proof_runs
Revises: 0004_daemon
Create Date: 2026-12-03
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0005_reconcile_proof_runs"
down_revision = "0004_daemon"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _window_columns() -> list[sa.Column[dt.datetime]]:
    return [
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "reconcile_chain_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        *_window_columns(),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("differences", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconcile_chain_runs"),
        sa.CheckConstraint("window_start < window_end", name="ck_reconcile_chain_runs_window"),
    )
    op.create_index("ix_reconcile_chain_runs_finished_at", "reconcile_chain_runs", ["finished_at"])
    op.create_table(
        "reconcile_audit_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        *_window_columns(),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("assignments", sa.Integer(), nullable=False),
        sa.Column("differences", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconcile_audit_runs"),
        sa.CheckConstraint("window_start < window_end", name="ck_reconcile_audit_runs_window"),
    )
    op.create_index("ix_reconcile_audit_runs_finished_at", "reconcile_audit_runs", ["finished_at"])


def downgrade() -> None:
    op.drop_table("reconcile_audit_runs")
    op.drop_table("reconcile_chain_runs")
