"""The Stripe reconciliation run table: one row per run (window, counts per class, totals, fixed count).

The table lives on the ledger's MetaData and is created by the ledger's migration chain (revision
`0003_reconcile_stripe_runs`), so it is in the same database and a --fix run records itself in the
same transaction as its last postings. The daemon's scheduled job asks `window_reconciled` before
reconciling a window; `treasury status` shows `last_run`.

Money is stored in micro-USD like the ledger (Stripe's cents × 10,000); times as aware UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    RowMapping,
    Table,
    and_,
    func,
    select,
)

from ledger_client.schema import metadata
from reconcile.currency import cents_to_micros
from reconcile.errors import InvalidWindowError, ReconcileInputError
from reconcile.matcher import CLASSES

if TYPE_CHECKING:
    from ledger_client.ledger import Ledger, UnitOfWork
    from reconcile.matcher import Totals

_Id = BigInteger().with_variant(Integer(), "sqlite")

runs_table: Final = Table(
    "reconcile_stripe_runs",
    metadata,
    Column("id", _Id, autoincrement=True, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("fix", Boolean(), nullable=False),
    Column("sessions", Integer(), nullable=False),
    Column("paid", Integer(), nullable=False),
    *(Column(name, Integer(), nullable=False) for name in CLASSES),
    Column("gross_micros", BigInteger(), nullable=False),
    Column("fees_micros", BigInteger(), nullable=False),
    Column("net_micros", BigInteger(), nullable=False),
    Column("expected_micros", BigInteger(), nullable=False),
    Column("credited_micros", BigInteger(), nullable=False),
    Column("refunded_micros", BigInteger(), nullable=False),
    Column("disputed_micros", BigInteger(), nullable=False),
    Column("reversed_micros", BigInteger(), nullable=False),
    Column("fixed", Integer(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_reconcile_stripe_runs"),
    CheckConstraint("window_start < window_end", name="ck_reconcile_stripe_runs_window"),
    Index("ix_reconcile_stripe_runs_window", "window_start", "window_end"),
    Index("ix_reconcile_stripe_runs_finished_at", "finished_at"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class RunRecord:
    """One recorded run. `counts` has every class of reconcile.matcher.CLASSES."""

    id: int
    since: dt.datetime
    until: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime
    fix: bool
    sessions: int
    paid: int
    counts: Mapping[str, int]
    gross_micros: int
    fees_micros: int
    net_micros: int
    expected_micros: int
    credited_micros: int
    refunded_micros: int
    disputed_micros: int
    reversed_micros: int
    fixed: int

    @property
    def all_matched(self) -> bool:
        return all(count == 0 for name, count in self.counts.items() if name != "matched")


def run_row(
    *,
    since: dt.datetime,
    until: dt.datetime,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    fix: bool,
    counts: Mapping[str, int],
    totals: Totals,
    fixed: int,
) -> dict[str, Any]:
    """The row of one run (pure)."""
    return {
        "window_start": _utc(since),
        "window_end": _utc(until),
        "started_at": _utc(started_at),
        "finished_at": _utc(finished_at),
        "fix": fix,
        "sessions": totals.sessions,
        "paid": totals.paid,
        **{name: counts.get(name, 0) for name in CLASSES},
        "gross_micros": cents_to_micros(totals.gross_cents),
        "fees_micros": cents_to_micros(totals.fees_cents),
        "net_micros": cents_to_micros(totals.net_cents),
        "expected_micros": totals.expected_micros,
        "credited_micros": totals.credited_micros,
        "refunded_micros": cents_to_micros(totals.refunded_cents),
        "disputed_micros": cents_to_micros(totals.disputed_cents),
        "reversed_micros": totals.reversed_micros,
        "fixed": fixed,
    }


def record_run(uow: UnitOfWork, row: Mapping[str, Any]) -> int:
    """Insert a run (inside the caller's unit of work); returns its id."""
    result = uow.connection.execute(runs_table.insert().returning(runs_table.c.id), [dict(row)])
    return int(result.scalar_one())


def last_run(ledger: Ledger, *, fix_only: bool = False) -> RunRecord | None:
    """The run that finished last (of --fix runs only, when asked), or None."""

    def read(uow: UnitOfWork) -> RunRecord | None:
        query = select(runs_table).order_by(runs_table.c.finished_at.desc(), runs_table.c.id.desc()).limit(1)
        if fix_only:
            query = query.where(runs_table.c.fix.is_(True))
        row = uow.connection.execute(query).mappings().first()
        return _record(row) if row is not None else None

    return ledger.read(read)


def recent_runs(ledger: Ledger, *, limit: int = 20) -> list[RunRecord]:
    """The last `limit` runs, newest first."""
    if not 1 <= limit <= 10_000:
        raise ReconcileInputError("limit is 1..10000")

    def read(uow: UnitOfWork) -> list[RunRecord]:
        rows = uow.connection.execute(
            select(runs_table).order_by(runs_table.c.finished_at.desc(), runs_table.c.id.desc()).limit(limit)
        ).mappings()
        return [_record(row) for row in rows]

    return ledger.read(read)


def window_reconciled(ledger: Ledger, since: dt.datetime, until: dt.datetime, *, fix_only: bool = True) -> bool:
    """True when a finished run (a --fix run, unless fix_only=False) covered all of [since, until).

    A run covers what was created up to its window's end or its own start, whichever came first: a
    window that reached into the future when it ran is not covered beyond that moment.
    """
    since, until = _utc(since), _utc(until)
    if since >= until:
        raise InvalidWindowError(f"since {since.isoformat()} is not before until {until.isoformat()}")

    def read(uow: UnitOfWork) -> bool:
        r = runs_table.c
        conditions = [r.window_start <= since, r.window_end >= until, r.started_at >= until]
        if fix_only:
            conditions.append(r.fix.is_(True))
        found = uow.connection.execute(select(func.count()).select_from(runs_table).where(and_(*conditions)))
        return int(found.scalar_one()) > 0

    return ledger.read(read)


def _record(row: RowMapping) -> RunRecord:
    return RunRecord(
        id=int(row["id"]),
        since=_aware(row["window_start"]),
        until=_aware(row["window_end"]),
        started_at=_aware(row["started_at"]),
        finished_at=_aware(row["finished_at"]),
        fix=bool(row["fix"]),
        sessions=int(row["sessions"]),
        paid=int(row["paid"]),
        counts={name: int(row[name]) for name in CLASSES},
        gross_micros=int(row["gross_micros"]),
        fees_micros=int(row["fees_micros"]),
        net_micros=int(row["net_micros"]),
        expected_micros=int(row["expected_micros"]),
        credited_micros=int(row["credited_micros"]),
        refunded_micros=int(row["refunded_micros"]),
        disputed_micros=int(row["disputed_micros"]),
        reversed_micros=int(row["reversed_micros"]),
        fixed=int(row["fixed"]),
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise InvalidWindowError("times must carry a UTC offset")
    return moment.astimezone(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    """A stored time as aware UTC (SQLite keeps no offset; only UTC is ever written)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
