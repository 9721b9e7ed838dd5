"""Credit arithmetic (DESIGN.md §4): cases worked out by hand, exactness, and properties."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.assets import DEFAULT_ASSETS, Asset
from pricing.credit import Credit, compute_credit, decimal_text, format_micros, format_price
from pricing.errors import BadEvidence

ASSETS = {asset.symbol: asset for asset in DEFAULT_ASSETS}
SOL, USDC, OSR = ASSETS["SOL"], ASSETS["USDC"], ASSETS["OSR"]
HALF, SEVENTY = Decimal("0.5"), Decimal("0.7")


def credit(asset: Asset, amount_raw: int, price: str) -> Credit:
    return compute_credit(asset, amount_raw, Decimal(price), osr_bonus=HALF, osr_burn_share=SEVENTY)


def test_one_sol_at_140_25() -> None:
    # 1 SOL = 1,000,000,000 lamports; 1 × 140.25 = 140.25 USD = 140,250,000 micro-USD; no bonus for SOL.
    result = credit(SOL, 1_000_000_000, "140.25")
    assert (result.usd_value_micros, result.bonus_micros, result.credits_micros) == (140_250_000, 0, 140_250_000)
    assert (result.burn_raw, result.retained_raw) == (None, None)
    assert format_micros(result.credits_micros) == "140.250000"
    assert result.amount == Decimal("1.000000000")


def test_one_lamport_rounds_down_to_zero() -> None:
    # 0.000000001 SOL × 140.25 = 0.00000014025 USD: below one micro-USD, rounded down to 0.
    result = credit(SOL, 1, "140.25")
    assert (result.usd_value_micros, result.credits_micros) == (0, 0)
    assert result.amount == Decimal("0.000000001")


def test_usdc_is_one_to_one() -> None:
    # 1,234,567 base units of a 6-decimal stablecoin at 1 USD = 1.234567 USD.
    result = credit(USDC, 1_234_567, "1")
    assert (result.usd_value_micros, result.bonus_micros, result.credits_micros) == (1_234_567, 0, 1_234_567)
    assert format_micros(result.credits_micros) == "1.234567"


def test_ten_thousand_osr_at_half_a_cent() -> None:
    # 10,000 OSR = 10,000 × 10**9 base units. Value 10,000 × 0.005 = 50.00; bonus 50 × 0.5 = 25.00;
    # credits 75.00. Burn 70% of 10**13 = 7 × 10**12 (7,000 OSR); retained 3 × 10**12 (3,000 OSR).
    result = credit(OSR, 10_000 * 10**9, "0.005")
    assert result.usd_value_micros == 50_000_000
    assert result.bonus_micros == 25_000_000
    assert result.credits_micros == 75_000_000
    assert result.burn_raw == 7_000 * 10**9
    assert result.retained_raw == 3_000 * 10**9
    assert (result.usd_value, result.bonus, result.credits) == (Decimal("50"), Decimal("25"), Decimal("75"))


def test_one_osr_base_unit() -> None:
    # 1 base unit = 10**-9 OSR; × 0.005 = 5 × 10**-12 USD -> 0. Burn floor(1 × 0.7) = 0, retained 1.
    result = credit(OSR, 1, "0.005")
    assert (result.usd_value_micros, result.bonus_micros, result.credits_micros) == (0, 0, 0)
    assert (result.burn_raw, result.retained_raw) == (0, 1)


def test_price_with_more_than_six_decimals() -> None:
    # 2 SOL × 140.123456789 = 280.246913578 USD -> round down to 6 places: 280.246913.
    result = credit(SOL, 2_000_000_000, "140.123456789")
    assert result.usd_value_micros == 280_246_913
    assert format_price(Decimal("140.123456789")) == "140.123456789"


def test_value_that_must_round_down() -> None:
    # 0.123456789 SOL × 140.25: 123456789 × 14025 = 1,731,481,465,725 -> 17.31481465725 USD.
    # Rounded down: 17.314814 (rounding to nearest would give 17.314815).
    result = credit(SOL, 123_456_789, "140.25")
    assert result.usd_value_micros == 17_314_814


def test_osr_bonus_rounds_down_too() -> None:
    # 333 × 10**3 base units = 0.000333 OSR; × 0.5 USD = 0.0001665 USD -> 0.000166 (166 micros);
    # bonus 166 × 0.5 = 83 micros; credits 249.
    result = credit(OSR, 333_000, "0.5")
    assert (result.usd_value_micros, result.bonus_micros, result.credits_micros) == (166, 83, 249)
    # Bonus of an odd number of micros: 0.000333 OSR at 1 USD = 333 micros; bonus 166.5 -> 166.
    odd = credit(OSR, 333_000, "1")
    assert (odd.usd_value_micros, odd.bonus_micros, odd.credits_micros) == (333, 166, 499)
    # Burn of 999 base units: floor(999 × 0.7) = floor(699.3) = 699; retained 300.
    burn = credit(OSR, 999, "1")
    assert (burn.burn_raw, burn.retained_raw) == (699, 300)


def test_configurable_bonus_and_burn_share() -> None:
    # 10,000 OSR at 0.005 = 50 USD; bonus 20% = 10 USD; burn 50% = 5,000 OSR.
    result = compute_credit(OSR, 10**13, Decimal("0.005"), osr_bonus=Decimal("0.2"), osr_burn_share=Decimal("0.5"))
    assert (result.usd_value_micros, result.bonus_micros, result.credits_micros) == (50_000_000, 10_000_000, 60_000_000)
    assert (result.burn_raw, result.retained_raw) == (5 * 10**12, 5 * 10**12)


def test_exact_beyond_the_decimal_context_precision() -> None:
    # 10**15 tokens (9 decimals: 10**24 base units) × 123.456789012345 (12 decimals)
    # = 123,456,789,012,345,000 USD exactly = 123456789012345000 × 10**6 micro-USD; a 3-digit context
    # must not matter.
    with decimal.localcontext() as context:
        context.prec = 3
        result = credit(SOL, 10**24, "123.456789012345")
    assert result.usd_value_micros == 123_456_789_012_345_000 * 10**6
    assert format_micros(result.credits_micros) == "123456789012345000.000000"


def test_exponent_notation_prices_are_exact() -> None:
    # 1.5E-7 USD per OSR × 10**12 OSR (10**21 base units) = 150,000 USD.
    result = credit(OSR, 10**21, "1.5E-7")
    assert result.usd_value_micros == 150_000 * 10**6
    assert decimal_text(Decimal("1.5E-7")) == "0.00000015"
    assert decimal_text(Decimal("1E+2")) == "100"


@pytest.mark.parametrize("price", ["0", "-1", "NaN", "Infinity", "sNaN"])
def test_never_a_credit_at_zero_or_a_bad_price(price: str) -> None:
    with pytest.raises(ValueError, match="price_usd"):
        credit(SOL, 1_000_000_000, price)


@pytest.mark.parametrize("amount", [-1, True, 1.0, "1"])
def test_bad_amounts_are_refused(amount: object) -> None:
    with pytest.raises(ValueError, match="amount_raw"):
        compute_credit(SOL, amount, Decimal(1), osr_bonus=HALF, osr_burn_share=SEVENTY)  # type: ignore[arg-type]


@pytest.mark.parametrize(("bonus", "burn"), [("-0.1", "0.7"), ("0.5", "1.01"), ("0.5", "-0.1"), ("1E+100", "0.7")])
def test_bad_shares_are_refused(bonus: str, burn: str) -> None:
    with pytest.raises(ValueError, match="osr_"):
        compute_credit(OSR, 1, Decimal(1), osr_bonus=Decimal(bonus), osr_burn_share=Decimal(burn))


def test_shares_do_not_apply_to_other_assets() -> None:
    # A bad OSR setting is not looked at for SOL, whose credit has no bonus and no burn.
    result = compute_credit(SOL, 10**9, Decimal(2), osr_bonus=Decimal(5), osr_burn_share=Decimal(1))
    assert (result.bonus_micros, result.credits_micros, result.burn_raw) == (0, 2_000_000, None)


def test_formatting() -> None:
    assert format_micros(0) == "0.000000"
    assert format_micros(1) == "0.000001"
    assert format_micros(75_000_000) == "75.000000"
    assert format_micros(-1_500_000) == "-1.500000"
    assert format_price(Decimal("140.25")) == "140.250000"
    assert format_price(Decimal("0.005")) == "0.005000"
    assert format_price(Decimal("23988.969591535944")) == "23988.969591535944"
    assert format_price(Decimal("76975")) == "76975.000000"


def test_credit_evidence_round_trips() -> None:
    result = credit(OSR, 10_000 * 10**9, "0.005")
    evidence = orjson.loads(orjson.dumps(result.to_evidence()))
    assert evidence == {
        "asset": "OSR",
        "amount_raw": "10000000000000",
        "decimals": 9,
        "price_usd": "0.005",
        "usd_value": "50.000000",
        "bonus": "25.000000",
        "credits": "75.000000",
        "burn_raw": "7000000000000",
        "retained_raw": "3000000000000",
        "bonus_share": "0.5",
        "burn_share": "0.7",
    }
    assert Credit.from_evidence(evidence) == result
    sol = credit(SOL, 1, "140.25")
    assert Credit.from_evidence(orjson.loads(orjson.dumps(sol.to_evidence()))) == sol


@pytest.mark.parametrize(
    "change",
    [{"amount_raw": "-1"}, {"usd_value": "1.0000001"}, {"price_usd": "abc"}, {"decimals": "x"}, {"burn_raw": 5}],
)
def test_bad_credit_evidence(change: dict[str, object]) -> None:
    evidence = {**credit(OSR, 10**13, "0.005").to_evidence(), **change}
    with pytest.raises(BadEvidence):
        Credit.from_evidence(evidence)
    with pytest.raises(BadEvidence):
        Credit.from_evidence({})


prices = st.decimals(min_value=Decimal("1E-12"), max_value=Decimal("1E+7"), allow_nan=False, allow_infinity=False)
shares = st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=4)
bonuses = st.decimals(min_value=Decimal(0), max_value=Decimal(3), places=3)


@given(
    amount_raw=st.integers(min_value=0, max_value=2**80),
    price=prices,
    decimals=st.integers(min_value=0, max_value=18),
    rule=st.sampled_from(["market", "stable", "osr"]),
    bonus=bonuses,
    burn=shares,
)
def test_credit_properties(
    amount_raw: int, price: Decimal, decimals: int, rule: str, bonus: Decimal, burn: Decimal
) -> None:
    asset = Asset("X", None, decimals, None, rule)
    result = compute_credit(asset, amount_raw, price, osr_bonus=bonus, osr_burn_share=burn)
    exact_usd = Fraction(amount_raw, 10**decimals) * Fraction(price)
    share = Fraction(bonus) if rule == "osr" else Fraction(0)
    # round_down to 6 places, exactly: floor(exact × 10**6).
    assert result.usd_value_micros == int(exact_usd * 10**6)
    assert 0 <= result.bonus_micros <= result.usd_value_micros * share
    assert 0 <= Fraction(result.credits_micros, 10**6) <= exact_usd * (1 + share)
    assert result.credits_micros == result.usd_value_micros + result.bonus_micros
    if rule == "osr":
        assert result.burn_raw is not None and result.retained_raw is not None
        assert result.burn_raw + result.retained_raw == amount_raw
        assert result.burn_raw == int(amount_raw * Fraction(burn))
        assert 0 <= result.burn_raw <= amount_raw
    else:
        assert (result.burn_raw, result.retained_raw, result.bonus_micros) == (None, None, 0)
