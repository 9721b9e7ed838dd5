"""The shared double-entry ledger: idempotent postings of credits on SQLite and PostgreSQL.

    ledger = Ledger.open("postgresql://…")       # or sqlite:///path
    ledger.ensure_schema()                        # migrates an empty database
    result = ledger.post(card_topup_entry("cs_…", "agt_a1b2c3d4", 25_000_000, evidence))
    ledger.balance("agt_a1b2c3d4")                # 25000000 micro-USD

Modules: `accounts` (chart of accounts), `entries` (drafts, builders, keys; pure), `ledger` (Ledger,
UnitOfWork), `schema` (tables and the shared MetaData), `migrate` (Alembic), `verify`, `money`,
`database` (engines and the one translation of driver errors), `errors` (the exception tree, drawn
there). docs/LEDGER.md describes the whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger_client.accounts import (
    ADJUSTMENTS,
    BONUS_EXPENSE,
    OSR_BURNED,
    OSR_RECEIVED,
    OSR_RETAINED,
    OSR_TO_BURN,
    STRIPE_CLEARING,
    SUSPENSE,
    Account,
    conversion_account,
    holding_account,
    holding_accounts,
    parse_account,
)
from ledger_client.entries import (
    Draft,
    HoldInfo,
    adjustment_entry,
    assignment_key,
    card_dispute_key,
    card_dispute_lost_entry,
    card_dispute_won_entry,
    card_dispute_won_key,
    card_refund_entry,
    card_refund_key,
    card_refund_undo_entry,
    card_refund_undo_key,
    card_topup_entry,
    card_topup_key,
    crypto_deposit_entry,
    deposit_key,
    osr_burn_entry,
    parse_deposit_key,
    reversal_entry,
    suspense_assignment_entry,
    suspense_hold_entry,
)
from ledger_client.errors import (
    AlreadyAssignedError,
    AlreadyReversedError,
    DatabaseError,
    DatabaseUnavailableError,
    IdempotencyConflictError,
    IntegrityViolationError,
    InvalidAccountError,
    InvalidEntryError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    SchemaError,
    SerializationConflictError,
    TransientDatabaseError,
    UnbalancedError,
    WalletAlreadyLinkedError,
)
from ledger_client.money import MICROS_PER_USD, USD, format_units, parse_units
from ledger_client.records import (
    Balance,
    Claim,
    Posting,
    PostResult,
    Problem,
    SuspenseHold,
    Transaction,
    WalletLink,
)

if TYPE_CHECKING:
    from ledger_client.ledger import MAX_BATCH, MAX_FOUND, Ledger, UnitOfWork
    from ledger_client.schema import metadata

# SQLAlchemy, SQLModel and Alembic load only when the database side is used: commands that never
# touch the ledger (treasury parse) start faster.
_LAZY = {
    "Ledger": "ledger",
    "UnitOfWork": "ledger",
    "MAX_BATCH": "ledger",
    "MAX_FOUND": "ledger",
    "metadata": "schema",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger_client' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module(f"ledger_client.{module}"), name)


__all__ = [
    "ADJUSTMENTS",
    "BONUS_EXPENSE",
    "MAX_BATCH",
    "MAX_FOUND",
    "MICROS_PER_USD",
    "OSR_BURNED",
    "OSR_RECEIVED",
    "OSR_RETAINED",
    "OSR_TO_BURN",
    "STRIPE_CLEARING",
    "SUSPENSE",
    "USD",
    "Account",
    "AlreadyAssignedError",
    "AlreadyReversedError",
    "Balance",
    "Claim",
    "DatabaseError",
    "DatabaseUnavailableError",
    "Draft",
    "HoldInfo",
    "IdempotencyConflictError",
    "IntegrityViolationError",
    "InvalidAccountError",
    "InvalidEntryError",
    "InvalidInputError",
    "Ledger",
    "LedgerError",
    "NotFoundError",
    "PostResult",
    "Posting",
    "Problem",
    "SchemaError",
    "SerializationConflictError",
    "SuspenseHold",
    "Transaction",
    "TransientDatabaseError",
    "UnbalancedError",
    "UnitOfWork",
    "WalletAlreadyLinkedError",
    "WalletLink",
    "adjustment_entry",
    "assignment_key",
    "card_dispute_key",
    "card_dispute_lost_entry",
    "card_dispute_won_entry",
    "card_dispute_won_key",
    "card_refund_entry",
    "card_refund_key",
    "card_refund_undo_entry",
    "card_refund_undo_key",
    "card_topup_entry",
    "card_topup_key",
    "conversion_account",
    "crypto_deposit_entry",
    "deposit_key",
    "format_units",
    "holding_account",
    "holding_accounts",
    "metadata",
    "osr_burn_entry",
    "parse_account",
    "parse_deposit_key",
    "parse_units",
    "reversal_entry",
    "suspense_assignment_entry",
    "suspense_hold_entry",
]
