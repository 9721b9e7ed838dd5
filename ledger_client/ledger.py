"""The ledger client: `Ledger` (open, migrate, run units of work with retries) and `UnitOfWork`.

A unit of work is one database transaction. Other packages write their own rows through
`uow.connection` in the same transaction as postings:

    def record(uow: UnitOfWork) -> PostResult:
        uow.connection.execute(deposits.insert().values(...))
        return uow.post(crypto_deposit_entry(...))

    result = ledger.run(record)

`run` retries the whole function as a new transaction when the database reports a serialization
failure, a deadlock, a lock timeout, SQLite busy or a lost connection (tenacity, bounded by attempts
and by time); `fn` must therefore be safe to call again, which it is when it only touches the
database through `uow`. Every other error rolls the transaction back and propagates.

Exactly-once posting rests on the unique idempotency key: a batch first looks its keys up, then
inserts the missing ones with `INSERT … ON CONFLICT DO NOTHING RETURNING`; a key that comes back
neither inserted nor found lost a race to another writer and is looked up again. Created-or-existed
is never decided from a rowcount.

`Ledger` is thread-safe (one SQLAlchemy engine, a connection per unit of work) and synchronous; the
async daemon calls it through a thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar

import structlog
import tenacity
from sqlalchemy import Connection, Engine, and_, func, literal, select, update
from sqlalchemy.sql import ColumnElement

from ledger_client import migrate
from ledger_client.accounts import SUSPENSE, check_currency, customer_account, parse_account
from ledger_client.database import (
    WRITE_OPTION,
    as_utc,
    create_engine_for,
    fetch_keys,
    insert_accounts,
    insert_ignoring_conflicts,
    insert_postings,
    insert_transactions,
    is_postgresql,
    lock_names,
    to_storage_time,
    translate_errors,
)
from ledger_client.entries import (
    Draft,
    check_address,
    check_draft,
    check_signature,
    parse_deposit_key,
    reversal_entry,
    suspense_assignment_entry,
)
from ledger_client.errors import (
    AlreadyAssignedError,
    AlreadyReversedError,
    IdempotencyConflictError,
    InvalidAccountError,
    InvalidEntryError,
    InvalidInputError,
    NotFoundError,
    TransientDatabaseError,
    WalletAlreadyLinkedError,
)
from ledger_client.money import USD
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
from ledger_client.schema import (
    claims_table,
    postings_table,
    suspense_holds_table,
    transactions_table,
    wallet_link_events_table,
    wallet_links_table,
)
from ledger_client.verify import verify_ledger

T = TypeVar("T")

MAX_BATCH: Final = 10_000  # drafts per post_many call: one transaction stays bounded
MAX_FOUND: Final = 1_000_000  # transactions one transactions_of_kinds call may return (memory stays bounded)
_LOOKUP_CHUNK: Final = 500  # keys per IN (...) lookup: well under every bind-parameter limit
_log = structlog.get_logger("ledger_client")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Ledger:
    """The shared ledger on one database. Open with `Ledger.open(url)`; close with `close()`."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
        max_attempts: int = 8,
        retry_deadline_s: float = 60.0,
        retry_max_wait_s: float = 2.0,
        quiet: bool = False,
    ) -> None:
        if max_attempts < 1 or retry_deadline_s <= 0 or retry_max_wait_s <= 0:
            raise InvalidInputError("retry bounds must be positive")
        self.engine = engine
        self._clock = clock
        self._max_attempts = max_attempts
        self._retry_deadline_s = retry_deadline_s
        self._retry_max_wait_s = retry_max_wait_s
        # quiet: no log lines (retries, links, assignments); one-shot commands report outcomes themselves.
        self.log: Any = _QUIET if quiet else _log
        # Accounts known to exist (committed). Rows are never deleted, so the cache never goes stale.
        self._known_accounts: set[str] = set()
        self._accounts_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        database_url: str,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
        max_attempts: int = 8,
        retry_deadline_s: float = 60.0,
        busy_timeout_s: float = 30.0,
        connect_timeout_s: int = 10,
        lock_timeout_s: int = 30,
        statement_timeout_s: int = 600,
        pool_size: int = 5,
        quiet: bool = False,
    ) -> Ledger:
        """A ledger on `database_url` (sqlite:///path or postgresql://…). Connects lazily."""
        engine = create_engine_for(
            database_url,
            busy_timeout_s=busy_timeout_s,
            connect_timeout_s=connect_timeout_s,
            lock_timeout_s=lock_timeout_s,
            statement_timeout_s=statement_timeout_s,
            pool_size=pool_size,
        )
        return cls(engine, clock=clock, max_attempts=max_attempts, retry_deadline_s=retry_deadline_s, quiet=quiet)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def upgrade(self) -> tuple[str | None, str]:
        """Alembic to head (under a lock); returns (revision before, revision after)."""
        return self._with_retries(lambda: migrate.upgrade(self.engine))

    def ensure_schema(self) -> bool:
        """Migrate an empty database; SchemaError when it is behind or ahead. True when it migrated."""
        return self._with_retries(lambda: migrate.check_current(self.engine, upgrade_if_empty=True))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- units of work ---

    def run(self, fn: Callable[[UnitOfWork], T]) -> T:
        """fn(uow) in one write transaction, retried as a whole on transient failures (bounded)."""
        return self._retrying(fn, write=True)

    def read(self, fn: Callable[[UnitOfWork], T]) -> T:
        """fn(uow) in one read-only transaction (on SQLite it does not take the write lock)."""
        return self._retrying(fn, write=False)

    def _retrying(self, fn: Callable[[UnitOfWork], T], *, write: bool) -> T:
        return self._with_retries(lambda: self._attempt(fn, write))

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        """attempt() again on TransientDatabaseError, bounded by attempts and by time, with jittered backoff."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientDatabaseError),
            stop=tenacity.stop_after_attempt(self._max_attempts) | tenacity.stop_after_delay(self._retry_deadline_s),
            wait=tenacity.wait_random_exponential(multiplier=0.05, max=self._retry_max_wait_s),
            reraise=True,
            before_sleep=self._log_retry,
        )
        result: T = retrying(attempt)
        return result

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        self.log.warning(
            "ledger_retry",
            attempt=state.attempt_number,
            error_type=type(error).__name__,
            error=str(error),
            sleep_s=round(state.upcoming_sleep, 3),
        )

    def _attempt(self, fn: Callable[[UnitOfWork], T], write: bool) -> T:
        with translate_errors(), self.engine.connect() as pooled:
            options: dict[str, Any] = {WRITE_OPTION: write}
            if not write and is_postgresql(pooled):
                options["postgresql_readonly"] = True
            connection = pooled.execution_options(**options)
            with connection.begin():
                uow = UnitOfWork(connection, self, write=write)
                result: T = fn(uow)
        with self._accounts_lock:
            self._known_accounts.update(uow._opened_accounts)
        return result

    def _is_known_account(self, name: str) -> bool:
        return name in self._known_accounts

    def now(self) -> dt.datetime:
        return to_storage_time(self._clock())

    # --- the API, each call its own unit of work ---

    def post(self, draft: Draft) -> PostResult:
        return self.run(lambda uow: uow.post(draft))

    def post_many(self, drafts: Sequence[Draft]) -> list[PostResult]:
        return self.run(lambda uow: uow.post_many(drafts))

    def balance(self, account: str, currency: str = USD) -> int:
        return self.read(lambda uow: uow.balance(account, currency))

    def balances(self, account: str | None = None) -> list[Balance]:
        return self.read(lambda uow: uow.balances(account))

    def transaction(self, transaction_id: int) -> Transaction:
        return self.read(lambda uow: uow.transaction(transaction_id))

    def transaction_by_key(self, key: str) -> Transaction | None:
        return self.read(lambda uow: uow.transaction_by_key(key))

    def transactions_by_keys(self, keys: Iterable[str]) -> dict[str, Transaction]:
        wanted = list(keys)  # a generator could not be read again by a retry
        return self.read(lambda uow: uow.transactions_by_keys(wanted))

    def transactions_of_kinds(
        self, kinds: Iterable[str], *, created_since: dt.datetime | None = None, limit: int = MAX_FOUND
    ) -> list[Transaction]:
        wanted = list(kinds)
        return self.read(lambda uow: uow.transactions_of_kinds(wanted, created_since=created_since, limit=limit))

    def reverse(
        self, transaction_id: int, *, reason: str, actor: str, evidence: Mapping[str, Any] | None = None
    ) -> PostResult:
        return self.run(lambda uow: uow.reverse(transaction_id, reason=reason, actor=actor, evidence=evidence))

    def claim(self, signature: str, customer: str) -> Claim:
        return self.run(lambda uow: uow.claim(signature, customer))

    def claims_for(self, signature: str) -> list[Claim]:
        return self.read(lambda uow: uow.claims_for(signature))

    def link_wallet(
        self, address: str, customer: str, *, move: bool = False, reason: str | None = None, actor: str | None = None
    ) -> WalletLink:
        return self.run(lambda uow: uow.link_wallet(address, customer, move=move, reason=reason, actor=actor))

    def customer_for_wallet(self, address: str) -> str | None:
        return self.read(lambda uow: uow.customer_for_wallet(address))

    def suspense_holds(self, *, include_assigned: bool = False) -> list[SuspenseHold]:
        return self.read(lambda uow: uow.suspense_holds(include_assigned=include_assigned))

    def assign_suspense(self, deposit_key: str, customer: str, *, actor: str, reason: str | None = None) -> PostResult:
        return self.run(lambda uow: uow.assign_suspense(deposit_key, customer, actor=actor, reason=reason))

    def verify(self) -> list[Problem]:
        return self.read(lambda uow: uow.verify())


class _QuietLogger:
    """Drops every log call (Ledger(quiet=True))."""

    def _drop(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    debug = info = warning = error = _drop


_QUIET: Final = _QuietLogger()


class UnitOfWork:
    """One database transaction: `connection` for other packages' rows, plus the ledger API."""

    def __init__(self, connection: Connection, ledger: Ledger, *, write: bool) -> None:
        self.connection = connection
        self.write = write
        self._ledger = ledger
        self._opened_accounts: set[str] = set()  # inserted in this transaction; cached after commit

    def now(self) -> dt.datetime:
        return self._ledger.now()

    # --- posting ---

    def post(self, draft: Draft) -> PostResult:
        """Post one draft: (new id, True), or (existing id, False) when its key exists with the same content.

        IdempotencyConflictError when the key exists with different content; nothing is written.
        """
        return self.post_many([draft])[0]

    def post_many(self, drafts: Sequence[Draft]) -> list[PostResult]:
        """Post drafts in one batch; results in input order. A repeated key in the batch gets one id.

        All or nothing: when one draft is refused (conflict, unbalanced, already reversed) the error
        is raised and nothing of the batch is written, even if the caller catches it inside the unit
        of work (the batch's writes are inside a savepoint).
        """
        drafts = list(drafts)
        if not drafts:
            return []
        if len(drafts) > MAX_BATCH:
            raise InvalidInputError(f"at most {MAX_BATCH} drafts per batch, got {len(drafts)}")
        by_key: dict[str, _Prepared] = {}
        for draft in drafts:
            evidence_json = check_draft(draft)  # before hashing: a malformed draft gets a clear error
            earlier = by_key.get(draft.key)
            if earlier is None:
                by_key[draft.key] = _Prepared(draft, draft.content_hash, evidence_json)
            elif earlier.draft is not draft and earlier.digest != draft.content_hash:
                raise InvalidEntryError(f"key {draft.key!r} appears twice in the batch with different content")
        unique = sorted(by_key.values(), key=lambda p: p.draft.key)  # one lock order for every writer
        self._require_write()
        # Wallet locks first (see link_wallet): a hold posted while its sender is being linked is
        # either seen by the link or sees the link, never neither.
        senders = [f"wallet:{p.draft.hold.sender}" for p in unique if p.draft.hold and p.draft.hold.sender]
        lock_names(self.connection, senders)
        if len(unique) == 1:
            outcome, opened = self._post_unique(unique)
        else:
            with self.connection.begin_nested():
                outcome, opened = self._post_unique(unique)
        self._opened_accounts |= opened
        results: list[PostResult] = []
        reported: set[str] = set()
        for draft in drafts:
            transaction_id, created = outcome[draft.key]
            results.append(PostResult(transaction_id, created and draft.key not in reported))
            reported.add(draft.key)
        created_holds = [p.draft for p in unique if p.draft.hold is not None and outcome[p.draft.key][1]]
        if created_holds:
            self._assign_holds_of_linked_senders(created_holds)
        return results

    def _post_unique(self, unique: list[_Prepared]) -> tuple[dict[str, tuple[int, bool]], set[str]]:
        found = fetch_keys(self.connection, [p.draft.key for p in unique])
        self._check_existing(unique, found)
        missing = [p for p in unique if p.draft.key not in found]
        created: dict[str, int] = {}
        opened: set[str] = set()
        if missing:
            opened = self._open_accounts({posting.account for p in missing for posting in p.draft.postings})
            rows = [(p.draft.key, p.draft.kind, p.digest, p.evidence_json, p.draft.reverses) for p in missing]
            created = insert_transactions(self.connection, rows, self.now())
            lost = [p for p in missing if p.draft.key not in created]
            if lost:
                # Another writer committed these keys after our lookup (ON CONFLICT waited for it),
                # or a reversal hit the one-reversal-per-transaction constraint.
                found.update(fetch_keys(self.connection, [p.draft.key for p in lost]))
                self._check_existing(lost, found)
                for prepared in lost:
                    if prepared.draft.key not in found:
                        reverses = prepared.draft.reverses
                        assert reverses is not None  # the only other unique constraint
                        raise AlreadyReversedError(reverses, self._reversal_of(reverses))
            insert_postings(
                self.connection,
                [
                    (created[p.draft.key], posting.account, posting.currency, posting.amount)
                    for p in missing
                    if p.draft.key in created
                    for posting in p.draft.postings
                ],
            )
            hold_rows = [
                {
                    "transaction_id": created[p.draft.key],
                    "signature": p.draft.hold.signature,
                    "sender": p.draft.hold.sender,
                }
                for p in missing
                if p.draft.key in created and p.draft.hold is not None
            ]
            if hold_rows:
                self.connection.execute(suspense_holds_table.insert(), hold_rows)
        outcome = {key: (transaction_id, True) for key, transaction_id in created.items()}
        for prepared in unique:
            if prepared.draft.key not in outcome:
                outcome[prepared.draft.key] = (found[prepared.draft.key][0], False)
        return outcome, opened

    @staticmethod
    def _check_existing(prepared: Iterable[_Prepared], found: Mapping[str, tuple[int, str]]) -> None:
        for item in prepared:
            existing = found.get(item.draft.key)
            if existing is not None and existing[1] != item.digest:
                raise IdempotencyConflictError(item.draft.key, existing[0])

    def _open_accounts(self, names: Iterable[str]) -> set[str]:
        """Insert accounts not known to exist; returns the names inserted (or found) in this transaction."""
        new = sorted(
            name
            for name in set(names)
            if not self._ledger._is_known_account(name) and name not in self._opened_accounts
        )
        insert_accounts(self.connection, [(name, parse_account(name).kind) for name in new], self.now())
        return set(new)

    def _require_write(self) -> None:
        if not self.write:
            raise InvalidInputError("this unit of work is read-only (use Ledger.run to write)")

    # --- reads ---

    def balance(self, account: str, currency: str = USD) -> int:
        """The account's balance on its normal side, in base units (a customer's credits: positive)."""
        parsed = parse_account(account)
        check_currency(currency)
        if not parsed.holds(currency):
            raise InvalidAccountError(account, f"cannot hold {currency}")
        p = postings_table.c
        total = self.connection.execute(
            select(func.coalesce(func.sum(p.amount), 0)).where(p.account == account, p.currency == currency)
        ).scalar_one()
        return int(total) * parsed.normal_side

    def balances(self, account: str | None = None) -> list[Balance]:
        """Balances per account and currency (every account, or one), on each account's normal side."""
        p = postings_table.c
        query = select(p.account, p.currency, func.sum(p.amount)).group_by(p.account, p.currency)
        if account is not None:
            parse_account(account)
            query = query.where(p.account == account)
        rows = self.connection.execute(query.order_by(p.account, p.currency))
        return [Balance(name, currency, int(total) * parse_account(name).normal_side) for name, currency, total in rows]

    def transaction(self, transaction_id: int) -> Transaction:
        found = self._transactions(transactions_table.c.id == transaction_id)
        if not found:
            raise NotFoundError(f"transaction {transaction_id}")
        return found[0]

    def transaction_by_key(self, key: str) -> Transaction | None:
        found = self._transactions(transactions_table.c.idempotency_key == key)
        return found[0] if found else None

    def transactions_by_keys(self, keys: Iterable[str]) -> dict[str, Transaction]:
        """key -> transaction for the keys that are posted (keys not posted are left out), with postings."""
        wanted = sorted(set(keys))
        found: dict[str, Transaction] = {}
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start : start + _LOOKUP_CHUNK]
            for transaction in self._transactions(transactions_table.c.idempotency_key.in_(chunk)):
                found[transaction.key] = transaction
        return found

    def transactions_of_kinds(
        self, kinds: Iterable[str], *, created_since: dt.datetime | None = None, limit: int = MAX_FOUND
    ) -> list[Transaction]:
        """Transactions of these kinds (created at or after `created_since`), oldest first, with postings.

        For jobs that scan one kind of transaction, e.g. Stripe reconciliation reading the card
        top-ups whose evidence names a checkout session. More than `limit` matching transactions is an
        InvalidInputError (narrow the scan): the result is never cut short silently.
        """
        kinds = sorted(set(kinds))
        if not kinds:
            return []
        if limit < 1:
            raise InvalidInputError("limit must be positive")
        t = transactions_table.c
        condition: ColumnElement[bool] = t.kind.in_(kinds)
        if created_since is not None:
            condition = and_(condition, t.created_at >= to_storage_time(created_since))
        rows = self._headers(condition, limit=limit + 1)
        if len(rows) > limit:
            raise InvalidInputError(f"more than {limit} transactions of kinds {', '.join(kinds)}: narrow the scan")
        # The postings by the same condition (a join), not by a list of thousands of ids.
        p = postings_table.c
        postings = select(p.transaction_id, p.account, p.currency, p.amount).join(
            transactions_table, t.id == p.transaction_id
        )
        return self._with_postings(rows, postings.where(condition))

    def _transactions(self, condition: ColumnElement[bool]) -> list[Transaction]:
        rows = self._headers(condition)
        if not rows:
            return []
        p = postings_table.c
        postings = select(p.transaction_id, p.account, p.currency, p.amount)
        return self._with_postings(rows, postings.where(p.transaction_id.in_([row[0] for row in rows])))

    def _headers(self, condition: ColumnElement[bool], *, limit: int | None = None) -> list[Any]:
        """(id, key, kind, created_at, evidence, reverses, reversed_by) of the matching transactions, by id."""
        t = transactions_table.c
        reversal = transactions_table.alias("reversal")
        query = (
            select(t.id, t.idempotency_key, t.kind, t.created_at, t.evidence, t.reverses_id, reversal.c.id)
            .outerjoin(reversal, reversal.c.reverses_id == t.id)
            .where(condition)
            .order_by(t.id)
        )
        return list(self.connection.execute(query if limit is None else query.limit(limit)).all())

    def _with_postings(self, rows: list[Any], postings: Any) -> list[Transaction]:
        """Transactions from header rows and a query of (transaction id, account, currency, amount)."""
        p = postings_table.c
        legs: dict[int, list[Posting]] = {}
        for transaction_id, account, currency, amount in self.connection.execute(
            postings.order_by(p.transaction_id, p.account, p.currency)
        ):
            legs.setdefault(transaction_id, []).append(Posting(account, currency, int(amount)))
        return [
            Transaction(
                id=row[0],
                key=row[1],
                kind=row[2],
                created_at=as_utc(row[3]),
                evidence=row[4],
                reverses=row[5],
                postings=tuple(legs.get(row[0], ())),
                reversed_by=row[6],
            )
            for row in rows
        ]

    def _reversal_of(self, transaction_id: int) -> int | None:
        t = transactions_table.c
        found = self.connection.execute(select(t.id).where(t.reverses_id == transaction_id)).scalar_one_or_none()
        return int(found) if found is not None else None

    def verify(self) -> list[Problem]:
        return verify_ledger(self.connection)

    # --- reversal ---

    def reverse(
        self, transaction_id: int, *, reason: str, actor: str, evidence: Mapping[str, Any] | None = None
    ) -> PostResult:
        """Post the reversal of a transaction (key `reverse:<id>`): once; again returns the same id."""
        original = self.transaction(transaction_id)
        draft = reversal_entry(original, reason=reason, actor=actor, at=self.now(), evidence=evidence)
        if original.reversed_by is not None:
            existing = self.transaction_by_key(draft.key)
            if existing is None or existing.id != original.reversed_by:
                raise AlreadyReversedError(transaction_id, original.reversed_by)
        return self.post(draft)

    # --- claims ---

    def claim(self, signature: str, customer: str) -> Claim:
        """Record that `customer` names `signature` as theirs. It never credits anything by itself."""
        signature = check_signature(signature)
        customer = customer_account(customer)
        self._require_write()
        self._opened_accounts |= self._open_accounts([customer])
        row = {"signature": signature, "customer": customer, "claimed_at": self.now()}
        self.connection.execute(insert_ignoring_conflicts(self.connection, claims_table), [row])
        c = claims_table.c
        claimed_at = self.connection.execute(
            select(c.claimed_at).where(c.signature == signature, c.customer == customer)
        ).scalar_one()
        return Claim(signature, customer, as_utc(claimed_at))

    def claims_for(self, signature: str) -> list[Claim]:
        return self._claims([signature]).get(signature, [])

    def _claims(self, signatures: Sequence[str]) -> dict[str, list[Claim]]:
        c = claims_table.c
        claims: dict[str, list[Claim]] = {}
        for start in range(0, len(signatures), _LOOKUP_CHUNK):
            chunk = list(signatures[start : start + _LOOKUP_CHUNK])
            rows = self.connection.execute(
                select(c.signature, c.customer, c.claimed_at)
                .where(c.signature.in_(chunk))
                .order_by(c.signature, c.claimed_at, c.customer)
            )
            for signature, customer, claimed_at in rows:
                claims.setdefault(signature, []).append(Claim(signature, customer, as_utc(claimed_at)))
        return claims

    # --- linked wallets ---

    def customer_for_wallet(self, address: str) -> str | None:
        address = check_address(address)
        w = wallet_links_table.c
        customer = self.connection.execute(select(w.customer).where(w.address == address)).scalar_one_or_none()
        return str(customer) if customer is not None else None

    def customers_for_wallets(self, addresses: Iterable[str]) -> dict[str, str]:
        """The customer of each linked wallet among `addresses` (unlinked ones are absent), in few queries."""
        wanted = sorted({check_address(address) for address in addresses})
        w = wallet_links_table.c
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            query = select(w.address, w.customer).where(w.address.in_(wanted[start : start + 500]))
            found.update({str(row[0]): str(row[1]) for row in self.connection.execute(query)})
        return found

    def link_wallet(
        self, address: str, customer: str, *, move: bool = False, reason: str | None = None, actor: str | None = None
    ) -> WalletLink:
        """Link a wallet to one customer, then assign (once) its deposits waiting in suspense.

        A wallet already linked to another customer raises WalletAlreadyLinkedError unless move=True
        with a reason; every link and move is recorded in ledger_wallet_link_events. Holds assigned
        before a move stay with the customer they went to.
        """
        address = check_address(address)
        customer = customer_account(customer)
        if move and not (reason and reason.strip()):
            raise InvalidInputError("moving a wallet to another customer needs a reason")
        self._require_write()
        lock_names(self.connection, [f"wallet:{address}"])
        self._opened_accounts |= self._open_accounts([customer])
        now = self.now()
        previous = self.customer_for_wallet(address)
        w = wallet_links_table.c
        changed = previous != customer
        if previous is None:
            self.connection.execute(
                wallet_links_table.insert(), [{"address": address, "customer": customer, "linked_at": now}]
            )
        elif changed:
            if not move:
                raise WalletAlreadyLinkedError(address, previous)
            self.connection.execute(
                update(wallet_links_table).where(w.address == address).values(customer=customer, linked_at=now)
            )
        if changed:
            self.connection.execute(
                wallet_link_events_table.insert(),
                [
                    {
                        "address": address,
                        "customer": customer,
                        "previous_customer": previous,
                        "reason": reason,
                        "actor": actor,
                        "at": now,
                    }
                ],
            )
            self._ledger.log.info(
                "wallet_linked", address=address, customer=customer, previous_customer=previous, actor=actor
            )
        holds = self._unassigned_holds(sender=address)
        assigned = self._assign(holds, customer, {"by": "wallet_link", "wallet": address, "actor": actor})
        return WalletLink(address, customer, previous, changed, tuple(assigned))

    # --- suspense ---

    def suspense_holds(self, *, include_assigned: bool = False) -> list[SuspenseHold]:
        """Deposits held in suspense, oldest first, with their claims; unassigned (and unreversed) only
        unless include_assigned."""
        holds = self._holds(include_assigned=include_assigned)
        claims = self._claims([hold.signature for hold in holds])
        return [
            SuspenseHold(
                deposit_key=hold.deposit_key,
                transaction_id=hold.transaction_id,
                signature=hold.signature,
                sender=hold.sender,
                credits_micros=hold.credits_micros,
                held_at=hold.held_at,
                claims=tuple(claims.get(hold.signature, ())),
                assigned_to=hold.assigned_to,
                assignment_transaction_id=hold.assignment_transaction_id,
            )
            for hold in holds
        ]

    def assign_suspense(self, deposit_key: str, customer: str, *, actor: str, reason: str | None = None) -> PostResult:
        """Move a suspense hold's credits to `customer` (an operator's decision), exactly once.

        Assigning it again to the same customer returns the existing transaction (created False);
        to another customer raises AlreadyAssignedError.
        """
        parse_deposit_key(deposit_key)
        customer = customer_account(customer)
        found = self._holds(include_assigned=True, deposit_key=deposit_key)
        if not found:
            raise NotFoundError(f"suspense hold {deposit_key}")
        hold = found[0]
        if hold.assignment_transaction_id is not None:
            if hold.assigned_to != customer:
                raise AlreadyAssignedError(deposit_key, hold.assigned_to or "?")
            return PostResult(hold.assignment_transaction_id, False)
        reversal_id = self._reversal_of(hold.transaction_id)
        if reversal_id is not None:
            raise AlreadyReversedError(hold.transaction_id, reversal_id)
        [(_key, result)] = self._assign([hold], customer, {"by": "operator", "actor": actor, "reason": reason})
        return result

    def _assign(
        self, holds: Sequence[_Hold], customer: str, evidence: Mapping[str, Any]
    ) -> list[tuple[str, PostResult]]:
        if not holds:
            return []
        at = self.now().isoformat()
        drafts = [
            suspense_assignment_entry(hold.deposit_key, customer, hold.credits_micros, {**evidence, "at": at})
            for hold in holds
        ]
        try:
            results = self.post_many(drafts)
        except IdempotencyConflictError as exc:
            # Assigned to someone else by a concurrent writer after we looked.
            deposit_key = exc.key.removeprefix("assign:")
            [hold] = self._holds(include_assigned=True, deposit_key=deposit_key)
            raise AlreadyAssignedError(deposit_key, hold.assigned_to or "?") from exc
        for hold, result in zip(holds, results, strict=True):
            self._ledger.log.info(
                "suspense_assigned",
                deposit_key=hold.deposit_key,
                customer=customer,
                credits_micros=hold.credits_micros,
                transaction_id=result.transaction_id,
                created=result.created,
                by=evidence.get("by"),
            )
        return [(hold.deposit_key, result) for hold, result in zip(holds, results, strict=True)]

    def _assign_holds_of_linked_senders(self, holds: list[Draft]) -> None:
        """Holds just posted whose sender is already linked go to that customer now (same transaction)."""
        senders = sorted({d.hold.sender for d in holds if d.hold is not None and d.hold.sender is not None})
        if not senders:
            return
        w = wallet_links_table.c
        links = {
            str(address): str(customer)
            for address, customer in self.connection.execute(
                select(w.address, w.customer).where(w.address.in_(senders))
            )
        }
        for sender, customer in sorted(links.items()):
            waiting = self._unassigned_holds(sender=sender)
            self._assign(waiting, customer, {"by": "wallet_link", "wallet": sender, "actor": "ledger"})

    def _unassigned_holds(self, *, sender: str) -> list[_Hold]:
        return self._holds(include_assigned=False, sender=sender)

    def _holds(
        self, *, include_assigned: bool, sender: str | None = None, deposit_key: str | None = None
    ) -> list[_Hold]:
        h = suspense_holds_table.c
        t = transactions_table.alias("hold_tx")
        assignment = transactions_table.alias("assignment")
        reversal = transactions_table.alias("reversal")
        p = postings_table.alias("hold_posting")
        ap = postings_table.alias("assignment_posting")
        credits = (
            select(func.sum(p.c.amount))
            .where(p.c.transaction_id == h.transaction_id, p.c.account == SUSPENSE, p.c.currency == USD)
            .scalar_subquery()
        )
        assignee = (
            select(func.max(ap.c.account))
            .where(ap.c.transaction_id == assignment.c.id, ap.c.account != SUSPENSE)
            .scalar_subquery()
        )
        query = (
            select(
                t.c.idempotency_key,
                h.transaction_id,
                h.signature,
                h.sender,
                credits,
                t.c.created_at,
                assignment.c.id,
                assignee,
            )
            .join(t, t.c.id == h.transaction_id)
            .outerjoin(assignment, assignment.c.idempotency_key == literal("assign:") + t.c.idempotency_key)
            .outerjoin(reversal, reversal.c.reverses_id == h.transaction_id)
            .order_by(t.c.created_at, h.transaction_id)
        )
        if not include_assigned:
            query = query.where(and_(assignment.c.id.is_(None), reversal.c.id.is_(None)))
        if sender is not None:
            query = query.where(h.sender == sender)
        if deposit_key is not None:
            query = query.where(t.c.idempotency_key == deposit_key)
        rows = self.connection.execute(query)
        return [
            _Hold(key, transaction_id, signature, holder, -int(total or 0), as_utc(held_at), assigned_id, customer)
            for key, transaction_id, signature, holder, total, held_at, assigned_id, customer in rows
        ]


class _Prepared(NamedTuple):
    """A checked draft with its content hash and evidence JSON, computed once."""

    draft: Draft
    digest: str
    evidence_json: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Hold:
    """A suspense hold as read from the database (claims are added by suspense_holds)."""

    deposit_key: str
    transaction_id: int
    signature: str
    sender: str | None
    credits_micros: int
    held_at: dt.datetime
    assignment_transaction_id: int | None
    assigned_to: str | None
