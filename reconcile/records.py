"""What the Stripe source returns: plain immutable records, decoded once from Stripe's objects.

Amounts are integers of the currency's minor unit, as Stripe gives them (`reconcile.currency`
formats them); currencies are Stripe's lower-case ISO codes; times are aware UTC datetimes. The
matcher works on these only, so it never sees a `stripe` object or a network.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

# Checkout Session payment_status values (Stripe API reference).
PAID: Final = "paid"
UNPAID: Final = "unpaid"
NO_PAYMENT_REQUIRED: Final = "no_payment_required"

# Refund statuses; only a succeeded refund takes credits back, a failed or canceled one counts for nothing.
REFUND_SUCCEEDED: Final = "succeeded"
REFUND_UNDONE: Final = frozenset({"failed", "canceled"})

# Dispute statuses that end it.
DISPUTE_LOST: Final = "lost"
DISPUTE_WON: Final = "won"

# Balance transaction reporting categories of a dispute's money movements.
DISPUTE_WITHDRAWAL: Final = "dispute"
DISPUTE_REINSTATEMENT: Final = "dispute_reversal"


@dataclasses.dataclass(frozen=True, slots=True)
class BalanceTransaction:
    """Money that moved in the Stripe balance: `amount` gross, `fee`, `net` (in `currency`, the settlement one)."""

    id: str
    amount: int
    fee: int
    net: int
    currency: str
    reporting_category: str


@dataclasses.dataclass(frozen=True, slots=True)
class Refund:
    id: str
    amount: int
    currency: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    created: dt.datetime
    charge: str | None
    payment_intent: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    amount: int
    currency: str
    status: str  # warning_needs_response … needs_response, under_review, won, lost
    created: dt.datetime
    charge: str | None
    payment_intent: str | None
    balance_transactions: tuple[BalanceTransaction, ...] = ()

    @property
    def withdrawn(self) -> int:
        """What the dispute took out of the balance (positive), before any reinstatement."""
        return -sum(t.amount for t in self.balance_transactions if t.reporting_category == DISPUTE_WITHDRAWAL)

    @property
    def reinstated(self) -> int:
        """What came back when the dispute was won (positive)."""
        return sum(t.amount for t in self.balance_transactions if t.reporting_category == DISPUTE_REINSTATEMENT)


@dataclasses.dataclass(frozen=True, slots=True)
class Charge:
    id: str
    amount: int
    currency: str
    status: str
    amount_refunded: int
    disputed: bool
    balance_transaction: BalanceTransaction | None


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """A Checkout Session with what reconciliation needs of its PaymentIntent, charge, refunds and disputes.

    `amount_tax` is `total_details.amount_tax` (0 when absent). `customer_reference` is
    `client_reference_id`, `metadata_account_id` is `metadata.account_id`.
    """

    id: str
    created: dt.datetime
    mode: str
    status: str | None
    payment_status: str
    currency: str | None
    amount_total: int | None
    amount_tax: int
    customer_reference: str | None
    metadata_account_id: str | None
    payment_intent: str | None = None
    payment_intent_status: str | None = None
    charge: Charge | None = None
    refunds: tuple[Refund, ...] = ()
    disputes: tuple[Dispute, ...] = ()

    @property
    def customer(self) -> str | None:
        """The customer a top-up credits: client_reference_id, else metadata.account_id (DESIGN.md §6)."""
        return self.customer_reference or self.metadata_account_id or None
