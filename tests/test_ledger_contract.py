"""The ledger's contract, run once on SQLite and once on PostgreSQL (the `ledger` fixture is parametrized).

Expected values are worked out by hand in the comments; amounts are micro-USD unless the currency
says otherwise.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text

from ledger_client import (
    AlreadyAssignedError,
    AlreadyReversedError,
    Balance,
    DatabaseUnavailableError,
    Draft,
    IdempotencyConflictError,
    InvalidAccountError,
    InvalidEntryError,
    InvalidInputError,
    Ledger,
    NotFoundError,
    Posting,
    PostResult,
    SerializationConflictError,
    UnbalancedError,
    UnitOfWork,
    WalletAlreadyLinkedError,
    adjustment_entry,
    card_dispute_lost_entry,
    card_dispute_won_entry,
    card_refund_entry,
    card_refund_undo_entry,
    card_topup_entry,
    crypto_deposit_entry,
    deposit_key,
    osr_burn_entry,
)
from ledger_client.schema import postings_table, transactions_table
from tests.ledger_data import REAL_RECEIVER, REAL_SIGNATURE, TREASURY, address, signature, topup, usdc_deposit

AT = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def count_transactions(ledger: Ledger) -> int:
    return ledger.read(
        lambda uow: uow.connection.execute(select(func.count()).select_from(transactions_table)).scalar_one()
    )


def count_postings(ledger: Ledger) -> int:
    return ledger.read(
        lambda uow: uow.connection.execute(select(func.count()).select_from(postings_table)).scalar_one()
    )


# --- posting and idempotency ---


def test_a_key_posts_once_and_then_returns_the_same_transaction(ledger: Ledger) -> None:
    first = ledger.post(topup(1, "agt_a1b2c3d4", 25_000_000, fetched_at="2026-12-01T12:00:00Z"))
    # Same key, same content, other evidence (a later fetch time): success, the same transaction.
    again = ledger.post(topup(1, "agt_a1b2c3d4", 25_000_000, fetched_at="2026-12-01T12:05:00Z"))
    assert first.created is True
    assert again == PostResult(first.transaction_id, False)
    assert ledger.balance("agt_a1b2c3d4") == 25_000_000  # $25.00 once, not twice
    assert count_transactions(ledger) == 1
    assert count_postings(ledger) == 2


def test_same_key_with_different_content_is_a_conflict_and_changes_nothing(ledger: Ledger) -> None:
    original = ledger.post(topup(7, "agt_a1b2c3d4", 25_000_000))
    before = ledger.balances()
    with pytest.raises(IdempotencyConflictError) as caught:
        ledger.post(topup(7, "agt_a1b2c3d4", 26_000_000))  # another amount
    assert (caught.value.key, caught.value.transaction_id) == ("stripe:cs_test_7", original.transaction_id)
    with pytest.raises(IdempotencyConflictError):
        ledger.post(topup(7, "agt_other", 25_000_000))  # another customer
    same_postings_other_kind = topup(7, "agt_a1b2c3d4", 25_000_000)
    with pytest.raises(IdempotencyConflictError):
        ledger.post(Draft(same_postings_other_kind.key, "adjustment", same_postings_other_kind.postings, {}))
    assert ledger.balances() == before
    assert count_transactions(ledger) == 1
    assert ledger.balance("agt_other") == 0


def test_content_comparison_ignores_the_order_of_postings(ledger: Ledger) -> None:
    draft = topup(3, "agt_a1b2c3d4", 5_000_000)
    first = ledger.post(draft)
    shuffled = Draft(draft.key, draft.kind, tuple(reversed(draft.postings)), {"other": "evidence"})
    assert ledger.post(shuffled) == PostResult(first.transaction_id, False)


def test_an_unbalanced_draft_is_refused_and_nothing_is_written(ledger: Ledger) -> None:
    draft = Draft(
        "stripe:cs_unbalanced",
        "card_topup",
        (Posting("stripe:clearing", "USD", 10_000_000), Posting("agt_a1b2c3d4", "USD", -9_999_999)),
        {},
    )
    with pytest.raises(UnbalancedError) as caught:
        ledger.post(draft)
    # 10,000,000 - 9,999,999 = 1 micro-USD too much on the debit side.
    assert (caught.value.currency, caught.value.imbalance) == ("USD", 1)
    assert count_transactions(ledger) == 0
    assert ledger.balances() == []


def test_each_currency_must_balance_on_its_own(ledger: Ledger) -> None:
    # 1 SOL in for 150 USD out sums to zero only if currencies are mixed: refused.
    draft = Draft(
        "sol-mixed",
        "crypto_deposit",
        (Posting("treasury:SOL", "SOL", 150_000_000), Posting("agt_a1b2c3d4", "USD", -150_000_000)),
        {},
    )
    with pytest.raises(UnbalancedError) as caught:
        ledger.post(draft)
    assert (caught.value.currency, caught.value.imbalance) == ("SOL", 150_000_000)
    assert count_transactions(ledger) == 0


def test_sol_deposit_balances_every_account_it_touches(ledger: Ledger) -> None:
    # 2.5 SOL = 2,500,000,000 lamports at $140.25: 2.5 × 140.25 = $350.625 = 350,625,000 micro-USD.
    key = deposit_key(REAL_SIGNATURE, REAL_RECEIVER, "SOL")
    draft = crypto_deposit_entry(
        key,
        "agt_a1b2c3d4",
        "SOL",
        2_500_000_000,
        350_625_000,
        0,
        350_625_000,
        0,
        0,
        {"quote": {"price": Decimal("140.25"), "source": "coingecko"}, "slot": 72410024},
    )
    result = ledger.post(draft)
    assert result.created
    assert ledger.balance("agt_a1b2c3d4") == 350_625_000
    assert ledger.balance("treasury:SOL", "SOL") == 2_500_000_000
    assert ledger.balances() == [
        Balance("agt_a1b2c3d4", "USD", 350_625_000),
        Balance("conversion:SOL", "SOL", 2_500_000_000),  # credit-normal: SOL received, positive
        Balance("conversion:SOL", "USD", -350_625_000),  # the credits issued against it
        Balance("treasury:SOL", "SOL", 2_500_000_000),
    ]
    stored = ledger.transaction(result.transaction_id)
    assert stored.key == f"sol:{REAL_SIGNATURE}:{REAL_RECEIVER}:SOL"
    assert stored.kind == "crypto_deposit"
    # Evidence comes back exact: a Decimal stays a Decimal, never a float.
    assert stored.evidence == {"quote": {"price": Decimal("140.25"), "source": "coingecko"}, "slot": 72410024}
    assert isinstance(stored.evidence["quote"]["price"], Decimal)
    assert stored.postings == (
        Posting("agt_a1b2c3d4", "USD", -350_625_000),
        Posting("conversion:SOL", "SOL", -2_500_000_000),
        Posting("conversion:SOL", "USD", 350_625_000),
        Posting("treasury:SOL", "SOL", 2_500_000_000),
    )
    assert stored.created_at.tzinfo is not None


def test_osr_deposit_splits_burn_and_retained_and_expenses_the_bonus(ledger: Ledger) -> None:
    # 1,234.5 OSR (9 decimals) = 1,234,500,000,000 raw at the fixed $0.005:
    #   USD value 1,234.5 × 0.005 = $6.1725 = 6,172,500 micros; bonus 50% = 3,086,250; credits 9,258,750.
    #   burn = floor(1,234,500,000,000 × 7 / 10) = 864,150,000,000; retained = 370,350,000,000.
    key = deposit_key(signature("osr-1"), TREASURY, "OSR")
    draft = crypto_deposit_entry(
        key, "agt_osr", "OSR", 1_234_500_000_000, 6_172_500, 3_086_250, 9_258_750, 864_150_000_000, 370_350_000_000, {}
    )
    ledger.post(draft)
    assert ledger.balance("agt_osr") == 9_258_750
    assert ledger.balance("expense:bonus") == 3_086_250
    assert ledger.balance("osr:received", "OSR") == 1_234_500_000_000
    assert ledger.balance("osr:received", "USD") == -6_172_500
    assert ledger.balance("osr:to-burn", "OSR") == 864_150_000_000
    assert ledger.balance("osr:retained", "OSR") == 370_350_000_000
    # The burn, verified on chain later: to-burn empties into burned.
    burned = ledger.post(osr_burn_entry(signature("burn-1"), 864_150_000_000, {"slot": 1}))
    assert burned.created
    assert ledger.balance("osr:to-burn", "OSR") == 0
    assert ledger.balance("osr:burned", "OSR") == 864_150_000_000
    assert ledger.verify() == []


def test_post_many_reports_each_draft_in_input_order(ledger: Ledger) -> None:
    existing = ledger.post(topup("old", "agt_a", 1_000_000))
    drafts = [
        topup("new-1", "agt_a", 2_000_000),
        topup("old", "agt_a", 1_000_000),  # already posted
        topup("new-2", "agt_b", 3_000_000),
        topup("new-1", "agt_a", 2_000_000),  # repeated inside the batch
    ]
    results = ledger.post_many(drafts)
    assert results[1] == PostResult(existing.transaction_id, False)
    assert results[0].created and results[2].created
    assert results[3] == PostResult(results[0].transaction_id, False)
    assert len({r.transaction_id for r in results}) == 3
    # agt_a: 1,000,000 + 2,000,000 = 3,000,000; agt_b: 3,000,000.
    assert (ledger.balance("agt_a"), ledger.balance("agt_b")) == (3_000_000, 3_000_000)
    assert count_transactions(ledger) == 3


def test_a_batch_with_one_conflict_writes_nothing_even_if_the_caller_catches_it(ledger: Ledger) -> None:
    ledger.post(topup("taken", "agt_a", 1_000_000))
    batch = [topup("fresh-1", "agt_a", 5_000_000), topup("taken", "agt_a", 9_000_000), topup("fresh-2", "agt_b", 1)]
    with pytest.raises(IdempotencyConflictError):
        ledger.post_many(batch)
    assert count_transactions(ledger) == 1

    def catch_and_carry_on(uow: UnitOfWork) -> PostResult:
        with pytest.raises(IdempotencyConflictError):
            uow.post_many(batch)
        return uow.post(topup("after", "agt_c", 7_000_000))

    after = ledger.run(catch_and_carry_on)
    assert after.created
    assert ledger.transaction_by_key("stripe:cs_test_fresh_1") is None
    assert ledger.transaction_by_key("stripe:cs_test_fresh_2") is None
    assert (ledger.balance("agt_a"), ledger.balance("agt_b"), ledger.balance("agt_c")) == (1_000_000, 0, 7_000_000)


def test_a_batch_repeating_a_key_with_different_content_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidEntryError, match="twice in the batch"):
        ledger.post_many([topup(1, "agt_a", 1_000_000), topup(1, "agt_a", 2_000_000)])
    assert count_transactions(ledger) == 0


# --- Stripe entries ---


def test_card_money_moves_once_each_way(ledger: Ledger) -> None:
    customer = "agt_card"
    topped = ledger.post(card_topup_entry("cs_live_a1", customer, 25_000_000, {"amount_total": 2500}))
    refund = ledger.post(card_refund_entry("re_1", customer, 5_000_000, {"refund": "re_1"}))
    assert ledger.balance(customer) == 20_000_000  # 25 - 5
    assert ledger.post(card_refund_entry("re_1", customer, 5_000_000, {"seen": "again"})).created is False
    undo = card_refund_undo_entry("re_1", customer, 5_000_000, {}, refund_transaction_id=refund.transaction_id)
    undone = ledger.post(undo)
    assert ledger.post(undo) == PostResult(undone.transaction_id, False)
    assert ledger.balance(customer) == 25_000_000  # the failed refund re-credited once
    assert ledger.transaction(refund.transaction_id).reversed_by == undone.transaction_id
    lost = ledger.post(card_dispute_lost_entry("du_1", customer, 25_000_000, {}))
    assert ledger.balance(customer) == 0
    won = card_dispute_won_entry("du_1", customer, 25_000_000, {}, dispute_transaction_id=lost.transaction_id)
    ledger.post(won)
    ledger.post(won)
    assert ledger.balance(customer) == 25_000_000
    # Stripe clearing saw +25 (top-up) -5 (refund) +5 (undo) -25 (dispute) +25 (won) = +25.
    assert ledger.balance("stripe:clearing") == 25_000_000
    assert ledger.transaction(topped.transaction_id).kind == "card_topup"
    assert ledger.verify() == []


def test_a_refund_already_reversed_cannot_be_undone_under_another_key(ledger: Ledger) -> None:
    refund = ledger.post(card_refund_entry("re_9", "agt_x", 1_000_000, {}))
    reversal = ledger.reverse(refund.transaction_id, reason="operator undid it", actor="ops")
    undo = card_refund_undo_entry("re_9", "agt_x", 1_000_000, {}, refund_transaction_id=refund.transaction_id)
    with pytest.raises(AlreadyReversedError) as caught:
        ledger.post(undo)
    assert (caught.value.transaction_id, caught.value.reversal_id) == (refund.transaction_id, reversal.transaction_id)
    assert ledger.balance("agt_x") == 0  # -1 by the refund, +1 by the reversal, nothing more


# --- reversals and negative balances ---


def test_a_reversal_is_linked_posted_once_and_may_take_a_balance_below_zero(ledger: Ledger) -> None:
    topped = ledger.post(topup(1, "agt_neg", 10_000_000))
    spent = ledger.post(adjustment_entry("usage-1", "agt_neg", "USD", -8_000_000, reason="usage", actor="t", at=AT))
    assert ledger.balance("agt_neg") == 2_000_000  # 10 - 8
    reversal = ledger.reverse(topped.transaction_id, reason="chargeback", actor="ops")
    assert ledger.reverse(topped.transaction_id, reason="again", actor="ops") == PostResult(
        reversal.transaction_id, False
    )
    assert ledger.balance("agt_neg") == -8_000_000  # 2 - 10: below zero, not floored
    stored = ledger.transaction(reversal.transaction_id)
    assert (stored.kind, stored.key, stored.reverses) == (
        "reversal",
        f"reverse:{topped.transaction_id}",
        topped.transaction_id,
    )
    assert stored.evidence["reason"] == "chargeback"
    assert stored.postings == (Posting("agt_neg", "USD", 10_000_000), Posting("stripe:clearing", "USD", -10_000_000))
    assert ledger.transaction(topped.transaction_id).reversed_by == reversal.transaction_id
    [problem] = ledger.verify()
    assert (problem.code, problem.severity) == ("negative_balance", "flag")
    assert "agt_neg" in problem.message and "-8.000000 USD" in problem.message
    assert spent.created


def test_reversing_an_unknown_transaction_is_not_found(ledger: Ledger) -> None:
    with pytest.raises(NotFoundError):
        ledger.reverse(424242, reason="x", actor="ops")


# --- adjustments ---


def test_adjustments_are_audited_and_idempotent_on_their_key(ledger: Ledger) -> None:
    draft = adjustment_entry("goodwill-7", "agt_a1b2c3d4", "USD", 1_500_000, reason="goodwill", actor="alice", at=AT)
    first = ledger.post(draft)
    assert ledger.balance("agt_a1b2c3d4") == 1_500_000
    assert ledger.balance("equity:adjustments") == -1_500_000  # the other side, credit-normal
    stored = ledger.transaction(first.transaction_id)
    assert stored.key == "adjust:goodwill-7"
    assert stored.evidence["reason"] == "goodwill"
    assert stored.evidence["actor"] == "alice"
    assert stored.evidence["at"] == "2026-12-01T12:00:00+00:00"
    later = adjustment_entry("goodwill-7", "agt_a1b2c3d4", "USD", 1_500_000, reason="retry", actor="bob", at=AT)
    assert ledger.post(later) == PostResult(first.transaction_id, False)
    other = adjustment_entry("goodwill-7", "agt_a1b2c3d4", "USD", 2_000_000, reason="goodwill", actor="alice", at=AT)
    with pytest.raises(IdempotencyConflictError):
        ledger.post(other)
    assert ledger.balance("agt_a1b2c3d4") == 1_500_000
    # A token account is adjusted in its own currency: 0.5 SOL found on chain.
    ledger.post(adjustment_entry("sol-fix", "treasury:SOL", "SOL", 500_000_000, reason="chain", actor="a", at=AT))
    assert ledger.balance("treasury:SOL", "SOL") == 500_000_000


# --- claims, suspense, linked wallets ---


def test_a_claim_alone_never_credits(ledger: Ledger) -> None:
    claim = ledger.claim(REAL_SIGNATURE, "agt_claimer")
    assert ledger.claim(REAL_SIGNATURE, "agt_claimer") == claim  # idempotent, the first time is kept
    ledger.claim(REAL_SIGNATURE, "agt_rival")
    assert [c.customer for c in ledger.claims_for(REAL_SIGNATURE)] == ["agt_claimer", "agt_rival"]
    assert ledger.balance("agt_claimer") == 0
    assert ledger.balances() == []
    assert count_transactions(ledger) == 0


def test_a_suspense_hold_is_assigned_by_an_operator_exactly_once(ledger: Ledger) -> None:
    sender = address("stranger")
    hold = usdc_deposit("held-1", None, 12_345_678, sender=sender)  # 12.345678 USDC -> 12.345678 USD
    posted = ledger.post(hold)
    ledger.claim(signature("held-1"), "agt_claimer")
    assert ledger.balance("suspense") == 12_345_678
    assert ledger.balance("treasury:USDC", "USDC") == 12_345_678
    [waiting] = ledger.suspense_holds()
    assert (waiting.deposit_key, waiting.transaction_id, waiting.sender) == (hold.key, posted.transaction_id, sender)
    assert (waiting.signature, waiting.credits_micros) == (signature("held-1"), 12_345_678)
    assert [c.customer for c in waiting.claims] == ["agt_claimer"]
    assert ledger.balance("agt_claimer") == 0  # the claim did not credit

    assigned = ledger.assign_suspense(hold.key, "agt_claimer", actor="ops", reason="matched the invoice")
    assert assigned.created
    assert (ledger.balance("agt_claimer"), ledger.balance("suspense")) == (12_345_678, 0)
    assert ledger.assign_suspense(hold.key, "agt_claimer", actor="ops") == PostResult(assigned.transaction_id, False)
    with pytest.raises(AlreadyAssignedError) as caught:
        ledger.assign_suspense(hold.key, "agt_someone_else", actor="ops")
    assert caught.value.customer == "agt_claimer"
    assert ledger.suspense_holds() == []
    [done] = ledger.suspense_holds(include_assigned=True)
    assert (done.assigned_to, done.assignment_transaction_id) == ("agt_claimer", assigned.transaction_id)
    assert ledger.transaction(assigned.transaction_id).key == f"assign:{hold.key}"
    assert ledger.verify() == []


def test_assigning_what_is_not_held_is_not_found(ledger: Ledger) -> None:
    credited = usdc_deposit("direct", "agt_a", 1_000_000)
    ledger.post(credited)
    with pytest.raises(NotFoundError):
        ledger.assign_suspense(credited.key, "agt_b", actor="ops")  # credited directly, not held
    with pytest.raises(NotFoundError):
        ledger.assign_suspense(deposit_key(signature("nothing"), TREASURY, "USDC"), "agt_b", actor="ops")


def test_a_reversed_hold_cannot_be_assigned(ledger: Ledger) -> None:
    hold = usdc_deposit("bad", None, 1_000_000, sender=address("s"))
    posted = ledger.post(hold)
    ledger.reverse(posted.transaction_id, reason="not a deposit", actor="ops")
    assert ledger.suspense_holds() == []
    with pytest.raises(AlreadyReversedError):
        ledger.assign_suspense(hold.key, "agt_a", actor="ops")


def test_linking_a_wallet_assigns_its_held_deposits_once(ledger: Ledger) -> None:
    wallet = address("customer-wallet")
    ledger.post_many(
        [
            usdc_deposit("w-1", None, 10_000_000, sender=wallet),
            usdc_deposit("w-2", None, 2_500_000, sender=wallet),
            usdc_deposit("x-1", None, 7_000_000, sender=address("someone-else")),
        ]
    )
    assert ledger.balance("suspense") == 19_500_000  # 10 + 2.5 + 7

    link = ledger.link_wallet(wallet, "agt_owner", actor="billing")
    assert (link.customer, link.previous_customer, link.changed) == ("agt_owner", None, True)
    assert sorted(key for key, _ in link.assigned) == sorted(
        [deposit_key(signature("w-1"), TREASURY, "USDC"), deposit_key(signature("w-2"), TREASURY, "USDC")]
    )
    assert all(result.created for _, result in link.assigned)
    assert ledger.balance("agt_owner") == 12_500_000  # 10 + 2.5
    assert ledger.balance("suspense") == 7_000_000  # the other sender's deposit stays
    assert ledger.customer_for_wallet(wallet) == "agt_owner"

    again = ledger.link_wallet(wallet, "agt_owner")
    assert (again.changed, again.assigned) == (False, ())
    assert ledger.balance("agt_owner") == 12_500_000


def test_a_wallet_belongs_to_one_customer_unless_moved_with_a_reason(ledger: Ledger) -> None:
    wallet = address("contested")
    ledger.link_wallet(wallet, "agt_first")
    with pytest.raises(WalletAlreadyLinkedError) as caught:
        ledger.link_wallet(wallet, "agt_second")
    assert (caught.value.address, caught.value.customer) == (wallet, "agt_first")
    with pytest.raises(InvalidInputError, match="reason"):
        ledger.link_wallet(wallet, "agt_second", move=True)
    assert ledger.customer_for_wallet(wallet) == "agt_first"
    moved = ledger.link_wallet(wallet, "agt_second", move=True, reason="ticket 42: proved ownership", actor="ops")
    assert (moved.previous_customer, moved.customer, moved.changed) == ("agt_first", "agt_second", True)
    assert ledger.customer_for_wallet(wallet) == "agt_second"
    events = ledger.read(
        lambda uow: uow.connection.execute(
            text("SELECT customer, previous_customer, reason, actor FROM ledger_wallet_link_events ORDER BY id")
        ).all()
    )
    assert [tuple(row) for row in events] == [
        ("agt_first", None, None, None),
        ("agt_second", "agt_first", "ticket 42: proved ownership", "ops"),
    ]


def test_a_hold_from_an_already_linked_sender_goes_to_the_customer_at_once(ledger: Ledger) -> None:
    wallet = address("linked-early")
    ledger.link_wallet(wallet, "agt_owner")
    # The pipeline missed the link (it attributed before the link committed) and held the deposit:
    # posting the hold assigns it in the same transaction.
    ledger.post(usdc_deposit("late", None, 3_000_000, sender=wallet))
    assert (ledger.balance("agt_owner"), ledger.balance("suspense")) == (3_000_000, 0)
    assert ledger.suspense_holds() == []


def test_reading_an_account_that_cannot_hold_the_currency_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidAccountError):
        ledger.balance("agt_a1b2c3d4", "SOL")
    with pytest.raises(InvalidAccountError):
        ledger.balance("treasury:OSR", "OSR")  # OSR holdings are osr:to-burn and osr:retained
    with pytest.raises(InvalidAccountError):
        ledger.balance("no such account!")
    assert ledger.balance("agt_never_seen") == 0


# --- units of work ---


def test_other_tables_commit_and_roll_back_with_the_postings(ledger: Ledger) -> None:
    side = Table("test_side_rows", MetaData(), Column("id", Integer, primary_key=True), Column("note", String(40)))
    side.create(ledger.engine)

    def record(note: str, *, fail: bool) -> Any:
        def fn(uow: UnitOfWork) -> PostResult:
            uow.connection.execute(side.insert().values(note=note))
            result = uow.post(topup(note, "agt_uow", 1_000_000))
            if fail:
                raise RuntimeError("the caller's own failure after posting")
            return result

        return fn

    with pytest.raises(RuntimeError):
        ledger.run(record("rolled-back", fail=True))
    assert ledger.run(record("kept", fail=False)).created
    notes = ledger.read(lambda uow: [row[0] for row in uow.connection.execute(select(side.c.note))])
    assert notes == ["kept"]
    assert ledger.balance("agt_uow") == 1_000_000
    assert ledger.transaction_by_key("stripe:cs_test_rolled_back") is None


def test_run_retries_transient_failures_as_whole_transactions_and_stops(ledger_url: str) -> None:
    with Ledger.open(ledger_url, max_attempts=3) as ledger:
        attempts: list[int] = []

        def flaky(uow: UnitOfWork) -> PostResult:
            attempts.append(1)
            result = uow.post(topup("flaky", "agt_retry", 2_000_000))
            if len(attempts) == 1:
                raise SerializationConflictError("lost a race")  # after writing: must be rolled back
            return result

        result = ledger.run(flaky)
        assert (len(attempts), result.created) == (2, True)
        assert ledger.balance("agt_retry") == 2_000_000

        def always_down(_uow: UnitOfWork) -> None:
            attempts.append(1)
            raise DatabaseUnavailableError("down")

        attempts.clear()
        with pytest.raises(DatabaseUnavailableError):
            ledger.run(always_down)
        assert len(attempts) == 3  # bounded

        def broken(_uow: UnitOfWork) -> None:
            attempts.append(1)
            raise ValueError("a bug")

        attempts.clear()
        with pytest.raises(ValueError, match="a bug"):
            ledger.run(broken)
        assert len(attempts) == 1  # not transient: not retried


def test_a_read_only_unit_of_work_refuses_to_post(ledger: Ledger) -> None:
    with pytest.raises(InvalidInputError, match="read-only"):
        ledger.read(lambda uow: uow.post(topup(1, "agt_a", 1)))


def test_one_ledger_is_shared_by_threads(ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def worker(thread: int) -> None:
        try:
            for n in range(25):
                ledger.post(topup(f"t{thread}-{n}", "agt_threads", 1_000))
                ledger.post(topup(f"t{(thread + 1) % 4}-{n}", "agt_threads", 1_000))  # a neighbour's key too
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    # 4 threads × 25 keys each = 100 distinct keys of 1,000 micro-USD = 100,000.
    assert ledger.balance("agt_threads") == 100_000
    assert count_transactions(ledger) == 100


def test_sqlite_readers_keep_working_while_a_writer_holds_the_lock(sqlite_url: str) -> None:
    with Ledger.open(sqlite_url, busy_timeout_s=0.5, max_attempts=1) as ledger:
        ledger.post(topup(1, "agt_wal", 4_000_000))
        path = sqlite_url.removeprefix("sqlite:///")
        writer = sqlite3.connect(path, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")  # the daemon in the middle of a write
            writer.execute(
                "INSERT INTO ledger_accounts (name, kind, opened_at) VALUES ('agt_busy', 'customer', '2026-12-01 00:00:00')"
            )
            started = time.monotonic()
            assert ledger.balance("agt_wal") == 4_000_000
            assert ledger.verify() == []
            assert time.monotonic() - started < 0.5  # no waiting on the writer's lock
            with pytest.raises(SerializationConflictError):
                ledger.post(topup(2, "agt_wal", 1))  # a second writer waits out the busy timeout
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert ledger.post(topup(2, "agt_wal", 1)).created


def test_transactions_are_read_by_id_and_key(ledger: Ledger) -> None:
    posted = ledger.post(topup("read", "agt_read", 3_000_000, note="hello"))
    by_id = ledger.transaction(posted.transaction_id)
    assert ledger.transaction_by_key("stripe:cs_test_read") == by_id
    assert by_id.evidence == {"session": "cs_test_read", "note": "hello"}
    assert (by_id.reverses, by_id.reversed_by) == (None, None)
    assert ledger.transaction_by_key("stripe:cs_missing") is None
    with pytest.raises(NotFoundError):
        ledger.transaction(posted.transaction_id + 1000)


def test_a_malformed_draft_is_refused_with_a_ledger_error_before_anything_is_written(ledger: Ledger) -> None:
    decimal_amounts = Draft(
        "stripe:cs_decimal",
        "card_topup",
        (Posting("stripe:clearing", "USD", Decimal("1.5")), Posting("agt_a", "USD", Decimal("-1.5"))),  # type: ignore[arg-type]
        {},
    )
    with pytest.raises(InvalidEntryError, match="not an integer of base units"):
        ledger.post_many([topup("fine", "agt_a", 1_000_000), decimal_amounts])
    assert count_transactions(ledger) == 0
