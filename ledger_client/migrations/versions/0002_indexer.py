"""The indexer's tables (issue 5): watched accounts, scan cursors, transactions, deposits, outflows,
deposit events and deposit references. Defined in indexer/store.py.

Revision ID: 0002_indexer
Revises: 0001_ledger
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_indexer"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "indexer_watched_accounts",
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("mint", sa.String(64), nullable=True),
        sa.Column("token_program", sa.String(64), nullable=True),
        sa.Column("discovered_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_indexer_watched_accounts"),
    )
    op.create_table(
        "indexer_scan_heads",
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("head_signature", sa.String(100), nullable=False),
        sa.Column("head_slot", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_indexer_scan_heads"),
    )
    op.create_table(
        "indexer_scan_segments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("upper_signature", sa.String(100), nullable=True),
        sa.Column("upper_slot", sa.BigInteger(), nullable=True),
        sa.Column("lower_signature", sa.String(100), nullable=True),
        sa.Column("lower_slot", sa.BigInteger(), nullable=True),
        sa.Column("stop_before_time", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_indexer_scan_segments"),
    )
    op.create_index("ix_indexer_scan_segments_address", "indexer_scan_segments", ["address"])
    op.create_table(
        "indexer_transactions",
        sa.Column("signature", sa.String(100), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("block_time", sa.BigInteger(), nullable=True),
        sa.Column("commitment", sa.String(16), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("fee_lamports", sa.BigInteger(), nullable=True),
        sa.Column("fee_payer", sa.String(64), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("observed_at", _utc(), nullable=False),
        sa.Column("finalized_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("signature", name="pk_indexer_transactions"),
    )
    op.create_index("ix_indexer_transactions_commitment", "indexer_transactions", ["commitment"])
    op.create_table(
        "deposits",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("signature", sa.String(100), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("block_time", sa.BigInteger(), nullable=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=True),
        sa.Column("token_program", sa.String(64), nullable=True),
        sa.Column("amount_raw", sa.String(24), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(64), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("instruction_path", sa.String(32), nullable=True),
        sa.Column("instruction_kind", sa.String(64), nullable=True),
        sa.Column("program", sa.String(64), nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("customer", sa.String(160), nullable=True),
        sa.Column("attribution", sa.String(32), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("quote", sa.JSON(), nullable=True),
        sa.Column("price_usd", sa.String(64), nullable=True),
        sa.Column("usd_value_micros", sa.BigInteger(), nullable=True),
        sa.Column("bonus_micros", sa.BigInteger(), nullable=True),
        sa.Column("credits_micros", sa.BigInteger(), nullable=True),
        sa.Column("burn_raw", sa.String(24), nullable=True),
        sa.Column("retained_raw", sa.String(24), nullable=True),
        sa.Column("ledger_transaction_id", _ID, nullable=True),
        sa.Column("observed_at", _utc(), nullable=False),
        sa.Column("finalized_at", _utc(), nullable=True),
        sa.Column("priced_at", _utc(), nullable=True),
        sa.Column("credited_at", _utc(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deposits"),
        sa.UniqueConstraint("key", name="uq_deposits_key"),
        sa.ForeignKeyConstraint(
            ["ledger_transaction_id"], ["ledger_transactions.id"], name="fk_deposits_ledger_transaction_id"
        ),
    )
    op.create_index("ix_deposits_signature", "deposits", ["signature"])
    op.create_index("ix_deposits_status", "deposits", ["status"])
    op.create_index("ix_deposits_block_time", "deposits", ["block_time"])
    op.create_index("ix_deposits_sender", "deposits", ["sender"])
    op.create_table(
        "indexer_outflows",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("signature", sa.String(100), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("block_time", sa.BigInteger(), nullable=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(64), nullable=False),
        sa.Column("token_program", sa.String(64), nullable=True),
        sa.Column("amount_raw", sa.String(24), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=True),
        sa.Column("instruction_path", sa.String(32), nullable=True),
        sa.Column("instruction_kind", sa.String(64), nullable=True),
        sa.Column("program", sa.String(64), nullable=True),
        sa.Column("commitment", sa.String(16), nullable=False),
        sa.Column("observed_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_indexer_outflows"),
        sa.UniqueConstraint("key", name="uq_indexer_outflows_key"),
    )
    op.create_index("ix_indexer_outflows_signature", "indexer_outflows", ["signature"])
    op.create_index("ix_indexer_outflows_block_time", "indexer_outflows", ["block_time"])
    op.create_table(
        "deposit_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("deposit_id", _ID, nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deposit_events"),
        sa.ForeignKeyConstraint(["deposit_id"], ["deposits.id"], name="fk_deposit_events_deposit_id"),
    )
    op.create_index("ix_deposit_events_deposit_id", "deposit_events", ["deposit_id"])
    op.create_table(
        "deposit_references",
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("customer", sa.String(160), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("reference", name="pk_deposit_references"),
    )
    op.create_index("ix_deposit_references_customer", "deposit_references", ["customer"])


def downgrade() -> None:
    for index, table in (
        ("ix_deposit_references_customer", "deposit_references"),
        ("ix_deposit_events_deposit_id", "deposit_events"),
        ("ix_indexer_outflows_block_time", "indexer_outflows"),
        ("ix_indexer_outflows_signature", "indexer_outflows"),
        ("ix_deposits_sender", "deposits"),
        ("ix_deposits_block_time", "deposits"),
        ("ix_deposits_status", "deposits"),
        ("ix_deposits_signature", "deposits"),
        ("ix_indexer_transactions_commitment", "indexer_transactions"),
        ("ix_indexer_scan_segments_address", "indexer_scan_segments"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "deposit_references",
        "deposit_events",
        "indexer_outflows",
        "deposits",
        "indexer_transactions",
        "indexer_scan_segments",
        "indexer_scan_heads",
        "indexer_watched_accounts",
    ):
        op.drop_table(table)
