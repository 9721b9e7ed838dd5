"""The ledger's tables (SQLModel on SQLAlchemy) and the MetaData other packages add their tables to.

Every constraint and index is named, so Alembic revisions can refer to them on both SQLite and
PostgreSQL. The migrations in `ledger_client/migrations/versions/` create exactly these tables; a
test compares them (alembic autogenerate finds no difference). docs/LEDGER.md explains how another
package adds a table: a `Table` on `metadata` below plus a revision in the same chain.

Postings are signed 64-bit integers of base units (debit positive). The ledger keeps no balance
rows: a balance is the sum of an account's postings (an index on account, currency covers it), so
there is no hot row for concurrent writers to fight over and nothing that can drift.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

metadata: Final[MetaData] = SQLModel.metadata

ACCOUNT_NAME_LENGTH: Final = 160
KEY_LENGTH: Final = 512

# BIGINT on PostgreSQL; on SQLite an INTEGER PRIMARY KEY is the 64-bit rowid.
_Id = BigInteger().with_variant(Integer(), "sqlite")
# Plain JSON (text, validated) rather than JSONB: evidence is written once and read rarely, and
# JSONB's conversion roughly doubled the cost of inserting a few-KB reply (docs/BENCHMARKS.md).
_Evidence = JSON()


def _utc() -> DateTime:
    return DateTime(timezone=True)


class LedgerAccount(SQLModel, table=True):
    """One account of the chart (accounts.py); customers' accounts open on first use."""

    __tablename__ = "ledger_accounts"

    name: str = Field(sa_column=Column(String(ACCOUNT_NAME_LENGTH), primary_key=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    opened_at: dt.datetime = Field(sa_column=Column(_utc(), nullable=False))

    __table_args__ = (PrimaryKeyConstraint("name", name="pk_ledger_accounts"),)


class LedgerTransaction(SQLModel, table=True):
    """A balanced transaction, append-only. `idempotency_key` is unique: the exactly-once guarantee."""

    __tablename__ = "ledger_transactions"

    id: int | None = Field(default=None, sa_column=Column(_Id, primary_key=True, autoincrement=True))
    idempotency_key: str = Field(sa_column=Column(String(KEY_LENGTH), nullable=False))
    kind: str = Field(sa_column=Column(String(64), nullable=False))
    # sha256 of kind + postings + reverses (entries.content_hash): what a repeated key is compared by.
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    evidence: dict[str, Any] = Field(sa_column=Column(_Evidence, nullable=False))
    reverses_id: int | None = Field(
        default=None,
        sa_column=Column(
            _Id, ForeignKey("ledger_transactions.id", name="fk_ledger_transactions_reverses_id"), nullable=True
        ),
    )
    created_at: dt.datetime = Field(sa_column=Column(_utc(), nullable=False))

    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_ledger_transactions"),
        UniqueConstraint("idempotency_key", name="uq_ledger_transactions_idempotency_key"),
        # A transaction is reversed at most once, whatever key the reversal carries. Partial: the
        # many transactions that reverse nothing add no index entry.
        Index(
            "uq_ledger_transactions_reverses_id",
            "reverses_id",
            unique=True,
            postgresql_where=text("reverses_id IS NOT NULL"),
            sqlite_where=text("reverses_id IS NOT NULL"),
        ),
        Index("ix_ledger_transactions_kind_created_at", "kind", "created_at"),
    )


class LedgerPosting(SQLModel, table=True):
    """One leg: a signed amount of base units (debit positive) in one currency on one account."""

    __tablename__ = "ledger_postings"

    transaction_id: int = Field(
        sa_column=Column(
            _Id,
            ForeignKey("ledger_transactions.id", name="fk_ledger_postings_transaction_id"),
            primary_key=True,
        )
    )
    account: str = Field(
        sa_column=Column(
            String(ACCOUNT_NAME_LENGTH),
            ForeignKey("ledger_accounts.name", name="fk_ledger_postings_account"),
            primary_key=True,
        )
    )
    currency: str = Field(sa_column=Column(String(16), primary_key=True))
    amount: int = Field(sa_column=Column(BigInteger(), nullable=False))

    __table_args__ = (
        PrimaryKeyConstraint("transaction_id", "account", "currency", name="pk_ledger_postings"),
        CheckConstraint("amount <> 0", name="ck_ledger_postings_amount_nonzero"),
        # Balances are sums over this index; on PostgreSQL it carries the amount (index-only scans).
        Index("ix_ledger_postings_account_currency", "account", "currency", postgresql_include=["amount"]),
    )


class LedgerClaim(SQLModel, table=True):
    """A customer naming a signature as theirs. Never credits by itself (DESIGN.md §3)."""

    __tablename__ = "ledger_claims"

    signature: str = Field(sa_column=Column(String(100), primary_key=True))
    customer: str = Field(
        sa_column=Column(
            String(ACCOUNT_NAME_LENGTH),
            ForeignKey("ledger_accounts.name", name="fk_ledger_claims_customer"),
            primary_key=True,
        )
    )
    claimed_at: dt.datetime = Field(sa_column=Column(_utc(), nullable=False))

    __table_args__ = (PrimaryKeyConstraint("signature", "customer", name="pk_ledger_claims"),)


class LedgerWalletLink(SQLModel, table=True):
    """A wallet proven to belong to a customer: one wallet, one customer."""

    __tablename__ = "ledger_wallet_links"

    address: str = Field(sa_column=Column(String(64), primary_key=True))
    customer: str = Field(
        sa_column=Column(
            String(ACCOUNT_NAME_LENGTH),
            ForeignKey("ledger_accounts.name", name="fk_ledger_wallet_links_customer"),
            nullable=False,
        )
    )
    linked_at: dt.datetime = Field(sa_column=Column(_utc(), nullable=False))

    __table_args__ = (
        PrimaryKeyConstraint("address", name="pk_ledger_wallet_links"),
        Index("ix_ledger_wallet_links_customer", "customer"),
    )


class LedgerWalletLinkEvent(SQLModel, table=True):
    """Audit of every link and move of a wallet: who, when, from whom, why."""

    __tablename__ = "ledger_wallet_link_events"

    id: int | None = Field(default=None, sa_column=Column(_Id, primary_key=True, autoincrement=True))
    address: str = Field(sa_column=Column(String(64), nullable=False))
    customer: str = Field(sa_column=Column(String(ACCOUNT_NAME_LENGTH), nullable=False))
    previous_customer: str | None = Field(default=None, sa_column=Column(String(ACCOUNT_NAME_LENGTH)))
    reason: str | None = Field(default=None, sa_column=Column(Text()))
    actor: str | None = Field(default=None, sa_column=Column(String(200)))
    at: dt.datetime = Field(sa_column=Column(_utc(), nullable=False))

    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_ledger_wallet_link_events"),
        Index("ix_ledger_wallet_link_events_address", "address"),
    )


class LedgerSuspenseHold(SQLModel, table=True):
    """A deposit held in suspense: its transaction (whose key is the deposit key), signature and sender.

    Whether it was assigned is not stored here: the assignment is the transaction keyed
    `assign:<deposit key>`, unique like every key, so it happens at most once without any update.
    """

    __tablename__ = "ledger_suspense_holds"

    transaction_id: int = Field(
        sa_column=Column(
            _Id,
            ForeignKey("ledger_transactions.id", name="fk_ledger_suspense_holds_transaction_id"),
            primary_key=True,
        )
    )
    signature: str = Field(sa_column=Column(String(100), nullable=False))
    sender: str | None = Field(default=None, sa_column=Column(String(64)))

    __table_args__ = (
        PrimaryKeyConstraint("transaction_id", name="pk_ledger_suspense_holds"),
        Index("ix_ledger_suspense_holds_signature", "signature"),
        Index("ix_ledger_suspense_holds_sender", "sender"),
    )


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


accounts_table: Final = _table(LedgerAccount)
transactions_table: Final = _table(LedgerTransaction)
postings_table: Final = _table(LedgerPosting)
claims_table: Final = _table(LedgerClaim)
wallet_links_table: Final = _table(LedgerWalletLink)
wallet_link_events_table: Final = _table(LedgerWalletLinkEvent)
suspense_holds_table: Final = _table(LedgerSuspenseHold)

LEDGER_TABLES: Final = (
    accounts_table,
    transactions_table,
    postings_table,
    claims_table,
    wallet_links_table,
    wallet_link_events_table,
    suspense_holds_table,
)
