"""Credit arithmetic of DESIGN.md §4, exact: pure integer arithmetic, no float, no decimal context.

    usd_value = round_down(amount × price, 6)        amount = amount_raw / 10**decimals
    OSR:    bonus = round_down(usd_value × bonus_share, 6)   credits = usd_value + bonus
            burn_raw = floor(amount_raw × burn_share)         retained_raw = amount_raw − burn_raw
    others: bonus = 0, credits = usd_value

Every Decimal operand is turned into an exact fraction n / 10**k (from its digits and exponent), so the
result never depends on the precision of the global decimal context: a 10**15-token amount times a
price with 12 decimals stays exact. Money is held as integer micro-USD (`*_micros`); the Decimal views
are built from those integers as text, which is exact too.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any, Final

from pricing.assets import Asset
from pricing.errors import BadEvidence

MICROS_PER_USD: Final = 1_000_000
U64_MAX: Final = 2**64 - 1
# Decimal exponents beyond this are not prices or shares but input mistakes; the bound also keeps the
# powers of ten below small (10**60 is cheap, 10**10**9 is not).
_MAX_EXPONENT: Final = 60
OSR_RULE: Final = "osr"


def _fraction(value: Decimal, what: str) -> tuple[int, int]:
    """`value` as an exact (numerator, denominator) with a power-of-ten denominator."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{what} must be a finite Decimal, got {value!r}")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    if abs(exponent) > _MAX_EXPONENT or len(digits) > _MAX_EXPONENT:
        raise ValueError(f"{what} is out of range: {value}")
    numerator = int("".join(map(str, digits)) or "0")
    if sign:
        numerator = -numerator
    if exponent >= 0:
        return numerator * 10**exponent, 1
    return numerator, 10**-exponent


def scaled_text(units: int, places: int) -> str:
    """An integer count of 10**-places as a fixed-point string with exactly `places` decimals."""
    sign = "-" if units < 0 else ""
    whole, part = divmod(abs(units), 10**places)
    return f"{sign}{whole}.{part:0{places}d}" if places else f"{sign}{whole}"


def format_micros(micros: int) -> str:
    """Micro-USD as a decimal string with exactly 6 places: 50000000 -> "50.000000"."""
    return scaled_text(micros, 6)


def micros_to_decimal(micros: int) -> Decimal:
    return Decimal(format_micros(micros))


def format_price(price: Decimal) -> str:
    """A price as fixed-point text with at least 6 places and more when the price has more (never rounded)."""
    numerator, denominator = _fraction(price, "price")
    places = max(6, len(str(denominator)) - 1)
    return scaled_text(numerator * 10**places // denominator, places)


def decimal_text(value: Decimal) -> str:
    """Fixed-point text of a Decimal (never exponent notation), exact."""
    numerator, denominator = _fraction(value, "value")
    return scaled_text(numerator, len(str(denominator)) - 1)


@dataclasses.dataclass(frozen=True, slots=True)
class Credit:
    """The credits of one deposit and, for OSR, the burn split. Money in integer micro-USD.

    `burn_raw` and `retained_raw` are None for assets other than OSR. `price_usd`, `bonus_share` and
    `burn_share` record what the figures were computed with, so an audit can re-derive them.
    """

    amount_raw: int
    decimals: int
    usd_value_micros: int
    bonus_micros: int
    credits_micros: int
    burn_raw: int | None
    retained_raw: int | None
    asset: str = ""
    price_usd: Decimal = Decimal(0)
    bonus_share: Decimal = Decimal(0)
    burn_share: Decimal | None = None

    @property
    def amount(self) -> Decimal:
        return Decimal(scaled_text(self.amount_raw, self.decimals))

    @property
    def usd_value(self) -> Decimal:
        return micros_to_decimal(self.usd_value_micros)

    @property
    def bonus(self) -> Decimal:
        return micros_to_decimal(self.bonus_micros)

    @property
    def credits(self) -> Decimal:
        return micros_to_decimal(self.credits_micros)

    def to_evidence(self) -> dict[str, Any]:
        """JSON-safe: integers and decimals as strings."""
        return {
            "asset": self.asset,
            "amount_raw": str(self.amount_raw),
            "decimals": self.decimals,
            "price_usd": decimal_text(self.price_usd),
            "usd_value": format_micros(self.usd_value_micros),
            "bonus": format_micros(self.bonus_micros),
            "credits": format_micros(self.credits_micros),
            "burn_raw": None if self.burn_raw is None else str(self.burn_raw),
            "retained_raw": None if self.retained_raw is None else str(self.retained_raw),
            "bonus_share": decimal_text(self.bonus_share),
            "burn_share": None if self.burn_share is None else decimal_text(self.burn_share),
        }

    @classmethod
    def from_evidence(cls, evidence: dict[str, Any]) -> Credit:
        try:
            return cls(
                amount_raw=_int(evidence["amount_raw"]),
                decimals=int(evidence["decimals"]),
                usd_value_micros=_micros(evidence["usd_value"]),
                bonus_micros=_micros(evidence["bonus"]),
                credits_micros=_micros(evidence["credits"]),
                burn_raw=None if evidence["burn_raw"] is None else _int(evidence["burn_raw"]),
                retained_raw=None if evidence["retained_raw"] is None else _int(evidence["retained_raw"]),
                asset=str(evidence["asset"]),
                price_usd=Decimal(str(evidence["price_usd"])),
                bonus_share=Decimal(str(evidence["bonus_share"])),
                burn_share=None if evidence["burn_share"] is None else Decimal(str(evidence["burn_share"])),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise BadEvidence(f"unreadable credit evidence: {type(exc).__name__}: {exc}") from exc


def _int(text: Any) -> int:
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        raise ValueError(f"not an integer string: {text!r}")
    return int(text)


def _micros(text: Any) -> int:
    numerator, denominator = _fraction(Decimal(str(text)), "amount")
    if (numerator * MICROS_PER_USD) % denominator:
        raise ValueError(f"more than 6 decimal places: {text!r}")
    return numerator * MICROS_PER_USD // denominator


def compute_credit(
    asset: Asset, amount_raw: int, price_usd: Decimal, *, osr_bonus: Decimal, osr_burn_share: Decimal
) -> Credit:
    """The credits for `amount_raw` base units of `asset` at `price_usd`, exactly as DESIGN.md §4.

    Raises ValueError for a negative or non-integer amount, a price that is not a positive finite
    Decimal (never a credit at 0), a negative bonus share or a burn share outside [0, 1].
    """
    if isinstance(amount_raw, bool) or not isinstance(amount_raw, int) or amount_raw < 0:
        raise ValueError(f"amount_raw must be a non-negative integer, got {amount_raw!r}")
    price_numerator, price_denominator = _fraction(price_usd, "price_usd")
    if price_numerator <= 0:
        raise ValueError(f"price_usd must be positive, got {price_usd}")
    # round_down(amount_raw / 10**decimals × price, 6), in micro-USD: floor of an exact fraction.
    usd_value_micros = (amount_raw * price_numerator * MICROS_PER_USD) // (10**asset.decimals * price_denominator)
    if asset.price_rule != OSR_RULE:
        return Credit(
            amount_raw=amount_raw,
            decimals=asset.decimals,
            usd_value_micros=usd_value_micros,
            bonus_micros=0,
            credits_micros=usd_value_micros,
            burn_raw=None,
            retained_raw=None,
            asset=asset.symbol,
            price_usd=price_usd,
            bonus_share=Decimal(0),
            burn_share=None,
        )
    bonus_numerator, bonus_denominator = _fraction(osr_bonus, "osr_bonus")
    if bonus_numerator < 0:
        raise ValueError(f"osr_bonus must not be negative, got {osr_bonus}")
    burn_numerator, burn_denominator = _fraction(osr_burn_share, "osr_burn_share")
    if not 0 <= burn_numerator <= burn_denominator:
        raise ValueError(f"osr_burn_share must be between 0 and 1, got {osr_burn_share}")
    bonus_micros = usd_value_micros * bonus_numerator // bonus_denominator
    burn_raw = amount_raw * burn_numerator // burn_denominator
    return Credit(
        amount_raw=amount_raw,
        decimals=asset.decimals,
        usd_value_micros=usd_value_micros,
        bonus_micros=bonus_micros,
        credits_micros=usd_value_micros + bonus_micros,
        burn_raw=burn_raw,
        retained_raw=amount_raw - burn_raw,
        asset=asset.symbol,
        price_usd=price_usd,
        bonus_share=osr_bonus,
        burn_share=osr_burn_share,
    )
