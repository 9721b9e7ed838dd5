"""The run tables of chain reconciliation and the audit (issue 9): one row per run, for `treasury status`
and the daemon's scheduled jobs.

    last_chain_run(ledger) -> ChainRunRecord | None
    last_audit(ledger) -> AuditRunRecord | None

Both tables live on the ledger's MetaData and are created by the migration chain (revision
`0005_reconcile_proof_runs`). A row holds the window, when the run started and finished, its counts
and its report (the JSON of `reconcile.proof_report`, cut to `MAX_STORED_ITEMS` differences or
accounts with differences so a row stays small; the counts are always whole).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    RowMapping,
    Table,
    select,
)

from ledger_client.schema import metadata
from reconcile.errors import ReconcileInputError

if TYPE_CHECKING:
    from ledger_client.ledger import Ledger, UnitOfWork
    from reconcile.audit import AuditResult
    from reconcile.chain import ChainResult

_Id = BigInteger().with_variant(Integer(), "sqlite")
MAX_STORED_ITEMS: Final = 1_000

chain_runs_table: Final = Table(
    "reconcile_chain_runs",
    metadata,
    Column("id", _Id, autoincrement=True, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("accounts", Integer(), nullable=False),
    Column("differences", Integer(), nullable=False),  # accounts that do not reconcile
    Column("warnings", Integer(), nullable=False),  # history gaps (the node's listing, not the ledger)
    Column("report", JSON(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_reconcile_chain_runs"),
    CheckConstraint("window_start < window_end", name="ck_reconcile_chain_runs_window"),
    Index("ix_reconcile_chain_runs_finished_at", "finished_at"),
)

audit_runs_table: Final = Table(
    "reconcile_audit_runs",
    metadata,
    Column("id", _Id, autoincrement=True, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("credits", Integer(), nullable=False),
    Column("assignments", Integer(), nullable=False),
    Column("differences", Integer(), nullable=False),
    Column("report", JSON(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_reconcile_audit_runs"),
    CheckConstraint("window_start < window_end", name="ck_reconcile_audit_runs_window"),
    Index("ix_reconcile_audit_runs_finished_at", "finished_at"),
)

PROOF_TABLES: Final = (chain_runs_table, audit_runs_table)


@dataclasses.dataclass(frozen=True, slots=True)
class ChainRunRecord:
    id: int
    since: dt.datetime
    until: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime
    accounts: int
    differences: int
    warnings: int
    report: Mapping[str, Any]

    @property
    def clean(self) -> bool:
        return self.differences == 0


@dataclasses.dataclass(frozen=True, slots=True)
class AuditRunRecord:
    id: int
    since: dt.datetime
    until: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime
    credits: int
    assignments: int
    differences: int
    report: Mapping[str, Any]

    @property
    def clean(self) -> bool:
        return self.differences == 0


def record_chain_run(uow: UnitOfWork, result: ChainResult) -> int:
    """Insert a chain reconciliation run (inside the caller's unit of work); returns its id."""
    from reconcile.proof_report import chain_record  # noqa: PLC0415 - the report imports this module's callers

    report = chain_record(result)
    report["accounts"] = [item for item in report["accounts"] if item["status"] != "ok"][:MAX_STORED_ITEMS]
    row = {
        "window_start": result.since,
        "window_end": result.until,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "accounts": len(result.accounts),
        "differences": result.differences,
        "warnings": result.warnings,
        "report": report,
    }
    inserted = uow.connection.execute(chain_runs_table.insert().returning(chain_runs_table.c.id), [row])
    return int(inserted.scalar_one())


def record_audit_run(uow: UnitOfWork, result: AuditResult) -> int:
    """Insert an audit run (inside the caller's unit of work); returns its id."""
    from reconcile.proof_report import audit_record  # noqa: PLC0415

    report = audit_record(result)
    report["differences"] = report["differences"][:MAX_STORED_ITEMS]
    row = {
        "window_start": result.since,
        "window_end": result.until,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "credits": result.credits,
        "assignments": result.assignments,
        "differences": result.differences_total,
        "report": report,
    }
    inserted = uow.connection.execute(audit_runs_table.insert().returning(audit_runs_table.c.id), [row])
    return int(inserted.scalar_one())


def last_chain_run(ledger: Ledger) -> ChainRunRecord | None:
    """The chain reconciliation run that finished last, or None."""
    runs = recent_chain_runs(ledger, limit=1)
    return runs[0] if runs else None


def last_audit(ledger: Ledger) -> AuditRunRecord | None:
    """The audit run that finished last, or None."""
    runs = recent_audits(ledger, limit=1)
    return runs[0] if runs else None


def recent_chain_runs(ledger: Ledger, *, limit: int = 20) -> list[ChainRunRecord]:
    """The last `limit` chain reconciliation runs, newest first."""
    rows = _recent(ledger, chain_runs_table, limit)
    return [
        ChainRunRecord(
            id=int(row["id"]),
            since=_aware(row["window_start"]),
            until=_aware(row["window_end"]),
            started_at=_aware(row["started_at"]),
            finished_at=_aware(row["finished_at"]),
            accounts=int(row["accounts"]),
            differences=int(row["differences"]),
            warnings=int(row["warnings"]),
            report=row["report"],
        )
        for row in rows
    ]


def recent_audits(ledger: Ledger, *, limit: int = 20) -> list[AuditRunRecord]:
    """The last `limit` audit runs, newest first."""
    rows = _recent(ledger, audit_runs_table, limit)
    return [
        AuditRunRecord(
            id=int(row["id"]),
            since=_aware(row["window_start"]),
            until=_aware(row["window_end"]),
            started_at=_aware(row["started_at"]),
            finished_at=_aware(row["finished_at"]),
            credits=int(row["credits"]),
            assignments=int(row["assignments"]),
            differences=int(row["differences"]),
            report=row["report"],
        )
        for row in rows
    ]


def _recent(ledger: Ledger, table: Table, limit: int) -> list[RowMapping]:
    if not 1 <= limit <= 10_000:
        raise ReconcileInputError("limit is 1..10000")

    def read(uow: UnitOfWork) -> list[RowMapping]:
        query = select(table).order_by(table.c.finished_at.desc(), table.c.id.desc()).limit(limit)
        return list(uow.connection.execute(query).mappings())

    return ledger.read(read)


def _aware(value: dt.datetime) -> dt.datetime:
    """A stored time as aware UTC (SQLite keeps no offset; only UTC is ever written)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
