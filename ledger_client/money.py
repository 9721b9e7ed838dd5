"""Integer base units <-> plain decimal strings in a currency's major unit. Pure, exact, no float.

Credits are micro-USD (6 places); tokens are raw base units under their symbol (SOL: lamports, 9
places). Output is always fixed-point ("12.345678", "-0.000001"), never exponent notation.
"""

from __future__ import annotations

import re
from typing import Final

USD: Final = "USD"
USD_DECIMALS: Final = 6
MICROS_PER_USD: Final = 10**USD_DECIMALS

# The currencies of the default set-up (DESIGN.md §1) and their decimals. Other token symbols are
# accepted by the ledger (the asset table is configuration); their decimals come from that table.
DEFAULT_DECIMALS: Final = {USD: 6, "SOL": 9, "USDC": 6, "USDT": 6, "PYUSD": 6, "OSR": 9}

_DECIMAL_TEXT: Final = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")


def format_units(amount: int, decimals: int) -> str:
    """`amount` base units as a decimal string with exactly `decimals` places: (1500000, 6) -> "1.500000"."""
    if decimals < 0:
        raise ValueError("decimals must not be negative")
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**decimals)
    return f"{sign}{whole}.{fraction:0{decimals}d}" if decimals else f"{sign}{whole}"


def parse_units(text: str, decimals: int) -> int:
    """A plain decimal string ("-1.5", "12.345678") as base units; ValueError naming what is wrong.

    More places than the currency has is an error (never rounded); so are exponents, NaN and infinity.
    """
    match = _DECIMAL_TEXT.fullmatch(text.strip())
    if match is None or not (match.group(2) or match.group(3)):  # "5", "5.", ".5" and "5.25" are fine
        raise ValueError(f"not a plain decimal amount: {text.strip()!r}")
    sign: str = match.group(1)
    whole: str = match.group(2) or "0"
    fraction: str = match.group(3) or ""
    if len(fraction) > decimals:
        places = "no decimal places" if decimals == 0 else f"at most {decimals} decimal places"
        raise ValueError(f"{text.strip()!r} has more decimal places than the currency ({places})")
    units: int = int(whole) * 10**decimals + (int(fraction.ljust(decimals, "0")) if decimals else 0)
    return -units if sign == "-" else units
