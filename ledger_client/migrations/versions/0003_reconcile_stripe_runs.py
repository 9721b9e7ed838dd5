"""Stripe reconciliation runs (issue 7): one row per run of `treasury reconcile stripe` or the daemon's job.

The table is defined in `reconcile/runs.py` (`runs_table`, on the ledger's MetaData); this revision
creates exactly it.

Revision ID: 0003_reconcile_stripe_runs
Revises: 0002_indexer
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_reconcile_stripe_runs"
down_revision = "0002_indexer"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# reconcile.matcher.CLASSES, written out: a revision must not change when the code does.
_CLASSES = (
    "matched",
    "missing_credit",
    "credit_without_payment",
    "duplicate_credit",
    "amount_mismatch",
    "currency_mismatch",
    "refund_not_reversed",
    "dispute_not_reversed",
    "out_of_range",
    "unpaid_credited",
)
_MICROS = (
    "gross_micros",
    "fees_micros",
    "net_micros",
    "expected_micros",
    "credited_micros",
    "refunded_micros",
    "disputed_micros",
    "reversed_micros",
)


def upgrade() -> None:
    op.create_table(
        "reconcile_stripe_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fix", sa.Boolean(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("paid", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _CLASSES),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _MICROS),
        sa.Column("fixed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconcile_stripe_runs"),
        sa.CheckConstraint("window_start < window_end", name="ck_reconcile_stripe_runs_window"),
    )
    op.create_index("ix_reconcile_stripe_runs_window", "reconcile_stripe_runs", ["window_start", "window_end"])
    op.create_index("ix_reconcile_stripe_runs_finished_at", "reconcile_stripe_runs", ["finished_at"])


def downgrade() -> None:
    op.drop_table("reconcile_stripe_runs")
