"""The deposits export's columns and rows, and the read snapshot that streams them.

One row per recorded inflow (credited or not) whose block time is in [since, until), in chain order
(block time, slot, id). Every value is exact: amounts and money are fixed-point text (never floats, never
exponent notation); the writers turn that text into Decimal where the format has a decimal type.

The rows of one export come from one read transaction (REPEATABLE READ on PostgreSQL, a WAL snapshot on
SQLite), read with a server-side cursor in batches, so the file is consistent and memory stays flat
whatever the number of rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import Connection, and_, case, literal, select
from sqlalchemy.engine import Engine

from indexer import store
from indexer.instructions import DECODED_PROGRAM_IDS
from ledger_client.database import as_utc, block_time_bounds, translate_errors
from ledger_client.money import format_units

EXPLORER_TX_URL: Final = "https://explorer.solana.com/tx/"
FETCH_BATCH: Final = 5_000  # rows per round trip of the server-side cursor
USD_DECIMALS: Final = 6
COMPUTE_BUDGET_PROGRAM_ID: Final = "ComputeBudget111111111111111111111111111111"
# Deposits whose top-level instruction is one of these arrived by a plain transfer: no program label.
PLAIN_PROGRAM_IDS: Final = frozenset({*DECODED_PROGRAM_IDS, COMPUTE_BUDGET_PROGRAM_ID})


class ExportError(Exception):
    """An export that cannot be written exactly (a value its format cannot hold, an unwritable path)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    """An export column: its name and kind ("int", "text", "time", or "decimal" with a scale: the
    number of places the decimal types of Parquet and XLSX give it)."""

    name: str
    kind: str
    scale: int = 0
    precision: int = 38


# The order is the file's column order (INTERFACE.md, issue 8).
DEPOSIT_COLUMNS: Final[tuple[Column, ...]] = (
    Column("deposit_id", "int"),
    Column("received_at", "time"),  # the block time, UTC
    Column("slot", "int"),
    Column("signature", "text"),
    Column("explorer_url", "text"),
    Column("sender", "text"),
    Column("treasury_account", "text"),  # the receiving address (the wallet, or its token account)
    Column("treasury_wallet", "text"),  # the wallet that owns it
    Column("asset", "text"),  # the symbol of the asset table; empty for a mint outside it
    Column("mint", "text"),  # empty for SOL
    Column("amount", "decimal", 18),
    Column("amount_raw", "decimal", 0, 20),  # base units (a u64)
    Column("decimals", "int"),
    Column("price_usd", "decimal", 18),
    Column("price_source", "text"),
    Column("price_point_time", "time"),
    Column("usd_value", "decimal", USD_DECIMALS),
    Column("bonus", "decimal", USD_DECIMALS),
    Column("credits", "decimal", USD_DECIMALS),
    Column("osr_burn", "decimal", 9),
    Column("osr_retained", "decimal", 9),
    Column("customer", "text"),
    Column("attribution", "text"),
    Column("status", "text"),
    Column("reason", "text"),
    Column("ledger_transaction_id", "int"),
    Column("program", "text"),  # the top-level program it arrived through (program labels), when not a plain transfer
    Column("program_instruction", "text"),
    Column("memo", "text"),
)
COLUMN_NAMES: Final = tuple(column.name for column in DEPOSIT_COLUMNS)

_d = store.deposits.c
_t = store.transactions.c
# What the export reads of a deposit; the raw transaction only where a label needs it.
_SELECTED: Final = (
    _d.id,
    _d.block_time,
    _d.slot,
    _d.signature,
    _d.sender,
    _d.account,
    _d.owner,
    _d.asset,
    _d.symbol,
    _d.amount_raw,
    _d.decimals,
    _d.price_usd,
    # Only two fields of the stored quote: extracted by the database, not decoded row by row here.
    _d.quote["source"].as_string().label("price_source"),
    _d.quote["point_time"].as_string().label("price_point_time"),
    _d.usd_value_micros,
    _d.bonus_micros,
    _d.credits_micros,
    _d.burn_raw,
    _d.retained_raw,
    _d.customer,
    _d.attribution,
    _d.status,
    _d.reason,
    _d.ledger_transaction_id,
    _d.program,
    _d.instruction_path,
    _d.memo,
)


def block_time_utc(block_time: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(block_time, dt.UTC)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction that sees one state of the database for as long as it is open."""
    with translate_errors(), engine.connect() as pooled:
        connection = pooled
        if pooled.dialect.name == "postgresql":
            connection = pooled.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with connection.begin():
            yield connection


def deposit_query(since: dt.datetime, until: dt.datetime) -> Any:
    start_s, end_s = block_time_bounds(since, until)
    plain = _d.program.is_(None) | _d.program.in_(sorted(PLAIN_PROGRAM_IDS))
    raw = case((plain, literal(None)), else_=_t.raw).label("raw")
    return (
        select(*_SELECTED, raw)
        .select_from(store.deposits.outerjoin(store.transactions, and_(_t.signature == _d.signature, ~plain)))
        .where(_d.block_time >= start_s, _d.block_time < end_s)
        .order_by(_d.block_time, _d.slot, _d.id)
    )


ExportRow = tuple[tuple[Any, ...], tuple[Any, ...]]


def deposit_rows(connection: Connection, since: dt.datetime, until: dt.datetime) -> Iterator[ExportRow]:
    """The export rows of [since, until), streamed (a server-side cursor on PostgreSQL): pairs of
    (values in DEPOSIT_COLUMNS order, the integer amounts behind them for the totals)."""
    streaming = connection.execution_options(stream_results=True, max_row_buffer=FETCH_BATCH)
    with translate_errors():
        result = streaming.execute(deposit_query(since, until))
        for batch in result.partitions(FETCH_BATCH):
            for row in batch:
                yield export_row(tuple(row))


def _micros(value: int | None) -> str | None:
    return None if value is None else format_units(value, USD_DECIMALS)


@functools.lru_cache(maxsize=4_096)  # the same hourly points come back row after row
def _point_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return as_utc(dt.datetime.fromisoformat(text))


@functools.lru_cache(maxsize=4_096)  # several deposits of one transaction share its label
def _label(
    signature: str, raw: str, instruction_path: str | None, program: str | None
) -> tuple[str | None, str | None]:
    from indexer.labels import label_deposit  # noqa: PLC0415

    label = label_deposit(raw, instruction_path, program)
    if label is None:
        return program, None
    return label.program, label.instruction


def program_columns(
    signature: str, program: str | None, instruction_path: str | None, raw: str | None
) -> tuple[str | None, str | None]:
    """(program name, instruction name) for a deposit that came through a program; (None, None) for a
    plain transfer. A program without a name is shown by its id."""
    if program is None or program in PLAIN_PROGRAM_IDS:
        return None, None
    if raw is None:
        return program, None
    return _label(signature, raw, instruction_path, program)


def export_row(row: tuple[Any, ...]) -> ExportRow:
    """A stored deposit (the columns of deposit_query, in order) as the export's values, in
    DEPOSIT_COLUMNS order, and its integer amounts (amount_raw, usd value, bonus, credits in micro-USD;
    OSR burn and retained in base units). Decimal values are exact fixed-point text; times are aware UTC."""
    (
        deposit_id, block_time, slot, signature, sender, account, owner, asset, symbol, amount_text, decimals,
        price_usd, price_source, point_time, usd_micros, bonus_micros, credits_micros, burn_text, retained_text,
        customer, attribution, status, reason, ledger_transaction_id, program, instruction_path, memo, raw,
    ) = row  # fmt: skip
    amount_raw = int(amount_text)
    burn_raw = None if burn_text is None else int(burn_text)
    retained_raw = None if retained_text is None else int(retained_text)
    is_sol = asset == "SOL"
    program_name, instruction = program_columns(signature, program, instruction_path, raw)
    values = (
        deposit_id,
        block_time_utc(block_time),
        slot,
        signature,
        EXPLORER_TX_URL + signature,
        sender,
        account,
        owner,
        symbol if symbol is not None else ("SOL" if is_sol else None),
        None if is_sol else asset,
        format_units(amount_raw, decimals),
        amount_text,
        decimals,
        price_usd,
        price_source,
        _point_time(point_time),
        _micros(usd_micros),
        _micros(bonus_micros),
        _micros(credits_micros),
        None if burn_raw is None else format_units(burn_raw, decimals),
        None if retained_raw is None else format_units(retained_raw, decimals),
        customer,
        attribution,
        status,
        reason,
        ledger_transaction_id,
        program_name,
        instruction,
        memo,
    )
    return values, (amount_raw, usd_micros, bonus_micros, credits_micros, burn_raw, retained_raw)
