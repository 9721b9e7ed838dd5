"""A quote: the price a credit is computed with, kept as evidence (DESIGN.md §4).

The quote is stored before the credit is posted, so a retry after a crash reuses it; the audit
re-derives the credit from it. `to_evidence()` is JSON-safe (decimals and times as strings) and
`Quote.from_evidence()` reads it back to an equal Quote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pricing.credit import decimal_text
from pricing.errors import BadEvidence

SOURCE_STABLE: Final = "stable"
SOURCE_FIXED: Final = "fixed"
SOURCE_RANGE: Final = "coingecko:market_chart_range"
SOURCE_SIMPLE: Final = "coingecko:simple_price"
SOURCE_MANUAL: Final = "manual"
SOURCES: Final = frozenset({SOURCE_STABLE, SOURCE_FIXED, SOURCE_RANGE, SOURCE_SIMPLE, SOURCE_MANUAL})

GRANULARITY_5M: Final = "5m"
GRANULARITY_HOURLY: Final = "hourly"
GRANULARITY_DAILY: Final = "daily"
GRANULARITIES: Final = frozenset({GRANULARITY_5M, GRANULARITY_HOURLY, GRANULARITY_DAILY})

# Rules: what decided the price. Parameters follow a colon so the evidence says how it was applied.
RULE_STABLE: Final = "stable_1_usd"
RULE_FIXED: Final = "osr_fixed_rate"
RULE_MANUAL: Final = "manual"


def rule_at_or_before(max_age_s: int) -> str:
    return f"latest_point_at_or_before:max_age_s={max_age_s}"


def rule_live(max_age_s: int, ahead_s: int) -> str:
    return f"live_simple_price:window=-{max_age_s}s..+{ahead_s}s"


def utc(moment: dt.datetime, what: str = "time") -> dt.datetime:
    """An aware datetime in UTC; a naive one is refused (a silent local-time guess would misprice)."""
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(dt.UTC)


def iso(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a Z, microseconds kept when there are any."""
    return utc(moment).isoformat().replace("+00:00", "Z")


def parse_iso(text: Any, what: str) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be an ISO 8601 string, got {text!r}")
    return utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00")), what)


@dataclasses.dataclass(frozen=True, slots=True)
class Quote:
    """The price of one asset for one deposit, with where it came from.

    asset        the asset's symbol ("SOL")
    price_usd    USD per whole token, exact
    source       one of SOURCES
    coin_id      CoinGecko coin id, None when no CoinGecko data was used
    point_time   the time of the price point used (UTC); for stable/fixed/manual the time priced
    granularity  "5m" / "hourly" / "daily" for a market_chart/range point, else None
    fetched_at   when the price was fetched (or set by hand)
    rule         which rule chose the price, with its parameters
    reason       why an operator set it by hand (manual quotes only)
    """

    asset: str
    price_usd: Decimal
    source: str
    coin_id: str | None
    point_time: dt.datetime
    granularity: str | None
    fetched_at: dt.datetime
    rule: str
    reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.price_usd, Decimal) or not self.price_usd.is_finite() or self.price_usd <= 0:
            raise ValueError(f"price_usd must be a positive finite Decimal, got {self.price_usd!r}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown quote source {self.source!r}")
        if self.granularity is not None and self.granularity not in GRANULARITIES:
            raise ValueError(f"unknown granularity {self.granularity!r}")
        if not self.asset or not self.rule:
            raise ValueError("a quote names its asset and rule")
        if self.source == SOURCE_MANUAL and not (self.reason and self.reason.strip()):
            raise ValueError("a manual price needs a reason")
        object.__setattr__(self, "point_time", utc(self.point_time, "point_time"))
        object.__setattr__(self, "fetched_at", utc(self.fetched_at, "fetched_at"))

    @classmethod
    def manual(
        cls, asset: str, price_usd: Decimal, reason: str, at: dt.datetime, *, set_at: dt.datetime | None = None
    ) -> Quote:
        """A price set by hand by an operator, for the deposit at `at` (its block time); `set_at` is
        when it was set (default: `at`). The reason is required and kept as evidence."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("a manual price needs a reason")
        return cls(
            asset=asset,
            price_usd=price_usd,
            source=SOURCE_MANUAL,
            coin_id=None,
            point_time=at,
            granularity=None,
            fetched_at=set_at if set_at is not None else at,
            rule=RULE_MANUAL,
            reason=" ".join(reason.split()),
        )

    def to_evidence(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "price_usd": decimal_text(self.price_usd),
            "source": self.source,
            "coin_id": self.coin_id,
            "point_time": iso(self.point_time),
            "granularity": self.granularity,
            "fetched_at": iso(self.fetched_at),
            "rule": self.rule,
            "reason": self.reason,
        }

    @classmethod
    def from_evidence(cls, evidence: dict[str, Any]) -> Quote:
        try:
            price_text = evidence["price_usd"]
            if not isinstance(price_text, str):
                raise ValueError(f"price_usd must be a decimal string, got {price_text!r}")
            return cls(
                asset=_text(evidence["asset"], "asset"),
                price_usd=Decimal(price_text),
                source=_text(evidence["source"], "source"),
                coin_id=_optional_text(evidence["coin_id"], "coin_id"),
                point_time=parse_iso(evidence["point_time"], "point_time"),
                granularity=_optional_text(evidence["granularity"], "granularity"),
                fetched_at=parse_iso(evidence["fetched_at"], "fetched_at"),
                rule=_text(evidence["rule"], "rule"),
                reason=_optional_text(evidence.get("reason"), "reason"),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise BadEvidence(f"unreadable quote evidence: {type(exc).__name__}: {exc}") from exc


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {value!r}")
    return value


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what)
