"""The ledger (issue 3): accounts, transactions, postings, claims, wallet links, suspense holds.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_EVIDENCE = sa.JSON()  # text JSON on PostgreSQL too: written once, read rarely (see schema.py)


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("name", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_ledger_accounts"),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("evidence", _EVIDENCE, nullable=False),
        sa.Column("reverses_id", _ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_transactions"),
        sa.UniqueConstraint("idempotency_key", name="uq_ledger_transactions_idempotency_key"),
        sa.ForeignKeyConstraint(["reverses_id"], ["ledger_transactions.id"], name="fk_ledger_transactions_reverses_id"),
    )
    op.create_index(
        "uq_ledger_transactions_reverses_id",
        "ledger_transactions",
        ["reverses_id"],
        unique=True,
        postgresql_where=sa.text("reverses_id IS NOT NULL"),
        sqlite_where=sa.text("reverses_id IS NOT NULL"),
    )
    op.create_index("ix_ledger_transactions_kind_created_at", "ledger_transactions", ["kind", "created_at"])
    op.create_table(
        "ledger_postings",
        sa.Column("transaction_id", _ID, nullable=False),
        sa.Column("account", sa.String(160), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", "account", "currency", name="pk_ledger_postings"),
        sa.CheckConstraint("amount <> 0", name="ck_ledger_postings_amount_nonzero"),
        sa.ForeignKeyConstraint(
            ["transaction_id"], ["ledger_transactions.id"], name="fk_ledger_postings_transaction_id"
        ),
        sa.ForeignKeyConstraint(["account"], ["ledger_accounts.name"], name="fk_ledger_postings_account"),
    )
    op.create_index(
        "ix_ledger_postings_account_currency",
        "ledger_postings",
        ["account", "currency"],
        postgresql_include=["amount"],
    )
    op.create_table(
        "ledger_claims",
        sa.Column("signature", sa.String(100), nullable=False),
        sa.Column("customer", sa.String(160), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", "customer", name="pk_ledger_claims"),
        sa.ForeignKeyConstraint(["customer"], ["ledger_accounts.name"], name="fk_ledger_claims_customer"),
    )
    op.create_table(
        "ledger_wallet_links",
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("customer", sa.String(160), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_ledger_wallet_links"),
        sa.ForeignKeyConstraint(["customer"], ["ledger_accounts.name"], name="fk_ledger_wallet_links_customer"),
    )
    op.create_index("ix_ledger_wallet_links_customer", "ledger_wallet_links", ["customer"])
    op.create_table(
        "ledger_wallet_link_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("customer", sa.String(160), nullable=False),
        sa.Column("previous_customer", sa.String(160), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_wallet_link_events"),
    )
    op.create_index("ix_ledger_wallet_link_events_address", "ledger_wallet_link_events", ["address"])
    op.create_table(
        "ledger_suspense_holds",
        sa.Column("transaction_id", _ID, nullable=False),
        sa.Column("signature", sa.String(100), nullable=False),
        sa.Column("sender", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("transaction_id", name="pk_ledger_suspense_holds"),
        sa.ForeignKeyConstraint(
            ["transaction_id"], ["ledger_transactions.id"], name="fk_ledger_suspense_holds_transaction_id"
        ),
    )
    op.create_index("ix_ledger_suspense_holds_signature", "ledger_suspense_holds", ["signature"])
    op.create_index("ix_ledger_suspense_holds_sender", "ledger_suspense_holds", ["sender"])


def downgrade() -> None:
    for table in (
        "ledger_suspense_holds",
        "ledger_wallet_link_events",
        "ledger_wallet_links",
        "ledger_claims",
        "ledger_postings",
        "ledger_transactions",
        "ledger_accounts",
    ):
        op.drop_table(table)
