"""What the ledger returns: plain immutable records, no database handles inside."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, Final, NamedTuple


class Posting(NamedTuple):
    """One leg of a transaction: a signed amount (debit positive, credit negative) in base units."""

    account: str
    currency: str
    amount: int


class PostResult(NamedTuple):
    """The transaction that holds a draft's key; `created` is False when it already existed."""

    transaction_id: int
    created: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Transaction:
    id: int
    key: str
    kind: str
    created_at: dt.datetime
    evidence: Mapping[str, Any]
    reverses: int | None
    postings: tuple[Posting, ...]  # sorted by account, then currency
    reversed_by: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Balance:
    """The balance of one account in one currency, on the account's normal side (see accounts.py)."""

    account: str
    currency: str
    amount: int


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """A customer naming a transaction signature as theirs. A claim alone never credits (DESIGN.md §3)."""

    signature: str
    customer: str
    claimed_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class SuspenseHold:
    """A priced deposit whose credits wait in the suspense account until assigned, once."""

    deposit_key: str
    transaction_id: int
    signature: str
    sender: str | None
    credits_micros: int
    held_at: dt.datetime
    claims: tuple[Claim, ...]
    assigned_to: str | None = None
    assignment_transaction_id: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class WalletLink:
    """The outcome of linking a wallet: who had it before, and the suspense holds it moved."""

    address: str
    customer: str
    previous_customer: str | None
    changed: bool  # False when the wallet was already linked to this customer
    assigned: tuple[tuple[str, PostResult], ...]  # (deposit key, assignment) for each hold moved now


ERROR: Final = "error"
FLAG: Final = "flag"


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """One broken invariant found by `verify` (severity "error"), or a state to look at ("flag")."""

    code: str
    message: str
    severity: str = ERROR
