"""The pure matcher, case by case, with every expected value worked out by hand from the records.

Stripe amounts are cents (USD) or yen; the ledger's are micro-USD: 1 cent = 10,000 micros.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from ledger_client import Posting, Transaction, card_refund_entry
from ledger_client.entries import CARD_DISPUTE_LOST, CARD_DISPUTE_WON, CARD_REFUND, CARD_REFUND_UNDO, CARD_TOPUP
from reconcile.currency import format_micros, format_minor, major_units, minor_unit_places
from reconcile.matcher import (
    CardEntry,
    Outcome,
    card_entry,
    keys_to_look_up,
    match,
    references,
    sessions_to_look_up,
)
from reconcile.records import Session
from tests.stripe_support import NOW, SINCE, UNTIL, at, dispute, entry, refund, session

CUSTOMER = "agt_a1b2c3d4"


def run(sessions: list[Session], entries: list[CardEntry], **looked_up: Session | None) -> Outcome:
    return match(sessions, entries, since=SINCE, until=UNTIL, now=NOW, looked_up=looked_up)


def classes(outcome: Outcome) -> list[tuple[str, str, str, str]]:
    return [(f.cls, f.session, f.amount, f.currency) for f in outcome.findings]


def credit(transaction_id: int, session_id: str, micros: int, **kwargs: object) -> CardEntry:
    return entry(transaction_id, f"stripe:{session_id}", CARD_TOPUP, micros, **kwargs)  # type: ignore[arg-type]


# --- currencies ---


def test_minor_units_follow_stripes_lists() -> None:
    assert [minor_unit_places(c) for c in ("usd", "USD", "jpy", "krw", "ugx", "kwd", "bhd", "isk", "huf")] == [
        2,
        2,
        0,
        0,
        0,
        3,
        3,
        2,  # ISK and HUF are special cases that stay two-decimal in the API
        2,
    ]
    assert format_minor(800, "jpy") == "800"  # ¥800, not 8.00
    assert format_minor(2500, "usd") == "25.00"
    assert format_minor(1500, "kwd") == "1.500"
    assert format_minor(-5, "usd") == "-0.05"
    assert str(major_units(1, "usd")) == "0.01"
    assert format_micros(25_000_000) == "25.00"  # whole cents: two places
    assert format_micros(1) == "0.000001"  # else all six
    assert format_micros(10**22) == "10000000000000000.00"  # never an exponent


# --- one credit per paid session ---


def test_a_session_credited_once_is_matched() -> None:
    # $25.00 = 2,500 cents = 25,000,000 micros.
    outcome = run([session("cs_a", 2500)], [credit(1, "cs_a", 25_000_000)])
    assert classes(outcome) == [("matched", "cs_a", "25.00", "usd")]
    assert outcome.findings[0].transactions == (1,)
    assert outcome.all_matched
    assert outcome.fixes == []


def test_a_second_credit_under_an_event_key_is_a_duplicate_until_one_is_reversed() -> None:
    webhook_evidence = {
        "event": {"id": "evt_1", "object": "event", "data": {"object": {"id": "cs_b", "object": "checkout.session"}}}
    }
    first = credit(1, "cs_b", 50_000_000)
    second = entry(2, "stripe-event:evt_1", CARD_TOPUP, 50_000_000, evidence=webhook_evidence)
    outcome = run([session("cs_b", 5000)], [first, second])
    assert classes(outcome) == [("duplicate_credit", "cs_b", "50.00", "usd")]
    assert outcome.findings[0].transactions == (1, 2)
    assert outcome.fixes == []  # --fix never removes a credit: an operator reverses one
    reversed_second = dataclasses.replace(second, reversed_by=3)
    assert classes(run([session("cs_b", 5000)], [first, reversed_second])) == [("matched", "cs_b", "50.00", "usd")]


def test_a_paid_session_without_credit_gets_exactly_its_credit_from_fix() -> None:
    outcome = run([session("cs_c", 10000, customer="agt_c")], [])
    assert classes(outcome) == [("missing_credit", "cs_c", "100.00", "usd")]
    [(_finding, draft)] = outcome.fixes
    assert draft.key == "stripe:cs_c"
    assert draft.kind == CARD_TOPUP
    # $100.00 = 10,000 cents = 100,000,000 micros, from Stripe clearing to the customer.
    assert sorted(draft.postings) == [
        Posting("agt_c", "USD", -100_000_000),
        Posting("stripe:clearing", "USD", 100_000_000),
    ]
    assert draft.evidence["checkout_session"] == "cs_c"
    assert draft.evidence["posted_at"] == NOW.isoformat()


def test_the_customer_comes_from_client_reference_id_else_metadata_account_id() -> None:
    outcome = run([session("cs_m", 700, customer=None, metadata_account="agt_meta")], [])
    [(_finding, draft)] = outcome.fixes
    assert Posting("agt_meta", "USD", -7_000_000) in draft.postings
    assert draft.evidence["customer_from"] == "metadata.account_id"
    both = run([session("cs_n", 700, customer="agt_ref", metadata_account="agt_meta")], [])
    assert Posting("agt_ref", "USD", -7_000_000) in both.fixes[0][1].postings


def test_a_session_naming_no_valid_customer_is_reported_but_not_fixed() -> None:
    outcome = run([session("cs_x", 700, customer=None), session("cs_y", 700, customer="not:a customer")], [])
    assert [f.cls for f in outcome.findings] == ["missing_credit", "missing_credit"]
    assert outcome.fixes == []
    assert "names no customer" in outcome.findings[0].detail
    assert "names no valid customer" in outcome.findings[1].detail


def test_a_credit_of_another_amount_or_to_another_customer_is_an_amount_mismatch() -> None:
    short = run([session("cs_s", 2500)], [credit(1, "cs_s", 20_000_000)])
    assert classes(short) == [("amount_mismatch", "cs_s", "25.00", "usd")]
    assert "credited 20.00 USD, expected 25.00 USD" in short.findings[0].detail
    elsewhere = run([session("cs_t", 2500)], [credit(1, "cs_t", 25_000_000, customer="agt_other")])
    assert classes(elsewhere) == [("amount_mismatch", "cs_t", "25.00", "usd")]
    assert "credited to agt_other, the session names agt_a1b2c3d4" in elsewhere.findings[0].detail


def test_a_session_with_tax_credits_amount_total_less_tax() -> None:
    # amount_total $110.00 includes $10.00 tax: the credit is $100.00 = 100,000,000 micros.
    taxed = session("cs_tax", 11000, tax=1000)
    assert classes(run([taxed], [credit(1, "cs_tax", 100_000_000)])) == [("matched", "cs_tax", "100.00", "usd")]
    assert classes(run([taxed], [credit(1, "cs_tax", 110_000_000)]))[0][0] == "amount_mismatch"
    [(_finding, draft)] = run([taxed], []).fixes
    assert Posting(CUSTOMER, "USD", -100_000_000) in draft.postings


def test_another_currency_is_reported_in_its_major_unit_and_never_credited() -> None:
    yen = session("cs_jpy", 800, currency="jpy")
    outcome = run([yen], [])
    assert classes(outcome) == [("currency_mismatch", "cs_jpy", "800", "jpy")]
    assert outcome.fixes == []
    # Credited anyway by someone (¥800 taken as $8.00): still a currency mismatch, never matched.
    assert classes(run([yen], [credit(1, "cs_jpy", 8_000_000)]))[0][0] == "currency_mismatch"


def test_top_ups_outside_5_to_10000_dollars_are_reported_not_credited() -> None:
    outcome = run(
        [
            session("cs_low", 499, created=at(1)),
            session("cs_min", 500, created=at(2)),
            session("cs_max", 1_000_000, created=at(3)),
            session("cs_high", 1_000_001, created=at(4)),
        ],
        [],
    )
    assert classes(outcome) == [
        ("out_of_range", "cs_low", "4.99", "usd"),
        ("missing_credit", "cs_min", "5.00", "usd"),  # $5 and $10,000 are inside
        ("missing_credit", "cs_max", "10000.00", "usd"),
        ("out_of_range", "cs_high", "10000.01", "usd"),
    ]
    assert [draft.key for _f, draft in outcome.fixes] == ["stripe:cs_min", "stripe:cs_max"]


def test_the_range_applies_to_the_credit_after_tax() -> None:
    # $5.40 total with $0.50 tax credits $4.90: out of range.
    assert classes(run([session("cs_t5", 540, tax=50)], [])) == [("out_of_range", "cs_t5", "4.90", "usd")]


# --- unpaid sessions ---


def test_an_unpaid_session_is_silent_unless_credited() -> None:
    pending = session("cs_u", 3000, payment_status="unpaid", intent_status="processing")
    assert classes(run([pending], [])) == []
    credited = run([pending], [credit(1, "cs_u", 30_000_000)])
    assert classes(credited) == [("unpaid_credited", "cs_u", "30.00", "usd")]
    assert "still processing" in credited.findings[0].detail
    failed = session("cs_f", 3000, payment_status="unpaid", intent_status="requires_payment_method")
    assert "failed" in run([failed], [credit(1, "cs_f", 30_000_000)]).findings[0].detail
    expired = session("cs_e", 3000, payment_status="unpaid", status="expired")
    assert "expired" in run([expired], [credit(1, "cs_e", 30_000_000)]).findings[0].detail


def test_a_credit_of_a_session_stripe_does_not_know_is_a_credit_without_payment() -> None:
    orphan = credit(7, "cs_gone", 20_000_000, created_at=at(5))
    older = credit(8, "cs_old", 20_000_000, created_at=SINCE - dt.timedelta(hours=1))
    assert sessions_to_look_up([], [orphan, older], since=SINCE, until=UNTIL) == {"cs_gone"}
    outcome = run([], [orphan], cs_gone=None)
    assert classes(outcome) == [("credit_without_payment", "cs_gone", "20.00", "usd")]
    assert outcome.totals.credited_micros == 20_000_000
    # Stripe knows it, created in another window: that window's business, not this one's.
    elsewhere = session("cs_gone", 2000, created=SINCE - dt.timedelta(days=3))
    assert classes(run([], [orphan], cs_gone=elsewhere)) == []


def test_a_credit_of_a_session_that_needed_no_payment_is_a_credit_without_payment() -> None:
    setup = session("cs_setup", 0, mode="setup", payment_status="no_payment_required")
    assert classes(run([setup], [])) == []
    assert classes(run([setup], [credit(1, "cs_setup", 5_000_000)])) == [
        ("credit_without_payment", "cs_setup", "5.00", "usd")
    ]


def test_a_credit_naming_only_the_payment_intent_counts_for_its_session() -> None:
    by_intent = entry(4, "stripe-event:evt_9", CARD_TOPUP, 25_000_000, evidence={"payment_intent": "pi_cs_a"})
    assert classes(run([session("cs_a", 2500)], [by_intent])) == [("matched", "cs_a", "25.00", "usd")]


# --- refunds ---


def test_refunds_300_then_200_of_1000_are_each_debited_by_their_own_amount() -> None:
    paid = session(
        "cs_r",
        100000,
        refunds=(
            refund("re_300", 30000, hours=2),
            refund("re_200", 20000, hours=3),
            refund("re_cancel", 10000, status="canceled", hours=4),
        ),
    )
    outcome = run([paid], [credit(1, "cs_r", 1_000_000_000)])
    assert [(f.cls, f.refund, f.amount) for f in outcome.findings] == [
        ("refund_not_reversed", "re_300", "300.00"),
        ("refund_not_reversed", "re_200", "200.00"),
    ]  # the canceled refund counts for nothing
    drafts = [draft for _f, draft in outcome.fixes]
    assert [d.key for d in drafts] == ["stripe-refund:re_300", "stripe-refund:re_200"]
    assert [d.kind for d in drafts] == [CARD_REFUND, CARD_REFUND]
    # $300.00 = 300,000,000 micros back from the customer to Stripe clearing; $200.00 likewise.
    assert Posting(CUSTOMER, "USD", 300_000_000) in drafts[0].postings
    assert Posting(CUSTOMER, "USD", 200_000_000) in drafts[1].postings
    assert outcome.totals.refunded_cents == 50000  # 30,000 + 20,000; not the canceled 10,000


def test_refunds_already_debited_are_matched() -> None:
    paid = session("cs_r", 100000, refunds=(refund("re_full", 100000),))
    debit = entry(2, "stripe-refund:re_full", CARD_REFUND, -1_000_000_000)
    outcome = run([paid], [credit(1, "cs_r", 1_000_000_000), debit])
    assert classes(outcome) == [("matched", "cs_r", "1000.00", "usd")]
    assert outcome.totals.reversed_micros == 1_000_000_000


def test_a_refund_canceled_after_its_debit_is_re_credited_once_by_reversing_the_debit() -> None:
    paid = session("cs_r", 100000, refunds=(refund("re_x", 10000, status="canceled"),))
    debit = entry(2, "stripe-refund:re_x", CARD_REFUND, -100_000_000)
    outcome = run([paid], [credit(1, "cs_r", 1_000_000_000), debit])
    assert [(f.cls, f.refund) for f in outcome.findings] == [("refund_not_reversed", "re_x")]
    [(_f, undo)] = outcome.fixes
    assert (undo.key, undo.kind, undo.reverses) == ("stripe-refund-undo:re_x", CARD_REFUND_UNDO, 2)
    assert Posting(CUSTOMER, "USD", -100_000_000) in undo.postings  # $100.00 back to the customer
    undone = dataclasses.replace(debit, reversed_by=3)
    undo_entry = entry(3, "stripe-refund-undo:re_x", CARD_REFUND_UNDO, 100_000_000, reverses=2)
    assert classes(run([paid], [credit(1, "cs_r", 1_000_000_000), undone, undo_entry]))[0][0] == "matched"


def test_a_refund_never_takes_back_more_than_was_credited() -> None:
    # $110.00 with $10.00 tax credited $100.00; a full refund returns $110.00 to the card but only the
    # $100.00 of credits exist to take back: 100,000,000 micros.
    taxed = session("cs_tax", 11000, tax=1000, refunds=(refund("re_all", 11000),))
    [(_f, debit)] = run([taxed], [credit(1, "cs_tax", 100_000_000)]).fixes
    assert Posting(CUSTOMER, "USD", 100_000_000) in debit.postings


def test_a_missing_credit_and_its_refund_are_both_fixed_in_one_run() -> None:
    refunded = session("cs_mr", 2500, refunds=(refund("re_mr", 2500),))
    assert [d.key for _f, d in run([refunded], []).fixes] == ["stripe:cs_mr", "stripe-refund:re_mr"]


# --- disputes ---


def test_a_lost_dispute_is_debited_once() -> None:
    disputed = session("cs_d", 5000, disputes=(dispute("dp_lost", 5000, status="lost"),))
    outcome = run([disputed], [credit(1, "cs_d", 50_000_000)])
    assert [(f.cls, f.dispute, f.amount) for f in outcome.findings] == [("dispute_not_reversed", "dp_lost", "50.00")]
    [(_f, draft)] = outcome.fixes
    assert (draft.key, draft.kind) == ("stripe-dispute:dp_lost", CARD_DISPUTE_LOST)
    assert Posting(CUSTOMER, "USD", 50_000_000) in draft.postings
    debited = entry(2, "stripe-dispute:dp_lost", CARD_DISPUTE_LOST, -50_000_000)
    assert classes(run([disputed], [credit(1, "cs_d", 50_000_000), debited]))[0][0] == "matched"
    assert outcome.totals.disputed_cents == 5000


def test_a_dispute_won_after_its_funds_were_withdrawn_is_re_credited_once() -> None:
    won = session("cs_w", 5000, disputes=(dispute("dp_won", 5000, status="won", reinstated=True),))
    debit = entry(2, "stripe-dispute:dp_won", CARD_DISPUTE_LOST, -50_000_000)
    outcome = run([won], [credit(1, "cs_w", 50_000_000), debit])
    assert [(f.cls, f.dispute) for f in outcome.findings] == [("dispute_not_reversed", "dp_won")]
    assert "50.00 reinstated" in outcome.findings[0].detail
    [(_f, draft)] = outcome.fixes
    assert (draft.key, draft.kind, draft.reverses) == ("stripe-dispute-won:dp_won", CARD_DISPUTE_WON, 2)
    assert Posting(CUSTOMER, "USD", -50_000_000) in draft.postings
    # Never debited (its funds came back before anyone debited them): nothing to do.
    assert classes(run([won], [credit(1, "cs_w", 50_000_000)])) == [("matched", "cs_w", "50.00", "usd")]


def test_an_open_dispute_needs_nothing_yet() -> None:
    open_dispute = session("cs_o", 5000, disputes=(dispute("dp_open", 5000, status="needs_response"),))
    assert classes(run([open_dispute], [credit(1, "cs_o", 50_000_000)]))[0][0] == "matched"


# --- ledger evidence and keys ---


def test_references_read_keys_fields_and_embedded_stripe_objects() -> None:
    assert references("stripe:cs_1", {}).sessions == {"cs_1"}
    assert references("stripe-refund-undo:re_1", {}).refunds == {"re_1"}
    assert references("stripe-dispute-won:dp_1", {}).disputes == {"dp_1"}
    named = references(
        "billing:evt_2",
        {
            "checkout_session_id": "cs_2",
            "refund": {"id": "re_2"},
            "raw": [{"data": {"object": {"object": "checkout.session", "id": "cs_3", "payment_intent": "pi_3"}}}],
        },
    )
    assert named.sessions == {"cs_2", "cs_3"}
    assert named.payment_intents == {"pi_3"}
    assert named.refunds == {"re_2"}
    assert references("adjust:x", {"reason": "typo"}) == references("adjust:y", {})


def test_card_entry_reads_the_customer_leg_of_a_transaction() -> None:
    draft = card_refund_entry("re_9", CUSTOMER, 3_000_000, {"checkout_session": "cs_9"})
    transaction = Transaction(5, draft.key, draft.kind, NOW, draft.evidence, None, draft.postings, reversed_by=6)
    seen = card_entry(transaction)
    assert (seen.customer, seen.credit_micros, seen.effective) == (CUSTOMER, -3_000_000, False)
    assert seen.references.refunds == {"re_9"}
    assert seen.references.sessions == {"cs_9"}


def test_keys_to_look_up_are_every_key_fix_could_post() -> None:
    s = session("cs_k", 5000, refunds=(refund("re_k", 100),), disputes=(dispute("dp_k", 5000, status="lost"),))
    assert keys_to_look_up([s]) == {
        "stripe:cs_k",
        "stripe-refund:re_k",
        "stripe-refund-undo:re_k",
        "stripe-dispute:dp_k",
        "stripe-dispute-won:dp_k",
    }


def test_a_reversed_key_is_reported_for_a_human_not_posted_again() -> None:
    # stripe:cs_z was posted and reversed by an operator: posting it again would return the old
    # transaction (same key), so --fix leaves it to a human.
    reversed_credit = credit(1, "cs_z", 25_000_000, reversed_by=2)
    outcome = run([session("cs_z", 2500)], [reversed_credit])
    assert classes(outcome) == [("missing_credit", "cs_z", "25.00", "usd")]
    assert outcome.fixes == []
    assert "exists but was reversed" in outcome.findings[0].detail


# --- totals ---


def test_totals_add_up_by_hand() -> None:
    sessions = [
        session("cs_1", 2500, fee=103, created=at(1)),  # 2,500 × 2.9% + 30 = 102.5 → 103 (fee given)
        session("cs_2", 11000, tax=1000, fee=349, created=at(2)),
        session("cs_3", 800, currency="jpy", fee=59, created=at(3)),  # balance in JPY: not in USD totals
        session("cs_4", 3000, payment_status="unpaid", created=at(4)),
    ]
    outcome = run(sessions, [credit(1, "cs_1", 25_000_000)])
    totals = outcome.totals
    assert (totals.sessions, totals.paid) == (4, 3)
    assert (totals.gross_cents, totals.fees_cents, totals.net_cents) == (2500 + 11000, 103 + 349, 13500 - 452)
    assert totals.expected_micros == 25_000_000 + 100_000_000  # cs_1 $25 + cs_2 $110 − $10 tax
    assert totals.credited_micros == 25_000_000
    assert outcome.counts == {
        "matched": 1,
        "missing_credit": 1,
        "credit_without_payment": 0,
        "duplicate_credit": 0,
        "amount_mismatch": 0,
        "currency_mismatch": 1,
        "refund_not_reversed": 0,
        "dispute_not_reversed": 0,
        "out_of_range": 0,
        "unpaid_credited": 0,
    }


# --- the property --fix rests on: what it posts leaves nothing to post ---


def _apply(entries: list[CardEntry], outcome: Outcome) -> list[CardEntry]:
    """The ledger after posting the outcome's drafts (what Ledger.post_many would do)."""
    result = list(entries)
    next_id = max((e.transaction_id for e in result), default=0) + 1
    for _finding, draft in outcome.fixes:
        customer_leg = next(p for p in draft.postings if p.account != "stripe:clearing")
        new = CardEntry(
            next_id,
            draft.key,
            draft.kind,
            customer_leg.account,
            -customer_leg.amount,
            NOW,
            references(draft.key, draft.evidence),
            draft.reverses,
        )
        if draft.reverses is not None:
            result = [
                dataclasses.replace(e, reversed_by=next_id) if e.transaction_id == draft.reverses else e for e in result
            ]
        result.append(new)
        next_id += 1
    return result


_refund_statuses = st.sampled_from(["succeeded", "succeeded", "pending", "failed", "canceled"])
_dispute_statuses = st.sampled_from(["needs_response", "under_review", "won", "lost", "warning_closed"])


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[Session], list[CardEntry]]:
    sessions: list[Session] = []
    entries: list[CardEntry] = []
    next_id = 1
    for n in range(draw(st.integers(1, 5))):
        amount = draw(st.integers(300, 1_200_000))
        tax = draw(st.sampled_from([0, 0, amount // 11]))
        refunds = tuple(
            refund(f"re_{n}_{i}", draw(st.integers(1, amount)), status=draw(_refund_statuses), hours=2 + i)
            for i in range(draw(st.integers(0, 3)))
        )
        disputes = tuple(
            dispute(f"dp_{n}_{i}", amount, status=draw(_dispute_statuses)) for i in range(draw(st.integers(0, 1)))
        )
        sessions.append(session(f"cs_{n}", amount, tax=tax, created=at(n), refunds=refunds, disputes=disputes))
        if draw(st.booleans()):
            entries.append(credit(next_id, f"cs_{n}", (amount - tax) * 10_000))
            next_id += 1
        for r in refunds:
            if draw(st.booleans()):  # a webhook debited it already, whatever became of it since
                entries.append(entry(next_id, f"stripe-refund:{r.id}", CARD_REFUND, -r.amount * 10_000))
                next_id += 1
        for d in disputes:
            if draw(st.booleans()):
                entries.append(entry(next_id, f"stripe-dispute:{d.id}", CARD_DISPUTE_LOST, -d.amount * 10_000))
                next_id += 1
    return sessions, entries


@given(_scenario())
def test_after_fix_posts_its_drafts_a_second_match_has_nothing_to_post(
    scenario: tuple[list[Session], list[CardEntry]],
) -> None:
    sessions, entries = scenario
    first = run(sessions, entries)
    second = run(sessions, _apply(entries, first))
    assert second.fixes == []
    keys = [draft.key for _f, draft in first.fixes]
    assert len(keys) == len(set(keys))  # one draft per key
    # What --fix debits for a session never exceeds what the session credits.
    for s in sessions:
        credit_micros = ((s.amount_total or 0) - s.amount_tax) * 10_000
        debits = [
            draft
            for _f, draft in first.fixes
            if draft.kind in (CARD_REFUND, CARD_DISPUTE_LOST) and draft.evidence["checkout_session"] == s.id
        ]
        taken = sum(p.amount for draft in debits for p in draft.postings if p.account != "stripe:clearing")
        assert taken <= credit_micros
