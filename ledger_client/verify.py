"""`verify`: check the ledger's invariants with plain SQL, so that hand edits and bugs are found.

Errors (an invariant is broken):
    unbalanced             a transaction's postings do not sum to zero in some currency
    orphan_posting         a posting names a transaction that does not exist
    empty_transaction      a transaction has no postings
    duplicate_key          an idempotency key is held by more than one transaction
    unknown_account        a posting names an account missing from ledger_accounts
    account_currency       a posting in a currency its account may not hold, or an invalid account name
    content_mismatch       a transaction's postings differ from the content hash recorded when posted
    suspense_negative      more was assigned out of suspense than was held there
Flags (allowed, never floored, but someone must look):
    negative_balance       a customer's credits are below zero (after a reversal or a refund)

The ledger keeps no balance rows (a balance is always the sum of postings), so "stored balances
equal the sum of postings" holds by construction and has nothing to check. Each check reports at
most `MAX_REPORTED` findings, then how many more there were.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from sqlalchemy import Connection, and_, func, select

from ledger_client.accounts import CUSTOMER, SUSPENSE, parse_account
from ledger_client.entries import content_hash
from ledger_client.errors import InvalidAccountError
from ledger_client.money import USD, USD_DECIMALS, format_units
from ledger_client.records import ERROR, FLAG, Posting, Problem
from ledger_client.schema import accounts_table, postings_table, transactions_table

MAX_REPORTED: Final = 100
_STREAM_ROWS: Final = 5_000


def verify_ledger(connection: Connection, *, max_reported: int = MAX_REPORTED) -> list[Problem]:
    """Every finding, at most `max_reported` per check (then one saying how many more)."""
    problems: list[Problem] = []
    for check in (
        _unbalanced,
        _orphan_postings,
        _empty_transactions,
        _duplicate_keys,
        _unknown_accounts,
        _account_currencies,
        _content_mismatches,
        _suspense_negative,
        _negative_customer_balances,
    ):
        problems.extend(_bounded(check(connection), max_reported))
    return problems


def _bounded(found: Iterable[Problem], max_reported: int) -> list[Problem]:
    kept: list[Problem] = []
    more = 0
    for problem in found:
        if len(kept) < max_reported:
            kept.append(problem)
        else:
            more += 1
    if more:
        last = kept[-1]
        kept.append(Problem(last.code, f"… and {more} more {last.code} findings", last.severity))
    return kept


def _unbalanced(connection: Connection) -> Iterator[Problem]:
    p = postings_table.c
    t = transactions_table.c
    total = func.sum(p.amount)
    rows = connection.execute(
        select(p.transaction_id, t.idempotency_key, p.currency, total)
        .outerjoin(transactions_table, t.id == p.transaction_id)
        .group_by(p.transaction_id, t.idempotency_key, p.currency)
        .having(total != 0)
        .order_by(p.transaction_id, p.currency)
    )
    for transaction_id, key, currency, imbalance in rows:
        yield Problem(
            "unbalanced",
            f"transaction {transaction_id} ({key}) does not balance in {currency}: postings sum to {int(imbalance)}",
        )


def _orphan_postings(connection: Connection) -> Iterator[Problem]:
    p = postings_table.c
    t = transactions_table.c
    rows = connection.execute(
        select(p.transaction_id, func.count())
        .outerjoin(transactions_table, t.id == p.transaction_id)
        .where(t.id.is_(None))
        .group_by(p.transaction_id)
        .order_by(p.transaction_id)
    )
    for transaction_id, count in rows:
        yield Problem("orphan_posting", f"{count} posting(s) name transaction {transaction_id}, which does not exist")


def _empty_transactions(connection: Connection) -> Iterator[Problem]:
    p = postings_table.c
    t = transactions_table.c
    rows = connection.execute(
        select(t.id, t.idempotency_key)
        .where(~select(p.transaction_id).where(p.transaction_id == t.id).exists())
        .order_by(t.id)
    )
    for transaction_id, key in rows:
        yield Problem("empty_transaction", f"transaction {transaction_id} ({key}) has no postings")


def _duplicate_keys(connection: Connection) -> Iterator[Problem]:
    t = transactions_table.c
    rows = connection.execute(
        select(t.idempotency_key, func.count(), func.min(t.id), func.max(t.id))
        .group_by(t.idempotency_key)
        .having(func.count() > 1)
        .order_by(t.idempotency_key)
    )
    for key, count, first, last in rows:
        yield Problem(
            "duplicate_key",
            f"idempotency key {key!r} is posted {count} times (transactions {first} … {last})",
        )


def _unknown_accounts(connection: Connection) -> Iterator[Problem]:
    p = postings_table.c
    a = accounts_table.c
    rows = connection.execute(
        select(p.account, func.count(), func.min(p.transaction_id))
        .outerjoin(accounts_table, a.name == p.account)
        .where(a.name.is_(None))
        .group_by(p.account)
        .order_by(p.account)
    )
    for account, count, first in rows:
        yield Problem(
            "unknown_account",
            f"{count} posting(s) (first in transaction {first}) name account {account!r}, "
            "which is not in ledger_accounts",
        )


def _account_currencies(connection: Connection) -> Iterator[Problem]:
    p = postings_table.c
    rows = connection.execute(select(p.account, p.currency).distinct().order_by(p.account, p.currency))
    for account, currency in rows:
        try:
            allowed = parse_account(account).holds(currency)
        except InvalidAccountError as exc:
            yield Problem("account_currency", f"postings name an invalid account: {exc}")
            continue
        if not allowed:
            yield Problem("account_currency", f"account {account} has postings in {currency}, which it may not hold")


def _content_mismatches(connection: Connection) -> Iterator[Problem]:
    t = transactions_table.c
    p = postings_table.c
    rows = connection.execution_options(stream_results=True, max_row_buffer=_STREAM_ROWS).execute(
        select(t.id, t.idempotency_key, t.kind, t.reverses_id, t.content_hash, p.account, p.currency, p.amount)
        .join(postings_table, p.transaction_id == t.id)
        .order_by(t.id)
    )
    current: list[Any] | None = None
    legs: list[Posting] = []
    for transaction_id, key, kind, reverses, digest, account, currency, amount in rows:
        if current is None or current[0] != transaction_id:
            if current is not None:
                yield from _compare(current, legs)
            current, legs = [transaction_id, key, kind, reverses, digest], []
        legs.append(Posting(account, currency, int(amount)))
    if current is not None:
        yield from _compare(current, legs)


def _compare(header: list[Any], legs: list[Posting]) -> Iterator[Problem]:
    transaction_id, key, kind, reverses, digest = header
    if content_hash(kind, legs, reverses) != digest:
        yield Problem(
            "content_mismatch",
            f"transaction {transaction_id} ({key}): its postings or kind differ from what was posted "
            "(content hash mismatch)",
        )


def _suspense_negative(connection: Connection) -> Iterator[Problem]:
    p = postings_table.c
    total = connection.execute(
        select(func.coalesce(func.sum(p.amount), 0)).where(p.account == SUSPENSE, p.currency == USD)
    ).scalar_one()
    held = -int(total)  # credit-normal
    if held < 0:
        yield Problem(
            "suspense_negative",
            f"suspense holds {format_units(held, USD_DECIMALS)} USD: more was assigned out than was held",
        )


def _negative_customer_balances(connection: Connection) -> Iterator[Problem]:
    p = postings_table.c
    a = accounts_table.c
    total = func.sum(p.amount)
    rows = connection.execute(
        select(p.account, total)
        .join(accounts_table, and_(a.name == p.account, a.kind == CUSTOMER))
        .where(p.currency == USD)
        .group_by(p.account)
        .having(total > 0)  # credit-normal: a positive sum of postings is a negative balance
        .order_by(p.account)
    )
    for account, sum_of_postings in rows:
        balance = -int(sum_of_postings)
        yield Problem(
            "negative_balance",
            f"customer {account} has a negative balance of {format_units(balance, USD_DECIMALS)} USD "
            "(allowed after a reversal, never floored: someone must look)",
            FLAG,
        )


__all__ = ["ERROR", "FLAG", "verify_ledger"]
