"""What issue 7 added to the ledger, as contract tests on SQLite and PostgreSQL: finding transactions by
many keys and by kind since a time (for reconciliation), and the reconciliation run table."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger_client import (
    IntegrityViolationError,
    InvalidInputError,
    Ledger,
    Posting,
    adjustment_entry,
    card_refund_entry,
    card_topup_entry,
)
from ledger_client.entries import CARD_REFUND, CARD_TOPUP
from reconcile.matcher import CLASSES, Totals
from reconcile.runs import RunRecord, last_run, recent_runs, record_run, run_row, window_reconciled

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clocked(ledger_url: str) -> tuple[Ledger, Clock]:
    clock = Clock()
    return Ledger.open(ledger_url, clock=clock), clock


def test_transactions_by_keys_returns_the_posted_ones_with_postings_and_reversals(ledger: Ledger) -> None:
    credits = [card_topup_entry(f"cs_{n}", "agt_a", 1_000_000 + n, {"n": n}) for n in range(1200)]
    results = ledger.post_many(credits)
    reversal = ledger.reverse(results[7].transaction_id, reason="duplicate", actor="test")
    wanted = (f"stripe:cs_{n}" for n in (7, 8, 1199))  # a generator: read once, even if retried
    found = ledger.transactions_by_keys([*wanted, "stripe:cs_unknown"])
    assert sorted(found) == ["stripe:cs_1199", "stripe:cs_7", "stripe:cs_8"]
    seven = found["stripe:cs_7"]
    assert (seven.kind, seven.reversed_by, dict(seven.evidence)) == (CARD_TOPUP, reversal.transaction_id, {"n": 7})
    assert seven.postings == (Posting("agt_a", "USD", -1_000_007), Posting("stripe:clearing", "USD", 1_000_007))
    # 1,200 keys cross the 500-key chunks of the lookup.
    assert len(ledger.transactions_by_keys(f"stripe:cs_{n}" for n in range(1200))) == 1200
    assert ledger.transactions_by_keys([]) == {}


def test_transactions_of_kinds_since_a_time(clocked: tuple[Ledger, Clock]) -> None:
    ledger, clock = clocked
    with ledger:
        ledger.post(card_topup_entry("cs_old", "agt_a", 5_000_000, {}))
        clock.now = T0 + dt.timedelta(days=1)
        new = ledger.post(card_topup_entry("cs_new", "agt_a", 7_000_000, {"checkout_session": "cs_new"}))
        refund = ledger.post(card_refund_entry("re_1", "agt_a", 1_000_000, {}))
        ledger.post(adjustment_entry("k1", "agt_a", "USD", 1, reason="goodwill", actor="test", at=T0))  # not listed
        all_cards = ledger.transactions_of_kinds([CARD_TOPUP, CARD_REFUND])
        assert [t.key for t in all_cards] == ["stripe:cs_old", "stripe:cs_new", "stripe-refund:re_1"]
        since = ledger.transactions_of_kinds([CARD_TOPUP], created_since=T0 + dt.timedelta(hours=12))
        assert [(t.id, t.key, t.created_at) for t in since] == [
            (new.transaction_id, "stripe:cs_new", T0 + dt.timedelta(days=1))
        ]
        assert since[0].evidence == {"checkout_session": "cs_new"}
        assert since[0].postings == (Posting("agt_a", "USD", -7_000_000), Posting("stripe:clearing", "USD", 7_000_000))
        assert ledger.transactions_of_kinds([CARD_REFUND])[0].id == refund.transaction_id
        assert ledger.transactions_of_kinds([]) == []
        with pytest.raises(InvalidInputError, match="more than 2 transactions"):
            ledger.transactions_of_kinds([CARD_TOPUP, CARD_REFUND], limit=2)


def _totals(**values: int) -> Totals:
    return Totals(**values)


def test_a_run_is_recorded_and_read_back_exactly(ledger: Ledger) -> None:
    counts = {name: n for n, name in enumerate(CLASSES)}
    big = 2**40  # beyond 32 bits: micro-USD columns are 64-bit
    row = run_row(
        since=T0,
        until=T0 + dt.timedelta(days=1),
        started_at=T0 + dt.timedelta(days=2),
        finished_at=T0 + dt.timedelta(days=2, seconds=3),
        fix=True,
        counts=counts,
        totals=_totals(
            sessions=13,
            paid=11,
            gross_cents=big,
            fees_cents=452,
            net_cents=big - 452,
            expected_micros=big,
            credited_micros=7,
            refunded_cents=5,
            disputed_cents=6,
            reversed_micros=8,
        ),
        fixed=6,
    )
    run_id = ledger.run(lambda uow: record_run(uow, row))
    assert last_run(ledger) == RunRecord(
        id=run_id,
        since=T0,
        until=T0 + dt.timedelta(days=1),
        started_at=T0 + dt.timedelta(days=2),
        finished_at=T0 + dt.timedelta(days=2, seconds=3),
        fix=True,
        sessions=13,
        paid=11,
        counts=counts,
        gross_micros=big * 10_000,  # cents × 10,000
        fees_micros=4_520_000,
        net_micros=(big - 452) * 10_000,
        expected_micros=big,
        credited_micros=7,
        refunded_micros=50_000,
        disputed_micros=60_000,
        reversed_micros=8,
        fixed=6,
    )
    assert recent_runs(ledger, limit=5)[0].id == run_id
    assert window_reconciled(ledger, T0, T0 + dt.timedelta(days=1))
    assert not window_reconciled(ledger, T0 - dt.timedelta(seconds=1), T0 + dt.timedelta(days=1))


def test_the_run_table_refuses_an_empty_window(ledger: Ledger) -> None:
    row = run_row(since=T0, until=T0, started_at=T0, finished_at=T0, fix=False, counts={}, totals=_totals(), fixed=0)
    with pytest.raises(IntegrityViolationError):
        ledger.run(lambda uow: record_run(uow, row))
    assert last_run(ledger) is None
