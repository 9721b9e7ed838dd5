"""The pure parts of the ledger: money text, the chart of accounts, keys and entry builders. No database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger_client import (
    Draft,
    InvalidAccountError,
    InvalidEntryError,
    Posting,
    UnbalancedError,
    adjustment_entry,
    card_dispute_lost_entry,
    card_refund_entry,
    card_topup_entry,
    crypto_deposit_entry,
    deposit_key,
    format_units,
    holding_accounts,
    osr_burn_entry,
    parse_account,
    parse_deposit_key,
    parse_units,
    suspense_hold_entry,
)
from ledger_client.entries import check_draft, content_hash, decode_json, encode_json
from tests.ledger_data import REAL_RECEIVER, REAL_SIGNATURE, TREASURY, address, signature

AT = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)

# --- money ---


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [
        (12_345_678, 6, "12.345678"),
        (1_500_000, 6, "1.500000"),
        (-1, 6, "-0.000001"),
        (0, 6, "0.000000"),
        (2_500_000_000, 9, "2.500000000"),
        (10**20, 6, "100000000000000.000000"),  # never exponent notation
        (800, 0, "800"),  # a zero-decimal currency (JPY-like) has no point
    ],
)
def test_units_print_as_plain_fixed_point(units: int, decimals: int, text: str) -> None:
    assert format_units(units, decimals) == text
    assert parse_units(text, decimals) == units


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("12.5", 6, 12_500_000),
        ("-0.000001", 6, -1),
        ("+3", 6, 3_000_000),
        ("7", 0, 7),
        (".5", 6, 500_000),
        ("5.", 6, 5_000_000),
        (" 2.25 ", 6, 2_250_000),
    ],
)
def test_decimal_text_parses_exactly(text: str, decimals: int, units: int) -> None:
    assert parse_units(text, decimals) == units


@pytest.mark.parametrize("text", ["1.0000001", "1e3", "NaN", "inf", "1,5", "", ".", "-", "--1", "0x10", "1.2.3"])
def test_bad_or_too_precise_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"decimal|places"):
        parse_units(text, 6)


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1), st.integers(min_value=0, max_value=18))
def test_format_and_parse_are_inverse(units: int, decimals: int) -> None:
    assert parse_units(format_units(units, decimals), decimals) == units
    assert Decimal(format_units(units, decimals)) == Decimal(units).scaleb(-decimals)


# --- chart of accounts ---


@pytest.mark.parametrize(
    ("name", "kind", "normal_side", "currencies"),
    [
        ("agt_a1b2c3d4", "customer", -1, {"USD"}),
        ("suspense", "suspense", -1, {"USD"}),
        ("treasury:SOL", "holding", 1, {"SOL"}),
        ("treasury:PYUSD", "holding", 1, {"PYUSD"}),
        ("osr:to-burn", "holding", 1, {"OSR"}),
        ("osr:retained", "holding", 1, {"OSR"}),
        ("osr:burned", "burned", 1, {"OSR"}),
        ("osr:received", "conversion", -1, {"OSR", "USD"}),
        ("conversion:USDC", "conversion", -1, {"USDC", "USD"}),
        ("expense:bonus", "expense", 1, {"USD"}),
        ("stripe:clearing", "clearing", 1, {"USD"}),
        ("equity:adjustments", "equity", -1, None),
    ],
)
def test_the_chart_of_accounts(name: str, kind: str, normal_side: int, currencies: set[str] | None) -> None:
    account = parse_account(name)
    assert (account.kind, account.normal_side) == (kind, normal_side)
    assert account.currencies == (frozenset(currencies) if currencies is not None else None)


@pytest.mark.parametrize(
    "name", ["treasury:OSR", "conversion:OSR", "treasury:USD", "treasury:sol", "foo:bar", "agt a", "", "x" * 129]
)
def test_names_outside_the_chart_are_refused(name: str) -> None:
    with pytest.raises(InvalidAccountError):
        parse_account(name)


def test_osr_holdings_are_split_in_two() -> None:
    assert holding_accounts("OSR") == ("osr:to-burn", "osr:retained")
    assert holding_accounts("USDT") == ("treasury:USDT",)


# --- keys ---


def test_deposit_keys_name_signature_receiving_account_and_asset() -> None:
    key = deposit_key(REAL_SIGNATURE, REAL_RECEIVER, "SOL")
    assert key == f"sol:{REAL_SIGNATURE}:{REAL_RECEIVER}:SOL"
    assert parse_deposit_key(key) == (REAL_SIGNATURE, REAL_RECEIVER, "SOL")
    with pytest.raises(InvalidEntryError):
        deposit_key("not-a-signature", REAL_RECEIVER, "SOL")
    with pytest.raises(InvalidEntryError):
        deposit_key(REAL_SIGNATURE, "short", "SOL")
    with pytest.raises(InvalidEntryError):
        parse_deposit_key("stripe:cs_1")


# --- builders: each balances, and its arithmetic is checked ---


def test_a_sol_deposit_credit() -> None:
    # 0.001 SOL = 1,000,000 lamports at $150.123456: 0.001 × 150.123456 = $0.150123456 -> 150,123 micros.
    key = deposit_key(REAL_SIGNATURE, REAL_RECEIVER, "SOL")
    draft = crypto_deposit_entry(key, "agt_a1b2c3d4", "SOL", 1_000_000, 150_123, 0, 150_123, 0, 0, {"memo": "transfer"})
    assert draft.kind == "crypto_deposit"
    assert draft.postings == (
        Posting("treasury:SOL", "SOL", 1_000_000),
        Posting("conversion:SOL", "SOL", -1_000_000),
        Posting("conversion:SOL", "USD", 150_123),
        Posting("agt_a1b2c3d4", "USD", -150_123),
    )
    check_draft(draft)


def test_an_osr_deposit_credit_with_bonus_and_burn_split() -> None:
    # 200 OSR = 200,000,000,000 raw at $0.005 = $1.000000; bonus 50% = 500,000; credits 1,500,000;
    # burn = floor(200,000,000,000 × 7 / 10) = 140,000,000,000; retained 60,000,000,000.
    key = deposit_key(signature(1), TREASURY, "OSR")
    draft = crypto_deposit_entry(
        key, "agt_osr", "OSR", 200_000_000_000, 1_000_000, 500_000, 1_500_000, 140_000_000_000, 60_000_000_000, {}
    )
    assert draft.postings == (
        Posting("osr:to-burn", "OSR", 140_000_000_000),
        Posting("osr:retained", "OSR", 60_000_000_000),
        Posting("osr:received", "OSR", -200_000_000_000),
        Posting("osr:received", "USD", 1_000_000),
        Posting("expense:bonus", "USD", 500_000),
        Posting("agt_osr", "USD", -1_500_000),
    )
    check_draft(draft)


@pytest.mark.parametrize(
    ("asset", "amount_raw", "usd", "bonus", "credits", "burn", "retained", "message"),
    [
        ("USDC", 1_000_000, 1_000_000, 0, 1_000_001, 0, 0, "credits"),  # credits != value + bonus
        ("OSR", 10, 1, 0, 1, 7, 2, "burn"),  # 7 + 2 != 10
        ("USDC", 10, 10, 0, 10, 1, 0, "OSR only"),  # burn on a non-OSR asset
        ("USDC", 0, 0, 0, 0, 0, 0, "positive"),  # nothing deposited
        ("USDC", 10, 0, 0, 0, 0, 0, "positive"),  # never credited at 0
        ("USD", 10, 10, 0, 10, 0, 0, "credit currency"),
    ],
)
def test_deposit_arithmetic_that_does_not_add_up_is_refused(
    asset: str, amount_raw: int, usd: int, bonus: int, credits: int, burn: int, retained: int, message: str
) -> None:
    key = deposit_key(signature(2), TREASURY, asset)
    with pytest.raises(InvalidEntryError, match=message):
        crypto_deposit_entry(key, "agt_a", asset, amount_raw, usd, bonus, credits, burn, retained, {})


def test_a_deposit_without_a_customer_is_held_in_suspense_with_its_sender() -> None:
    key = deposit_key(signature(3), TREASURY, "USDT")
    sender = address("sender-3")
    draft = crypto_deposit_entry(key, None, "USDT", 5_000_000, 5_000_000, 0, 5_000_000, 0, 0, {}, sender=sender)
    assert draft == suspense_hold_entry(key, sender, "USDT", 5_000_000, 5_000_000, 0, 5_000_000, 0, 0, {})
    assert draft.kind == "suspense_hold"
    assert draft.hold is not None
    assert (draft.hold.signature, draft.hold.sender) == (signature(3), sender)
    assert Posting("suspense", "USD", -5_000_000) in draft.postings


def test_card_entries_move_money_between_stripe_clearing_and_the_customer() -> None:
    topup = card_topup_entry("cs_live_1", "agt_c", 25_000_000, {})
    refund = card_refund_entry("re_1", "agt_c", 5_000_000, {})
    lost = card_dispute_lost_entry("du_1", "agt_c", 20_000_000, {})
    assert (topup.key, refund.key, lost.key) == ("stripe:cs_live_1", "stripe-refund:re_1", "stripe-dispute:du_1")
    assert topup.postings == (Posting("stripe:clearing", "USD", 25_000_000), Posting("agt_c", "USD", -25_000_000))
    assert refund.postings == (Posting("stripe:clearing", "USD", -5_000_000), Posting("agt_c", "USD", 5_000_000))
    with pytest.raises(InvalidEntryError):
        card_topup_entry("cs live", "agt_c", 1, {})
    with pytest.raises(InvalidEntryError):
        card_refund_entry("re_1", "agt_c", 0, {})
    with pytest.raises(InvalidAccountError):
        card_topup_entry("cs_1", "stripe:clearing", 1, {})  # not a customer


def test_an_adjustment_records_who_when_why() -> None:
    draft = adjustment_entry("fix-1", "agt_a", "USD", -250_000, reason="double charge", actor="alice", at=AT)
    assert draft.key == "adjust:fix-1"
    # A customer is credit-normal: -0.25 USD to its balance is a debit of 250,000.
    assert draft.postings == (Posting("agt_a", "USD", 250_000), Posting("equity:adjustments", "USD", -250_000))
    assert draft.evidence == {
        "reason": "double charge",
        "key": "fix-1",
        "actor": "alice",
        "at": "2026-12-01T09:30:00+00:00",
        "account": "agt_a",
        "currency": "USD",
        "amount": -250_000,
    }
    with pytest.raises(InvalidAccountError):
        adjustment_entry("k", "agt_a", "SOL", 1, reason="r", actor="a", at=AT)
    with pytest.raises(InvalidAccountError):
        adjustment_entry("k", "equity:adjustments", "USD", 1, reason="r", actor="a", at=AT)
    with pytest.raises(InvalidEntryError):
        adjustment_entry("k", "agt_a", "USD", 0, reason="r", actor="a", at=AT)
    with pytest.raises(InvalidEntryError):
        adjustment_entry("k", "agt_a", "USD", 1, reason="  ", actor="a", at=AT)


def test_an_osr_burn_moves_to_burn_into_burned() -> None:
    draft = osr_burn_entry(signature("burn"), 7_000, {})
    assert draft.key == f"osr-burn:{signature('burn')}"
    assert draft.postings == (Posting("osr:burned", "OSR", 7_000), Posting("osr:to-burn", "OSR", -7_000))


@pytest.mark.parametrize(
    ("postings", "error"),
    [
        ((Posting("agt_a", "USD", 1), Posting("stripe:clearing", "USD", -2)), UnbalancedError),
        ((Posting("agt_a", "USD", 1),), InvalidEntryError),  # one leg
        ((Posting("agt_a", "USD", 0), Posting("stripe:clearing", "USD", 0)), InvalidEntryError),
        ((Posting("agt_a", "USD", 1.0), Posting("stripe:clearing", "USD", -1.0)), InvalidEntryError),  # type: ignore[arg-type]
        ((Posting("agt_a", "USD", True), Posting("stripe:clearing", "USD", -1)), InvalidEntryError),
        ((Posting("agt_a", "USD", 2**63), Posting("stripe:clearing", "USD", -(2**63))), InvalidEntryError),
        ((Posting("agt_a", "SOL", 1), Posting("treasury:SOL", "SOL", -1)), InvalidAccountError),
        ((Posting("agt_a", "usd", 1), Posting("stripe:clearing", "usd", -1)), InvalidAccountError),
        (
            (Posting("agt_a", "USD", 1), Posting("agt_a", "USD", 1), Posting("stripe:clearing", "USD", -2)),
            InvalidEntryError,  # the same account twice
        ),
    ],
)
def test_malformed_drafts_are_refused(postings: tuple[Posting, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        check_draft(Draft("some-key", "card_topup", postings, {}))


@pytest.mark.parametrize("key", ["", "has space", "x" * 513, "tab\there", "ünicode"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidEntryError):
        check_draft(Draft(key, "card_topup", (Posting("agt_a", "USD", -1), Posting("stripe:clearing", "USD", 1)), {}))


def test_evidence_must_be_json_and_decimals_stay_exact() -> None:
    with pytest.raises(InvalidEntryError):
        check_draft(card_topup_entry("cs_1", "agt_a", 1, {"when": object()}))
    with pytest.raises(InvalidEntryError):
        check_draft(card_topup_entry("cs_1", "agt_a", 1, {"price": Decimal("NaN")}))
    text = encode_json({"price": Decimal("0.000000123456789012345678"), "n": 1})
    assert text == '{"price":1.23456789012345678E-7,"n":1}'
    assert decode_json(text) == {"price": Decimal("1.23456789012345678E-7"), "n": 1}


@given(
    st.lists(
        st.tuples(st.sampled_from(["agt_a", "agt_b", "stripe:clearing", "suspense"]), st.integers(-(10**12), 10**12)),
        min_size=2,
        max_size=4,
        unique_by=lambda leg: leg[0],
    ),
    st.randoms(use_true_random=False),
)
def test_content_hash_ignores_posting_order(legs: list[tuple[str, int]], rng: object) -> None:
    postings = [Posting(account, "USD", amount) for account, amount in legs]
    shuffled = list(postings)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert content_hash("card_topup", postings, None) == content_hash("card_topup", shuffled, None)
    if postings[0].amount != postings[1].amount:
        swapped = [
            Posting(postings[0].account, "USD", postings[1].amount),
            Posting(postings[1].account, "USD", postings[0].amount),
        ]
        assert content_hash("card_topup", swapped + postings[2:], None) != content_hash("card_topup", postings, None)
    assert content_hash("card_topup", postings, None) != content_hash("adjustment", postings, None)
    assert content_hash("reversal", postings, 1) != content_hash("reversal", postings, 2)


@given(
    usd=st.integers(min_value=0, max_value=10**15),
    bonus=st.integers(min_value=0, max_value=10**15),
    amount_raw=st.integers(min_value=1, max_value=10**18),
    burn_share=st.integers(min_value=0, max_value=10),
)
def test_every_osr_deposit_the_builder_accepts_balances_per_currency(
    usd: int, bonus: int, amount_raw: int, burn_share: int
) -> None:
    assume(usd + bonus > 0)  # a credit of nothing is refused (tested above)
    burn = amount_raw * burn_share // 10
    key = deposit_key(signature("prop"), TREASURY, "OSR")
    draft = crypto_deposit_entry(key, "agt_p", "OSR", amount_raw, usd, bonus, usd + bonus, burn, amount_raw - burn, {})
    check_draft(draft)
    totals: dict[str, int] = {}
    for posting in draft.postings:
        totals[posting.currency] = totals.get(posting.currency, 0) + posting.amount
    assert totals == {"OSR": 0, "USD": 0}
    assert Posting("agt_p", "USD", -(usd + bonus)) in draft.postings
