"""The ledger journal export: transactions and their postings posted in [since, until), as csv (one row
per posting), jsonl (one object per transaction) or Beancount.

Amounts are exact: base units in the ledger, written as fixed-point text in the currency's units
(USD to the micro-dollar, SOL to the lamport). Read in one snapshot and streamed.

Beancount (https://beancount.github.io/docs/beancount_language_syntax.html) needs capitalised account
components and an `open` before first use; the ledger's names map to it one-to-one (`beancount_account`):
customers under Liabilities:Customers, holdings under Assets, trading accounts under Equity:Conversion.
Each `open` carries the ledger's own name as metadata. The file starts with the balances before `since`
(one transaction against Equity:Opening-Balances) and ends with a `balance` assertion per account and
currency as of `until`, so Beancount's own loader checks that its sums are the ledger's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator
from typing import IO, Any, Final

import orjson
from sqlalchemy import Connection, func, select

from indexer.exports.rows import ExportError
from ledger_client.accounts import (
    BURNED,
    CLEARING,
    CONVERSION,
    CUSTOMER,
    EQUITY,
    EXPENSE,
    HOLDING,
    OSR_RECEIVED,
    SUSPENSE_KIND,
    parse_account,
)
from ledger_client.database import as_utc, to_storage_time, translate_errors
from ledger_client.money import format_units
from ledger_client.schema import postings_table, transactions_table
from pricing.quote import iso

JOURNAL_FORMATS: Final = ("csv", "jsonl", "beancount")
POSTING_COLUMNS: Final = (
    "transaction_id",
    "created_at",
    "idempotency_key",
    "kind",
    "reverses_id",
    "account",
    "currency",
    "amount",
    "amount_base_units",
)
OPENING_ACCOUNT: Final = "Equity:Opening-Balances"
FETCH_BATCH: Final = 5_000

_ROOT: Final = {
    CUSTOMER: "Liabilities",
    SUSPENSE_KIND: "Liabilities",
    HOLDING: "Assets",
    CLEARING: "Assets",
    BURNED: "Expenses",
    EXPENSE: "Expenses",
    CONVERSION: "Equity",
    EQUITY: "Equity",
}
_PLAIN_CUSTOMER: Final = re.compile(r"[a-z0-9][a-z0-9_]*")
_BEANCOUNT_CURRENCY: Final = re.compile(r"[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]")


@dataclasses.dataclass(frozen=True, slots=True)
class JournalPosting:
    transaction_id: int
    created_at: dt.datetime
    key: str
    kind: str
    reverses_id: int | None
    account: str
    currency: str
    amount: int  # base units, debit positive


def _component(text: str) -> str:
    """One Beancount account component: starts with a capital or digit; letters, digits and '-'."""
    cleaned = re.sub(r"[^A-Za-z0-9-]", "-", text)
    return cleaned[:1].upper() + cleaned[1:]


def beancount_account(name: str) -> str:
    """The Beancount name of a ledger account, one-to-one.

    A customer id of lower-case letters, digits and '_' (the billing service's form, agt_a1b2c3d4) maps
    to Liabilities:Customers:Agt-a1b2c3d4; any other id keeps its readable form and gains "-H" and a
    hash of the id. The plain form never has a capital after its first character and the hashed form
    always has, so two ids never share a name."""
    account = parse_account(name)
    root = _ROOT[account.kind]
    if account.kind == CUSTOMER:
        if _PLAIN_CUSTOMER.fullmatch(name):
            return f"{root}:Customers:{name[0].upper()}{name[1:].replace('_', '-')}"
        digest = hashlib.sha256(name.encode()).hexdigest()[:10].upper()
        return f"{root}:Customers:{_component(name)}-H{digest}"
    if name == OSR_RECEIVED:  # OSR's trading account sits beside the others
        return f"{root}:Conversion:OSR"
    return ":".join([root, *(_component(part) for part in name.split(":"))])


def beancount_currency(currency: str) -> str:
    if not _BEANCOUNT_CURRENCY.fullmatch(currency):
        raise ExportError(f"currency {currency!r} has no Beancount form")
    return currency


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def journal_postings(connection: Connection, since: dt.datetime, until: dt.datetime) -> Iterator[JournalPosting]:
    """The postings of transactions created in [since, until), by transaction id, then account, currency."""
    t = transactions_table.c
    p = postings_table.c
    query = (
        select(t.id, t.created_at, t.idempotency_key, t.kind, t.reverses_id, p.account, p.currency, p.amount)
        .join(postings_table, p.transaction_id == t.id)
        .where(t.created_at >= to_storage_time(since), t.created_at < to_storage_time(until))
        .order_by(t.id, p.account, p.currency)
    )
    streaming = connection.execution_options(stream_results=True, max_row_buffer=FETCH_BATCH)
    with translate_errors():
        for batch in streaming.execute(query).partitions(FETCH_BATCH):
            for row in batch:
                yield JournalPosting(row[0], as_utc(row[1]), row[2], row[3], row[4], row[5], row[6], int(row[7]))


def balances_before(connection: Connection, moment: dt.datetime) -> dict[tuple[str, str], int]:
    """Each (account, currency)'s sum of postings created before `moment` (zero sums left out)."""
    t = transactions_table.c
    p = postings_table.c
    with translate_errors():
        rows = connection.execute(
            select(p.account, p.currency, func.sum(p.amount))
            .join(transactions_table, p.transaction_id == t.id)
            .where(t.created_at < to_storage_time(moment))
            .group_by(p.account, p.currency)
        ).all()
    return {(account, currency): int(total) for account, currency, total in rows if int(total) != 0}


def _grouped(postings: Iterator[JournalPosting]) -> Iterator[list[JournalPosting]]:
    group: list[JournalPosting] = []
    for posting in postings:
        if group and posting.transaction_id != group[0].transaction_id:
            yield group
            group = []
        group.append(posting)
    if group:
        yield group


Decimals = Callable[[str], int]


def write_csv(postings: Iterator[JournalPosting], out: IO[str], decimals: Decimals) -> int:
    import csv  # noqa: PLC0415

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(POSTING_COLUMNS)
    count = 0
    for posting in postings:
        count += 1
        writer.writerow(
            [
                posting.transaction_id,
                iso(posting.created_at),
                posting.key,
                posting.kind,
                "" if posting.reverses_id is None else posting.reverses_id,
                posting.account,
                posting.currency,
                format_units(posting.amount, decimals(posting.currency)),
                posting.amount,
            ]
        )
    return count


def write_jsonl(postings: Iterator[JournalPosting], out: IO[bytes], decimals: Decimals) -> int:
    count = 0
    for group in _grouped(postings):
        first = group[0]
        count += 1
        record: dict[str, Any] = {
            "transaction_id": first.transaction_id,
            "created_at": iso(first.created_at),
            "idempotency_key": first.key,
            "kind": first.kind,
            "reverses_id": first.reverses_id,
            "postings": [
                {
                    "account": posting.account,
                    "currency": posting.currency,
                    "amount": format_units(posting.amount, decimals(posting.currency)),
                    "amount_base_units": str(posting.amount),
                }
                for posting in group
            ],
        }
        out.write(orjson.dumps(record) + b"\n")
    return count


def write_beancount(
    postings: Iterator[JournalPosting],
    opening: dict[tuple[str, str], int],
    out: IO[str],
    decimals: Decimals,
    *,
    since: dt.datetime,
    until: dt.datetime,
    opened_at: Callable[[str], dt.datetime | None],
) -> int:
    """A Beancount file of the window: opening balances, the transactions, closing balance assertions.

    Beancount sorts directives by date itself, so the `open` directives (which need every account seen)
    are written after the streamed transactions."""

    def amount(value: int, currency: str) -> str:
        return f"{format_units(value, decimals(currency))} {beancount_currency(currency)}"

    out.write(f"; System R treasury ledger journal, {iso(since)} .. {iso(until)} (UTC), from the shared ledger\n")
    out.write('option "title" "System R treasury ledger"\n')
    out.write('option "operating_currency" "USD"\n\n')
    first_use: dict[str, dt.date] = {}
    closing = dict(opening)
    start_day = since.astimezone(dt.UTC).date()
    if opening:
        out.write(f'{start_day.isoformat()} * "Balances before {iso(since)}"\n')
        for (account, currency), value in sorted(opening.items()):
            first_use.setdefault(account, start_day)
            out.write(f"  {beancount_account(account)}  {amount(value, currency)}\n")
            out.write(f"  {OPENING_ACCOUNT}  {amount(-value, currency)}\n")
        out.write("\n")
    count = 0
    for group in _grouped(postings):
        first = group[0]
        count += 1
        day = first.created_at.astimezone(dt.UTC).date()
        out.write(f"{day.isoformat()} * {_quoted(first.kind)} {_quoted(first.key)}\n")
        out.write(f"  ledger_id: {_quoted(str(first.transaction_id))}\n")
        out.write(f"  posted_at: {_quoted(iso(first.created_at))}\n")
        if first.reverses_id is not None:
            out.write(f"  reverses: {_quoted(str(first.reverses_id))}\n")
        for posting in group:
            first_use.setdefault(posting.account, day)
            closing[(posting.account, posting.currency)] = (
                closing.get((posting.account, posting.currency), 0) + posting.amount
            )
            out.write(f"  {beancount_account(posting.account)}  {amount(posting.amount, posting.currency)}\n")
        out.write("\n")
    for account, day in sorted(first_use.items()):
        opened = opened_at(account)
        opened_day = min(day, opened.date()) if opened is not None else day
        out.write(f"{opened_day.isoformat()} open {beancount_account(account)}\n")
        out.write(f"  ledger_account: {_quoted(account)}\n")
    if opening:
        out.write(f"{start_day.isoformat()} open {OPENING_ACCOUNT}\n")
    # A balance assertion holds at the start of its day: the day after the window's last moment.
    check_day = (until.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).date() + dt.timedelta(days=1)
    out.write("\n")
    for (account, currency), value in sorted(closing.items()):
        out.write(f"{check_day.isoformat()} balance {beancount_account(account)}  {amount(value, currency)}\n")
    return count
