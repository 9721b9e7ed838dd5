"""The deposit pipeline: find the treasury's transactions, record them, attribute, price and credit.

    source (signature pages) -> fetch transactions -> parse -> record (with the cursor, one DB
    transaction) -> finalized -> attribute -> price (quote stored) -> credit (ledger, exactly once)

Every step is idempotent and its state is in the database (indexer/store.py), so a crash anywhere
loses nothing and repeats nothing: a page is recorded together with the cursor that covers it; a
deposit's quote is stored before its credit is posted, and the credit is built only from what is
stored, so a retry posts the same content under the same key (the ledger returns the existing
transaction). `backfill` walks each watched address from its persisted cursors; the daemon
(indexer/daemon.py) reuses the same steps for live hints and polls.

Errors:
    PipelineError
      ├── MintMismatchError      a configured mint is not what the chain says (decimals / program)
      ├── TransactionMissingError  the node listed a signature but has no such transaction (lagging)
      ├── DepositStateError      an operation the deposit's state does not allow
      └── ScanFailedError        an address's walk could not go on (the message says why)
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final, TypeVar

import structlog

from indexer import burns, scan, store
from indexer.attribution import SUSPENSE as ATTRIBUTED_SUSPENSE
from indexer.attribution import Attribution, attribute, references_in
from indexer.config import Settings
from indexer.parser import ParseError, Watch, parse_transaction
from indexer.rpc import RpcError, SignatureInfo, SolanaRpc
from ledger_client import Ledger, crypto_deposit_entry, deposit_key
from ledger_client.database import first_block_second, to_storage_time
from ledger_client.ledger import UnitOfWork
from pricing import PriceOracle, PriceUnavailable, Quote, compute_credit
from pricing.assets import AssetTable
from pricing.credit import decimal_text

T = TypeVar("T")

FINALIZED: Final = "finalized"
CONFIRMED: Final = "confirmed"
# Deposits priced and credited per database transaction: bounds the memory a batch of credits holds
# (each carries its transaction as evidence, a few KB) while keeping statements few.
SETTLE_BATCH: Final = 250
MAX_PAGES_PER_ADDRESS: Final = 1_000_000  # a bound on one address's walk in one run (1e9 signatures)

_log = structlog.get_logger("indexer.pipeline")


class PipelineError(Exception):
    """Base of the pipeline's errors."""


class MintMismatchError(PipelineError):
    """The asset table says one thing about a mint and the chain another."""


class TransactionMissingError(PipelineError):
    """The node listed a signature but returned no transaction for it (it lags): retried later."""


class DepositStateError(PipelineError):
    """An operation on a deposit that its state does not allow (e.g. pricing a credited one)."""


class ScanFailedError(PipelineError):
    """An address's walk stopped; `address` names it."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(f"{address}: {message}")
        self.address = address


@dataclasses.dataclass(frozen=True, slots=True)
class _Hint:
    """A signature known without its page entry (a websocket hint); slot and time come from the reply."""

    signature: str
    slot: int = 0
    block_time: int | None = None


@dataclasses.dataclass(frozen=True)
class _Page:
    """A page fetched, parsed and priced by the producer, waiting to be written."""

    segment: scan.Segment  # the segment as it was before this page
    outcome: scan.PageOutcome
    fetched: list[store.FetchedTransaction]
    priced: dict[str, dict[str, Any]]


@dataclasses.dataclass
class RunSummary:
    """What one run did (counts of this run) and what waits (current totals)."""

    signatures: int = 0
    transactions_fetched: int = 0
    deposits_found: int = 0
    credited: int = 0
    held_in_suspense: int = 0
    ignored_by_reason: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    pending_price: dict[int, str] = dataclasses.field(default_factory=dict)  # deposit id -> why
    credited_micros_by_asset: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    scan_errors: list[str] = dataclasses.field(default_factory=list)
    totals: dict[str, int] = dataclasses.field(default_factory=dict)  # deposits by status, whole ledger

    @property
    def complete(self) -> bool:
        return not self.scan_errors


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Pipeline:
    """The steps of DESIGN.md §2 over one ledger, one RPC node and one price oracle."""

    def __init__(
        self,
        *,
        settings: Settings,
        ledger: Ledger,
        rpc: SolanaRpc,
        oracle: PriceOracle,
        clock: Callable[[], dt.datetime] = utc_now,
        page_limit: int = scan.PAGE_LIMIT,
        on_progress: Callable[[RunSummary, str], None] | None = None,
        on_event: Callable[..., None] | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.rpc = rpc
        self.oracle = oracle
        self.clock = clock
        self.page_limit = page_limit
        self.assets: AssetTable = settings.asset_table
        self.symbols = {asset.key: asset.symbol for asset in self.assets.assets}
        self.memo_pattern: re.Pattern[str] = settings.memo_pattern
        self._on_progress = on_progress
        # on_event(name, **fields): "deposit_seen", "deposit_credited", "deposit_ignored" (the daemon's metrics)
        self._on_event = on_event
        self._watch: Watch | None = None
        # One thread for the database: units of work run in order, and memory stays in one malloc arena
        # instead of growing with every thread of the default executor.
        self._database_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")

    # --- database access from async code: the ledger is synchronous, so it runs in a thread ---

    async def _run(self, fn: Callable[[UnitOfWork], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._database_thread, self.ledger.run, fn)

    async def _read(self, fn: Callable[[UnitOfWork], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._database_thread, self.ledger.read, fn)

    def close(self) -> None:
        self._database_thread.shutdown(wait=True)

    # --- start-up: mints and token accounts ---

    async def check_mints(self) -> None:
        """Each configured mint's decimals and owning program, checked against the chain."""
        for asset in self.assets.assets:
            if asset.mint is None:
                continue
            info = await self.rpc.check_mint(asset.mint)
            if info.decimals != asset.decimals or info.token_program != asset.token_program:
                raise MintMismatchError(
                    f"{asset.symbol} mint {asset.mint}: the chain says {info.decimals} decimals owned by "
                    f"{info.token_program}, the asset table {asset.decimals} decimals owned by {asset.token_program}"
                )

    async def discover(self) -> int:
        """Find the wallets' token accounts of the table's mints (both token programs); returns how many
        were new. Accounts of other mints are not scanned (anyone can create them for the treasury)."""
        mints = {asset.mint: asset for asset in self.assets.assets if asset.mint is not None}
        found: list[store.WatchedAccount] = [
            store.WatchedAccount(wallet, store.WALLET, wallet, None, None) for wallet in self.settings.wallets
        ]
        for wallet in self.settings.wallets:
            for account in await self.rpc.get_all_token_accounts(wallet):
                if account.mint in mints:
                    found.append(
                        store.WatchedAccount(
                            account.address, store.TOKEN_ACCOUNT, wallet, account.mint, account.program_id
                        )
                    )
        now = self.clock()
        added = await self._run(lambda uow: store.add_watched(uow.connection, found, now))
        self._watch = None
        return added

    async def watch(self) -> Watch:
        """What the parser looks for: the treasury wallets and their known token accounts."""
        if self._watch is None:
            accounts = await self._read(lambda uow: store.watched(uow.connection))
            self._watch = Watch(
                frozenset(self.settings.wallets),
                assets=self.assets,
                dust_raw=self.settings.dust_raw,
                token_accounts={a.address: a.owner for a in accounts if a.kind == store.TOKEN_ACCOUNT},
            )
        return self._watch

    async def addresses(self) -> list[str]:
        """Every address scanned: the wallets, then their token accounts."""
        accounts = await self._read(lambda uow: store.watched(uow.connection))
        wallets = list(self.settings.wallets)
        return wallets + [a.address for a in accounts if a.kind == store.TOKEN_ACCOUNT and a.address not in wallets]

    # --- the backfill ---

    async def backfill(
        self,
        *,
        since: dt.datetime | None = None,
        until_signature: str | None = None,
        limit: int | None = None,
        commitment: str = FINALIZED,
    ) -> RunSummary:
        """Scan every watched address from its cursors, record what is new, then credit what is final."""
        summary = RunSummary()
        await self.check_mints()
        await self.discover()
        start = since or self.settings.start
        budget = [limit if limit is not None else -1]
        for address in await self.addresses():
            if budget[0] == 0:
                break
            try:
                await self.scan_address(
                    address,
                    summary,
                    commitment=commitment,
                    stop_before_time=first_block_second(start) if start else None,
                    until_signature=until_signature,
                    budget=budget,
                )
            except (PipelineError, RpcError, scan.ScanError) as exc:
                summary.scan_errors.append(f"{address}: {exc}")
                _log.error("scan_failed", address=address, error=str(exc))
        await self.settle_all(summary)
        summary.totals = await self._read(lambda uow: store.status_counts(uow.connection))
        return summary

    async def scan_address(
        self,
        address: str,
        summary: RunSummary,
        *,
        commitment: str = FINALIZED,
        stop_before_time: int | None = None,
        until_signature: str | None = None,
        budget: list[int] | None = None,
    ) -> None:
        """Walk one address: resume its open segments, then poll what is newer than its head."""
        now = self.clock()

        def plan(uow: UnitOfWork) -> list[store.StoredSegment]:
            connection = uow.connection
            head = store.head(connection, address)
            open_segments = store.segments(connection, address)
            # At most one segment walks down from the newest signature at a time; its first page sets
            # the head, so a head of None with no such segment means this address was never scanned.
            if not any(s.segment.upper_signature is None for s in open_segments):
                if head is not None:
                    new = scan.Segment(address, lower_signature=head.signature, lower_slot=head.slot)
                    store.add_segment(connection, new, now)
                elif not open_segments:
                    first = scan.Segment(address, lower_signature=until_signature, stop_before_time=stop_before_time)
                    store.add_segment(connection, first, now)
            return store.segments(connection, address)

        for stored in await self._run(plan):
            await self._walk(stored, summary, commitment=commitment, budget=budget)

    async def _walk(
        self,
        stored: store.StoredSegment,
        summary: RunSummary,
        *,
        commitment: str,
        budget: list[int] | None,
    ) -> None:
        """Walk one segment: a producer fetches, parses and prices the next page while the previous one is
        written (two pages in flight at most, so memory stays one page deep); pages commit in order."""
        queue: asyncio.Queue[_Page | BaseException | None] = asyncio.Queue(maxsize=1)
        producer = asyncio.create_task(self._produce(stored.segment, summary, commitment, budget, queue))
        current: store.StoredSegment | None = stored
        try:
            for _ in range(MAX_PAGES_PER_ADDRESS + 1):
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                if current is None or current.segment != item.segment:
                    return  # another worker moved this segment: what it holds is recorded by it
                current = await self._commit_page(current, item, summary, commitment=commitment)
                if self._on_progress is not None:
                    self._on_progress(summary, stored.segment.address)
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer

    async def _produce(
        self,
        segment: scan.Segment,
        summary: RunSummary,
        commitment: str,
        budget: list[int] | None,
        queue: asyncio.Queue[_Page | BaseException | None],
    ) -> None:
        try:
            for _ in range(MAX_PAGES_PER_ADDRESS):
                if budget is not None and budget[0] == 0:
                    break
                limit = self.page_limit
                if budget is not None and budget[0] > 0:
                    limit = min(limit, budget[0])
                page = await self.rpc.get_signatures_for_address(
                    segment.address,
                    before=segment.upper_signature,
                    until=segment.lower_signature,
                    limit=limit,
                    commitment=commitment,
                )
                summary.signatures += len(page)
                # A full page (even one cut to the run's budget) is not the end of the history.
                outcome = scan.judge_page(segment, page, limit)
                fetched = await self._fetch_new(outcome.wanted, commitment=commitment)
                summary.transactions_fetched += len(fetched)
                priced = await self._price_new(fetched) if commitment == FINALIZED else {}
                await queue.put(_Page(segment, outcome, fetched, priced))
                if budget is not None and budget[0] > 0:
                    budget[0] = max(budget[0] - len(outcome.wanted), 0)
                if outcome.remaining is None:
                    break
                segment = outcome.remaining
            else:
                raise ScanFailedError(segment.address, f"more than {MAX_PAGES_PER_ADDRESS} pages in one run")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, which raises it after the pages before it
            await queue.put(exc)
            return
        await queue.put(None)

    async def _fetch_new(self, wanted: Sequence[Any], *, commitment: str) -> list[store.FetchedTransaction]:
        signatures = [entry.signature for entry in wanted]
        known = await self._read(lambda uow: store.known_transactions(uow.connection, signatures))
        todo = [entry for entry in wanted if known.get(entry.signature) != FINALIZED]
        if commitment == CONFIRMED:
            todo = [entry for entry in todo if entry.signature not in known]
        return await self.fetch(todo, commitment=commitment)

    async def _commit_page(
        self, stored: store.StoredSegment, page: _Page, summary: RunSummary, *, commitment: str
    ) -> store.StoredSegment | None:
        """Record one page with the cursor move in one transaction, then credit its priced deposits;
        returns what is left of the segment (None: finished, or moved by another worker)."""
        address = stored.segment.address
        now = self.clock()
        remaining = page.outcome.remaining
        newest = page.outcome.newest

        def write(uow: UnitOfWork) -> list[store.NewDeposit] | None:
            connection = uow.connection
            if not store.advance_segment(connection, stored, remaining, now):
                return None  # another worker recorded this page first: nothing to do
            if stored.segment.upper_signature is None and newest is not None:
                store.set_head(connection, address, newest.signature, newest.slot, now)
            new = store.record_transactions(
                connection, page.fetched, commitment=commitment, symbols=self.symbols, now=now, priced=page.priced
            )
            burns.record_burns(uow, page.fetched, commitment=commitment, settings=self.settings)  # issue 9
            return new

        new = await self._run(write)
        if new is None:
            _log.info("segment_moved_by_another_worker", address=address)
            return None
        await self._after_record(new, summary)
        if remaining is None:
            return None
        return store.StoredSegment(stored.id, remaining)

    async def _after_record(self, new: Sequence[store.NewDeposit], summary: RunSummary) -> None:
        """Count what a write recorded and credit what it priced."""
        summary.deposits_found += len(new)
        for deposit in new:
            self._event("deposit_seen", status=deposit.status)
            if deposit.status == store.IGNORED and deposit.reason:
                summary.ignored_by_reason[deposit.reason] += 1
                self._event("deposit_ignored", reason=deposit.reason)
            elif deposit.status == store.PENDING_PRICE:
                summary.pending_price[deposit.id] = deposit.reason or "no_point"
        to_credit = [deposit.id for deposit in new if deposit.stage == store.PRICED]
        for start in range(0, len(to_credit), SETTLE_BATCH):
            await self._credit(to_credit[start : start + SETTLE_BATCH], summary)

    def _event(self, name: str, **fields: Any) -> None:
        if self._on_event is not None:
            self._on_event(name, **fields)

    # --- live: the daemon's hints, finality and drops ---

    async def observe(self, signatures: Sequence[str], summary: RunSummary) -> int:
        """Record transactions seen live at `confirmed` (websocket hints): their deposits show as pending
        until final. Signatures already recorded are skipped. Returns how many were recorded."""
        known = await self._read(lambda uow: store.known_transactions(uow.connection, list(signatures)))
        todo = [_Hint(signature) for signature in dict.fromkeys(signatures) if signature not in known]
        if not todo:
            return 0
        fetched = await self.fetch(todo, commitment=CONFIRMED, missing_ok=True)
        now = self.clock()
        new = await self._run(
            lambda uow: store.record_transactions(
                uow.connection, fetched, commitment=CONFIRMED, symbols=self.symbols, now=now
            )
        )
        await self._after_record(new, summary)
        return len(fetched)

    async def finalize(self, signatures: Sequence[str], summary: RunSummary, *, live: bool = True) -> int:
        """Transactions now final: fetched again at `finalized` (what is credited is what finalized),
        recorded (promoting what was seen at confirmed), then attributed, priced and credited."""
        if not signatures:
            return 0
        fetched = await self.fetch(
            [_Hint(signature) for signature in signatures], commitment=FINALIZED, missing_ok=True
        )
        priced = await self._price_new(fetched, live=live)
        now = self.clock()

        def write(uow: UnitOfWork) -> list[store.NewDeposit]:
            new = store.record_transactions(
                uow.connection, fetched, commitment=FINALIZED, symbols=self.symbols, now=now, priced=priced
            )
            burns.record_burns(uow, fetched, commitment=FINALIZED, settings=self.settings)  # issue 9
            return new

        await self._after_record(await self._run(write), summary)
        finalized = [item.signature for item in fetched]
        promoted = await self._read(
            lambda uow: [row.id for row in store.deposits_of_signatures(uow.connection, finalized)]
        )
        for start in range(0, len(promoted), SETTLE_BATCH):
            await self.settle(summary, ids=promoted[start : start + SETTLE_BATCH], live=live)
        return len(fetched)

    async def drop(self, signatures: Sequence[str], *, reason: str) -> int:
        """Confirmed transactions that never finalized: their deposits are dropped (with an event)."""
        now = self.clock()
        dropped = await self._run(
            lambda uow: store.drop_transactions(uow.connection, signatures, reason=reason, now=now)
        )
        for _ in range(dropped):
            self._event("deposit_dropped")
        return dropped

    async def _price_new(
        self, fetched: Sequence[store.FetchedTransaction], *, live: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Attribution and the stored price of the creditable inflows of a page, decided before it is
        written (deposit key -> deposit columns)."""
        inflows = [
            change
            for item in fetched
            if item.parsed is not None
            for change in item.parsed.changes
            if change.direction == "in" and change.status == "creditable"
        ]
        if not inflows:
            return {}
        attributions = await self._attributions_of([(change.memo, change.counterparty) for change in inflows])
        now = self.clock()
        priced: dict[str, dict[str, Any]] = {}
        for change, attribution in zip(inflows, attributions, strict=True):
            asset = self.assets.by_key(change.asset)
            if asset is None:  # pragma: no cover - the parser marks other mints unsupported
                continue
            try:
                if change.block_time is None:
                    raise PriceUnavailable("no_point", "the transaction has no block time")
                at = dt.datetime.fromtimestamp(change.block_time, dt.UTC)
                quote: Quote | None = await self.oracle.quote(asset, at, now=now, live=live)
                reason = None
            except PriceUnavailable as exc:
                quote, reason = None, exc.reason
            step = self._decision(
                asset, change.amount_raw, attribution=attribution, quote=quote, reason=reason, now=now
            )
            priced[store.deposit_key_of(change)] = {"status": step[0], **step[1]}
        return priced

    def _decision(
        self,
        asset: Any,
        amount_raw: int,
        *,
        attribution: Attribution,
        quote: Quote | None,
        reason: str | None,
        now: dt.datetime,
    ) -> tuple[str, dict[str, Any]]:
        """What to store for a final deposit: (status, columns) — priced, waiting for a price, or dust."""
        customer = attribution.customer
        method = attribution.method if customer is not None else ATTRIBUTED_SUSPENSE
        who = {"customer": customer, "attribution": method, "reference": attribution.reference}
        if quote is None:
            return store.PENDING_PRICE, {**who, "reason": reason or "no_point"}
        credit = compute_credit(
            asset,
            amount_raw,
            quote.price_usd,
            osr_bonus=self.settings.osr_bonus,
            osr_burn_share=self.settings.osr_burn_share,
        )
        if credit.credits_micros <= 0:
            # Worth less than one micro-dollar at its price: never a credit at 0.
            return store.IGNORED, {"reason": "dust"}
        return store.PENDING, {
            **who,
            "stage": store.PRICED,
            "reason": None,
            "quote": quote.to_evidence(),
            "price_usd": decimal_text(quote.price_usd),
            "usd_value_micros": credit.usd_value_micros,
            "bonus_micros": credit.bonus_micros,
            "credits_micros": credit.credits_micros,
            "burn_raw": None if credit.burn_raw is None else str(credit.burn_raw),
            "retained_raw": None if credit.retained_raw is None else str(credit.retained_raw),
            "priced_at": to_storage_time(now),
        }

    async def fetch(
        self, entries: Sequence[SignatureInfo | _Hint], *, commitment: str, missing_ok: bool = False
    ) -> list[store.FetchedTransaction]:
        """The transactions of a page, fetched in batches and parsed. A signature the node listed but
        cannot return means it lags: the page is not recorded (TransactionMissingError). With
        `missing_ok` (live hints), such signatures are left out instead."""
        if not entries:
            return []
        watch = await self.watch()
        raws = await self.rpc.get_transactions([entry.signature for entry in entries], commitment=commitment)
        fetched = []
        for entry, raw in zip(entries, raws, strict=True):
            if raw is None:
                if missing_ok:
                    continue
                raise TransactionMissingError(f"the node listed {entry.signature} but has no such transaction")
            try:
                parsed = parse_transaction(raw, watch)
            except ParseError as exc:
                raise ScanFailedError(entry.signature, f"unusable transaction: {exc}") from exc
            fetched.append(
                store.FetchedTransaction(
                    signature=parsed.signature,
                    slot=parsed.slot if parsed.slot is not None else entry.slot,
                    block_time=parsed.block_time if parsed.block_time is not None else entry.block_time,
                    failed=parsed.failed,
                    parsed=parsed,
                    raw=raw,
                )
            )
        return fetched

    # --- settling: attribute, price, credit ---

    async def settle_all(self, summary: RunSummary, *, live: bool = False) -> None:
        """Settle every final deposit not yet credited, in batches."""
        seen: set[int] = set()
        for _ in range(1_000_000):
            rows = await self._read(lambda uow: store.deposits_to_settle(uow.connection, limit=SETTLE_BATCH))
            batch = [row.id for row in rows if row.id not in seen]
            if not batch:
                return
            seen.update(batch)
            await self.settle(summary, ids=batch, live=live)

    async def settle(self, summary: RunSummary, *, ids: Sequence[int], live: bool = False) -> None:
        """Attribute and price the final deposits among `ids`, store the quotes, then credit them."""
        rows = await self._read(lambda uow: store.deposits_to_settle(uow.connection, limit=len(ids) or 1, ids=ids))
        if not rows:
            return
        await self._price(rows, summary, live=live)
        await self._credit(ids, summary)

    async def _attributions(self, rows: Sequence[store.DepositRow]) -> dict[int, Attribution]:
        """Who gets each deposit's credits (DESIGN.md §3), decided when it is final."""
        found = await self._attributions_of([(row.memo, row.sender) for row in rows])
        return {row.id: attribution for row, attribution in zip(rows, found, strict=True)}

    async def _attributions_of(self, deposits: Sequence[tuple[str | None, str | None]]) -> list[Attribution]:
        """Attribution of (memo, sender) pairs, with the lookups done in one read."""
        references = {
            reference for memo, _ in deposits for reference in references_in([memo] if memo else [], self.memo_pattern)
        }
        senders = {sender for _, sender in deposits if sender}

        def lookups(uow: UnitOfWork) -> tuple[dict[str, str], dict[str, str]]:
            return store.customers_for_references(uow.connection, references), uow.customers_for_wallets(senders)

        customer_of_reference, customer_of_wallet = await self._read(lookups)
        return [
            attribute(
                [memo] if memo else [],
                sender,
                pattern=self.memo_pattern,
                customer_for_reference=customer_of_reference.get,
                customer_for_wallet=customer_of_wallet.get,
            )
            for memo, sender in deposits
        ]

    async def _price(self, rows: Sequence[store.DepositRow], summary: RunSummary, *, live: bool) -> None:
        to_price = [row for row in rows if row.stage == store.FINALIZED]
        if not to_price:
            return
        attributions = await self._attributions(to_price)
        now = self.clock()
        decisions: list[tuple[store.DepositRow, Attribution, Quote | None, str | None]] = []
        for row in to_price:
            asset = self.assets.by_key(row.asset)
            if asset is None:  # pragma: no cover - unsupported mints are recorded as ignored
                continue
            try:
                if row.block_time is None:
                    raise PriceUnavailable("no_point", "the transaction has no block time")
                at = dt.datetime.fromtimestamp(row.block_time, dt.UTC)
                decisions.append(
                    (row, attributions[row.id], await self.oracle.quote(asset, at, now=now, live=live), None)
                )
            except PriceUnavailable as exc:
                decisions.append((row, attributions[row.id], None, exc.reason))
        await self._run(lambda uow: self._store_decisions(uow, decisions, now))
        for row, _attribution, found, reason in decisions:
            if found is None:
                summary.pending_price[row.id] = reason or "no_point"
            else:
                summary.pending_price.pop(row.id, None)

    def _store_decisions(
        self,
        uow: UnitOfWork,
        decisions: Sequence[tuple[store.DepositRow, Attribution, Quote | None, str | None]],
        now: dt.datetime,
    ) -> None:
        """Store each deposit's quote and credit figures (or why it waits for a price), in one batch."""
        steps: list[store.Transition] = []
        for row, attribution, quote, reason in decisions:
            asset = self.assets.by_key(row.asset)
            assert asset is not None
            status, values = self._decision(
                asset, row.amount_raw, attribution=attribution, quote=quote, reason=reason, now=now
            )
            detail: dict[str, Any] | None = None
            if status == store.PENDING:
                detail = {"priced": values["price_usd"], "source": values["quote"].get("source")}
            elif values.get("reason") != row.reason:
                detail = {"reason": values.get("reason")}
            steps.append(store.Transition(row, status, values, detail))
        store.apply_transitions(uow.connection, steps, now)

    async def price_manually(
        self, deposit_id: int, price_usd: Decimal, *, reason: str, actor: str, summary: RunSummary
    ) -> store.DepositRow:
        """An operator's price for a deposit waiting for one (`treasury deposits price`); audited in the
        quote's evidence and the deposit's events. Credits it at once."""
        row = await self._read(lambda uow: store.deposit_by_id(uow.connection, deposit_id))
        if row is None:
            raise DepositStateError(f"no deposit {deposit_id}")
        if row.stage != store.FINALIZED or row.status not in (store.PENDING, store.PENDING_PRICE):
            raise DepositStateError(
                f"deposit {deposit_id} is {row.status} (stage {row.stage}): only a final deposit waiting for "
                "a price can be priced by hand"
            )
        asset = self.assets.by_key(row.asset)
        if asset is None or row.block_time is None:
            raise DepositStateError(f"deposit {deposit_id} is not of an accepted asset with a block time")
        now = self.clock()
        at = dt.datetime.fromtimestamp(row.block_time, dt.UTC)
        quote = Quote.manual(asset.symbol, price_usd, f"{reason} (set by {actor})", at, set_at=now)
        attribution = (await self._attributions([row]))[row.id]
        await self._run(lambda uow: self._store_decisions(uow, [(row, attribution, quote, None)], now))
        await self._credit([row.id], summary)
        found = await self._read(lambda uow: store.deposit_by_id(uow.connection, deposit_id))
        assert found is not None
        return found

    async def _credit(self, ids: Sequence[int], summary: RunSummary) -> None:
        """Post the credits of priced deposits, built only from what is stored (so a retry, or another
        worker, posts exactly the same content under the same key)."""
        now = self.clock()

        def write(uow: UnitOfWork) -> list[tuple[store.DepositRow, str]]:
            connection = uow.connection
            rows = [
                row
                for row in store.deposits_to_settle(connection, limit=len(ids), ids=ids)
                if row.stage == store.PRICED
            ]
            if not rows:
                return []
            raws = store.raw_transactions(connection, [row.signature for row in rows])
            drafts = [self._draft(row, raws.get(row.signature)) for row in rows]
            results = uow.post_many(drafts)
            # A sender's wallet linked meanwhile: the ledger assigned that hold in the same transaction.
            linked_now = uow.customers_for_wallets(row.sender for row in rows if row.customer is None and row.sender)
            outcome = []
            steps = []
            for row, result in zip(rows, results, strict=True):
                customer = row.customer
                status = store.CREDITED if customer is not None else store.SUSPENSE
                attribution = row.attribution
                if customer is None and row.sender is not None:
                    linked = linked_now.get(row.sender)
                    if linked is not None:
                        customer, status, attribution = linked, store.CREDITED, "linked_wallet"
                steps.append(
                    store.credited_step(
                        row,
                        status=status,
                        customer=customer,
                        attribution=attribution,
                        ledger_transaction_id=result.transaction_id,
                        now=now,
                    )
                )
                outcome.append((row, status))
            moved = store.apply_transitions(connection, steps, now)
            # Another worker may have credited some of them first (same key, same content): not ours.
            return [(row, status) for row, status in outcome if row.id in moved]

        for row, status in await self._run(write):
            if status == store.CREDITED:
                summary.credited += 1
            else:
                summary.held_in_suspense += 1
            summary.credited_micros_by_asset[row.symbol or row.asset] += row.credits_micros or 0
            self._event("deposit_credited", asset=row.symbol or row.asset, credits_micros=row.credits_micros or 0)
            _log.info(
                "deposit_credited",
                deposit=row.id,
                signature=row.signature,
                asset=row.symbol,
                amount_raw=str(row.amount_raw),
                price_usd=row.price_usd,
                credits_micros=row.credits_micros,
                customer=row.customer,
                status=status,
                attribution=row.attribution,
            )

    def _draft(self, row: store.DepositRow, raw: str | None) -> Any:
        assert row.credits_micros is not None and row.usd_value_micros is not None and row.bonus_micros is not None
        asset = self.assets.by_key(row.asset)
        assert asset is not None
        evidence = {
            "deposit": {
                "id": row.id,
                "signature": row.signature,
                "slot": row.slot,
                "block_time": row.block_time,
                "account": row.account,
                "owner": row.owner,
                "asset": row.asset,
                "symbol": asset.symbol,
                "amount_raw": str(row.amount_raw),
                "decimals": row.decimals,
                "sender": row.sender,
                "memo": row.memo,
                "instruction": row.instruction_path,
                "program": row.program,
            },
            "transaction": raw,  # the getTransaction result exactly as fetched
            "quote": dict(row.quote or {}),
            "credit": {
                "price_usd": row.price_usd,
                "usd_value_micros": row.usd_value_micros,
                "bonus_micros": row.bonus_micros,
                "credits_micros": row.credits_micros,
                "burn_raw": None if row.burn_raw is None else str(row.burn_raw),
                "retained_raw": None if row.retained_raw is None else str(row.retained_raw),
                "osr_bonus": decimal_text(self.settings.osr_bonus),
                "osr_burn_share": decimal_text(self.settings.osr_burn_share),
            },
            "rule": (row.quote or {}).get("rule"),
            "attribution": {"method": row.attribution, "customer": row.customer, "reference": row.reference},
        }
        return crypto_deposit_entry(
            deposit_key(row.signature, row.account, row.asset),
            row.customer,
            asset.symbol,
            row.amount_raw,
            row.usd_value_micros,
            row.bonus_micros,
            row.credits_micros,
            row.burn_raw or 0,
            row.retained_raw or 0,
            evidence,
            sender=row.sender,
        )


def summary_record(summary: RunSummary, assets: AssetTable) -> dict[str, Any]:
    """The run summary as a JSON-safe object (money as 6-place decimal strings)."""
    from pricing.credit import format_micros  # noqa: PLC0415

    return {
        "complete": summary.complete,
        "signatures": summary.signatures,
        "transactions_fetched": summary.transactions_fetched,
        "deposits_found": summary.deposits_found,
        "credited": summary.credited,
        "held_in_suspense": summary.held_in_suspense,
        "ignored": dict(sorted(summary.ignored_by_reason.items())),
        "pending_price": dict(sorted(collections.Counter(summary.pending_price.values()).items())),
        "credited_usd_by_asset": {
            asset: format_micros(micros) for asset, micros in sorted(summary.credited_micros_by_asset.items())
        },
        "totals": {status: summary.totals.get(status, 0) for status in store.STATUSES},
        "errors": list(summary.scan_errors),
    }
