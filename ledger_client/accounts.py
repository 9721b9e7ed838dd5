"""The chart of accounts (docs/LEDGER.md draws it). Pure: names, kinds, normal sides, allowed currencies.

Posting amounts are signed integers, debit positive and credit negative; every transaction sums to
zero per currency. An account's *balance* is shown on its normal side, so the usual balances are
positive: a customer's credits (a liability, credit-normal) and the treasury's holdings (an asset,
debit-normal) both read as positive numbers.

| account                        | kind       | normal | currencies | what it holds                          |
|--------------------------------|------------|--------|------------|----------------------------------------|
| `<customer id>` (agt_a1b2c3d4) | customer   | credit | USD        | the customer's prepaid credits         |
| `suspense`                     | suspense   | credit | USD        | credits of priced deposits not yet     |
|                                |            |        |            | attributed (assigned out exactly once) |
| `treasury:<ASSET>`             | holding    | debit  | ASSET      | tokens the treasury holds (not OSR)    |
| `osr:to-burn`                  | holding    | debit  | OSR        | OSR received and owed to burn          |
| `osr:retained`                 | holding    | debit  | OSR        | OSR received and kept                  |
| `osr:burned`                   | burned     | debit  | OSR        | OSR burned (verified on chain)         |
| `conversion:<ASSET>`           | conversion | credit | ASSET, USD | trading account: tokens in, credits out|
| `osr:received`                 | conversion | credit | OSR, USD   | OSR's trading account (= OSR received) |
| `expense:bonus`                | expense    | debit  | USD        | bonus credits given (OSR deposits)     |
| `stripe:clearing`              | clearing   | debit  | USD        | card money collected through Stripe    |
| `equity:adjustments`           | equity     | credit | any        | the other side of manual adjustments   |

A conversion account holds two currencies: the token (credited with what came in) and USD (debited
with the credits issued for it), so each currency of a deposit balances on its own (the
currency-trading-account method); its USD balance shows as negative on the credit side.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Final

from ledger_client.errors import InvalidAccountError
from ledger_client.money import USD

CUSTOMER: Final = "customer"
SUSPENSE_KIND: Final = "suspense"
HOLDING: Final = "holding"
BURNED: Final = "burned"
CONVERSION: Final = "conversion"
EXPENSE: Final = "expense"
CLEARING: Final = "clearing"
EQUITY: Final = "equity"

DEBIT: Final = 1
CREDIT: Final = -1

OSR: Final = "OSR"
SUSPENSE: Final = "suspense"
OSR_RECEIVED: Final = "osr:received"
OSR_TO_BURN: Final = "osr:to-burn"
OSR_RETAINED: Final = "osr:retained"
OSR_BURNED: Final = "osr:burned"
BONUS_EXPENSE: Final = "expense:bonus"
STRIPE_CLEARING: Final = "stripe:clearing"
ADJUSTMENTS: Final = "equity:adjustments"

CUSTOMER_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
CURRENCY_PATTERN: Final = re.compile(r"[A-Z0-9]{1,16}")
_NORMAL: Final = {
    CUSTOMER: CREDIT,
    SUSPENSE_KIND: CREDIT,
    HOLDING: DEBIT,
    BURNED: DEBIT,
    CONVERSION: CREDIT,
    EXPENSE: DEBIT,
    CLEARING: DEBIT,
    EQUITY: CREDIT,
}
_FIXED: Final[dict[str, tuple[str, frozenset[str] | None]]] = {
    SUSPENSE: (SUSPENSE_KIND, frozenset({USD})),
    OSR_RECEIVED: (CONVERSION, frozenset({OSR, USD})),
    OSR_TO_BURN: (HOLDING, frozenset({OSR})),
    OSR_RETAINED: (HOLDING, frozenset({OSR})),
    OSR_BURNED: (BURNED, frozenset({OSR})),
    BONUS_EXPENSE: (EXPENSE, frozenset({USD})),
    STRIPE_CLEARING: (CLEARING, frozenset({USD})),
    ADJUSTMENTS: (EQUITY, None),  # None: any currency
}


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    """A parsed account name: its kind and the currencies it may hold (None: any)."""

    name: str
    kind: str
    currencies: frozenset[str] | None

    @property
    def normal_side(self) -> int:
        """DEBIT (+1) or CREDIT (-1): the balance shown is the sum of postings times this."""
        return _NORMAL[self.kind]

    @property
    def is_customer(self) -> bool:
        return self.kind == CUSTOMER

    def holds(self, currency: str) -> bool:
        return self.currencies is None or currency in self.currencies

    @property
    def sole_currency(self) -> str | None:
        """The one currency the account holds, when it holds exactly one."""
        if self.currencies is not None and len(self.currencies) == 1:
            return next(iter(self.currencies))
        return None


def check_currency(currency: str) -> str:
    """A currency symbol: "USD" for credits, else a token symbol such as "SOL"."""
    if not isinstance(currency, str) or not CURRENCY_PATTERN.fullmatch(currency):
        raise InvalidAccountError(str(currency), "a currency is an upper-case symbol such as USD or SOL")
    return currency


def _token(symbol: str, name: str) -> str:
    if not CURRENCY_PATTERN.fullmatch(symbol) or symbol == USD:
        raise InvalidAccountError(name, f"{symbol!r} is not a token symbol")
    return symbol


@functools.lru_cache(maxsize=65_536)  # pure, and the same few names come back on every posting
def parse_account(name: str) -> Account:
    """The account called `name`, or InvalidAccountError. Customer ids open on first use."""
    if not isinstance(name, str):
        raise InvalidAccountError(str(name), "an account name is text")
    fixed = _FIXED.get(name)
    if fixed is not None:
        return Account(name, fixed[0], fixed[1])
    prefix, colon, rest = name.partition(":")
    if colon:
        if prefix == "treasury":
            symbol = _token(rest, name)
            if symbol == OSR:
                raise InvalidAccountError(name, f"OSR holdings are {OSR_TO_BURN} and {OSR_RETAINED}")
            return Account(name, HOLDING, frozenset({symbol}))
        if prefix == "conversion":
            symbol = _token(rest, name)
            if symbol == OSR:
                raise InvalidAccountError(name, f"OSR's conversion account is {OSR_RECEIVED}")
            return Account(name, CONVERSION, frozenset({symbol, USD}))
        raise InvalidAccountError(name, "not a known system account (see docs/LEDGER.md)")
    if CUSTOMER_ID_PATTERN.fullmatch(name):
        return Account(name, CUSTOMER, frozenset({USD}))
    raise InvalidAccountError(name, "a customer id is letters, digits, '_', '.' or '-' (at most 128)")


def customer_account(name: str) -> str:
    """`name` if it is a customer id (not a system account), else InvalidAccountError."""
    account = parse_account(name)
    if not account.is_customer:
        raise InvalidAccountError(name, "not a customer account")
    return name


def holding_account(asset: str) -> str:
    """Where the treasury's holdings of a (non-OSR) token are kept."""
    return f"treasury:{_token(asset, f'treasury:{asset}')}"


def conversion_account(asset: str) -> str:
    """The trading account that converts `asset` into credits (osr:received for OSR)."""
    return OSR_RECEIVED if asset == OSR else f"conversion:{_token(asset, f'conversion:{asset}')}"


def holding_accounts(asset: str) -> tuple[str, ...]:
    """The accounts whose balances sum to what the treasury holds of `asset` on chain."""
    return (OSR_TO_BURN, OSR_RETAINED) if asset == OSR else (holding_account(asset),)
