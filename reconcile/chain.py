"""Chain-vs-ledger reconciliation (issue 9): for each treasury account and asset, what the indexer
recorded over a window must add up to what the chain did to that account.

    result = await run_chain_reconciliation(ledger, source, records, since, until, now=now)

For one account (a treasury wallet's SOL, or a treasury token account of one mint) and the window
[since, until) of block times:

- **the chain side** is the account's own history: every signature `getSignaturesForAddress` lists for
  it in the window (re-scanned now, oldest first), each with the account's balance before and after it
  — read from the reply the indexer stored, or fetched now for a transaction it never recorded (and for
  a failed one the account paid, whose reply is not stored). The
  chain change is the sum of those per-transaction changes; the opening and closing balances are the
  balances before the first and after the last of them (at the end of a live run, a window reaching
  the present, the closing balance is `getBalance` / `getTokenAccountBalance`).
- **the recorded side** is what the indexer wrote: inflows (`deposits`) minus outflows
  (`indexer_outflows`) of the account in the window, minus the fee of each failed transaction the
  account paid (a failed transaction changes no balance but its fee payer's; the parser records no
  outflow for it, so the fee is taken from `indexer_transactions.fee_lamports`). A SOL outflow the
  parser recorded already includes the fee when the wallet paid it (it is a balance delta).

The difference (chain − recorded) is named transaction by transaction:

- `not_recorded`: the chain lists the signature for this account, the indexer has no such transaction
  (a scan that missed it); its change is fetched from the chain now (up to `max_fetch` per account);
- `change_not_recorded`: the indexer stored the transaction, but its reply moves the account by a
  different amount than the inflows and outflows recorded for it (a row lost or edited);
- `recorded_not_on_chain`: the indexer recorded a change the chain does not list for this account in
  the window (a transaction dropped from its fork, or a wrong block time).

An account is clean when the difference is 0 and nothing is named. Besides, where the balance after
one transaction is not the balance before the next (or, in a live run, not the live balance after the
last), the history the node lists has a gap: that is reported as a warning (`gaps`), not a
difference, because it is the node's listing, not the ledger, that is incomplete there — recorded
samples of mainnet (the demo) have such gaps by construction.

`reconcile` never imports `indexer`: the job reads the indexer's tables and decodes stored replies
through a `ChainRecords` port, and the chain through a `ChainSource` port; `indexer.proof` implements
both and offers `reconcile_chain(ledger, rpc, since, until, now=…)`. Amounts are integers in the
account's base units (lamports, token base units).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import structlog

from ledger_client.database import block_time_bounds
from reconcile.errors import ChainHistoryError, InvalidWindowError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ledger_client.ledger import Ledger, UnitOfWork

T = TypeVar("T")

SOL: Final = "SOL"
WALLET: Final = "wallet"
TOKEN_ACCOUNT: Final = "token_account"

NOT_RECORDED: Final = "not_recorded"
CHANGE_NOT_RECORDED: Final = "change_not_recorded"
RECORDED_NOT_ON_CHAIN: Final = "recorded_not_on_chain"
CANDIDATE_REASONS: Final = (NOT_RECORDED, CHANGE_NOT_RECORDED, RECORDED_NOT_ON_CHAIN)

PAGE_LIMIT: Final = 1000  # getSignaturesForAddress's maximum page
MAX_PAGES: Final = 100_000  # one account's listing over one window: 10^8 signatures at most
MAX_FETCH: Final = 1_000  # transactions fetched per account to price candidates not recorded
MAX_LOOKUP: Final = 500  # signatures per lookup in the indexer's tables

_log = structlog.get_logger("reconcile.chain")


# --- what the ports hand over ---


@dataclasses.dataclass(frozen=True, slots=True)
class TreasuryAccount:
    """One account reconciled: a treasury wallet (asset "SOL") or a treasury token account of one mint."""

    address: str
    owner: str
    asset: str  # "SOL" or the mint address
    symbol: str | None  # from the asset table; None for a mint it does not list
    decimals: int
    kind: str  # WALLET or TOKEN_ACCOUNT


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedFlow:
    """One recorded balance change of the account: an inflow (+) or an outflow (−), in base units."""

    signature: str
    slot: int
    block_time: int | None
    change_raw: int
    key: str  # the deposit's or the outflow's key


@dataclasses.dataclass(frozen=True, slots=True)
class Balances:
    """An account's balance before and after one transaction, in base units."""

    pre_raw: int
    post_raw: int

    @property
    def change_raw(self) -> int:
        return self.post_raw - self.pre_raw


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedTransaction:
    """A transaction the indexer stored (`indexer_transactions`). `has_reply`: the reply as fetched was kept
    (it moved a treasury balance); `balances`: the reconciled account's balances read from that reply
    (None without a reply, or when the reply does not name the account)."""

    signature: str
    slot: int
    block_time: int | None
    failed: bool
    fee_lamports: int | None
    fee_payer: str | None
    has_reply: bool
    balances: Balances | None = None


class SignatureEntry(Protocol):
    """What the job reads of one getSignaturesForAddress entry (indexer.rpc.SignatureInfo has it)."""

    @property
    def signature(self) -> str: ...

    @property
    def slot(self) -> int: ...

    @property
    def block_time(self) -> int | None: ...

    @property
    def err(self) -> Any: ...


class ChainSource(Protocol):
    """The chain, as the job needs it (`indexer.proof.RpcChainSource` over `indexer.rpc.SolanaRpc`)."""

    async def signatures(self, address: str, *, before: str | None, limit: int) -> Sequence[SignatureEntry]:
        """One page of the address's history, newest first, older than `before` (exclusive)."""
        ...

    async def transactions(self, signatures: Sequence[str]) -> list[bytes | None]:
        """The replies for these signatures, in order (None: the node has no such transaction)."""
        ...

    async def balance(self, account: TreasuryAccount) -> tuple[int, int]:
        """(the account's balance now in base units, the slot it was read at); 0 for a closed account."""
        ...


class ChainRecords(Protocol):
    """The indexer's records, as the job needs them (`indexer.proof.IndexerChainRecords`)."""

    def accounts(self, connection: Connection, since: dt.datetime, until: dt.datetime) -> list[TreasuryAccount]:
        """Every account to reconcile: the treasury wallets, their watched token accounts, and token
        accounts of accepted mints with recorded changes in [since, until)."""
        ...

    def flows(
        self, connection: Connection, account: TreasuryAccount, since: dt.datetime, until: dt.datetime
    ) -> list[RecordedFlow]:
        """Recorded inflows (+) and outflows (−) of the account whose block time is in [since, until)."""
        ...

    def recorded(
        self, connection: Connection, signatures: Sequence[str], account: TreasuryAccount
    ) -> dict[str, RecordedTransaction]:
        """The stored transactions among `signatures` (at most MAX_LOOKUP of them per call), with the
        account's balances read from each stored reply (the replies themselves are not handed over: a
        window's replies would not fit in memory)."""
        ...

    def anchor_after(self, connection: Connection, account: TreasuryAccount, until: dt.datetime) -> str | None:
        """A recorded signature of the account at or after `until` (the listing starts below it), or None."""
        ...

    def balances(self, reply: str | bytes, account: TreasuryAccount) -> Balances | None:
        """The account's balances before and after the transaction of a reply (pure); None when the
        reply does not name the account or cannot be read."""
        ...


# --- results ---


@dataclasses.dataclass(frozen=True, slots=True)
class ChainTransaction:
    """One transaction of the account's history in the window, as the chain tells it."""

    signature: str
    slot: int
    block_time: int | None
    failed: bool
    balances: Balances | None  # None: not recorded with its reply and not fetched


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """A transaction that explains (part of) a difference. `chain_change_raw` is None when unknown."""

    signature: str
    slot: int | None
    block_time: int | None
    reason: str  # one of CANDIDATE_REASONS
    chain_change_raw: int | None
    recorded_change_raw: int


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryGap:
    """The balance after `after_signature` is not the balance before `before_signature` (None: the live
    balance): the node's listing misses something there. A warning, not a difference."""

    after_signature: str
    before_signature: str | None
    amount_raw: int


@dataclasses.dataclass(frozen=True, slots=True)
class AccountResult:
    account: TreasuryAccount
    chain_transactions: int
    recorded_transactions: int  # chain-listed transactions the indexer has
    opening_raw: int | None  # balance before the window's first transaction (None: not known)
    closing_raw: int | None  # after its last, or the live balance of a live run
    chain_change_raw: int  # sum of the known per-transaction changes
    unknown_changes: int  # chain transactions whose change could not be read (not fetched)
    inflows_raw: int
    outflows_raw: int
    fees_raw: int  # fees of failed transactions the account paid (SOL only)
    candidates: tuple[Candidate, ...]
    gaps: tuple[HistoryGap, ...]
    live: bool

    @property
    def recorded_change_raw(self) -> int:
        return self.inflows_raw - self.outflows_raw - self.fees_raw

    @property
    def difference_raw(self) -> int:
        return self.chain_change_raw - self.recorded_change_raw

    @property
    def clean(self) -> bool:
        return self.difference_raw == 0 and not self.candidates and self.unknown_changes == 0


@dataclasses.dataclass(frozen=True, slots=True)
class ChainResult:
    since: dt.datetime
    until: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime
    accounts: tuple[AccountResult, ...]
    run_id: int | None = None

    @property
    def differences(self) -> int:
        """How many accounts do not reconcile."""
        return sum(1 for account in self.accounts if not account.clean)

    @property
    def warnings(self) -> int:
        return sum(len(account.gaps) for account in self.accounts)

    @property
    def clean(self) -> bool:
        return self.differences == 0


# --- pure comparison ---


def failed_fee(account: TreasuryAccount, recorded: RecordedTransaction | None) -> int:
    """The fee a failed transaction took from the account: its fee payer's lamports, nothing else."""
    if (
        recorded is None
        or not recorded.failed
        or account.asset != SOL
        or recorded.fee_payer != account.address
        or recorded.fee_lamports is None
    ):
        return 0
    return recorded.fee_lamports


def compare_account(
    account: TreasuryAccount,
    chain: Sequence[ChainTransaction],
    recorded: Mapping[str, RecordedTransaction],
    flows: Sequence[RecordedFlow],
    *,
    live_balance_raw: int | None = None,
) -> AccountResult:
    """Compare one account's chain history in the window (oldest first) with what was recorded.

    `recorded` holds the stored transactions among the chain's signatures; `flows` the recorded inflows
    and outflows of the account in the window (whatever the chain lists). Pure."""
    flow_by_signature: dict[str, int] = {}
    for flow in flows:
        flow_by_signature[flow.signature] = flow_by_signature.get(flow.signature, 0) + flow.change_raw
    candidates: list[Candidate] = []
    changes: list[int | None] = []  # per chain transaction
    chain_change = 0
    unknown = 0
    fees = 0
    recorded_count = 0
    for item in chain:
        stored = recorded.get(item.signature)
        fee = failed_fee(account, stored)
        fees += fee
        recorded_change = flow_by_signature.get(item.signature, 0) - fee
        change: int | None
        if item.balances is not None:
            change = item.balances.change_raw
        elif stored is not None and not stored.has_reply:
            # Stored without its reply: the parser found no treasury change in it (or it failed, and
            # then only the fee moved). What was recorded is all the chain did here.
            change = recorded_change
        else:
            change = None
        changes.append(change)
        if change is None:
            unknown += 1
        else:
            chain_change += change
        if stored is None:
            candidates.append(
                Candidate(item.signature, item.slot, item.block_time, NOT_RECORDED, change, recorded_change)
            )
            continue
        recorded_count += 1
        if change is not None and change != recorded_change:
            candidates.append(
                Candidate(item.signature, item.slot, item.block_time, CHANGE_NOT_RECORDED, change, recorded_change)
            )
    listed = {item.signature for item in chain}
    missing: dict[str, list[RecordedFlow]] = {}
    for flow in flows:
        if flow.signature not in listed:
            missing.setdefault(flow.signature, []).append(flow)
    for signature, group in sorted(missing.items(), key=lambda entry: (entry[1][0].slot, entry[0])):
        candidates.append(
            Candidate(
                signature,
                group[0].slot,
                group[0].block_time,
                RECORDED_NOT_ON_CHAIN,
                0,
                sum(flow.change_raw for flow in group),
            )
        )
    opening, closing, gaps = _boundaries(chain, changes, live_balance_raw)
    inflows = sum(flow.change_raw for flow in flows if flow.change_raw > 0)
    outflows = -sum(flow.change_raw for flow in flows if flow.change_raw < 0)
    return AccountResult(
        account=account,
        chain_transactions=len(chain),
        recorded_transactions=recorded_count,
        opening_raw=opening,
        closing_raw=closing,
        chain_change_raw=chain_change,
        unknown_changes=unknown,
        inflows_raw=inflows,
        outflows_raw=outflows,
        fees_raw=fees,
        candidates=tuple(candidates),
        gaps=tuple(gaps),
        live=live_balance_raw is not None,
    )


def _boundaries(
    chain: Sequence[ChainTransaction], changes: Sequence[int | None], live_balance_raw: int | None
) -> tuple[int | None, int | None, list[HistoryGap]]:
    """Opening and closing balances, and the places where consecutive balances do not chain.

    Transactions without balances (stored without a reply) carry their known change between the two
    transactions around them; an unknown change between two balances makes that stretch unjudgeable."""
    gaps: list[HistoryGap] = []
    opening: int | None = None
    before_first: int | None = 0  # known changes of the transactions before the first with balances
    previous: tuple[str, int] | None = None  # (signature, balance after it)
    carried: int | None = 0  # known changes since `previous`; None once one is unknown
    for item, change in zip(chain, changes, strict=True):
        if item.balances is None:
            if previous is None:
                before_first = None if before_first is None or change is None else before_first + change
            elif carried is not None:
                carried = carried + change if change is not None else None
            continue
        if previous is None:
            opening = item.balances.pre_raw - before_first if before_first is not None else None
        elif carried is not None:
            gap = item.balances.pre_raw - previous[1] - carried
            if gap:
                gaps.append(HistoryGap(previous[0], item.signature, gap))
        previous = (item.signature, item.balances.post_raw)
        carried = 0
    if previous is None:
        if live_balance_raw is not None and not chain:
            return live_balance_raw, live_balance_raw, gaps
        return None, live_balance_raw, gaps
    closing = previous[1] + carried if carried is not None else None
    if live_balance_raw is not None:
        if closing is not None and live_balance_raw != closing:
            gaps.append(HistoryGap(previous[0], None, live_balance_raw - closing))
        closing = live_balance_raw
    return opening, closing, gaps


def check_window(since: dt.datetime, until: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The window in UTC; InvalidWindowError when a time has no offset or until is not after since."""
    for moment in (since, until):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidWindowError("times must carry a UTC offset")
    since, until = since.astimezone(dt.UTC), until.astimezone(dt.UTC)
    if until <= since:
        raise InvalidWindowError(f"until {until.isoformat()} is not after since {since.isoformat()}")
    return since, until


# --- the job ---


async def list_window(
    source: ChainSource,
    address: str,
    since_s: int,
    until_s: int,
    *,
    before: str | None,
    max_slot: int | None = None,
    page_limit: int = PAGE_LIMIT,
    max_pages: int = MAX_PAGES,
) -> list[SignatureEntry]:
    """The address's signatures with block times in [since_s, until_s), oldest first: pages from
    `before` (exclusive; None: the newest) down to the first entry older than the window.

    Only entries in the window are kept, so memory stays one window deep however long the history
    above it. An entry without a block time (very old history) takes the time of the newer entry
    before it; an entry above `max_slot` (it landed after a live balance was read) is left out."""
    found: list[SignatureEntry] = []  # newest first
    seen: set[str] = set()
    last_time: int | None = None
    cursor = before
    lowest_slot: int | None = None
    for _ in range(max_pages):
        page = await source.signatures(address, before=cursor, limit=page_limit)
        if not page and cursor is not None and cursor == before and not found:
            # The node does not know the anchor (a fork dropped after it was recorded): from the newest.
            cursor = None
            continue
        if not page:
            break
        if lowest_slot is not None and page[0].slot > lowest_slot:
            raise ChainHistoryError(
                address, f"a page from slot {page[0].slot} came after slot {lowest_slot}: the node ignored before"
            )
        below = False
        for entry in page:
            time_s = entry.block_time if entry.block_time is not None else last_time
            last_time = time_s
            if (max_slot is not None and entry.slot > max_slot) or (time_s is not None and time_s >= until_s):
                continue
            if time_s is not None and time_s < since_s:
                below = True
                break
            if entry.signature not in seen:
                seen.add(entry.signature)
                found.append(entry)
        if below or len(page) < page_limit:
            break
        lowest_slot = page[-1].slot
        cursor = page[-1].signature
    else:
        raise ChainHistoryError(address, f"more than {max_pages} pages of history above the window")
    found.reverse()
    return found


async def reconcile_account(
    ledger: Ledger,
    source: ChainSource,
    records: ChainRecords,
    account: TreasuryAccount,
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    max_fetch: int = MAX_FETCH,
) -> AccountResult:
    """One account over [since, until): list, look up, fetch what was never recorded, compare."""
    live_balance: int | None = None
    live_slot: int | None = None
    if until > now:
        # A live run: the window reaches the present, so its closing balance is the balance now. It is
        # read before the listing, and signatures that land after it are left out.
        live_balance, live_slot = await source.balance(account)
    anchor = await _read(ledger, lambda uow: records.anchor_after(uow.connection, account, until))
    entries = await list_window(
        source,
        account.address,
        *block_time_bounds(since, until),
        before=anchor,
        max_slot=live_slot,
    )
    signatures = [entry.signature for entry in entries]

    def lookups(uow: UnitOfWork) -> tuple[dict[str, RecordedTransaction], list[RecordedFlow]]:
        found: dict[str, RecordedTransaction] = {}
        for start in range(0, len(signatures), MAX_LOOKUP):
            found.update(records.recorded(uow.connection, signatures[start : start + MAX_LOOKUP], account))
        return found, records.flows(uow.connection, account, since, until)

    recorded, flows = await _read(ledger, lookups)
    # Fetched: what was never recorded, and failed transactions the account paid for (stored without their
    # reply, so their fee is checked against the chain's balances rather than taken on trust).
    missing = [
        signature
        for signature in signatures
        if signature not in recorded or (not recorded[signature].has_reply and failed_fee(account, recorded[signature]))
    ][:max_fetch]
    fetched: dict[str, Balances | None] = {}
    for start in range(0, len(missing), MAX_LOOKUP):
        chunk = missing[start : start + MAX_LOOKUP]
        replies = await source.transactions(chunk)
        fetched.update(
            (signature, records.balances(reply, account) if reply is not None else None)
            for signature, reply in zip(chunk, replies, strict=True)
        )
    chain: list[ChainTransaction] = []
    for entry in entries:
        stored = recorded.get(entry.signature)
        balances = stored.balances if stored is not None and stored.has_reply else fetched.get(entry.signature)
        chain.append(ChainTransaction(entry.signature, entry.slot, entry.block_time, entry.err is not None, balances))
    return compare_account(account, chain, recorded, flows, live_balance_raw=live_balance)


async def run_chain_reconciliation(
    ledger: Ledger,
    source: ChainSource,
    records: ChainRecords,
    since: dt.datetime,
    until: dt.datetime,
    *,
    now: dt.datetime,
    record: bool = True,
    max_fetch: int = MAX_FETCH,
    clock: Callable[[], dt.datetime] | None = None,
) -> ChainResult:
    """Reconcile every treasury account over [since, until) and (by default) record the run.

    Network and database work alternate, each database read its own short read-only unit of work;
    nothing is written but the run record. RPC errors of the source pass through unchanged."""
    since, until = check_window(since, until)
    accounts = await _read(ledger, lambda uow: records.accounts(uow.connection, since, until))
    results = []
    for account in accounts:
        result = await reconcile_account(
            ledger, source, records, account, since=since, until=until, now=now, max_fetch=max_fetch
        )
        results.append(result)
        _log.info(
            "chain_account_reconciled",
            account=account.address,
            asset=account.symbol or account.asset,
            chain_transactions=result.chain_transactions,
            difference_raw=result.difference_raw,
            candidates=len(result.candidates),
            gaps=len(result.gaps),
        )
    finished = clock() if clock is not None else now
    outcome = ChainResult(since, until, now, max(finished, now), tuple(results))
    if record:
        from reconcile.proof_runs import record_chain_run  # noqa: PLC0415 - SQLAlchemy tables load with the job

        run_id = await asyncio.to_thread(ledger.run, lambda uow: record_chain_run(uow, outcome))
        outcome = dataclasses.replace(outcome, run_id=run_id)
    _log.info(
        "chain_reconciled",
        since=since.isoformat(),
        until=until.isoformat(),
        accounts=len(results),
        differences=outcome.differences,
        warnings=outcome.warnings,
    )
    return outcome


async def _read(ledger: Ledger, fn: Callable[[UnitOfWork], T]) -> T:
    """A read-only unit of work in a thread, so the event loop (the daemon's) keeps running."""
    return await asyncio.to_thread(ledger.read, fn)
