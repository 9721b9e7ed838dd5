"""The loopback CoinGecko itself: CoinGecko's granularity by range length, its replies, its faults."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from pricing.replay import MARKET_CHART_RANGE, SIMPLE_PRICE, STALE, Fault, ReplayServer
from pricing.series import load_binance_csv
from tests.pricing_helpers import PRICES, at, ms, series, serving

NOW = at(2023, 1, 7, 12)
FIVE_MINUTE = load_binance_csv(PRICES / "binance_sol_usdt_5m_2023-01-01_2023-01-07_head.csv")


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    yield from serving()


def get(server: ReplayServer, path: str, **params: str) -> httpx.Response:
    return httpx.get(server.url + path, params=params, timeout=5)


def prices(server: ReplayServer, from_time: dt.datetime, to_time: dt.datetime) -> list[list[object]]:
    reply = get(
        server,
        "/coins/solana/market_chart/range",
        vs_currency="usd",
        **{"from": str(ms(from_time) // 1000), "to": str(ms(to_time) // 1000)},
    )
    assert reply.status_code == 200
    body = json.loads(reply.content, parse_float=Decimal)
    assert set(body) == {"prices", "market_caps", "total_volumes"}
    result: list[list[object]] = body["prices"]
    return result


@pytest.fixture
def five_minute(replay: ReplayServer) -> ReplayServer:
    replay.set_series("solana", FIVE_MINUTE)
    replay.now = NOW
    return replay


def test_one_day_from_now_is_five_minutely(five_minute: ReplayServer) -> None:
    # 2023-01-06T12:00 .. 2023-01-07T12:00: one point every 5 minutes, both ends included: 24 × 12 + 1.
    points = prices(five_minute, NOW - dt.timedelta(days=1), NOW)
    assert len(points) == 289
    # The 11:50 candle closed 13.16 at 11:55 ("2023-01-07 11:50:00,13.17,13.17,13.16,13.16,…").
    assert points[-2] == [ms(at(2023, 1, 7, 11, 55)), Decimal("13.16")]


def test_one_day_not_from_now_is_hourly(five_minute: ReplayServer) -> None:
    # 2023-01-03 00:00 .. 2023-01-04 00:00, three days before now: hourly, 25 points.
    points = prices(five_minute, at(2023, 1, 3), at(2023, 1, 4))
    assert len(points) == 25
    assert [p[0] for p in points[:2]] == [ms(at(2023, 1, 3)), ms(at(2023, 1, 3, 1))]


def test_up_to_90_days_is_hourly(five_minute: ReplayServer) -> None:
    # 2023-01-01 .. now: the first point is the 00:00 candle's close at 00:05 (first of hour 00), then
    # 01:00, 02:00, …, 2023-01-07T12:00: 1 + 6 × 24 + 12 = 157 points.
    points = prices(five_minute, at(2023, 1, 1), NOW)
    assert points[0] == [ms(at(2023, 1, 1, 0, 5)), Decimal("10.0")]
    assert points[1][0] == ms(at(2023, 1, 1, 1))
    assert len(points) == 157


def test_beyond_90_days_is_daily(five_minute: ReplayServer) -> None:
    # 2022-10-01 .. now (98.5 days): daily; the recording starts 2023-01-01 00:05, then 2023-01-02 00:00 …
    # 2023-01-07 00:00: 7 points.
    points = prices(five_minute, at(2022, 10, 1), NOW)
    assert [p[0] for p in points] == [ms(at(2023, 1, 1, 0, 5))] + [ms(at(2023, 1, day)) for day in range(2, 8)]


def test_simple_price_is_the_latest_point_at_now(five_minute: ReplayServer) -> None:
    reply = get(five_minute, "/simple/price", ids="solana,bitcoin", vs_currencies="usd", include_last_updated_at="true")
    # The 11:55 candle closed 13.15 at 12:00; bitcoin is unknown here and left out.
    assert reply.content == b'{"solana":{"usd":13.15,"last_updated_at":1673092800}}'
    assert ms(NOW) // 1000 == 1_673_092_800
    plain = get(five_minute, "/simple/price", ids="solana", vs_currencies="usd")
    assert plain.content == b'{"solana":{"usd":13.15}}'
    five_minute.add_fault(Fault(STALE, endpoint=SIMPLE_PRICE, age_s=3600))
    stale = get(five_minute, "/simple/price", ids="solana", vs_currencies="usd", include_last_updated_at="true")
    # An hour earlier: the 10:55 candle closed 13.17 at 11:00 ("2023-01-07 10:55:00,13.18,13.19,13.17,13.17,…").
    assert stale.json()["solana"]["last_updated_at"] == 1_673_089_200


def test_unknown_coin_and_bad_parameters(replay: ReplayServer) -> None:
    missing = get(replay, "/coins/dogwifhat/market_chart/range", vs_currency="usd", **{"from": "1", "to": "2"})
    assert (missing.status_code, missing.content) == (404, b'{"error":"coin not found"}')
    replay.set_series("solana", FIVE_MINUTE)
    bad = get(replay, "/coins/solana/market_chart/range", vs_currency="usd", **{"from": "x", "to": "2"})
    assert bad.status_code == 400
    iso = get(
        replay,
        "/coins/solana/market_chart/range",
        vs_currency="usd",
        **{"from": "2023-01-02", "to": "2023-01-02T01:00"},
    )
    assert iso.status_code == 200 and len(iso.json()["prices"]) == 2  # 00:00 and 01:00 (hourly: not near now)
    assert get(replay, "/ping").json() == {"gecko_says": "(V3) To the Moon!"}
    assert get(replay, "/nothing").status_code == 404


def test_faults_are_taken_in_order_and_by_endpoint(five_minute: ReplayServer) -> None:
    five_minute.add_fault(Fault.server_error(502, endpoint=MARKET_CHART_RANGE))
    five_minute.add_fault(Fault.rate_limited("7"), times=2)
    first = get(five_minute, "/simple/price", ids="solana", vs_currencies="usd")  # the range fault is skipped
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert first.json()["status"]["error_code"] == 429
    second = get(five_minute, "/coins/solana/market_chart/range", vs_currency="usd", **{"from": "1", "to": "2"})
    assert second.status_code == 502
    third = get(five_minute, "/simple/price", ids="solana", vs_currencies="usd")
    assert third.status_code == 429
    assert get(five_minute, "/simple/price", ids="solana", vs_currencies="usd").status_code == 200
    assert five_minute.count(SIMPLE_PRICE) == 3 and five_minute.count(MARKET_CHART_RANGE) == 1
    five_minute.add_fault(Fault.server_error())
    five_minute.clear_faults()
    assert get(five_minute, "/simple/price", ids="solana", vs_currencies="usd").status_code == 200
    with pytest.raises(ValueError):
        Fault("meteor")
    with pytest.raises(ValueError):
        five_minute.add_fault(Fault.server_error(), times=0)


def test_cut_makes_a_gap(five_minute: ReplayServer) -> None:
    five_minute.cut("solana", at(2023, 1, 7, 10, 1), at(2023, 1, 7, 12))
    points = prices(five_minute, NOW - dt.timedelta(hours=3), NOW)
    assert points[-1][0] == ms(at(2023, 1, 7, 10))
    assert len(five_minute.series("solana")) == 2016 - 24  # 10:05 … 12:00: 24 five-minute closes cut


def test_hand_made_null_points_are_served_as_null(replay: ReplayServer) -> None:
    replay.set_series("solana", series((at(2023, 1, 1), None), (at(2023, 1, 1, 1), "1.5E-7")))
    points = prices(replay, at(2023, 1, 1), at(2023, 1, 1, 1))
    assert points == [[ms(at(2023, 1, 1)), None], [ms(at(2023, 1, 1, 1)), Decimal("0.00000015")]]


def test_naive_times_are_refused(replay: ReplayServer) -> None:
    replay.set_series("solana", FIVE_MINUTE)
    with pytest.raises(ValueError):
        replay.cut("solana", dt.datetime(2023, 1, 1), dt.datetime(2023, 1, 2))


def test_module_serves_the_bundled_series() -> None:
    command = [sys.executable, "-m", "pricing.replay", "--now", "2026-01-15T12:00:00"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("CoinGecko replay on http://127.0.0.1:")
            url = line.split(" on ", 1)[1].strip()
            reply = httpx.get(url + "/simple/price", params={"ids": "solana", "vs_currencies": "usd"}, timeout=5)
            # Bundled Binance 1 h: the 2026-01-15 11:00 candle [1768474800000, 145.42, 145.69, 144.82, 144.86, …]
            # closes 144.86 at 12:00.
            assert reply.content == b'{"solana":{"usd":144.86}}'
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
