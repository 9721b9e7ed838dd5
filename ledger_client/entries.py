"""Drafts of ledger transactions and the pure builders that make them. No I/O, no clock.

The pipeline and the Stripe job call these builders, so the chart of accounts stays inside
ledger_client; each builder checks its arithmetic and returns a balanced `Draft`. Idempotency keys
are derived here too (DESIGN.md §5):

    sol:<signature>:<receiving account>:<asset>   crypto deposit (to a customer, or held in suspense)
    assign:<deposit key>                          a suspense hold assigned to a customer, once
    stripe:<checkout session id>                  card top-up
    stripe-refund:<refund id>                     refund debit           stripe-refund-undo:<refund id>
    stripe-dispute:<dispute id>                   lost dispute debit     stripe-dispute-won:<dispute id>
    adjust:<operator key>                         manual adjustment
    reverse:<transaction id>                      reversal of a transaction
    osr-burn:<signature>                          OSR burned on chain

A draft's *content* is its kind, its postings (order-insensitive) and the transaction it reverses;
evidence is not content. `content_hash` is what the database compares when a key comes back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

import orjson
from solders.pubkey import Pubkey
from solders.signature import Signature

from ledger_client.accounts import (
    ADJUSTMENTS,
    BONUS_EXPENSE,
    OSR,
    OSR_BURNED,
    OSR_RETAINED,
    OSR_TO_BURN,
    STRIPE_CLEARING,
    SUSPENSE,
    check_currency,
    conversion_account,
    customer_account,
    holding_account,
    parse_account,
)
from ledger_client.errors import InvalidAccountError, InvalidEntryError, UnbalancedError
from ledger_client.money import USD
from ledger_client.records import Posting, Transaction

CRYPTO_DEPOSIT: Final = "crypto_deposit"
SUSPENSE_HOLD: Final = "suspense_hold"
SUSPENSE_ASSIGNMENT: Final = "suspense_assignment"
CARD_TOPUP: Final = "card_topup"
CARD_REFUND: Final = "card_refund"
CARD_REFUND_UNDO: Final = "card_refund_undo"
CARD_DISPUTE_LOST: Final = "card_dispute_lost"
CARD_DISPUTE_WON: Final = "card_dispute_won"
ADJUSTMENT: Final = "adjustment"
REVERSAL: Final = "reversal"
OSR_BURN: Final = "osr_burn"

MAX_KEY_LENGTH: Final = 512
# Amounts are stored as 64-bit integers; a bigger one would silently become a float in SQLite.
MAX_AMOUNT: Final = 2**63 - 1

_KEY: Final = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")  # printable ASCII, no spaces
_KIND: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_STRIPE_ID: Final = re.compile(r"[A-Za-z0-9_]{1,255}")
_DEPOSIT_KEY: Final = re.compile(r"sol:([^:]+):([^:]+):([^:]+)")


@dataclasses.dataclass(frozen=True, slots=True)
class HoldInfo:
    """What a suspense hold records beside its postings, so it can be assigned later."""

    signature: str
    sender: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Draft:
    """A transaction to post. `hold` is set for deposits held in suspense."""

    key: str
    kind: str
    postings: tuple[Posting, ...]
    evidence: Mapping[str, Any]
    reverses: int | None = None
    hold: HoldInfo | None = None

    @property
    def content_hash(self) -> str:
        return content_hash(self.kind, self.postings, self.reverses)


def content_hash(kind: str, postings: Iterable[Posting], reverses: int | None) -> str:
    """sha256 of the content: kind, reverses and the postings sorted (so their order does not matter)."""
    legs = sorted((p.account, p.currency, p.amount) for p in postings)
    return hashlib.sha256(orjson.dumps([kind, reverses, legs])).hexdigest()


def check_draft(draft: Draft) -> str:
    """The draft's evidence as JSON text, or InvalidEntryError (UnbalancedError, InvalidAccountError)
    when the draft cannot be posted."""
    if not isinstance(draft.key, str) or not _KEY.fullmatch(draft.key):
        raise InvalidEntryError(
            f"idempotency key {draft.key!r}: 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces"
        )
    if not isinstance(draft.kind, str) or not _KIND.fullmatch(draft.kind):
        raise InvalidEntryError(f"{draft.key}: kind {draft.kind!r} is not lower_snake_case")
    if draft.reverses is not None and (type(draft.reverses) is not int or draft.reverses <= 0):
        raise InvalidEntryError(f"{draft.key}: reverses must be a transaction id")
    if not isinstance(draft.evidence, Mapping):
        raise InvalidEntryError(f"{draft.key}: evidence must be a JSON object")
    if len(draft.postings) < 2:
        raise InvalidEntryError(f"{draft.key}: a transaction has at least two postings")
    sums: dict[str, int] = {}
    seen: set[tuple[str, str]] = set()
    for posting in draft.postings:
        account, currency, amount = posting
        if type(amount) is not int:  # bool is an int subclass; Decimal and float are not money here
            raise InvalidEntryError(f"{draft.key}: amount {amount!r} is not an integer of base units")
        if amount == 0 or abs(amount) > MAX_AMOUNT:
            raise InvalidEntryError(f"{draft.key}: amount {amount} must be non-zero and fit in 64 bits")
        check_currency(currency)
        if not parse_account(account).holds(currency):
            raise InvalidAccountError(account, f"cannot hold {currency}")
        if (account, currency) in seen:
            raise InvalidEntryError(f"{draft.key}: posts to {account} in {currency} twice (net them)")
        seen.add((account, currency))
        sums[currency] = sums.get(currency, 0) + amount
    for currency, total in sorted(sums.items()):
        if total != 0:
            raise UnbalancedError(draft.key, currency, total)
    if draft.hold is not None:
        parse_deposit_key(draft.key)
        check_signature(draft.hold.signature)
        if draft.hold.sender is not None:
            check_address(draft.hold.sender)
    return encode_json(draft.evidence, what=f"{draft.key}: evidence")


# --- JSON of evidence: exact decimals, never floats on the way back ---


def _encode_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a finite number")
        return orjson.Fragment(str(value).encode())  # an exact JSON number, not a float
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def encode_json(value: Any, *, what: str = "value") -> str:
    """JSON text of `value`; Decimal becomes an exact JSON number. InvalidEntryError when it cannot."""
    try:
        return orjson.dumps(value, default=_encode_default).decode()
    except orjson.JSONEncodeError as exc:
        raise InvalidEntryError(f"{what} is not JSON-serialisable: {exc}") from exc


def decode_json(text: str | bytes) -> Any:
    """JSON text back to Python; numbers with a fraction become Decimal, never float."""
    return json.loads(text, parse_float=Decimal)


# --- keys ---


def check_signature(signature: str) -> str:
    try:
        return str(Signature.from_string(signature))
    except (ValueError, TypeError):
        raise InvalidEntryError(f"not a transaction signature: {signature!r}") from None


def check_address(address: str) -> str:
    try:
        return str(Pubkey.from_string(address))
    except (ValueError, TypeError):
        raise InvalidEntryError(f"not a Solana address: {address!r}") from None


def deposit_key(signature: str, receiving_account: str, asset: str) -> str:
    """`sol:<signature>:<receiving account>:<asset>`: one deposit = one inflow of one asset into one account."""
    check_signature(signature)
    check_address(receiving_account)
    if not asset or ":" in asset or not asset.isascii() or not asset.isprintable() or " " in asset:
        raise InvalidEntryError(f"not an asset name: {asset!r}")
    return f"sol:{signature}:{receiving_account}:{asset}"


def parse_deposit_key(key: str) -> tuple[str, str, str]:
    """(signature, receiving account, asset) of a deposit key, or InvalidEntryError."""
    match = _DEPOSIT_KEY.fullmatch(key)
    if match is None:
        raise InvalidEntryError(f"not a deposit key (sol:<signature>:<account>:<asset>): {key!r}")
    signature, account, asset = match.groups()
    check_signature(signature)
    check_address(account)
    return signature, account, asset


def assignment_key(deposit_key_: str) -> str:
    return f"assign:{deposit_key_}"


def _stripe_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _STRIPE_ID.fullmatch(value):
        raise InvalidEntryError(f"not a Stripe {what} id: {value!r}")
    return value


def card_topup_key(session_id: str) -> str:
    return f"stripe:{_stripe_id(session_id, 'checkout session')}"


def card_refund_key(refund_id: str) -> str:
    return f"stripe-refund:{_stripe_id(refund_id, 'refund')}"


def card_refund_undo_key(refund_id: str) -> str:
    return f"stripe-refund-undo:{_stripe_id(refund_id, 'refund')}"


def card_dispute_key(dispute_id: str) -> str:
    return f"stripe-dispute:{_stripe_id(dispute_id, 'dispute')}"


def card_dispute_won_key(dispute_id: str) -> str:
    return f"stripe-dispute-won:{_stripe_id(dispute_id, 'dispute')}"


def adjustment_key(operator_key: str) -> str:
    return f"adjust:{operator_key}"


def reversal_key(transaction_id: int) -> str:
    return f"reverse:{transaction_id}"


def osr_burn_key(signature: str) -> str:
    return f"osr-burn:{check_signature(signature)}"


# --- builders ---


def _positive(value: int, what: str) -> int:
    if type(value) is not int or value <= 0:
        raise InvalidEntryError(f"{what} must be a positive integer, got {value!r}")
    return value


def _non_negative(value: int, what: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidEntryError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _deposit_postings(
    *,
    target: str,
    asset: str,
    amount_raw: int,
    usd_value_micros: int,
    bonus_micros: int,
    credits_micros: int,
    osr_burn_raw: int,
    osr_retained_raw: int,
) -> tuple[Posting, ...]:
    check_currency(asset)
    if asset == USD:
        raise InvalidEntryError("USD is the credit currency, not a deposited asset")
    _positive(amount_raw, "amount_raw")
    _non_negative(usd_value_micros, "usd_value_micros")
    _non_negative(bonus_micros, "bonus_micros")
    _positive(credits_micros, "credits_micros")
    _non_negative(osr_burn_raw, "osr_burn_raw")
    _non_negative(osr_retained_raw, "osr_retained_raw")
    if usd_value_micros + bonus_micros != credits_micros:
        raise InvalidEntryError(
            f"credits {credits_micros} != USD value {usd_value_micros} + bonus {bonus_micros} (micro-USD)"
        )
    conversion = conversion_account(asset)
    legs: list[Posting] = []
    if asset == OSR:
        if osr_burn_raw + osr_retained_raw != amount_raw:
            raise InvalidEntryError(
                f"OSR burn {osr_burn_raw} + retained {osr_retained_raw} != amount received {amount_raw}"
            )
        legs += [Posting(OSR_TO_BURN, OSR, osr_burn_raw), Posting(OSR_RETAINED, OSR, osr_retained_raw)]
    else:
        if osr_burn_raw or osr_retained_raw:
            raise InvalidEntryError(f"burn and retained amounts are for OSR only, not {asset}")
        legs.append(Posting(holding_account(asset), asset, amount_raw))
    legs.append(Posting(conversion, asset, -amount_raw))
    legs += [
        Posting(conversion, USD, usd_value_micros),
        Posting(BONUS_EXPENSE, USD, bonus_micros),
        Posting(target, USD, -credits_micros),
    ]
    return tuple(leg for leg in legs if leg.amount != 0)


def crypto_deposit_entry(  # noqa: PLR0917 - the positional signature other packages were promised
    key: str,
    customer: str | None,
    asset: str,
    amount_raw: int,
    usd_value_micros: int,
    bonus_micros: int,
    credits_micros: int,
    osr_burn_raw: int,
    osr_retained_raw: int,
    evidence: Mapping[str, Any],
    *,
    sender: str | None = None,
) -> Draft:
    """A priced crypto deposit credited to `customer`, or (customer None) held in suspense.

    Token side: the asset into the treasury's holdings (OSR: split into to-burn and retained), out of
    the asset's conversion account. USD side: the USD value into the conversion account and the
    bonus into expense, credits_micros = usd_value_micros + bonus_micros to the customer.
    """
    if customer is None:
        return suspense_hold_entry(
            key,
            sender,
            asset,
            amount_raw,
            usd_value_micros,
            bonus_micros,
            credits_micros,
            osr_burn_raw,
            osr_retained_raw,
            evidence,
        )
    parse_deposit_key(key)
    postings = _deposit_postings(
        target=customer_account(customer),
        asset=asset,
        amount_raw=amount_raw,
        usd_value_micros=usd_value_micros,
        bonus_micros=bonus_micros,
        credits_micros=credits_micros,
        osr_burn_raw=osr_burn_raw,
        osr_retained_raw=osr_retained_raw,
    )
    return Draft(key, CRYPTO_DEPOSIT, postings, evidence)


def suspense_hold_entry(  # noqa: PLR0917 - mirrors crypto_deposit_entry
    key: str,
    sender: str | None,
    asset: str,
    amount_raw: int,
    usd_value_micros: int,
    bonus_micros: int,
    credits_micros: int,
    osr_burn_raw: int,
    osr_retained_raw: int,
    evidence: Mapping[str, Any],
) -> Draft:
    """A priced deposit nobody was proven to own: its credits go to `suspense`, with the sender recorded.

    Posting it records a hold; `assign_suspense` or a wallet link later moves the credits out, once.
    """
    signature, _account, _asset = parse_deposit_key(key)
    if sender is not None:
        check_address(sender)
    postings = _deposit_postings(
        target=SUSPENSE,
        asset=asset,
        amount_raw=amount_raw,
        usd_value_micros=usd_value_micros,
        bonus_micros=bonus_micros,
        credits_micros=credits_micros,
        osr_burn_raw=osr_burn_raw,
        osr_retained_raw=osr_retained_raw,
    )
    return Draft(key, SUSPENSE_HOLD, postings, evidence, hold=HoldInfo(signature, sender))


def suspense_assignment_entry(
    deposit_key_: str, customer: str, credits_micros: int, evidence: Mapping[str, Any]
) -> Draft:
    """The credits of a suspense hold moved to `customer` (key `assign:<deposit key>`: once per deposit)."""
    parse_deposit_key(deposit_key_)
    _positive(credits_micros, "credits_micros")
    postings = (Posting(SUSPENSE, USD, credits_micros), Posting(customer_account(customer), USD, -credits_micros))
    return Draft(assignment_key(deposit_key_), SUSPENSE_ASSIGNMENT, postings, evidence)


def _card(
    key: str,
    kind: str,
    customer: str,
    amount_micros: int,
    evidence: Mapping[str, Any],
    *,
    credit: bool,
    reverses: int | None = None,
) -> Draft:
    """Card money: a credit moves the amount from Stripe clearing to the customer; a debit the other way."""
    _positive(amount_micros, "amount_micros")
    sign = 1 if credit else -1
    postings = (
        Posting(STRIPE_CLEARING, USD, sign * amount_micros),
        Posting(customer_account(customer), USD, -sign * amount_micros),
    )
    return Draft(key, kind, postings, evidence, reverses=reverses)


def card_topup_entry(session_id: str, customer: str, amount_micros: int, evidence: Mapping[str, Any]) -> Draft:
    """A paid Stripe Checkout Session: amount_total less tax, in micro-USD, credited to the customer."""
    return _card(card_topup_key(session_id), CARD_TOPUP, customer, amount_micros, evidence, credit=True)


def card_refund_entry(refund_id: str, customer: str, amount_micros: int, evidence: Mapping[str, Any]) -> Draft:
    """A succeeded refund, debited from the customer by the refund's own amount."""
    return _card(card_refund_key(refund_id), CARD_REFUND, customer, amount_micros, evidence, credit=False)


def card_refund_undo_entry(
    refund_id: str,
    customer: str,
    amount_micros: int,
    evidence: Mapping[str, Any],
    *,
    refund_transaction_id: int,
) -> Draft:
    """A refund that failed or was canceled after it was debited: re-credited once, reversing the debit."""
    return _card(
        card_refund_undo_key(refund_id),
        CARD_REFUND_UNDO,
        customer,
        amount_micros,
        evidence,
        credit=True,
        reverses=refund_transaction_id,
    )


def card_dispute_lost_entry(dispute_id: str, customer: str, amount_micros: int, evidence: Mapping[str, Any]) -> Draft:
    """A lost dispute, debited from the customer once."""
    return _card(card_dispute_key(dispute_id), CARD_DISPUTE_LOST, customer, amount_micros, evidence, credit=False)


def card_dispute_won_entry(
    dispute_id: str,
    customer: str,
    amount_micros: int,
    evidence: Mapping[str, Any],
    *,
    dispute_transaction_id: int,
) -> Draft:
    """A dispute won after its funds were withdrawn: re-credited once, reversing the dispute debit."""
    return _card(
        card_dispute_won_key(dispute_id),
        CARD_DISPUTE_WON,
        customer,
        amount_micros,
        evidence,
        credit=True,
        reverses=dispute_transaction_id,
    )


def adjustment_entry(
    operator_key: str,
    account: str,
    currency: str,
    amount: int,
    *,
    reason: str,
    actor: str,
    at: dt.datetime,
) -> Draft:
    """A manual adjustment: `amount` (base units, may be negative) added to the account's balance.

    The other side is `equity:adjustments`. Evidence records reason, key, who and when (audit).
    """
    target = parse_account(account)
    check_currency(currency)
    if target.name == ADJUSTMENTS:
        raise InvalidAccountError(account, "is the other side of every adjustment; adjust the account itself")
    if not target.holds(currency):
        raise InvalidAccountError(account, f"cannot hold {currency}")
    if type(amount) is not int or amount == 0:
        raise InvalidEntryError("an adjustment amount is a non-zero integer of base units")
    if not reason.strip():
        raise InvalidEntryError("an adjustment needs a reason")
    legs = amount * target.normal_side
    postings = (Posting(account, currency, legs), Posting(ADJUSTMENTS, currency, -legs))
    evidence = {
        "reason": reason,
        "key": operator_key,
        "actor": actor,
        "at": at.isoformat(),
        "account": account,
        "currency": currency,
        "amount": amount,
    }
    return Draft(adjustment_key(operator_key), ADJUSTMENT, postings, evidence)


def reversal_entry(
    original: Transaction,
    *,
    reason: str,
    actor: str,
    at: dt.datetime,
    evidence: Mapping[str, Any] | None = None,
) -> Draft:
    """A new transaction that undoes `original` leg for leg, linked to it (key `reverse:<id>`: once)."""
    if not reason.strip():
        raise InvalidEntryError("a reversal needs a reason")
    postings = tuple(Posting(p.account, p.currency, -p.amount) for p in original.postings)
    record = {
        **(evidence or {}),
        "reason": reason,
        "actor": actor,
        "at": at.isoformat(),
        "reverses_key": original.key,
    }
    return Draft(reversal_key(original.id), REVERSAL, postings, record, reverses=original.id)


def osr_burn_entry(signature: str, amount_raw: int, evidence: Mapping[str, Any]) -> Draft:
    """OSR burned on chain (verified there): moved from osr:to-burn to osr:burned."""
    _positive(amount_raw, "amount_raw")
    postings = (Posting(OSR_BURNED, OSR, amount_raw), Posting(OSR_TO_BURN, OSR, -amount_raw))
    return Draft(osr_burn_key(signature), OSR_BURN, postings, evidence)
