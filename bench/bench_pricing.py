"""Pricing: credit arithmetic, decoding a CoinGecko range reply exactly, and a backfill's quotes.

- `compute_credit` per call (SOL and OSR), exact integer arithmetic.
- Decoding a 90-day hourly `/market_chart/range` reply (what one backfill chunk returns) into exact
  Decimals: the adapter's msgspec decoder beside `json.loads(parse_float=Decimal)`, and `orjson.loads`
  (floats, not usable for money) as the floor.
- A backfill against the loopback CoinGecko (real HTTP on 127.0.0.1, bundled Binance 1 h series):
  10,000 deposits over ~59 days, with `prefetch` and without, counting range calls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import timeit
from decimal import Decimal

import orjson
import structlog

from bench.report import write_section
from pricing.assets import DEFAULT_ASSETS
from pricing.coingecko import _RANGE_DECODER
from pricing.credit import compute_credit
from pricing.oracle import PriceOracle
from pricing.replay import MARKET_CHART_RANGE, ReplayServer
from pricing.series import BUNDLED_BINANCE_1H, bundled_solana

ASSETS = {asset.symbol: asset for asset in DEFAULT_ASSETS}
HALF, SEVENTY = Decimal("0.5"), Decimal("0.7")
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
DEPOSITS = 10_000


def _best_us(function: object, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6  # type: ignore[arg-type]


def _range_reply(points: int) -> bytes:
    # A real-looking hourly reply: CoinGecko's full-precision floats, as text.
    start_ms = 1_764_720_000_000
    prices = ",".join(f"[{start_ms + i * 3_600_000},{138.16 + i * 0.0137:.14f}]" for i in range(points))
    return f'{{"prices":[{prices}],"market_caps":[],"total_volumes":[]}}'.encode()


def _deposit_times(count: int) -> list[dt.datetime]:
    start = dt.datetime(2025, 12, 3, 2, tzinfo=dt.UTC)
    span_s = int((dt.datetime(2026, 2, 1, 10, tzinfo=dt.UTC) - start).total_seconds())
    return [start + dt.timedelta(seconds=i * span_s // count) for i in range(count)]


async def _backfill(url: str, times: list[dt.datetime], *, prefetch: bool) -> tuple[float, float, int]:
    sol = ASSETS["SOL"]
    async with PriceOracle(coingecko_url=url) as oracle:
        started = time.perf_counter()
        if prefetch:
            await oracle.prefetch(sol, times[0], times[-1], now=NOW)
        fetched = time.perf_counter()
        for when in times:
            await oracle.quote(sol, when, now=NOW)
        done = time.perf_counter()
        return fetched - started, done - fetched, oracle.range_calls


def run() -> None:
    # The oracle logs each fetch at debug level: not part of the measurement's output.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sol, osr = ASSETS["SOL"], ASSETS["OSR"]
    sol_us = _best_us(
        lambda: compute_credit(sol, 1_234_567_891, Decimal("140.123456789"), osr_bonus=HALF, osr_burn_share=SEVENTY),
        20_000,
    )
    osr_us = _best_us(
        lambda: compute_credit(osr, 10**13, Decimal("0.005"), osr_bonus=HALF, osr_burn_share=SEVENTY), 20_000
    )

    reply = _range_reply(90 * 24 + 1)
    msgspec_us = _best_us(lambda: _RANGE_DECODER.decode(reply), 50)
    stdlib_us = _best_us(lambda: json.loads(reply, parse_float=Decimal), 50)
    orjson_us = _best_us(lambda: orjson.loads(reply), 50)

    times = _deposit_times(DEPOSITS)
    with ReplayServer({"solana": bundled_solana()}) as server:
        warm_fetch_s, warm_quotes_s, warm_calls = asyncio.run(_backfill(server.url, times, prefetch=True))
        warm_requests = server.count(MARKET_CHART_RANGE)
        server.clear_requests()
        _, cold_quotes_s, cold_calls = asyncio.run(_backfill(server.url, times, prefetch=False))
        cold_requests = server.count(MARKET_CHART_RANGE)

    lines = [
        "| measure | result |",
        "|---|---:|",
        f"| `compute_credit`, SOL (price with 9 decimals) | {sol_us:.2f} µs / call |",
        f"| `compute_credit`, OSR (bonus and burn split) | {osr_us:.2f} µs / call |",
        f"| decode a 90-day hourly range reply ({90 * 24 + 1:,} points, {len(reply):,} bytes), msgspec → Decimal "
        f"| {msgspec_us / 1000:.2f} ms |",
        f"| same, `json.loads(parse_float=Decimal)` | {stdlib_us / 1000:.2f} ms |",
        f"| same, `orjson.loads` (floats: not usable for money; the floor) | {orjson_us / 1000:.2f} ms |",
        f"| backfill of {DEPOSITS:,} SOL deposits over 59 days with `prefetch`: range calls (HTTP requests) "
        f"| {warm_calls} ({warm_requests}) |",
        f"| — prefetch (one 59-day chunk over loopback HTTP) | {warm_fetch_s * 1000:.1f} ms |",
        f"| — {DEPOSITS:,} quotes from the cache | {warm_quotes_s * 1000:.1f} ms "
        f"({DEPOSITS / warm_quotes_s:,.0f} quotes / s) |",
        f"| same backfill without `prefetch` (30-day cells): range calls (HTTP requests) "
        f"| {cold_calls} ({cold_requests}) |",
        f"| — {DEPOSITS:,} quotes, fetches included | {cold_quotes_s * 1000:.1f} ms |",
        "",
        f"Series: the bundled `{BUNDLED_BINANCE_1H}` served by `pricing.replay` on 127.0.0.1. "
        "The issue sets no speed target; these figures show that a backfill's prices cost a handful of range "
        "calls, and that the adapter's typed decoder (which also checks the reply's shape) yields exact "
        "decimals at about the cost of the stdlib's untyped one: about 1 ms per 90-day chunk.",
    ]
    body = "\n".join(lines)
    write_section("pricing", "Pricing (issue 4)", body)
    print(body)
