"""Helpers of the Stripe reconciliation tests: records built by hand, the window, a source on the fake."""

from __future__ import annotations

import datetime as dt
from typing import Any

from reconcile.matcher import CardEntry, references
from reconcile.records import BalanceTransaction, Charge, Dispute, Refund, Session
from reconcile.stripe_source import StripeApiSource
from reconcile.testing import FakeStripe

SINCE = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
UNTIL = dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
NOW = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    """A moment inside the window, `hours` after its start."""
    return SINCE + dt.timedelta(hours=hours)


def session(
    session_id: str,
    amount_total: int,
    *,
    currency: str = "usd",
    tax: int = 0,
    customer: str | None = "agt_a1b2c3d4",
    metadata_account: str | None = None,
    payment_status: str = "paid",
    status: str = "complete",
    mode: str = "payment",
    created: dt.datetime | None = None,
    fee: int = 0,
    refunds: tuple[Refund, ...] = (),
    disputes: tuple[Dispute, ...] = (),
    intent_status: str | None = None,
) -> Session:
    paid = payment_status == "paid"
    charge = Charge(
        id=f"ch_{session_id}",
        amount=amount_total,
        currency=currency,
        status="succeeded" if paid else "pending",
        amount_refunded=0,
        disputed=bool(disputes),
        balance_transaction=BalanceTransaction(
            f"txn_{session_id}", amount_total, fee, amount_total - fee, currency, "charge"
        )
        if paid
        else None,
    )
    return Session(
        id=session_id,
        created=created or at(1),
        mode=mode,
        status=status,
        payment_status=payment_status,
        currency=currency,
        amount_total=amount_total,
        amount_tax=tax,
        customer_reference=customer,
        metadata_account_id=metadata_account,
        payment_intent=f"pi_{session_id}",
        payment_intent_status=intent_status or ("succeeded" if paid else "processing"),
        charge=charge,
        refunds=refunds,
        disputes=disputes,
    )


def refund(refund_id: str, amount: int, *, status: str = "succeeded", hours: float = 2) -> Refund:
    return Refund(refund_id, amount, "usd", status, at(hours), None, None)


def dispute(dispute_id: str, amount: int, *, status: str, withdrawn: bool = True, reinstated: bool = False) -> Dispute:
    transactions = []
    if withdrawn:
        transactions.append(BalanceTransaction(f"txn_w_{dispute_id}", -amount, 1500, -amount - 1500, "usd", "dispute"))
    if reinstated:
        transactions.append(
            BalanceTransaction(f"txn_r_{dispute_id}", amount, -1500, amount + 1500, "usd", "dispute_reversal")
        )
    return Dispute(dispute_id, amount, "usd", status, at(3), None, None, tuple(transactions))


def entry(
    transaction_id: int,
    key: str,
    kind: str,
    credit_micros: int,
    *,
    customer: str | None = "agt_a1b2c3d4",
    evidence: dict[str, Any] | None = None,
    created_at: dt.datetime | None = None,
    reverses: int | None = None,
    reversed_by: int | None = None,
) -> CardEntry:
    return CardEntry(
        transaction_id=transaction_id,
        key=key,
        kind=kind,
        customer=customer,
        credit_micros=credit_micros,
        created_at=created_at or at(2),
        references=references(key, evidence or {}),
        reverses=reverses,
        reversed_by=reversed_by,
    )


def source(fake: FakeStripe, **options: Any) -> StripeApiSource:
    """A source on the fake with fast rate-limit waits (the library's own backoff stays as it is)."""
    defaults: dict[str, Any] = {"rate_limit_wait_s": 0.01, "rate_limit_max_wait_s": 0.05}
    return StripeApiSource(api_key=fake.api_key, api_base=fake.url, **{**defaults, **options})
