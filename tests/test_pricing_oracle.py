"""PriceOracle: the price rules of DESIGN.md §4, the cache and the failure kinds, against the loopback
CoinGecko (pricing.replay) through the real httpx client."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from pricing.assets import Asset
from pricing.coingecko import CoinGeckoClient
from pricing.credit import compute_credit
from pricing.errors import (
    BAD_PRICE,
    COINGECKO_ERROR,
    FUTURE,
    NO_POINT,
    NO_SOURCE,
    STALE,
    CoinGeckoUnavailable,
    PriceUnavailable,
    RateLimited,
)
from pricing.oracle import PriceOracle
from pricing.quote import Quote
from pricing.replay import MARKET_CHART_RANGE, NULL_PRICE, SIMPLE_PRICE, Fault, ReplayServer
from pricing.replay import STALE as STALE_FAULT
from pricing.rules import DAY_S, MAX_RANGE_S
from pricing.series import PriceSeries, bundled, bundled_solana, load_binance_csv, load_freqtrade_json
from tests.pricing_helpers import COINGECKO, OSR, PRICES, SOL, USDC, at, ms, series, serving

T = TypeVar("T")
NOW = at(2026, 12, 1)  # the oracle's clock in these tests: long after the recorded data
HALF, SEVENTY = Decimal("0.5"), Decimal("0.7")
BINANCE_1H = PRICES / "binance_sol_usdt_1h_2025-12-03_2026-02-01_freqtrade.json"
BINANCE_1M_GAPS = PRICES / "binance_sol_usdt_1m_2021-04-18_2021-04-26_freqtrade_with_gaps.json"
BINANCE_5M = PRICES / "binance_sol_usdt_5m_2023-01-01_2023-01-07_head.csv"
HAND = series((at(2025, 12, 3, 10), "139.00"), (at(2025, 12, 3, 11), "140.25"), (at(2025, 12, 3, 12), "141.00"))


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    yield from serving()


def run(server: ReplayServer, use: Callable[[PriceOracle], Awaitable[T]], **options: Any) -> T:
    async def main() -> T:
        client = CoinGeckoClient(
            server.url,
            plan=options.pop("plan", "auto"),
            api_key=options.pop("api_key", None),
            timeout_s=options.pop("timeout_s", 2.0),
            max_attempts=options.pop("max_attempts", 3),
            max_retry_after_s=options.pop("max_retry_after_s", 30.0),
            backoff_initial_s=0.01,
            backoff_max_s=0.05,
        )
        async with PriceOracle(client=client, **options) as oracle:
            return await use(oracle)

    return asyncio.run(main())


def quote(asset: Asset, when: dt.datetime, *, now: dt.datetime = NOW, live: bool = False) -> Callable[..., Any]:
    return lambda oracle: oracle.quote(asset, when, now=now, live=live)


def unavailable(server: ReplayServer, use: Callable[[PriceOracle], Awaitable[Any]], **options: Any) -> PriceUnavailable:
    with pytest.raises(PriceUnavailable) as caught:
        run(server, use, **options)
    return caught.value


# --- rules without network ---


def test_stablecoins_are_one_to_one_without_network() -> None:
    # An address nobody listens on: any request would fail.
    async def main() -> Quote:
        async with PriceOracle(coingecko_url="http://127.0.0.1:9/api/v3", max_attempts=1) as oracle:
            return await oracle.quote(USDC, at(2025, 12, 3, 11, 30), now=NOW)

    result = asyncio.run(main())
    assert (result.price_usd, result.source, result.coin_id, result.granularity) == (Decimal(1), "stable", None, None)
    assert (result.point_time, result.fetched_at, result.rule) == (at(2025, 12, 3, 11, 30), NOW, "stable_1_usd")


def test_osr_fixed_policy_without_network(replay: ReplayServer) -> None:
    result = run(replay, quote(OSR, at(2025, 12, 3, 11, 30)), osr_fixed_usd=Decimal("0.005"))
    assert (result.price_usd, result.source, result.rule) == (Decimal("0.005"), "fixed", "osr_fixed_rate")
    assert replay.count() == 0
    # 10,000 OSR at 0.005: value 50, bonus 25, credits 75; burn 7,000 OSR, retained 3,000 OSR.
    credit = compute_credit(OSR, 10_000 * 10**9, result.price_usd, osr_bonus=HALF, osr_burn_share=SEVENTY)
    assert (credit.usd_value_micros, credit.bonus_micros, credit.credits_micros) == (50_000_000, 25_000_000, 75_000_000)
    assert (credit.burn_raw, credit.retained_raw) == (7_000 * 10**9, 3_000 * 10**9)


def test_osr_coingecko_policy(replay: ReplayServer) -> None:
    replay.set_series("osr-token", series((at(2025, 12, 3, 11), "0.005")))
    result = run(
        replay, quote(OSR, at(2025, 12, 3, 11, 30)), osr_policy="coingecko", osr_coin_id="osr-token", osr_fixed_usd=None
    )
    assert (result.price_usd, result.coin_id, result.source) == (
        Decimal("0.005"),
        "osr-token",
        "coingecko:market_chart_range",
    )
    assert replay.requests[0].path == "/api/v3/coins/osr-token/market_chart/range"


# --- SOL: latest point at or before the block time ---


def test_sol_latest_point_at_or_before(replay: ReplayServer) -> None:
    replay.set_series("solana", HAND)
    result = run(replay, quote(SOL, at(2025, 12, 3, 11, 30)))
    assert result == Quote(
        asset="SOL",
        price_usd=Decimal("140.25"),
        source="coingecko:market_chart_range",
        coin_id="solana",
        point_time=at(2025, 12, 3, 11),
        granularity="hourly",
        fetched_at=NOW,
        rule="latest_point_at_or_before:max_age_s=7200",
    )
    # 1 SOL at 140.25 = 140.25 USD.
    credit = compute_credit(SOL, 10**9, result.price_usd, osr_bonus=HALF, osr_burn_share=SEVENTY)
    assert credit.credits_micros == 140_250_000
    # The one range call covered the 30-day cell around the block time, from 2 h (max age) before it.
    [request] = replay.requests
    from_s, to_s = int(request.params["from"]), int(request.params["to"])
    cell_start_s = ms(at(2025, 12, 3, 11, 30)) // 1000 // (30 * DAY_S) * (30 * DAY_S)
    assert (from_s, to_s) == (cell_start_s - 7200, cell_start_s + 30 * DAY_S)


def test_a_point_exactly_at_the_block_time_is_used(replay: ReplayServer) -> None:
    replay.set_series("solana", HAND)
    assert run(replay, quote(SOL, at(2025, 12, 3, 12))).price_usd == Decimal("141.00")


def test_missing_point_before_the_block_time(replay: ReplayServer) -> None:
    # The bundled 1 h series starts at 2025-12-03T01:00 (the close of the 00:00 candle).
    replay.set_series("solana", bundled_solana())
    replay.cut("solana", at(2024, 12, 18), at(2024, 12, 18))  # no daily point left before 2025-12
    error = unavailable(replay, quote(SOL, at(2025, 12, 3, 0, 30)))
    assert error.reason == NO_POINT
    assert "SOL (solana) at 2025-12-03T00:30:00Z" in str(error)


def test_cut_points_before_the_block_time(replay: ReplayServer) -> None:
    replay.set_series("solana", HAND)
    replay.cut("solana", at(2025, 12, 3), at(2025, 12, 3, 11, 30))
    assert unavailable(replay, quote(SOL, at(2025, 12, 3, 11, 30))).reason == NO_POINT


def test_stale_point_in_a_real_exchange_gap(replay: ReplayServer) -> None:
    # Binance had no SOL trades 2021-04-25 04:01 -> 08:45 (maintenance). At 08:00 the latest point is the
    # 04:01 close, 3 h 59 min old: older than 2 h, so the deposit waits; at 08:46:30 the 08:46 close is used.
    replay.set_series("solana", load_freqtrade_json(BINANCE_1M_GAPS))

    async def both(oracle: PriceOracle) -> tuple[PriceUnavailable, Quote]:
        with pytest.raises(PriceUnavailable) as caught:
            await oracle.quote(SOL, at(2021, 4, 25, 8), now=NOW)
        return caught.value, await oracle.quote(SOL, at(2021, 4, 25, 8, 46, 30), now=NOW)

    error, fresh = run(replay, both)
    # The hourly reply keeps the first point of each hour: 04:00, the 03:59 candle's close, 4 h old.
    assert error.reason == STALE and "14400 s old (max 7200 s)" in str(error)
    # The hourly reply keeps the first point of each hour: 08:46 (close 41.5317 of the 08:45 candle).
    assert (fresh.point_time, fresh.price_usd) == (at(2021, 4, 25, 8, 46), Decimal("41.5317"))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # The 01:59 candle closes 30.4787 at 02:00; the next trade closes at 04:31 (gap 02:00 -> 04:31).
        (at(2021, 4, 20, 3, 59, 59), "30.4787"),
        (at(2021, 4, 20, 4, 0, 0), "30.4787"),  # exactly 7,200 s old: still acceptable
        (at(2021, 4, 20, 4, 0, 1), None),  # 7,201 s old: stale
    ],
)
def test_max_age_boundary_on_real_data(replay: ReplayServer, when: dt.datetime, expected: str | None) -> None:
    replay.set_series("solana", load_freqtrade_json(BINANCE_1M_GAPS))
    if expected is None:
        assert unavailable(replay, quote(SOL, when)).reason == STALE
    else:
        assert run(replay, quote(SOL, when)).price_usd == Decimal(expected)


def test_configurable_max_age(replay: ReplayServer) -> None:
    replay.set_series("solana", load_freqtrade_json(BINANCE_1M_GAPS))
    # With a 5 h limit the 04:00 point (the 03:59 candle's close 40.9943, 4 h before 08:00) is acceptable;
    # the 04:01 close is not in the hourly reply (first point of each hour only).
    result = run(replay, quote(SOL, at(2021, 4, 25, 8)), max_age_s=5 * 3600)
    assert (result.point_time, result.price_usd) == (at(2021, 4, 25, 4), Decimal("40.9943"))
    assert result.rule == "latest_point_at_or_before:max_age_s=18000"


def test_null_price_is_never_skipped(replay: ReplayServer) -> None:
    replay.set_series("solana", HAND)
    replay.add_fault(Fault(NULL_PRICE, endpoint=MARKET_CHART_RANGE))  # the 12:00 point comes as null
    error = unavailable(replay, quote(SOL, at(2025, 12, 3, 12, 30)))
    assert error.reason == BAD_PRICE  # not the valid 11:00 point, 1.5 h old


def test_zero_price_is_never_used(replay: ReplayServer) -> None:
    replay.set_series("solana", HAND)
    replay.add_fault(Fault("price", endpoint=MARKET_CHART_RANGE, price="0"))
    assert unavailable(replay, quote(SOL, at(2025, 12, 3, 12, 30))).reason == BAD_PRICE


def test_coingecko_failure_is_price_unavailable_never_a_number(replay: ReplayServer) -> None:
    replay.set_series("solana", HAND)
    replay.add_fault(Fault.server_error(500), times=10)
    error = unavailable(replay, quote(SOL, at(2025, 12, 3, 11, 30)), max_attempts=3)
    assert error.reason == COINGECKO_ERROR and isinstance(error.__cause__, CoinGeckoUnavailable)
    assert replay.count() == 3


def test_rate_limit_carries_retry_after(replay: ReplayServer) -> None:
    replay.set_series("solana", HAND)
    replay.add_fault(Fault.rate_limited("119"))
    error = unavailable(replay, quote(SOL, at(2025, 12, 3, 11, 30)))
    assert (error.reason, error.retry_after_s) == (COINGECKO_ERROR, 119)
    assert isinstance(error.__cause__, RateLimited)


def test_a_failed_fetch_is_retried_by_the_next_quote(replay: ReplayServer) -> None:
    replay.set_series("solana", HAND)
    replay.add_fault(Fault.server_error(503), times=3)

    async def twice(oracle: PriceOracle) -> Quote:
        with pytest.raises(PriceUnavailable):
            await oracle.quote(SOL, at(2025, 12, 3, 11, 30), now=NOW)
        return await oracle.quote(SOL, at(2025, 12, 3, 11, 30), now=NOW)

    assert run(replay, twice, max_attempts=3).price_usd == Decimal("140.25")


def test_future_time_is_refused(replay: ReplayServer) -> None:
    replay.set_series("solana", HAND)
    now = at(2025, 12, 3, 11, 30)
    assert unavailable(replay, quote(SOL, now + dt.timedelta(seconds=61), now=now)).reason == FUTURE
    # Up to 60 s ahead (clock skew) is priced with what exists up to now.
    assert run(replay, quote(SOL, now + dt.timedelta(seconds=60), now=now)).price_usd == Decimal("140.25")


def test_no_source_for_an_unknown_market_asset(replay: ReplayServer) -> None:
    bitcoin = Asset(
        "BTC",
        "3NZ9JMVBmGAqocybic2c7LQCJScmgsAZ6vQqTDzcqmJh",
        8,
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        "market",
    )
    assert unavailable(replay, quote(bitcoin, at(2025, 12, 3))).reason == NO_SOURCE
    # Given a coin id, the same asset is priced like SOL (here from the recorded bitcoin reply).
    replay.add_fault(
        Fault.reply(200, (COINGECKO / "coingecko_market_chart_range_bitcoin_usd_2022-08-08.json").read_bytes())
    )
    result = run(replay, quote(bitcoin, at(2022, 8, 8, 17)), market_coin_ids={"BTC": "bitcoin"})
    # The recorded point at 1659974406971 ms (2022-08-08T16:00:06.971Z) is the latest before 17:00.
    assert (result.price_usd, result.coin_id) == (Decimal("23988.969591535944"), "bitcoin")
    assert result.point_time == at(2022, 8, 8, 16, 0, 6) + dt.timedelta(milliseconds=971)


def test_naive_times_are_refused(replay: ReplayServer) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(replay, quote(SOL, dt.datetime(2025, 12, 3, 11, 30)))


@pytest.mark.parametrize(
    "options",
    [
        {"osr_policy": "fixed", "osr_fixed_usd": None},
        {"osr_policy": "fixed", "osr_fixed_usd": Decimal(0)},
        {"osr_policy": "coingecko", "osr_coin_id": None},
        {"osr_policy": "market"},
        {"max_age_s": 0},
        {"cell_s": MAX_RANGE_S + 1},
    ],
)
def test_bad_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        PriceOracle(**options)


# --- live deposits: /simple/price within [block time - max age, block time + 60 s] ---

LIVE_NOW = at(2025, 12, 3, 12, 0, 0)
LIVE = series(
    (at(2025, 12, 3, 8), "130.00"),
    (at(2025, 12, 3, 11), "139.00"),
    (at(2025, 12, 3, 11, 59, 30), "140.25"),
)


def test_live_deposit_uses_simple_price(replay: ReplayServer) -> None:
    replay.set_series("solana", LIVE)
    replay.now = LIVE_NOW
    result = run(replay, quote(SOL, LIVE_NOW, now=LIVE_NOW, live=True))
    assert result == Quote(
        asset="SOL",
        price_usd=Decimal("140.25"),
        source="coingecko:simple_price",
        coin_id="solana",
        point_time=at(2025, 12, 3, 11, 59, 30),
        granularity=None,
        fetched_at=LIVE_NOW,
        rule="live_simple_price:window=-7200s..+60s",
    )
    assert (replay.count(SIMPLE_PRICE), replay.count(MARKET_CHART_RANGE)) == (1, 0)


def test_live_point_younger_than_block_time_plus_60_s_falls_back_to_the_range(replay: ReplayServer) -> None:
    # Seen 10 minutes late: the simple price (11:59:30) is 9.5 min after the block time (11:50): outside the
    # window, so the range rule picks the latest point at or before 11:50, the 11:00 point.
    replay.set_series("solana", LIVE)
    replay.now = LIVE_NOW
    result = run(replay, quote(SOL, at(2025, 12, 3, 11, 50), now=LIVE_NOW, live=True))
    assert (result.source, result.price_usd, result.point_time) == (
        "coingecko:market_chart_range",
        Decimal("139.00"),
        at(2025, 12, 3, 11),
    )
    assert (replay.count(SIMPLE_PRICE), replay.count(MARKET_CHART_RANGE)) == (1, 1)


def test_live_point_within_60_s_after_the_block_time(replay: ReplayServer) -> None:
    replay.set_series("solana", LIVE)
    replay.now = LIVE_NOW
    result = run(replay, quote(SOL, at(2025, 12, 3, 11, 58, 30), now=LIVE_NOW, live=True))
    assert (result.source, result.price_usd) == ("coingecko:simple_price", Decimal("140.25"))


def test_stale_simple_price_falls_back_to_the_range(replay: ReplayServer) -> None:
    # /simple/price reports a point 3 h old (the 08:00 point): older than the block time minus 2 h. The
    # range rule fetches the last day, 5-minutely, where the 11:59:30 point is.
    replay.set_series("solana", LIVE)
    replay.now = LIVE_NOW
    replay.add_fault(Fault(STALE_FAULT, endpoint=SIMPLE_PRICE, age_s=3 * 3600))
    result = run(replay, quote(SOL, LIVE_NOW, now=LIVE_NOW, live=True))
    assert (result.source, result.price_usd, result.granularity) == (
        "coingecko:market_chart_range",
        Decimal("140.25"),
        "5m",
    )
    [request] = [r for r in replay.requests if r.endpoint == MARKET_CHART_RANGE]
    now_s = ms(LIVE_NOW) // 1000
    assert (int(request.params["from"]), int(request.params["to"])) == (now_s - DAY_S, now_s)


def test_stale_everywhere_waits(replay: ReplayServer) -> None:
    replay.set_series("solana", series((at(2025, 12, 3, 8), "130.00")))
    replay.now = LIVE_NOW
    error = unavailable(replay, quote(SOL, LIVE_NOW, now=LIVE_NOW, live=True))
    assert error.reason == STALE


def test_failing_simple_price_falls_back_to_the_range(replay: ReplayServer) -> None:
    replay.set_series("solana", LIVE)
    replay.now = LIVE_NOW
    replay.add_fault(Fault.server_error(500, endpoint=SIMPLE_PRICE), times=3)
    result = run(replay, quote(SOL, LIVE_NOW, now=LIVE_NOW, live=True), max_attempts=3)
    assert (result.source, result.price_usd) == ("coingecko:market_chart_range", Decimal("140.25"))


def test_simple_price_is_reused_for_30_s(replay: ReplayServer) -> None:
    replay.set_series("solana", LIVE)
    replay.now = LIVE_NOW

    async def burst(oracle: PriceOracle) -> list[Quote]:
        moments = [LIVE_NOW, LIVE_NOW + dt.timedelta(seconds=20), LIVE_NOW + dt.timedelta(seconds=31)]
        return [await oracle.quote(SOL, moment, now=moment, live=True) for moment in moments]

    quotes = run(replay, burst)
    assert [q.source for q in quotes] == ["coingecko:simple_price"] * 3
    assert [q.fetched_at for q in quotes] == [LIVE_NOW, LIVE_NOW, LIVE_NOW + dt.timedelta(seconds=31)]
    assert replay.count(SIMPLE_PRICE) == 2


# --- the cache: a backfill makes few calls ---


def _backfill_times() -> list[dt.datetime]:
    # 1,000 deposits from 2025-12-03T02:00 to about 2026-02-01T09:30, every 5,131 s plus a few seconds.
    start = at(2025, 12, 3, 2)
    return [start + dt.timedelta(seconds=i * 5131 + i * 37 % 60) for i in range(1000)]


def _expected_close(rows: list[list[Any]], when: dt.datetime) -> Decimal:
    """Independently of the loader: the close of the last 1 h candle closed at or before `when`."""
    when_ms = ms(when)
    closes = [row[4] for row in rows if row[0] + 3_600_000 <= when_ms]
    return Decimal(closes[-1])


def test_backfill_of_1000_deposits_over_60_days_makes_few_calls(replay: ReplayServer) -> None:
    replay.set_series("solana", bundled("sol_usdt_binance_1h_close_2025-12-03_2026-02-01.csv"))
    times = _backfill_times()
    rows = json.loads(BINANCE_1H.read_text(), parse_float=Decimal)

    async def backfill(oracle: PriceOracle) -> list[Quote]:
        return [await oracle.quote(SOL, when, now=NOW) for when in times]

    quotes = run(replay, backfill)
    # One call per 30-day cell touched: 2025-11-08.., 2025-12-08.., 2026-01-07.. -> 3 range calls.
    assert replay.count(MARKET_CHART_RANGE) == 3
    spot = [0, 1, 2, 499, 998, 999]
    assert [quotes[i].price_usd for i in spot] == [_expected_close(rows, times[i]) for i in spot]
    assert all(q.price_usd == _expected_close(rows, when) for q, when in zip(quotes, times, strict=True))
    assert all(0 <= (when - q.point_time).total_seconds() <= 3600 for q, when in zip(quotes, times, strict=True))
    # The first deposit, 2025-12-03T02:00: the 01:00-02:00 candle closed 138.87 at 02:00.
    assert (quotes[0].point_time, quotes[0].price_usd) == (at(2025, 12, 3, 2), Decimal("138.87"))


def test_prefetch_then_quotes_make_one_call(replay: ReplayServer) -> None:
    replay.set_series("solana", bundled("sol_usdt_binance_1h_close_2025-12-03_2026-02-01.csv"))
    times = _backfill_times()

    async def backfill(oracle: PriceOracle) -> tuple[int, list[Quote]]:
        calls = await oracle.prefetch(SOL, times[0], times[-1], now=NOW)
        return calls, [await oracle.quote(SOL, when, now=NOW) for when in times]

    calls, quotes = run(replay, backfill)
    assert calls == 1 and replay.count() == 1
    [request] = replay.requests
    # From the first deposit minus the 2 h maximum age to the last deposit: about 59 days, one chunk.
    assert int(request.params["from"]) == ms(times[0]) // 1000 - 7200
    assert int(request.params["to"]) == ms(times[-1]) // 1000
    assert all(q.granularity == "hourly" and q.fetched_at == NOW for q in quotes)


def test_prefetch_of_years_uses_chunks_of_at_most_90_days(replay: ReplayServer) -> None:
    replay.set_series("solana", bundled_solana())
    start, end = at(2020, 4, 11), at(2024, 12, 18)

    async def warm(oracle: PriceOracle) -> tuple[int, int, Quote]:
        first = await oracle.prefetch(SOL, start, end, now=NOW)
        again = await oracle.prefetch(SOL, start, end, now=NOW)
        return first, again, await oracle.quote(SOL, at(2022, 6, 3, 1, 30), now=NOW)

    calls, again, result = run(replay, warm)
    ranges = [(int(r.params["from"]), int(r.params["to"])) for r in replay.requests]
    # 1,712 days + 2 h (max age) in chunks of at most 90 days: 20 chunks, each sharing its boundary
    # second with the next, from 2020-04-10T22:00 to 2024-12-18T00:00.
    assert (calls, again, len(ranges)) == (20, 0, 20)
    assert all(to_s - from_s <= 90 * DAY_S for from_s, to_s in ranges)
    assert ranges[0][0] == ms(start) // 1000 - 7200 and ranges[-1][1] == ms(end) // 1000
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
    # The daily CoinGecko point of 2022-06-03 00:00 is 1.5 h before 01:30: from the cache, no new call.
    assert (result.price_usd, result.point_time) == (Decimal("40.889861237118055"), at(2022, 6, 3))
    assert replay.count() == 20


def test_granularity_of_the_point_used_is_stored(replay: ReplayServer) -> None:
    # Binance 5 m closes; the server's and the oracle's clock at 2023-01-07T12:00.
    now = at(2023, 1, 7, 12)
    replay.set_series("solana", load_binance_csv(BINANCE_5M))
    replay.now = now

    async def both(oracle: PriceOracle) -> tuple[Quote, Quote]:
        await oracle.prefetch(SOL, at(2023, 1, 1), now - dt.timedelta(hours=12), now=now)
        older = await oracle.quote(SOL, at(2023, 1, 6, 11, 57, 30), now=now)
        recent = await oracle.quote(SOL, at(2023, 1, 7, 11, 57, 30), now=now)
        return older, recent

    older, recent = run(replay, both)
    # Hourly reply: the first point of the 11:00 hour is the 10:55 candle's close 13.02 at 11:00.
    assert (older.granularity, older.point_time, older.price_usd) == ("hourly", at(2023, 1, 6, 11), Decimal("13.02"))
    # The last 12 h are fetched as one day from now: 5-minutely; the 11:50 candle closed 13.16 at 11:55.
    assert (recent.granularity, recent.point_time, recent.price_usd) == ("5m", at(2023, 1, 7, 11, 55), Decimal("13.16"))
    assert replay.count() == 2


def test_concurrent_quotes_share_one_fetch(replay: ReplayServer) -> None:
    replay.set_series("solana", bundled("sol_usdt_binance_1h_close_2025-12-03_2026-02-01.csv"))
    times = _backfill_times()[:50]

    async def together(oracle: PriceOracle) -> list[Quote]:
        return list(await asyncio.gather(*(oracle.quote(SOL, when, now=NOW) for when in times)))

    quotes = run(replay, together)
    assert len(quotes) == 50 and replay.count() == 1  # the first 50 deposits lie in one 30-day cell


def test_cache_is_bounded(replay: ReplayServer) -> None:
    replay.set_series("solana", PriceSeries.merge(HAND, series((at(2025, 6, 1), "150.00"))))

    async def three(oracle: PriceOracle) -> list[Quote]:
        moments = [at(2025, 12, 3, 11, 30), at(2025, 6, 1, 1), at(2025, 12, 3, 12, 30)]
        return [await oracle.quote(SOL, moment, now=NOW) for moment in moments]

    # At most 2 points kept: the June fetch drops December, which is fetched again for the third quote.
    quotes = run(replay, three, max_cached_points=2)
    assert [q.price_usd for q in quotes] == [Decimal("140.25"), Decimal("150.00"), Decimal("141.00")]
    assert replay.count() == 3
