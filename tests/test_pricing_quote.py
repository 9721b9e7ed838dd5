"""Quotes as evidence, manual prices, and the price rules as pure functions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest

from pricing.errors import BAD_PRICE, NO_POINT, STALE, BadEvidence, PriceUnavailable
from pricing.quote import SOURCE_RANGE, SOURCES, Quote, iso
from pricing.rules import (
    MAX_RANGE_S,
    Rejection,
    auto_granularity,
    cell_window,
    choose_point,
    live_point_acceptable,
    merge_interval,
    missing_ranges,
    split_range,
)

UTC = dt.UTC
T0 = dt.datetime(2025, 12, 3, 11, 0, tzinfo=UTC)
T0_MS = 1_764_759_600_000  # 2025-12-03T11:00:00Z: 20,425 days × 86,400 s + 11 × 3,600 s, in ms


def range_quote(**changes: object) -> Quote:
    fields: dict[str, object] = {
        "asset": "SOL",
        "price_usd": Decimal("140.25"),
        "source": SOURCE_RANGE,
        "coin_id": "solana",
        "point_time": T0,
        "granularity": "hourly",
        "fetched_at": dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
        "rule": "latest_point_at_or_before:max_age_s=7200",
    }
    fields.update(changes)
    return Quote(**fields)  # type: ignore[arg-type]


def test_t0_constant() -> None:
    assert int(T0.timestamp()) * 1000 == T0_MS


def test_evidence_is_json_safe_and_round_trips() -> None:
    quote = range_quote()
    evidence = quote.to_evidence()
    assert evidence == {
        "asset": "SOL",
        "price_usd": "140.25",
        "source": "coingecko:market_chart_range",
        "coin_id": "solana",
        "point_time": "2025-12-03T11:00:00Z",
        "granularity": "hourly",
        "fetched_at": "2026-01-01T00:00:00.123456Z",
        "rule": "latest_point_at_or_before:max_age_s=7200",
        "reason": None,
    }
    stored = orjson.loads(orjson.dumps(evidence))
    assert Quote.from_evidence(stored) == quote
    tiny = range_quote(price_usd=Decimal("1.5E-7"), point_time=dt.datetime(2021, 4, 20, 2, 0, 0, 1000, tzinfo=UTC))
    assert tiny.to_evidence()["price_usd"] == "0.00000015"
    assert Quote.from_evidence(orjson.loads(orjson.dumps(tiny.to_evidence()))) == tiny


def test_times_are_normalised_to_utc_and_naive_times_refused() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    quote = range_quote(point_time=dt.datetime(2025, 12, 3, 13, 0, tzinfo=plus_two))
    assert quote.point_time == T0 and quote.point_time.tzinfo == UTC
    assert iso(quote.point_time) == "2025-12-03T11:00:00Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        range_quote(point_time=dt.datetime(2025, 12, 3, 11, 0))


@pytest.mark.parametrize(
    "changes",
    [
        {"price_usd": Decimal(0)},
        {"price_usd": Decimal(-1)},
        {"price_usd": Decimal("NaN")},
        {"price_usd": 140.25},
        {"source": "guess"},
        {"granularity": "1m"},
        {"rule": ""},
    ],
)
def test_invalid_quotes_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        range_quote(**changes)


def test_manual_quote() -> None:
    set_at = dt.datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    quote = Quote.manual("SOL", Decimal("131.5"), "  CoinGecko had   no point; Kraken close ", T0, set_at=set_at)
    assert (quote.source, quote.rule, quote.coin_id, quote.granularity) == ("manual", "manual", None, None)
    assert (quote.point_time, quote.fetched_at) == (T0, set_at)
    assert quote.reason == "CoinGecko had no point; Kraken close"
    assert Quote.from_evidence(orjson.loads(orjson.dumps(quote.to_evidence()))) == quote
    assert Quote.manual("SOL", Decimal(1), "r", T0).fetched_at == T0
    with pytest.raises(ValueError, match="reason"):
        Quote.manual("SOL", Decimal("131.5"), "   ", T0)
    with pytest.raises(ValueError, match="positive"):
        Quote.manual("SOL", Decimal(0), "a reason", T0)


@pytest.mark.parametrize(
    "change",
    [
        {"price_usd": 140.25},
        {"price_usd": "abc"},
        {"point_time": "yesterday"},
        {"point_time": "2025-12-03T11:00:00"},
        {"source": None},
        {"granularity": 5},
    ],
)
def test_bad_evidence(change: dict[str, object]) -> None:
    with pytest.raises(BadEvidence):
        Quote.from_evidence({**range_quote().to_evidence(), **change})
    evidence = range_quote().to_evidence()
    del evidence["rule"]
    with pytest.raises(BadEvidence, match="rule"):
        Quote.from_evidence(evidence)


def test_sources_listed_in_the_contract() -> None:
    assert {"stable", "fixed", "coingecko:market_chart_range", "coingecko:simple_price", "manual"} == SOURCES


def test_price_unavailable_reason_is_closed() -> None:
    assert PriceUnavailable(STALE, "x").reason == STALE
    with pytest.raises(ValueError):
        PriceUnavailable("tired", "x")


# --- the rules ---

HOUR_MS = 3_600_000
TIMES = [T0_MS - 2 * HOUR_MS, T0_MS - HOUR_MS, T0_MS]
PRICES: list[Decimal | None] = [Decimal("139"), Decimal("140"), Decimal("140.25")]


def test_choose_latest_point_at_or_before() -> None:
    assert choose_point(TIMES, PRICES, T0_MS, 7200) == 2  # exactly at the block time
    assert choose_point(TIMES, PRICES, T0_MS + 30 * 60_000, 7200) == 2  # 30 min after: still the 11:00 point
    assert choose_point(TIMES, PRICES, T0_MS - 1, 7200) == 1  # one ms before 11:00: the 10:00 point


def test_max_age_is_inclusive() -> None:
    # The 11:00 point is exactly 7,200 s old at 13:00: accepted; one ms later it is stale.
    assert choose_point(TIMES, PRICES, T0_MS + 7_200_000, 7200) == 2
    stale = choose_point(TIMES, PRICES, T0_MS + 7_200_001, 7200)
    assert isinstance(stale, Rejection) and stale.reason == STALE


def test_no_point_before_the_block_time() -> None:
    rejection = choose_point(TIMES, PRICES, TIMES[0] - 1, 7200)
    assert isinstance(rejection, Rejection) and rejection.reason == NO_POINT
    assert isinstance(choose_point([], [], T0_MS, 7200), Rejection)


@pytest.mark.parametrize("bad", [None, Decimal(0), Decimal(-3), Decimal("NaN")])
def test_bad_point_is_never_skipped_for_an_older_one(bad: Decimal | None) -> None:
    rejection = choose_point(TIMES, [*PRICES[:2], bad], T0_MS + 60_000, 7200)
    assert isinstance(rejection, Rejection) and rejection.reason == BAD_PRICE


def test_live_window() -> None:
    at_ms = T0_MS
    assert live_point_acceptable(at_ms - 7_200_000, at_ms, 7200)  # oldest acceptable
    assert not live_point_acceptable(at_ms - 7_200_001, at_ms, 7200)
    assert live_point_acceptable(at_ms + 60_000, at_ms, 7200)  # youngest acceptable: block time + 60 s
    assert not live_point_acceptable(at_ms + 60_001, at_ms, 7200)


def test_auto_granularity_follows_coingecko() -> None:
    now_s = T0_MS // 1000
    day = 86_400
    assert auto_granularity(now_s - day, now_s, now_s) == "5m"  # 1 day from now
    assert auto_granularity(now_s - 3 * day, now_s - 2 * day, now_s) == "hourly"  # 1 day, not from now
    assert auto_granularity(now_s - 30 * day, now_s, now_s) == "hourly"
    assert auto_granularity(now_s - 90 * day, now_s, now_s) == "hourly"  # exactly 90 days
    assert auto_granularity(now_s - 90 * day - 1, now_s, now_s) == "daily"


def test_split_range_in_chunks_of_at_most_90_days() -> None:
    day = 86_400
    chunks = split_range(0, 200 * day)
    # 200 days: 0..90, 90..180, 180..200 (chunks share their boundary second).
    assert chunks == [(0, 90 * day), (90 * day, 180 * day), (180 * day, 200 * day)]
    assert all(end - start <= MAX_RANGE_S for start, end in chunks)
    assert split_range(5, 5) == [(5, 5)]
    assert split_range(6, 5) == []


def test_interval_bookkeeping() -> None:
    covered: list[tuple[int, int]] = []
    covered = merge_interval(covered, (10, 20))
    covered = merge_interval(covered, (30, 40))
    assert missing_ranges(covered, 0, 50) == [(0, 9), (21, 29), (41, 50)]
    covered = merge_interval(covered, (21, 29))  # touching on both sides: one interval
    assert covered == [(10, 40)]
    assert missing_ranges(covered, 12, 38) == []
    assert merge_interval([(0, 5), (10, 15), (20, 25)], (7, 8)) == [(0, 5), (7, 8), (10, 15), (20, 25)]
    assert merge_interval([(0, 5), (10, 15), (20, 25)], (4, 12)) == [(0, 15), (20, 25)]


def test_cell_window_is_aligned() -> None:
    assert cell_window(100, 30) == (90, 119)
    assert cell_window(90, 30) == (90, 119)
