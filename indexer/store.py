"""The indexer's tables in the ledger database, and the queries the pipeline and commands run on them.

They live beside the ledger's tables (one Alembic chain, `ledger_client/migrations/versions/
0002_indexer.py`) so that what a page of history recorded, the scan cursor that covers it and the
credits it posted commit in one transaction (DESIGN.md §2). Every function takes the SQLAlchemy
Connection of a ledger unit of work; none commits.

Tables:
- `indexer_watched_accounts`  treasury wallets' token accounts of the table's mints (kept after closing)
- `indexer_scan_heads`        per address, the newest signature processed (where forward polls stop)
- `indexer_scan_segments`     per address, stretches of history still to walk (indexer/scan.py)
- `indexer_transactions`      every transaction seen: slot, commitment, failure, the reply as fetched
- `deposits`                  every inflow to the treasury, its state and, once known, price and credits
- `indexer_outflows`          every outflow (chain reconciliation needs them)
- `deposit_events`            each change of a deposit's status, with when and why (audit)
- `deposit_references`        per-customer deposit reference codes found in memos (attribution)

Token amounts are stored as decimal text: a u64 does not fit a signed 64-bit column, and a junk
token can carry any u64 amount.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from indexer.parser import BalanceChange, ParsedTransaction
from indexer.scan import Segment
from ledger_client.database import as_utc, insert_ignoring_conflicts, to_storage_time
from ledger_client.schema import metadata

SIGNATURE_LENGTH: Final = 100
ADDRESS_LENGTH: Final = 64
KEY_LENGTH: Final = 512
CUSTOMER_LENGTH: Final = 160

# Deposit statuses (INTERFACE.md `deposits list`).
PENDING: Final = "pending"  # seen, not final yet, or final and not yet credited
PENDING_PRICE: Final = "pending_price"  # final, no acceptable price yet; retried
CREDITED: Final = "credited"
SUSPENSE: Final = "suspense"  # priced and held in the suspense account
IGNORED: Final = "ignored"
DROPPED: Final = "dropped"  # seen at confirmed, never finalized
STATUSES: Final = (PENDING, PENDING_PRICE, CREDITED, SUSPENSE, IGNORED, DROPPED)

# Stages of the state machine (DESIGN.md §3): observed (confirmed) -> finalized -> priced -> credited.
OBSERVED: Final = "observed"
FINALIZED: Final = "finalized"
PRICED: Final = "priced"
STAGE_CREDITED: Final = "credited"

WALLET: Final = "wallet"
TOKEN_ACCOUNT: Final = "token_account"

_Id = BigInteger().with_variant(Integer(), "sqlite")


def _utc() -> DateTime:
    return DateTime(timezone=True)


watched_accounts: Final = Table(
    "indexer_watched_accounts",
    metadata,
    Column("address", String(ADDRESS_LENGTH), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("owner", String(ADDRESS_LENGTH), nullable=False),
    Column("mint", String(ADDRESS_LENGTH), nullable=True),
    Column("token_program", String(ADDRESS_LENGTH), nullable=True),
    Column("discovered_at", _utc(), nullable=False),
    PrimaryKeyConstraint("address", name="pk_indexer_watched_accounts"),
)

scan_heads: Final = Table(
    "indexer_scan_heads",
    metadata,
    Column("address", String(ADDRESS_LENGTH), nullable=False),
    Column("head_signature", String(SIGNATURE_LENGTH), nullable=False),
    Column("head_slot", BigInteger, nullable=False),
    Column("updated_at", _utc(), nullable=False),
    PrimaryKeyConstraint("address", name="pk_indexer_scan_heads"),
)

scan_segments: Final = Table(
    "indexer_scan_segments",
    metadata,
    Column("id", _Id, autoincrement=True, nullable=False),
    Column("address", String(ADDRESS_LENGTH), nullable=False),
    Column("upper_signature", String(SIGNATURE_LENGTH), nullable=True),
    Column("upper_slot", BigInteger, nullable=True),
    Column("lower_signature", String(SIGNATURE_LENGTH), nullable=True),
    Column("lower_slot", BigInteger, nullable=True),
    Column("stop_before_time", BigInteger, nullable=True),
    Column("created_at", _utc(), nullable=False),
    Column("updated_at", _utc(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_indexer_scan_segments"),
    Index("ix_indexer_scan_segments_address", "address"),
)

transactions: Final = Table(
    "indexer_transactions",
    metadata,
    Column("signature", String(SIGNATURE_LENGTH), nullable=False),
    Column("slot", BigInteger, nullable=False),
    Column("block_time", BigInteger, nullable=True),
    Column("commitment", String(16), nullable=False),  # confirmed | finalized | dropped
    Column("failed", Boolean, nullable=False),
    Column("fee_lamports", BigInteger, nullable=True),
    Column("fee_payer", String(ADDRESS_LENGTH), nullable=True),
    Column("raw", Text, nullable=True),  # the getTransaction result as fetched (kept when it moved value)
    Column("observed_at", _utc(), nullable=False),
    Column("finalized_at", _utc(), nullable=True),
    PrimaryKeyConstraint("signature", name="pk_indexer_transactions"),
    Index("ix_indexer_transactions_commitment", "commitment"),
)

deposits: Final = Table(
    "deposits",
    metadata,
    Column("id", _Id, autoincrement=True, nullable=False),
    Column("key", String(KEY_LENGTH), nullable=False),
    Column("signature", String(SIGNATURE_LENGTH), nullable=False),
    Column("slot", BigInteger, nullable=False),
    Column("block_time", BigInteger, nullable=True),
    Column("account", String(ADDRESS_LENGTH), nullable=False),
    Column("owner", String(ADDRESS_LENGTH), nullable=False),
    Column("asset", String(ADDRESS_LENGTH), nullable=False),  # "SOL" or the mint
    Column("symbol", String(16), nullable=True),  # from the asset table; None for other mints
    Column("token_program", String(ADDRESS_LENGTH), nullable=True),
    Column("amount_raw", String(24), nullable=False),
    Column("decimals", Integer, nullable=False),
    Column("sender", String(ADDRESS_LENGTH), nullable=True),
    Column("memo", Text, nullable=True),
    Column("instruction_path", String(32), nullable=True),
    Column("instruction_kind", String(64), nullable=True),
    Column("program", String(ADDRESS_LENGTH), nullable=True),
    Column("stage", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("customer", String(CUSTOMER_LENGTH), nullable=True),
    Column("attribution", String(32), nullable=True),
    Column("reference", String(200), nullable=True),
    Column("quote", JSON, nullable=True),
    Column("price_usd", String(64), nullable=True),
    Column("usd_value_micros", BigInteger, nullable=True),
    Column("bonus_micros", BigInteger, nullable=True),
    Column("credits_micros", BigInteger, nullable=True),
    Column("burn_raw", String(24), nullable=True),
    Column("retained_raw", String(24), nullable=True),
    Column(
        "ledger_transaction_id",
        _Id,
        ForeignKey("ledger_transactions.id", name="fk_deposits_ledger_transaction_id"),
        nullable=True,
    ),
    Column("observed_at", _utc(), nullable=False),
    Column("finalized_at", _utc(), nullable=True),
    Column("priced_at", _utc(), nullable=True),
    Column("credited_at", _utc(), nullable=True),
    Column("updated_at", _utc(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_deposits"),
    UniqueConstraint("key", name="uq_deposits_key"),
    Index("ix_deposits_signature", "signature"),
    Index("ix_deposits_status", "status"),
    Index("ix_deposits_block_time", "block_time"),
    Index("ix_deposits_sender", "sender"),
)

outflows: Final = Table(
    "indexer_outflows",
    metadata,
    Column("id", _Id, autoincrement=True, nullable=False),
    Column("key", String(KEY_LENGTH), nullable=False),
    Column("signature", String(SIGNATURE_LENGTH), nullable=False),
    Column("slot", BigInteger, nullable=False),
    Column("block_time", BigInteger, nullable=True),
    Column("account", String(ADDRESS_LENGTH), nullable=False),
    Column("owner", String(ADDRESS_LENGTH), nullable=False),
    Column("asset", String(ADDRESS_LENGTH), nullable=False),
    Column("token_program", String(ADDRESS_LENGTH), nullable=True),
    Column("amount_raw", String(24), nullable=False),
    Column("decimals", Integer, nullable=False),
    Column("recipient", String(ADDRESS_LENGTH), nullable=True),
    Column("instruction_path", String(32), nullable=True),
    Column("instruction_kind", String(64), nullable=True),
    Column("program", String(ADDRESS_LENGTH), nullable=True),
    Column("commitment", String(16), nullable=False),
    Column("observed_at", _utc(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_indexer_outflows"),
    UniqueConstraint("key", name="uq_indexer_outflows_key"),
    Index("ix_indexer_outflows_signature", "signature"),
    Index("ix_indexer_outflows_block_time", "block_time"),
)

deposit_events: Final = Table(
    "deposit_events",
    metadata,
    Column("id", _Id, autoincrement=True, nullable=False),
    Column("deposit_id", _Id, ForeignKey("deposits.id", name="fk_deposit_events_deposit_id"), nullable=False),
    Column("at", _utc(), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("detail", JSON, nullable=True),
    PrimaryKeyConstraint("id", name="pk_deposit_events"),
    Index("ix_deposit_events_deposit_id", "deposit_id"),
)

deposit_references: Final = Table(
    "deposit_references",
    metadata,
    Column("reference", String(200), nullable=False),
    Column("customer", String(CUSTOMER_LENGTH), nullable=False),
    Column("created_at", _utc(), nullable=False),
    PrimaryKeyConstraint("reference", name="pk_deposit_references"),
    Index("ix_deposit_references_customer", "customer"),
)

INDEXER_TABLES: Final = (
    watched_accounts,
    scan_heads,
    scan_segments,
    transactions,
    deposits,
    outflows,
    deposit_events,
    deposit_references,
)


# --- watched accounts ---


@dataclasses.dataclass(frozen=True, slots=True)
class WatchedAccount:
    address: str
    kind: str
    owner: str
    mint: str | None
    token_program: str | None


def watched(connection: Connection) -> list[WatchedAccount]:
    w = watched_accounts.c
    rows = connection.execute(select(w.address, w.kind, w.owner, w.mint, w.token_program).order_by(w.address))
    return [WatchedAccount(*row) for row in rows]


def add_watched(connection: Connection, accounts: Iterable[WatchedAccount], now: dt.datetime) -> int:
    """Record accounts to watch; known ones are left as they are. Returns how many were new."""
    rows = [{**dataclasses.asdict(account), "discovered_at": to_storage_time(now)} for account in accounts]
    if not rows:
        return 0
    result = connection.execute(
        insert_ignoring_conflicts(connection, watched_accounts).returning(watched_accounts.c.address), rows
    )
    return len(result.all())


# --- scan cursors ---


@dataclasses.dataclass(frozen=True, slots=True)
class Head:
    signature: str
    slot: int


def head(connection: Connection, address: str) -> Head | None:
    h = scan_heads.c
    row = connection.execute(select(h.head_signature, h.head_slot).where(h.address == address)).first()
    return Head(row[0], row[1]) if row else None


def set_head(connection: Connection, address: str, signature: str, slot: int, now: dt.datetime) -> None:
    """Move the head forward (never back: a lagging node's older page must not rewind it). One upsert,
    so two workers setting the first head of an address at once do not collide."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(scan_heads).values(
        address=address, head_signature=signature, head_slot=slot, updated_at=to_storage_time(now)
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[scan_heads.c.address],
            set_={
                "head_signature": statement.excluded.head_signature,
                "head_slot": statement.excluded.head_slot,
                "updated_at": statement.excluded.updated_at,
            },
            where=scan_heads.c.head_slot <= statement.excluded.head_slot,
        )
    )


@dataclasses.dataclass(frozen=True, slots=True)
class StoredSegment:
    id: int
    segment: Segment


def segments(connection: Connection, address: str) -> list[StoredSegment]:
    s = scan_segments.c
    rows = connection.execute(
        select(s.id, s.address, s.upper_signature, s.upper_slot, s.lower_signature, s.lower_slot, s.stop_before_time)
        .where(s.address == address)
        .order_by(s.id)
    )
    return [StoredSegment(row[0], Segment(*row[1:])) for row in rows]


def add_segment(connection: Connection, segment: Segment, now: dt.datetime) -> int:
    stamp = to_storage_time(now)
    result = connection.execute(
        scan_segments.insert()
        .values(**dataclasses.asdict(segment), created_at=stamp, updated_at=stamp)
        .returning(scan_segments.c.id)
    )
    return int(result.scalar_one())


def advance_segment(connection: Connection, stored: StoredSegment, remaining: Segment | None, now: dt.datetime) -> bool:
    """Replace a segment by what is left of it (None: delete it). False when another worker moved it
    first (optimistic: the row must still hold what this worker read)."""
    s = scan_segments.c
    unchanged = and_(
        s.id == stored.id,
        s.upper_signature.is_(None)
        if stored.segment.upper_signature is None
        else s.upper_signature == stored.segment.upper_signature,
    )
    if remaining is None:
        result = connection.execute(scan_segments.delete().where(unchanged))
    else:
        result = connection.execute(
            scan_segments.update()
            .where(unchanged)
            .values(
                upper_signature=remaining.upper_signature,
                upper_slot=remaining.upper_slot,
                updated_at=to_storage_time(now),
            )
        )
    return result.rowcount == 1


# --- transactions, deposits, outflows ---


def known_transactions(connection: Connection, signatures: Sequence[str]) -> dict[str, str]:
    """signature -> commitment of the transactions already recorded among `signatures`."""
    found: dict[str, str] = {}
    t = transactions.c
    for start in range(0, len(signatures), 500):
        chunk = list(signatures[start : start + 500])
        found.update(
            {
                row[0]: row[1]
                for row in connection.execute(select(t.signature, t.commitment).where(t.signature.in_(chunk)))
            }
        )
    return found


@dataclasses.dataclass(frozen=True, slots=True)
class FetchedTransaction:
    """A transaction to record: parsed, with the reply as fetched (None for failed ones not fetched)."""

    signature: str
    slot: int
    block_time: int | None
    failed: bool
    parsed: ParsedTransaction | None
    raw: bytes | None


@dataclasses.dataclass(frozen=True, slots=True)
class NewDeposit:
    id: int
    stage: str
    status: str
    reason: str | None


def record_transactions(
    connection: Connection,
    fetched: Sequence[FetchedTransaction],
    *,
    commitment: str,
    symbols: Mapping[str, str],
    now: dt.datetime,
    priced: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[NewDeposit]:
    """Record transactions and their balance changes; returns the deposits new in this call.

    `priced` (deposit key -> columns) carries what was decided before the write for final deposits:
    attribution and the stored quote with the credit figures (stage priced), or why a price is
    missing (pending_price) — the quote is stored before any credit is posted (DESIGN.md §4).
    Idempotent: a transaction, deposit or outflow recorded before is left alone, except that a
    transaction seen at `confirmed` is promoted when it comes back `finalized`.
    """
    stamp = to_storage_time(now)
    final = commitment == "finalized"
    tx_rows = []
    deposit_rows = []
    outflow_rows = []
    for item in fetched:
        parsed = item.parsed
        moved = parsed is not None and bool(parsed.changes)
        tx_rows.append(
            {
                "signature": item.signature,
                "slot": item.slot,
                "block_time": item.block_time,
                "commitment": commitment,
                "failed": item.failed,
                "fee_lamports": parsed.fee_lamports if parsed is not None else None,
                "fee_payer": parsed.fee_payer if parsed is not None else None,
                "raw": item.raw.decode("utf-8") if moved and item.raw is not None else None,
                "observed_at": stamp,
                "finalized_at": stamp if final else None,
            }
        )
        if parsed is None:
            continue
        for change in parsed.changes:
            if change.direction == "in":
                row = _deposit_row(change, item.slot, commitment, symbols, stamp)
                row.update((priced or {}).get(row["key"], {}))
                deposit_rows.append(row)
            else:
                outflow_rows.append(_outflow_row(change, item.slot, commitment, stamp))
    if tx_rows:
        connection.execute(insert_ignoring_conflicts(connection, transactions), tx_rows)
        if final:
            t = transactions.c
            signatures = [row["signature"] for row in tx_rows]
            connection.execute(
                update(transactions)
                .where(t.signature.in_(signatures), t.commitment == "confirmed")
                .values(commitment="finalized", finalized_at=stamp)
            )
    new: list[NewDeposit] = []
    if deposit_rows:
        d = deposits.c
        result = connection.execute(
            insert_ignoring_conflicts(connection, deposits).returning(d.id, d.stage, d.status, d.reason, d.price_usd),
            deposit_rows,
        )
        # A conflicting row (recorded before) returns nothing, or a row of NULLs from a multi-row insert.
        created = [row for row in result.all() if row[0] is not None]
        new = [NewDeposit(row[0], row[1], row[2], row[3]) for row in created]
        if created:  # (an empty parameter list would insert one row of defaults)
            connection.execute(
                deposit_events.insert(),
                [
                    {
                        "deposit_id": row[0],
                        "at": stamp,
                        "from_status": None,
                        "to_status": row[2],
                        "detail": {"priced": row[4]} if row[1] == PRICED else ({"reason": row[3]} if row[3] else None),
                    }
                    for row in created
                ],
            )
        if final:
            _promote_finalized(connection, [row["key"] for row in deposit_rows], stamp)
    if outflow_rows:
        connection.execute(insert_ignoring_conflicts(connection, outflows), outflow_rows)
        if final:
            o = outflows.c
            connection.execute(
                update(outflows).where(o.key.in_([row["key"] for row in outflow_rows])).values(commitment="finalized")
            )
    return new


def _deposit_row(
    change: BalanceChange, slot: int, commitment: str, symbols: Mapping[str, str], stamp: dt.datetime
) -> dict[str, Any]:
    ignored = change.status == "ignored"
    return {
        "key": deposit_key_of(change),
        "signature": change.signature,
        "slot": slot,
        "block_time": change.block_time,
        "account": change.account,
        "owner": change.owner,
        "asset": change.asset,
        "symbol": symbols.get(change.asset),
        "token_program": change.token_program,
        "amount_raw": str(change.amount_raw),
        "decimals": change.decimals,
        "sender": change.counterparty,
        "memo": change.memo,
        "instruction_path": change.instruction_path,
        "instruction_kind": change.instruction_kind,
        "program": change.top_level_program,
        "stage": FINALIZED if commitment == "finalized" else OBSERVED,
        "status": IGNORED if ignored else PENDING,
        "reason": change.reason,
        "observed_at": stamp,
        "finalized_at": stamp if commitment == "finalized" else None,
        "updated_at": stamp,
        # Filled by `priced` for final deposits priced before the write; every row carries every column
        # (one multi-row insert).
        **dict.fromkeys(PRICE_COLUMNS),
    }


# The columns a price decision sets (store.price_step / pending_price_step values, minus stage).
PRICE_COLUMNS: Final = (
    "customer",
    "attribution",
    "reference",
    "quote",
    "price_usd",
    "usd_value_micros",
    "bonus_micros",
    "credits_micros",
    "burn_raw",
    "retained_raw",
    "priced_at",
)


def _outflow_row(change: BalanceChange, slot: int, commitment: str, stamp: dt.datetime) -> dict[str, Any]:
    return {
        "key": f"out:{change.signature}:{change.account}:{change.asset}",
        "signature": change.signature,
        "slot": slot,
        "block_time": change.block_time,
        "account": change.account,
        "owner": change.owner,
        "asset": change.asset,
        "token_program": change.token_program,
        "amount_raw": str(change.amount_raw),
        "decimals": change.decimals,
        "recipient": change.counterparty,
        "instruction_path": change.instruction_path,
        "instruction_kind": change.instruction_kind,
        "program": change.top_level_program,
        "commitment": commitment,
        "observed_at": stamp,
    }


def deposit_key_of(change: BalanceChange) -> str:
    """`sol:<signature>:<receiving account>:<asset>` with the asset as "SOL" or its mint (chain facts,
    never a configurable symbol)."""
    return f"sol:{change.signature}:{change.account}:{change.asset}"


def _promote_finalized(connection: Connection, keys: Sequence[str], stamp: dt.datetime) -> None:
    d = deposits.c
    connection.execute(
        update(deposits)
        .where(d.key.in_(list(keys)), d.stage == OBSERVED)
        .values(stage=FINALIZED, finalized_at=stamp, updated_at=stamp)
    )


# --- the deposit state machine ---


@dataclasses.dataclass(frozen=True, slots=True)
class DepositRow:
    """A deposit as stored (the columns the pipeline and commands read)."""

    id: int
    key: str
    signature: str
    slot: int
    block_time: int | None
    account: str
    owner: str
    asset: str
    symbol: str | None
    token_program: str | None
    amount_raw: int
    decimals: int
    sender: str | None
    memo: str | None
    instruction_path: str | None
    program: str | None
    stage: str
    status: str
    reason: str | None
    customer: str | None
    attribution: str | None
    reference: str | None
    quote: Mapping[str, Any] | None
    price_usd: str | None
    usd_value_micros: int | None
    bonus_micros: int | None
    credits_micros: int | None
    burn_raw: int | None
    retained_raw: int | None
    ledger_transaction_id: int | None
    observed_at: dt.datetime
    credited_at: dt.datetime | None


_DEPOSIT_COLUMNS: Final = tuple(field.name for field in dataclasses.fields(DepositRow))


def _deposit(row: Any) -> DepositRow:
    values = dict(zip(_DEPOSIT_COLUMNS, row, strict=True))
    values["amount_raw"] = int(values["amount_raw"])
    for name in ("burn_raw", "retained_raw"):
        values[name] = int(values[name]) if values[name] is not None else None
    values["observed_at"] = as_utc(values["observed_at"])
    if values["credited_at"] is not None:
        values["credited_at"] = as_utc(values["credited_at"])
    return DepositRow(**values)


def _select_deposits() -> Any:
    return select(*(deposits.c[name] for name in _DEPOSIT_COLUMNS))


def deposits_to_settle(connection: Connection, *, limit: int, ids: Sequence[int] | None = None) -> list[DepositRow]:
    """Final deposits not yet credited (pending, pending_price, or priced before a crash), oldest first."""
    d = deposits.c
    query = (
        _select_deposits()
        .where(d.stage.in_([FINALIZED, PRICED]), d.status.in_([PENDING, PENDING_PRICE]))
        .order_by(d.id)
        .limit(limit)
    )
    if ids is not None:
        query = query.where(d.id.in_(list(ids)))
    return [_deposit(row) for row in connection.execute(query)]


def deposit_by_id(connection: Connection, deposit_id: int) -> DepositRow | None:
    row = connection.execute(_select_deposits().where(deposits.c.id == deposit_id)).first()
    return _deposit(row) if row else None


def deposit_by_key(connection: Connection, key: str) -> DepositRow | None:
    row = connection.execute(_select_deposits().where(deposits.c.key == key)).first()
    return _deposit(row) if row else None


def list_deposits(
    connection: Connection, *, status: str | None = None, after_id: int = 0, limit: int = 1000
) -> list[DepositRow]:
    d = deposits.c
    query = _select_deposits().where(d.id > after_id).order_by(d.id).limit(limit)
    if status is not None:
        query = query.where(d.status == status)
    return [_deposit(row) for row in connection.execute(query)]


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """One step of a deposit's state machine: from the stage and status it was read in, to `to_status`
    with `values`; `detail` goes to its event (an event is written when the status changes or a detail
    is given)."""

    deposit: DepositRow
    to_status: str
    values: Mapping[str, Any]
    detail: Mapping[str, Any] | None = None


def apply_transitions(connection: Connection, transitions: Sequence[Transition], now: dt.datetime) -> set[int]:
    """Apply transitions in batches; returns the ids of the deposits this call moved.

    A deposit moves only from the stage and status it was read in: another worker may have moved it
    meanwhile, and then it is left alone (and not in the result). One statement per batch of
    transitions of the same shape (executemany), so a page of a thousand deposits costs a few
    statements, not thousands."""
    if not transitions:
        return set()
    stamp = to_storage_time(now)
    d = deposits.c
    groups: dict[tuple[str, ...], list[Transition]] = {}
    for transition in transitions:
        groups.setdefault(tuple(sorted(transition.values)), []).append(transition)
    for columns, group in groups.items():
        statement = (
            update(deposits)
            .where(d.id == bindparam("_id"), d.stage == bindparam("_stage"), d.status == bindparam("_status"))
            .values(
                status=bindparam("_to_status"),
                updated_at=bindparam("_updated_at"),
                **{column: bindparam(f"_v_{column}") for column in columns},
            )
        )
        connection.execute(
            statement,
            [
                {
                    "_id": t.deposit.id,
                    "_stage": t.deposit.stage,
                    "_status": t.deposit.status,
                    "_to_status": t.to_status,
                    "_updated_at": stamp,
                    **{f"_v_{column}": t.values[column] for column in columns},
                }
                for t in group
            ],
        )
    ids = [t.deposit.id for t in transitions]
    moved: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        # This call's stamp marks the rows it moved (a row another worker moved carries another stamp).
        query = select(d.id).where(d.id.in_(chunk), d.updated_at == stamp)
        moved.update(row[0] for row in connection.execute(query))
    events = [
        {
            "deposit_id": t.deposit.id,
            "at": stamp,
            "from_status": t.deposit.status,
            "to_status": t.to_status,
            "detail": dict(t.detail or {}),
        }
        for t in transitions
        if t.deposit.id in moved and (t.to_status != t.deposit.status or t.detail)
    ]
    if events:
        connection.execute(deposit_events.insert(), events)
    return moved


def pending_price_step(
    deposit: DepositRow, *, reason: str, customer: str | None, attribution: str | None, reference: str | None
) -> Transition:
    return Transition(
        deposit,
        PENDING_PRICE,
        {"reason": reason, "customer": customer, "attribution": attribution, "reference": reference},
        {"reason": reason} if reason != deposit.reason else None,
    )


def price_step(
    deposit: DepositRow,
    *,
    quote: Mapping[str, Any],
    price_usd: str,
    usd_value_micros: int,
    bonus_micros: int,
    credits_micros: int,
    burn_raw: int | None,
    retained_raw: int | None,
    customer: str | None,
    attribution: str,
    reference: str | None,
    now: dt.datetime,
) -> Transition:
    """The quote is stored before the credit is posted, so a retry after a crash reuses it (DESIGN.md §4)."""
    return Transition(
        deposit,
        PENDING,
        {
            "stage": PRICED,
            "reason": None,
            "quote": dict(quote),
            "price_usd": price_usd,
            "usd_value_micros": usd_value_micros,
            "bonus_micros": bonus_micros,
            "credits_micros": credits_micros,
            "burn_raw": None if burn_raw is None else str(burn_raw),
            "retained_raw": None if retained_raw is None else str(retained_raw),
            "customer": customer,
            "attribution": attribution,
            "reference": reference,
            "priced_at": to_storage_time(now),
        },
        {"priced": price_usd, "source": quote.get("source")},
    )


def credited_step(
    deposit: DepositRow,
    *,
    status: str,
    customer: str | None,
    attribution: str | None,
    ledger_transaction_id: int,
    now: dt.datetime,
) -> Transition:
    return Transition(
        deposit,
        status,
        {
            "stage": STAGE_CREDITED,
            "customer": customer,
            "attribution": attribution,
            "ledger_transaction_id": ledger_transaction_id,
            "credited_at": to_storage_time(now),
        },
        {"ledger_transaction": ledger_transaction_id},
    )


def ignored_step(deposit: DepositRow, *, reason: str) -> Transition:
    """A final deposit that cannot be credited (worth less than a micro-dollar at its price)."""
    return Transition(deposit, IGNORED, {"reason": reason}, {"reason": reason})


def dropped_step(deposit: DepositRow, *, reason: str) -> Transition:
    return Transition(deposit, DROPPED, {"reason": reason}, {"reason": reason})


def mark_assigned(
    connection: Connection,
    deposit: DepositRow,
    *,
    customer: str,
    attribution: str,
    now: dt.datetime,
    detail: Mapping[str, Any],
) -> bool:
    """A deposit held in suspense was assigned to a customer (by an operator or a wallet link)."""
    step = Transition(deposit, CREDITED, {"customer": customer, "attribution": attribution}, detail)
    return deposit.id in apply_transitions(connection, [step], now)


def raw_transactions(connection: Connection, signatures: Sequence[str]) -> dict[str, str]:
    """signature -> the getTransaction result as fetched, for transactions that moved value."""
    t = transactions.c
    found: dict[str, str] = {}
    wanted = sorted(set(signatures))
    for start in range(0, len(wanted), 500):
        query = select(t.signature, t.raw).where(t.signature.in_(wanted[start : start + 500]), t.raw.is_not(None))
        found.update({row[0]: row[1] for row in connection.execute(query)})
    return found


def deposits_by_ids(connection: Connection, ids: Sequence[int]) -> list[DepositRow]:
    found: list[DepositRow] = []
    for start in range(0, len(ids), 500):
        query = _select_deposits().where(deposits.c.id.in_(list(ids[start : start + 500]))).order_by(deposits.c.id)
        found += [_deposit(row) for row in connection.execute(query)]
    return found


def status_counts(connection: Connection) -> dict[str, int]:
    d = deposits.c
    return {row[0]: int(row[1]) for row in connection.execute(select(d.status, func.count()).group_by(d.status))}


def suspense_deposits(connection: Connection) -> list[DepositRow]:
    return [
        _deposit(row)
        for row in connection.execute(_select_deposits().where(deposits.c.status == SUSPENSE).order_by(deposits.c.id))
    ]


def pending_observed(connection: Connection, *, limit: int) -> list[DepositRow]:
    """Deposits seen at `confirmed` and not yet finalized (the daemon's finalizer reads these)."""
    d = deposits.c
    query = _select_deposits().where(d.stage == OBSERVED, d.status == PENDING).order_by(d.id).limit(limit)
    return [_deposit(row) for row in connection.execute(query)]


# --- deposit references ---


def add_reference(connection: Connection, reference: str, customer: str, now: dt.datetime) -> bool:
    """Record a customer's deposit reference; False when it already belongs to someone (unchanged)."""
    result = connection.execute(
        insert_ignoring_conflicts(connection, deposit_references).returning(deposit_references.c.reference),
        [{"reference": reference, "customer": customer, "created_at": to_storage_time(now)}],
    )
    return bool(result.all())


def customers_for_references(connection: Connection, references: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(references))
    if not wanted:
        return {}
    r = deposit_references.c
    return {
        row[0]: row[1] for row in connection.execute(select(r.reference, r.customer).where(r.reference.in_(wanted)))
    }


def references_of(connection: Connection, customer: str) -> list[str]:
    r = deposit_references.c
    return [
        row[0] for row in connection.execute(select(r.reference).where(r.customer == customer).order_by(r.reference))
    ]


def record_assignments(
    connection: Connection,
    assigned: Mapping[str, str],
    *,
    attribution: str,
    now: dt.datetime,
    detail: Mapping[str, Any],
) -> int:
    """Deposits (by key) whose suspense holds were just assigned to customers: suspense -> credited.

    Called in the unit of work that assigned them, so the deposits table and the ledger agree."""
    changed = 0
    for key, customer in assigned.items():
        deposit = deposit_by_key(connection, key)
        if deposit is not None and deposit.status == SUSPENSE:
            changed += mark_assigned(
                connection, deposit, customer=customer, attribution=attribution, now=now, detail=detail
            )
    return changed


def sync_suspense(uow: Any, now: dt.datetime) -> int:
    """Deposits shown in suspense whose hold was assigned meanwhile (the billing service may link a wallet
    through the shared database directly): marked credited to the customer the ledger assigned."""
    from ledger_client import assignment_key  # noqa: PLC0415 - keeps the table module light to import

    changed = 0
    for deposit in suspense_deposits(uow.connection):
        transaction = uow.transaction_by_key(assignment_key(deposit.key))
        if transaction is None:
            continue
        customers = [p.account for p in transaction.postings if p.currency == "USD" and p.amount < 0]
        if customers:
            changed += mark_assigned(
                uow.connection,
                deposit,
                customer=customers[0],
                attribution="linked_wallet" if transaction.evidence.get("by") == "wallet_link" else "operator",
                now=now,
                detail={"ledger_transaction": transaction.id},
            )
    return changed


# --- the daemon: leases, job runs, observed state (migration 0004_daemon) ---

leases: Final = Table(
    "daemon_leases",
    metadata,
    Column("name", String(64), nullable=False),
    Column("holder", String(128), nullable=False),
    Column("acquired_at", _utc(), nullable=False),
    Column("expires_at", _utc(), nullable=False),
    PrimaryKeyConstraint("name", name="pk_daemon_leases"),
)

job_runs: Final = Table(
    "daemon_job_runs",
    metadata,
    Column("id", _Id, autoincrement=True, nullable=False),
    Column("name", String(64), nullable=False),
    Column("holder", String(128), nullable=False),
    Column("started_at", _utc(), nullable=False),
    Column("finished_at", _utc(), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", JSON, nullable=True),
    PrimaryKeyConstraint("id", name="pk_daemon_job_runs"),
    Index("ix_daemon_job_runs_name_finished_at", "name", "finished_at"),
)

daemon_state: Final = Table(
    "daemon_state",
    metadata,
    Column("key", String(128), nullable=False),
    Column("value", JSON, nullable=False),
    Column("updated_at", _utc(), nullable=False),
    PrimaryKeyConstraint("key", name="pk_daemon_state"),
)


def _upsert(connection: Connection, table: Table, key_column: str, values: Mapping[str, Any]) -> Any:
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    return statement, statement.on_conflict_do_update(
        index_elements=[table.c[key_column]],
        set_={name: statement.excluded[name] for name in values if name != key_column},
    )


def acquire_lease(connection: Connection, name: str, holder: str, *, now: dt.datetime, ttl_s: float) -> bool:
    """Take or renew a lease: it goes to `holder` when free, expired, or already held by it. True when
    `holder` holds it afterwards. One statement, so two daemons racing for it cannot both win."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    stamp = to_storage_time(now)
    expires = to_storage_time(now + dt.timedelta(seconds=ttl_s))
    statement = insert(leases).values(name=name, holder=holder, acquired_at=stamp, expires_at=expires)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={
                "holder": statement.excluded.holder,
                "acquired_at": statement.excluded.acquired_at,
                "expires_at": statement.excluded.expires_at,
            },
            where=(leases.c.expires_at < stamp) | (leases.c.holder == holder),
        )
    )
    row = connection.execute(select(leases.c.holder).where(leases.c.name == name)).first()
    return row is not None and row[0] == holder


def release_lease(connection: Connection, name: str, holder: str) -> None:
    connection.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))


def lease_holder(connection: Connection, name: str, *, now: dt.datetime) -> tuple[str, dt.datetime] | None:
    row = connection.execute(select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)).first()
    if row is None or as_utc(row[1]) < now:
        return None
    return row[0], as_utc(row[1])


def record_job_run(
    connection: Connection,
    name: str,
    holder: str,
    *,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    ok: bool,
    detail: Mapping[str, Any],
) -> None:
    connection.execute(
        job_runs.insert().values(
            name=name,
            holder=holder,
            started_at=to_storage_time(started_at),
            finished_at=to_storage_time(finished_at),
            ok=ok,
            detail=dict(detail),
        )
    )


def last_job_runs(connection: Connection) -> dict[str, dict[str, Any]]:
    """The latest run of every job: name -> {started_at, finished_at, ok, detail}."""
    j = job_runs.c
    latest = select(j.name, func.max(j.id).label("id")).group_by(j.name).subquery()
    rows = connection.execute(
        select(j.name, j.started_at, j.finished_at, j.ok, j.detail).join(latest, latest.c.id == j.id)
    )
    return {
        row[0]: {"started_at": as_utc(row[1]), "finished_at": as_utc(row[2]), "ok": bool(row[3]), "detail": row[4]}
        for row in rows
    }


def set_state(connection: Connection, key: str, value: Mapping[str, Any], now: dt.datetime) -> None:
    _, statement = _upsert(
        connection, daemon_state, "key", {"key": key, "value": dict(value), "updated_at": to_storage_time(now)}
    )
    connection.execute(statement)


def states(connection: Connection, prefix: str = "") -> dict[str, dict[str, Any]]:
    s = daemon_state.c
    query = select(s.key, s.value).where(s.key.startswith(prefix)) if prefix else select(s.key, s.value)
    return {row[0]: row[1] for row in connection.execute(query)}


def heads(connection: Connection) -> dict[str, Head]:
    h = scan_heads.c
    return {
        row[0]: Head(row[1], row[2]) for row in connection.execute(select(h.address, h.head_signature, h.head_slot))
    }


def confirmed_signatures(connection: Connection, *, limit: int) -> list[tuple[str, int]]:
    """Transactions seen at `confirmed` and not yet final: (signature, slot), oldest first."""
    t = transactions.c
    query = select(t.signature, t.slot).where(t.commitment == "confirmed").order_by(t.slot).limit(limit)
    return [(row[0], row[1]) for row in connection.execute(query)]


def drop_transactions(connection: Connection, signatures: Sequence[str], *, reason: str, now: dt.datetime) -> int:
    """Confirmed transactions that never finalized: the transaction and its observed deposits are dropped."""
    if not signatures:
        return 0
    t = transactions.c
    connection.execute(
        update(transactions)
        .where(t.signature.in_(list(signatures)), t.commitment == "confirmed")
        .values(commitment="dropped")
    )
    d = deposits.c
    rows = [
        _deposit(row)
        for row in connection.execute(
            _select_deposits().where(d.signature.in_(list(signatures)), d.stage == OBSERVED, d.status == PENDING)
        )
    ]
    moved = apply_transitions(connection, [dropped_step(row, reason=reason) for row in rows], now)
    return len(moved)


def deposits_of_signatures(connection: Connection, signatures: Sequence[str]) -> list[DepositRow]:
    d = deposits.c
    found: list[DepositRow] = []
    wanted = sorted(set(signatures))
    for start in range(0, len(wanted), 500):
        query = _select_deposits().where(d.signature.in_(wanted[start : start + 500])).order_by(d.id)
        found += [_deposit(row) for row in connection.execute(query)]
    return found
