"""The reconciliation job end to end: the loopback Stripe (real `stripe` library) against a real ledger,
on SQLite and on PostgreSQL. Every expected class, amount and balance is worked out by hand below.

The scenario (window 2025-03-01 .. 03-02, one session per customer, amounts in cents):

    alice  $25.00      credited once                                   -> matched
    bob    $50.00      credited by stripe:<cs> and by a webhook keyed by its event id -> duplicate_credit
    carol  $100.00     no credit                                       -> missing_credit; --fix credits $100
    dave   $30.00      bank debit still processing, not credited       -> nothing (later succeeds: missing_credit)
    dora   $30.00      still processing but credited early by a webhook -> unpaid_credited
    erin   $40.00      credited, refunded in full                      -> refund_not_reversed; --fix debits $40
    frank  $1,000.00   credited, refunds $300 then $200, one of $100 canceled -> 2 × refund_not_reversed
    gina   $60.00      credited, dispute lost                          -> dispute_not_reversed; --fix debits $60
    hank   $70.00      credited, dispute open with funds withdrawn, debited by the webhook -> matched
    ivy    ¥800        paid in JPY                                     -> currency_mismatch "800" JPY
    jack   $4.99       paid                                            -> out_of_range
    kim    $10,000.01  paid                                            -> out_of_range
    leo    $110.00     incl. $10.00 tax, no credit                     -> missing_credit; --fix credits $100
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from ledger_client import (
    Draft,
    Ledger,
    Posting,
    card_dispute_lost_entry,
    card_topup_entry,
)
from ledger_client.entries import CARD_TOPUP
from ledger_client.schema import transactions_table
from reconcile.errors import InvalidWindowError, LedgerChangedError
from reconcile.job import RunResult, reconcile_window
from reconcile.records import Session
from reconcile.runs import last_run, recent_runs, window_reconciled
from reconcile.stripe_source import StripeApiSource
from reconcile.testing import DATA, FakeStripe, TopUp
from tests.stripe_support import NOW, SINCE, UNTIL, at, source

DOLLAR = 1_000_000  # micro-USD


def webhook_credit(session_id: str, customer: str, micros: int, event_id: str) -> Draft:
    """A credit as the billing service's webhook handler posts it: keyed by the event id, with the
    recorded checkout.session.completed event (its session id set) as evidence."""
    event = orjson.loads((DATA / "stripe_event_checkout_session_completed_2020-08-27_stripemock.json").read_bytes())
    event = copy.deepcopy(event)
    event["id"] = event_id
    event["data"]["object"]["id"] = session_id
    postings = (Posting("stripe:clearing", "USD", micros), Posting(customer, "USD", -micros))
    return Draft(f"billing-event:{event_id}", CARD_TOPUP, postings, event)


def credit(topup: TopUp, customer: str, micros: int) -> Draft:
    return card_topup_entry(topup.session, customer, micros, {"checkout_session": topup.session, "by": "webhook"})


class Scenario:
    def __init__(self, fake: FakeStripe) -> None:
        self.fake = fake
        add = fake.add_session
        self.alice = add(created=at(1), amount_total=2500, customer="agt_alice")
        self.bob = add(created=at(2), amount_total=5000, customer="agt_bob")
        self.carol = add(created=at(3), amount_total=10000, customer="agt_carol")
        self.dave = add(created=at(4), amount_total=3000, customer="agt_dave", payment_status="unpaid")
        self.dora = add(created=at(4.5), amount_total=3000, customer="agt_dora", payment_status="unpaid")
        self.erin = add(created=at(5), amount_total=4000, customer="agt_erin")
        self.frank = add(created=at(6), amount_total=100000, customer="agt_frank", customer_in="metadata")
        self.gina = add(created=at(7), amount_total=6000, customer="agt_gina")
        self.hank = add(created=at(8), amount_total=7000, customer="agt_hank")
        self.ivy = add(created=at(9), amount_total=800, currency="jpy", customer="agt_ivy")
        self.jack = add(created=at(10), amount_total=499, customer="agt_jack")
        self.kim = add(created=at(11), amount_total=1_000_001, customer="agt_kim")
        self.leo = add(created=at(12), amount_total=11000, tax=1000, customer="agt_leo")
        self.erin_refund = fake.add_refund(self.erin.session, 4000, created=at(13))
        self.frank_300 = fake.add_refund(self.frank.session, 30000, created=at(14))
        self.frank_200 = fake.add_refund(self.frank.session, 20000, created=at(15))
        self.frank_canceled = fake.add_refund(self.frank.session, 10000, status="canceled", created=at(16))
        self.gina_dispute = fake.add_dispute(self.gina.session, status="lost", created=at(17))
        self.hank_dispute = fake.add_dispute(self.hank.session, status="needs_response", created=at(18))

    def post_webhook_credits(self, ledger: Ledger) -> None:
        ledger.post_many(
            [
                credit(self.alice, "agt_alice", 25 * DOLLAR),
                credit(self.bob, "agt_bob", 50 * DOLLAR),
                webhook_credit(self.bob.session, "agt_bob", 50 * DOLLAR, "evt_1BobCompleted"),
                credit(self.dora, "agt_dora", 30 * DOLLAR),
                credit(self.erin, "agt_erin", 40 * DOLLAR),
                credit(self.frank, "agt_frank", 1000 * DOLLAR),
                credit(self.gina, "agt_gina", 60 * DOLLAR),
                credit(self.hank, "agt_hank", 70 * DOLLAR),
                # The webhook took hank's credits back when the dispute withdrew the funds.
                card_dispute_lost_entry(self.hank_dispute, "agt_hank", 70 * DOLLAR, {"dispute": self.hank_dispute}),
            ]
        )

    def name(self, session_id: str) -> str:
        for name, value in vars(self).items():
            if isinstance(value, TopUp) and value.session == session_id:
                return name
        return session_id


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


def reconcile(ledger: Ledger, fake: FakeStripe, *, fix: bool, **options: Any) -> RunResult:
    with source(fake) as src:
        return reconcile_window(ledger, src, SINCE, UNTIL, fix=fix, now=NOW, **options)


def findings(result: RunResult, scenario: Scenario) -> list[tuple[str, str, str, str]]:
    return [(f.cls, scenario.name(f.session), f.amount, f.currency) for f in result.findings]


def transaction_count(ledger: Ledger) -> int:
    with ledger.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(transactions_table)).scalar_one())


def test_every_case_is_classified_fix_repairs_exactly_what_is_missing_and_a_second_fix_posts_nothing(
    ledger: Ledger, fake: FakeStripe
) -> None:
    s = Scenario(fake)
    s.post_webhook_credits(ledger)
    before = transaction_count(ledger)  # 9 webhook transactions

    report = reconcile(ledger, fake, fix=False)
    expected = [
        ("matched", "alice", "25.00", "usd"),
        ("duplicate_credit", "bob", "50.00", "usd"),
        ("missing_credit", "carol", "100.00", "usd"),
        ("unpaid_credited", "dora", "30.00", "usd"),  # dave: unpaid, not credited: nothing to say
        ("refund_not_reversed", "erin", "40.00", "usd"),
        ("refund_not_reversed", "frank", "300.00", "usd"),
        ("refund_not_reversed", "frank", "200.00", "usd"),  # the canceled $100 counts for nothing
        ("dispute_not_reversed", "gina", "60.00", "usd"),
        ("matched", "hank", "70.00", "usd"),  # open dispute, already debited: agrees
        ("currency_mismatch", "ivy", "800", "jpy"),
        ("out_of_range", "jack", "4.99", "usd"),
        ("out_of_range", "kim", "10000.01", "usd"),
        ("missing_credit", "leo", "100.00", "usd"),  # $110.00 less $10.00 tax
    ]
    assert findings(report, s) == expected
    assert (report.fix, report.fixed) == (False, 0)
    assert transaction_count(ledger) == before  # a report posts nothing
    assert not report.all_matched

    fixed = reconcile(ledger, fake, fix=True)
    assert findings(fixed, s) == expected  # --fix reports what it found ...
    # ... and posts: carol's and leo's credits, erin's and frank's two refunds, gina's lost dispute.
    assert fixed.fixed == 6
    posted = sorted(f.fix.key.split(":")[0] for f in fixed.findings if f.fixed_by is not None and f.fix is not None)
    assert posted == ["stripe", "stripe", "stripe-dispute", "stripe-refund", "stripe-refund", "stripe-refund"]
    assert transaction_count(ledger) == before + 6
    balances = {
        name: ledger.balance(f"agt_{name}") for name in ("alice", "bob", "carol", "dave", "dora", "erin", "frank")
    }
    balances |= {name: ledger.balance(f"agt_{name}") for name in ("gina", "hank", "ivy", "jack", "kim", "leo")}
    assert balances == {
        "alice": 25 * DOLLAR,
        "bob": 100 * DOLLAR,  # the duplicate stays until an operator reverses it
        "carol": 100 * DOLLAR,
        "dave": 0,
        "dora": 30 * DOLLAR,  # reported, never taken back automatically
        "erin": 0,  # $40 − $40
        "frank": 500 * DOLLAR,  # $1,000 − $300 − $200
        "gina": 0,  # $60 − $60
        "hank": 0,  # $70 − $70 while the dispute is open
        "ivy": 0,
        "jack": 0,
        "kim": 0,
        "leo": 100 * DOLLAR,  # $110 − $10 tax
    }
    assert ledger.balance("stripe:clearing") == sum(balances.values())  # every card credit came through clearing
    assert ledger.verify() == []

    again = reconcile(ledger, fake, fix=True)
    assert again.fixed == 0
    assert transaction_count(ledger) == before + 6
    assert findings(again, s) == [
        ("matched", "alice", "25.00", "usd"),
        ("duplicate_credit", "bob", "50.00", "usd"),
        ("matched", "carol", "100.00", "usd"),
        ("unpaid_credited", "dora", "30.00", "usd"),
        ("matched", "erin", "40.00", "usd"),
        ("matched", "frank", "1000.00", "usd"),
        ("matched", "gina", "60.00", "usd"),
        ("matched", "hank", "70.00", "usd"),
        ("currency_mismatch", "ivy", "800", "jpy"),
        ("out_of_range", "jack", "4.99", "usd"),
        ("out_of_range", "kim", "10000.01", "usd"),
        ("matched", "leo", "100.00", "usd"),
    ]

    # Later: dave's bank debit succeeds, hank wins his dispute (funds reinstated), frank's $200 refund fails.
    fake.async_payment_succeeded(s.dave.session)
    fake.set_dispute(s.hank_dispute, status="won", funds_reinstated=True)
    fake.set_refund_status(s.frank_200, "failed")
    later = reconcile(ledger, fake, fix=True)
    changed = [row for row in findings(later, s) if row[0] != "matched" or row[1] in ("dave", "hank", "frank")]
    assert changed == [
        ("duplicate_credit", "bob", "50.00", "usd"),
        ("missing_credit", "dave", "30.00", "usd"),
        ("unpaid_credited", "dora", "30.00", "usd"),
        ("refund_not_reversed", "frank", "200.00", "usd"),  # failed after its debit: re-credit it
        ("dispute_not_reversed", "hank", "70.00", "usd"),  # won after the debit: re-credit it
        ("currency_mismatch", "ivy", "800", "jpy"),
        ("out_of_range", "jack", "4.99", "usd"),
        ("out_of_range", "kim", "10000.01", "usd"),
    ]
    assert later.fixed == 3
    assert (ledger.balance("agt_dave"), ledger.balance("agt_hank"), ledger.balance("agt_frank")) == (
        30 * DOLLAR,
        70 * DOLLAR,
        700 * DOLLAR,  # $1,000 − $300
    )
    undo = ledger.transaction_by_key(f"stripe-refund-undo:{s.frank_200}")
    debit = ledger.transaction_by_key(f"stripe-refund:{s.frank_200}")
    assert undo is not None and debit is not None and undo.reverses == debit.id
    won = ledger.transaction_by_key(f"stripe-dispute-won:{s.hank_dispute}")
    hank_debit = ledger.transaction_by_key(f"stripe-dispute:{s.hank_dispute}")
    assert won is not None and hank_debit is not None and won.reverses == hank_debit.id
    final = reconcile(ledger, fake, fix=True)
    assert final.fixed == 0
    # alice, carol, dave, erin, frank, gina, hank, leo
    assert [row[0] for row in findings(final, s)].count("matched") == 8

    runs = recent_runs(ledger)
    assert [(r.fix, r.fixed) for r in runs] == [(True, 0), (True, 3), (True, 0), (True, 6), (False, 0)]
    first = runs[-1]
    assert (first.since, first.until, first.started_at) == (SINCE, UNTIL, NOW)
    assert first.counts["refund_not_reversed"] == 3 and first.counts["out_of_range"] == 2
    assert (first.sessions, first.paid) == (13, 11)  # dave and dora were unpaid then
    # Gross of the 11 paid sessions' balance transactions in USD (ivy's is in JPY), in micro-USD.
    gross_cents = 2500 + 5000 + 10000 + 4000 + 100000 + 6000 + 7000 + 499 + 1_000_001 + 11000
    assert first.gross_micros == gross_cents * 10_000
    assert first.expected_micros == (25 + 50 + 100 + 40 + 1000 + 60 + 70 + 100) * DOLLAR
    latest = last_run(ledger)
    assert latest is not None and (latest.id, latest.finished_at) == (final.run_id, final.finished_at)


def test_25_sessions_over_3_pages_are_all_matched(ledger: Ledger, fake: FakeStripe) -> None:
    fake.max_page_size = 10
    topups = [
        fake.add_session(created=at(i / 2), amount_total=500 + 100 * i, customer=f"agt_{i:02d}") for i in range(25)
    ]
    ledger.post_many([credit(t, f"agt_{i:02d}", (500 + 100 * i) * 10_000) for i, t in enumerate(topups)])
    result = reconcile(ledger, fake, fix=True)
    assert [f.cls for f in result.findings] == ["matched"] * 25
    assert result.all_matched and result.fixed == 0
    assert fake.count("/v1/checkout/sessions") == 3
    # Σ (500 + 100 i) for i < 25 = 25 × 500 + 100 × 300 = 42,500 cents.
    assert result.totals.credited_micros == 42_500 * 10_000


def test_unpaid_then_async_payment_succeeded(ledger: Ledger, fake: FakeStripe) -> None:
    topup = fake.add_session(created=at(1), amount_total=3000, customer="agt_dave", payment_status="unpaid")
    first = reconcile(ledger, fake, fix=True)
    assert (first.findings, first.fixed, ledger.balance("agt_dave")) == ((), 0, 0)  # never credited before paid
    fake.async_payment_succeeded(topup.session)
    second = reconcile(ledger, fake, fix=True)
    assert [(f.cls, f.amount) for f in second.findings] == [("missing_credit", "30.00")]
    assert (second.fixed, ledger.balance("agt_dave")) == (1, 30 * DOLLAR)
    assert [f.cls for f in reconcile(ledger, fake, fix=True).findings] == ["matched"]


def test_a_failed_async_payment_credited_early_stays_unpaid_credited(ledger: Ledger, fake: FakeStripe) -> None:
    topup = fake.add_session(created=at(1), amount_total=3000, customer="agt_dave", payment_status="unpaid")
    ledger.post(credit(topup, "agt_dave", 30 * DOLLAR))
    fake.async_payment_failed(topup.session)
    result = reconcile(ledger, fake, fix=True)
    assert [(f.cls, f.amount) for f in result.findings] == [("unpaid_credited", "30.00")]
    assert "async payment failed" in result.findings[0].detail
    assert result.fixed == 0 and ledger.balance("agt_dave") == 30 * DOLLAR  # a human decides


def _ledger_at(url: str, moment: dt.datetime) -> Ledger:
    """A ledger whose clock stands inside the window (its transactions are created then)."""
    return Ledger.open(url, clock=lambda: moment)


def test_a_credit_for_a_session_stripe_does_not_know(ledger_url: str, fake: FakeStripe) -> None:
    with _ledger_at(ledger_url, at(5)) as ledger:
        ledger.post(card_topup_entry("cs_test_ghost", "agt_ghost", 20 * DOLLAR, {}))
        result = reconcile(ledger, fake, fix=True)
    assert [(f.cls, f.session, f.amount, f.currency) for f in result.findings] == [
        ("credit_without_payment", "cs_test_ghost", "20.00", "usd")
    ]
    assert fake.count("/v1/checkout/sessions/cs_test_ghost") == 1
    assert result.fixed == 0


def test_a_credit_posted_in_the_window_for_an_older_session_belongs_to_that_window(
    ledger_url: str, fake: FakeStripe
) -> None:
    older = fake.add_session(created=SINCE - dt.timedelta(days=2), amount_total=2500, customer="agt_old")
    with _ledger_at(ledger_url, at(5)) as ledger:
        ledger.post(credit(older, "agt_old", 25 * DOLLAR))
        result = reconcile(ledger, fake, fix=True)
    assert result.findings == ()
    assert fake.count(f"/v1/checkout/sessions/{older.session}") == 1


class MeddlingSource:
    """A source that lets another writer post between the ledger read and --fix (a race made certain)."""

    def __init__(self, inner: StripeApiSource, ledger: Ledger, draft: Draft) -> None:
        self.inner, self.ledger, self.draft = inner, ledger, draft

    def sessions(self, since: dt.datetime, until: dt.datetime) -> Iterator[Session]:
        return self.inner.sessions(since, until)

    def session(self, session_id: str) -> Session | None:
        self.ledger.post(self.draft)
        return self.inner.session(session_id)


def test_a_key_posted_meanwhile_with_other_content_stops_fix_and_posts_nothing(
    ledger_url: str, fake: FakeStripe
) -> None:
    carol = fake.add_session(created=at(1), amount_total=10000, customer="agt_carol")
    with _ledger_at(ledger_url, at(5)) as ledger, source(fake) as inner:
        ledger.post(card_topup_entry("cs_test_ghost", "agt_ghost", DOLLAR, {}))  # makes the job ask Stripe
        other = card_topup_entry(carol.session, "agt_carol", 99 * DOLLAR, {"by": "someone else"})
        with pytest.raises(LedgerChangedError, match=f"stripe:{carol.session}"):
            reconcile_window(ledger, MeddlingSource(inner, ledger, other), SINCE, UNTIL, fix=True, now=NOW)
        assert ledger.balance("agt_carol") == 99 * DOLLAR  # the other writer's, nothing of ours
        assert recent_runs(ledger) == []  # the run is recorded with its last batch: not recorded


def test_fix_posts_in_batches_and_records_the_run_once(ledger: Ledger, fake: FakeStripe) -> None:
    for i in range(5):
        fake.add_session(created=at(i), amount_total=1000, customer=f"agt_{i}")
    result = reconcile(ledger, fake, fix=True, fix_batch=2)  # 5 credits: batches of 2, 2 and 1
    assert result.fixed == 5
    assert [(r.fixed, r.counts["missing_credit"]) for r in recent_runs(ledger)] == [(5, 5)]


def test_a_window_is_reconciled_once_it_was_fixed_and_covered(ledger: Ledger, fake: FakeStripe) -> None:
    assert not window_reconciled(ledger, SINCE, UNTIL)
    reconcile(ledger, fake, fix=False)
    assert not window_reconciled(ledger, SINCE, UNTIL)  # a report is not a reconciliation
    assert window_reconciled(ledger, SINCE, UNTIL, fix_only=False)
    reconcile(ledger, fake, fix=True)
    assert window_reconciled(ledger, SINCE, UNTIL)
    assert window_reconciled(ledger, SINCE + dt.timedelta(hours=1), UNTIL - dt.timedelta(hours=1))  # inside it
    assert not window_reconciled(ledger, SINCE, UNTIL + dt.timedelta(hours=1))  # reaches beyond it
    # A run whose window reached into its own future covers only up to its start.
    with source(fake) as src:
        reconcile_window(ledger, src, UNTIL, UNTIL + dt.timedelta(days=2), fix=True, now=UNTIL + dt.timedelta(hours=6))
    assert window_reconciled(ledger, UNTIL, UNTIL + dt.timedelta(hours=6))
    assert not window_reconciled(ledger, UNTIL, UNTIL + dt.timedelta(hours=7))


def test_a_window_that_is_not_one_is_refused_before_stripe_is_asked(ledger: Ledger, fake: FakeStripe) -> None:
    with source(fake) as src:
        with pytest.raises(InvalidWindowError, match="not before"):
            reconcile_window(ledger, src, UNTIL, SINCE, fix=True, now=NOW)
        with pytest.raises(InvalidWindowError, match="UTC offset"):
            reconcile_window(ledger, src, SINCE.replace(tzinfo=None), UNTIL, fix=True, now=NOW)
    assert fake.requests == []
    assert recent_runs(ledger) == []


def test_the_evidence_of_a_fix_names_its_session_window_and_time(ledger: Ledger, fake: FakeStripe) -> None:
    carol = fake.add_session(created=at(1), amount_total=10000, customer="agt_carol")
    reconcile(ledger, fake, fix=True)
    posted = ledger.transaction_by_key(f"stripe:{carol.session}")
    assert posted is not None
    evidence = dict(posted.evidence)
    assert evidence["checkout_session"] == carol.session
    assert evidence["payment_intent"] == carol.payment_intent
    assert evidence["amount_total"] == 10000 and evidence["amount_tax"] == 0
    assert evidence["window"] == {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
    assert evidence["posted_at"] == NOW.isoformat()
