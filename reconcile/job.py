"""The Stripe reconciliation job: read Stripe and the ledger, match, repair on request, record the run.

    result = reconcile_window(ledger, source, since, until, fix=True, now=now)
    window_reconciled(ledger, since, until)      # the daemon asks this before reconciling a window

Steps, for the window [since, until):

1. Every Checkout Session created in the window, with its payment, refunds and disputes (the source
   reads every page).
2. The ledger's card transactions that may concern them: those holding a key --fix would post
   (`stripe:<session>`, `stripe-refund:<refund>`, …), looked up by key whatever their age, and every
   card transaction posted since `since - scan_margin` (one scan), whose evidence may name a session,
   refund or dispute under another key (a webhook handler keyed by event id).
3. Sessions named by credits of the window but absent from it are asked of Stripe one by one.
4. The pure matcher (`reconcile.matcher.match`) classifies; with `fix`, its drafts (missing credits of
   in-range USD sessions, missing reversals) are posted through `Ledger.post_many` — idempotent keys,
   so a second run posts nothing — in units of at most `FIX_BATCH`, and the run is recorded with the
   last of them (`reconcile.runs`). Without `fix` the run is recorded too (as a report-only run).

Talking to Stripe happens outside any database transaction; each unit of work only touches the
database, so `Ledger.run` may retry it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import structlog

from ledger_client import MAX_BATCH, AlreadyReversedError, Draft, IdempotencyConflictError, PostResult, Transaction
from ledger_client.entries import CARD_TOPUP
from reconcile.errors import InvalidWindowError, LedgerChangedError, ReconcileInputError
from reconcile.matcher import (
    MATCHED,
    SCANNED_KINDS,
    CardEntry,
    Finding,
    Outcome,
    Totals,
    card_entry,
    keys_to_look_up,
    match,
    sessions_to_look_up,
)
from reconcile.records import Session
from reconcile.runs import record_run, run_row, window_reconciled
from reconcile.stripe_source import StripeSource

if TYPE_CHECKING:
    from ledger_client.ledger import Ledger, UnitOfWork

# A card credit is posted after its session was created; the scan starts this much earlier than the
# window so that a ledger clock behind Stripe's does not hide a webhook's credit.
SCAN_MARGIN: Final = dt.timedelta(days=1)
FIX_BATCH: Final = 1_000  # drafts per unit of work when --fix posts (a transaction stays short)
MAX_SESSION_LOOKUPS: Final = 10_000  # sessions named by credits but not in the window, asked one by one

log = structlog.get_logger("reconcile.stripe")

__all__ = ["RunResult", "reconcile_window", "window_reconciled"]


@dataclasses.dataclass(frozen=True, slots=True)
class RunResult:
    """What one run found and did. `fixed`: transactions --fix created (0 without --fix or when all existed)."""

    run_id: int
    since: dt.datetime
    until: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime
    fix: bool
    findings: tuple[Finding, ...]
    totals: Totals
    fixed: int

    @property
    def counts(self) -> dict[str, int]:
        return Outcome(self.findings, self.totals).counts

    @property
    def all_matched(self) -> bool:
        """True when every finding is `matched` (the CLI's exit 0)."""
        return all(finding.cls == MATCHED for finding in self.findings)


def reconcile_window(
    ledger: Ledger,
    source: StripeSource,
    since: dt.datetime,
    until: dt.datetime,
    *,
    fix: bool,
    now: dt.datetime,
    scan_margin: dt.timedelta = SCAN_MARGIN,
    fix_batch: int = FIX_BATCH,
) -> RunResult:
    """Reconcile the card top-ups created in [since, until) and record the run; with `fix`, repair."""
    since, until, now = _utc(since, "since"), _utc(until, "until"), _utc(now, "now")
    if since >= until:
        raise InvalidWindowError(f"since {since.isoformat()} is not before until {until.isoformat()}")
    if not 1 <= fix_batch <= MAX_BATCH:
        raise ReconcileInputError(f"fix_batch is 1..{MAX_BATCH}")
    started = time.monotonic()
    sessions = list(source.sessions(since, until))
    keys = keys_to_look_up(sessions)

    def read(uow: UnitOfWork) -> list[CardEntry]:
        # The scan finds the recent card transactions, whatever their key; only keys it did not
        # meet (posted before the scan's start) are looked up one by one.
        scanned = uow.transactions_of_kinds(SCANNED_KINDS, created_since=since - scan_margin)
        seen = {transaction.key for transaction in scanned}
        by_key = uow.transactions_by_keys(key for key in keys if key not in seen)
        return _entries([*scanned, *by_key.values()])

    entries = ledger.read(read)
    wanted = sorted(sessions_to_look_up(sessions, entries, since=since, until=until))
    if len(wanted) > MAX_SESSION_LOOKUPS:
        raise ReconcileInputError(
            f"{len(wanted)} credits of the window name sessions outside it (more than {MAX_SESSION_LOOKUPS}): "
            "reconcile a shorter window"
        )
    looked_up: dict[str, Session | None] = {session_id: source.session(session_id) for session_id in wanted}
    outcome = match(sessions, entries, since=since, until=until, now=now, looked_up=looked_up)
    findings, fixed, run_id, finished_at = _post_and_record(
        ledger, outcome, fix=fix, since=since, until=until, now=now, batch_size=fix_batch
    )
    result = RunResult(
        run_id=run_id,
        since=since,
        until=until,
        started_at=now,
        finished_at=finished_at,
        fix=fix,
        findings=findings,
        totals=outcome.totals,
        fixed=fixed,
    )
    log.info(
        "stripe_reconciled",
        run_id=run_id,
        since=since.isoformat(),
        until=until.isoformat(),
        sessions=outcome.totals.sessions,
        paid=outcome.totals.paid,
        fix=fix,
        fixed=fixed,
        duration_s=round(time.monotonic() - started, 3),
        **{name: count for name, count in outcome.counts.items() if count},
    )
    return result


def _entries(transactions: Sequence[Transaction]) -> list[CardEntry]:
    seen: set[int] = set()
    entries = []
    for transaction in transactions:
        if transaction.id not in seen:
            seen.add(transaction.id)
            entries.append(card_entry(transaction))
    return entries


def _post_and_record(
    ledger: Ledger,
    outcome: Outcome,
    *,
    fix: bool,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    batch_size: int,
) -> tuple[tuple[Finding, ...], int, int, dt.datetime]:
    """(findings with what was posted for them, transactions created, run id, finished at)."""
    # Credits before the reversals that take them back (a stable order: the matcher's otherwise).
    fixes = sorted(outcome.fixes, key=lambda pair: pair[1].kind != CARD_TOPUP) if fix else []
    drafts = [draft for _finding, draft in fixes]
    results: list[PostResult] = []
    batches = [drafts[start : start + batch_size] for start in range(0, len(drafts), batch_size)] or [[]]
    run_id = 0
    finished_at = now
    for number, batch in enumerate(batches):
        last = number == len(batches) - 1
        created_before = sum(1 for r in results if r.created)

        def unit(
            uow: UnitOfWork, batch: list[Draft] = batch, last: bool = last, created: int = created_before
        ) -> tuple[list[PostResult], int, dt.datetime]:
            credits = [draft for draft in batch if draft.kind == CARD_TOPUP]
            posted = uow.post_many(credits) + uow.post_many(batch[len(credits) :])
            finished = uow.now()
            if not last:
                return posted, 0, finished
            row = run_row(
                since=since,
                until=until,
                started_at=now,
                finished_at=finished,
                fix=fix,
                counts=outcome.counts,
                totals=outcome.totals,
                fixed=created + sum(1 for r in posted if r.created),
            )
            return posted, record_run(uow, row), finished

        try:
            posted, run_id, finished_at = ledger.run(unit)
        except IdempotencyConflictError as exc:
            detail = f"{exc.key} was posted meanwhile with other content (transaction {exc.transaction_id})"
            raise LedgerChangedError(exc.key, detail) from exc
        except AlreadyReversedError as exc:
            detail = f"transaction {exc.transaction_id} was reversed meanwhile"
            raise LedgerChangedError(f"reverse:{exc.transaction_id}", detail) from exc
        results.extend(posted)
    by_finding = {id(finding): result for (finding, _draft), result in zip(fixes, results, strict=True)}
    findings = tuple(
        dataclasses.replace(finding, fixed_by=by_finding[id(finding)].transaction_id)
        if id(finding) in by_finding
        else finding
        for finding in outcome.findings
    )
    return findings, sum(1 for r in results if r.created), run_id, finished_at


def _utc(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None:
        raise InvalidWindowError(f"{name} must carry a UTC offset")
    return moment.astimezone(dt.UTC)
