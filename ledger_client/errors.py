"""The ledger's one exception tree. Every error that leaves `ledger_client` is one of these.

Driver errors (psycopg, sqlite3, SQLAlchemy, Alembic) are translated into this tree in one place,
`ledger_client.database.translate_errors`; nothing else catches them.

    LedgerError
    ├── InvalidInputError                 the caller asked for something wrong (CLI: exit 2)
    │   ├── InvalidAccountError           not a customer id or system account, or a currency it cannot hold
    │   ├── InvalidEntryError             a malformed draft: key, kind, amount, evidence
    │   │   └── UnbalancedError           postings do not sum to zero in a currency (.currency, .imbalance)
    │   ├── IdempotencyConflictError      the key was posted with different content (.key, .transaction_id)
    │   ├── AlreadyReversedError          the transaction is already reversed (.transaction_id)
    │   ├── AlreadyAssignedError          a suspense hold went to another customer (.deposit_key, .customer)
    │   ├── WalletAlreadyLinkedError      the wallet belongs to another customer (.address, .customer)
    │   └── NotFoundError                 no such transaction or suspense hold (.what)
    └── DatabaseError                     the database failed (CLI: exit 1)
        ├── SchemaError                   not migrated, behind or ahead of this code, or a migration failed
        ├── IntegrityViolationError       a constraint refused a write the ledger did not expect
        └── TransientDatabaseError        worth retrying the whole transaction (`Ledger.run` does, bounded)
            ├── DatabaseUnavailableError  cannot connect, or the connection was lost
            └── SerializationConflictError  serialization failure, deadlock, lock timeout, SQLite busy
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error raised by ledger_client."""


class InvalidInputError(LedgerError):
    """The caller asked for something the ledger refuses; retrying the same call cannot succeed."""


class InvalidAccountError(InvalidInputError):
    """An account name that is neither a customer id nor a system account, or a currency it cannot hold."""

    def __init__(self, account: str, reason: str) -> None:
        super().__init__(f"account {account!r}: {reason}")
        self.account = account
        self.reason = reason


class InvalidEntryError(InvalidInputError):
    """A malformed draft (key, kind, posting amounts, evidence)."""


class UnbalancedError(InvalidEntryError):
    """The postings of a draft do not sum to zero in `currency`; `imbalance` is their sum."""

    def __init__(self, key: str, currency: str, imbalance: int) -> None:
        super().__init__(f"transaction {key!r} does not balance in {currency}: postings sum to {imbalance}")
        self.key = key
        self.currency = currency
        self.imbalance = imbalance


class IdempotencyConflictError(InvalidInputError):
    """`key` was already posted (as `transaction_id`) with a different kind or different postings."""

    def __init__(self, key: str, transaction_id: int) -> None:
        super().__init__(
            f"idempotency key {key!r} was already posted as transaction {transaction_id} with different content"
        )
        self.key = key
        self.transaction_id = transaction_id


class AlreadyReversedError(InvalidInputError):
    """Transaction `transaction_id` is already reversed (by `reversal_id` when known)."""

    def __init__(self, transaction_id: int, reversal_id: int | None = None) -> None:
        by = f" by transaction {reversal_id}" if reversal_id is not None else ""
        super().__init__(f"transaction {transaction_id} is already reversed{by}")
        self.transaction_id = transaction_id
        self.reversal_id = reversal_id


class AlreadyAssignedError(InvalidInputError):
    """The suspense hold `deposit_key` was already assigned to `customer` (a different one)."""

    def __init__(self, deposit_key: str, customer: str) -> None:
        super().__init__(f"deposit {deposit_key!r} was already assigned to {customer}")
        self.deposit_key = deposit_key
        self.customer = customer


class WalletAlreadyLinkedError(InvalidInputError):
    """Wallet `address` is linked to `customer`; moving it needs move=True and a reason."""

    def __init__(self, address: str, customer: str) -> None:
        super().__init__(f"wallet {address} is already linked to {customer} (moving it needs --move and a reason)")
        self.address = address
        self.customer = customer


class NotFoundError(InvalidInputError):
    """No such thing; `what` names it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not found: {what}")
        self.what = what


class DatabaseError(LedgerError):
    """The database failed. The message never contains a password, an SQL statement or its parameters."""


class SchemaError(DatabaseError):
    """The database schema is not the one this code needs (or a migration failed)."""


class IntegrityViolationError(DatabaseError):
    """A database constraint refused a write the ledger did not expect (a bug, or a hand edit)."""


class TransientDatabaseError(DatabaseError):
    """A failure that a retry of the whole transaction may cure."""


class DatabaseUnavailableError(TransientDatabaseError):
    """The database cannot be reached, or the connection was lost mid-transaction."""


class SerializationConflictError(TransientDatabaseError):
    """The transaction lost a race: serialization failure, deadlock, lock timeout or SQLite busy."""
