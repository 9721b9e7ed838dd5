"""Stripe amounts: minor units per currency, exact major-unit text, USD cents to ledger micros. Pure.

Stripe gives every amount as an integer of the currency's minor unit. Most currencies have two
decimal places; Stripe's zero-decimal currencies have none (¥800 is `800`, shown "800", not "8.00")
and its three-decimal currencies have three. The lists are Stripe's own
(https://docs.stripe.com/currencies#zero-decimal and #three-decimal). ISK, HUF and TWD are special
cases on Stripe's page but stay two-decimal in the API (an ISK amount of 100 is 1 króna), so they are
not in either list.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from ledger_client.money import format_units

ZERO_DECIMAL: Final = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL: Final = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

USD: Final = "usd"
MICROS_PER_CENT: Final = 10_000  # the ledger keeps USD in micro-USD (6 places), Stripe in cents (2)


def minor_unit_places(currency: str) -> int:
    """Decimal places of `currency`'s minor unit as Stripe counts them (jpy 0, usd 2, kwd 3)."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def major_units(amount_minor: int, currency: str) -> Decimal:
    """`amount_minor` in the currency's major unit, exactly: (2500, usd) -> 25.00, (800, jpy) -> 800."""
    return Decimal(amount_minor).scaleb(-minor_unit_places(currency))


def format_minor(amount_minor: int, currency: str) -> str:
    """Plain fixed-point text of a Stripe amount in major units: "25.00", "800", "1.500"; never an exponent."""
    return format_units(amount_minor, minor_unit_places(currency))  # integer arithmetic, exact


def cents_to_micros(amount_cents: int) -> int:
    """A USD amount in cents as ledger micro-USD."""
    return amount_cents * MICROS_PER_CENT


def format_micros(amount_micros: int) -> str:
    """Ledger micro-USD in dollars: two places when whole cents ("25.00"), else all six ("0.000001")."""
    if amount_micros % MICROS_PER_CENT == 0:
        return format_minor(amount_micros // MICROS_PER_CENT, USD)
    return format_units(amount_micros, 6)
