"""Loaders of recorded price series and the bundled SOL data."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from pricing.errors import PricingError, SeriesFormatError
from pricing.rules import Point
from pricing.series import (
    BUNDLED_BINANCE_1H,
    BUNDLED_COINGECKO_DAILY,
    PriceSeries,
    bundled,
    bundled_solana,
    dump_points_csv,
    load_binance_csv,
    load_coingecko_csv,
    load_freqtrade_json,
    load_points_csv,
)

PRICES = Path(__file__).parent / "data" / "prices"
COINGECKO_DAILY = PRICES / "coingecko_export_sol_usd_max_daily_2020-04-11_2024-12-18.csv"
BINANCE_1H = PRICES / "binance_sol_usdt_1h_2025-12-03_2026-02-01_freqtrade.json"
BINANCE_1M_GAPS = PRICES / "binance_sol_usdt_1m_2021-04-18_2021-04-26_freqtrade_with_gaps.json"
BINANCE_5M_CSV = PRICES / "binance_sol_usdt_5m_2023-01-01_2023-01-07_head.csv"


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()) * 1000


def test_coingecko_export() -> None:
    series = load_coingecko_csv(COINGECKO_DAILY)
    # 1,713 rows, one a day at 00:00 UTC from 2020-04-11 to 2024-12-18 (1,712 days apart).
    assert len(series) == 1713
    assert (dt.date(2024, 12, 18) - dt.date(2020, 4, 11)).days == 1712
    # First row: "2020-04-11 00:00:00 UTC,0.9576058280146803,…" = 18,363 days after 1970-01-01.
    assert next(iter(series)) == Point(18_363 * 86_400_000, Decimal("0.9576058280146803"))
    assert next(iter(series)).time_ms == ms(2020, 4, 11)
    # Last row: "2024-12-18 00:00:00 UTC,222.74032965988914,…".
    assert list(series)[-1] == Point(ms(2024, 12, 18), Decimal("222.74032965988914"))


def test_freqtrade_candles_become_closes_at_close_time() -> None:
    series = load_freqtrade_json(BINANCE_1H)
    # First candle [1764720000000, 138.67, 138.95, 137.76, 138.16, …]: open 2025-12-03T00:00Z, close 138.16
    # at 01:00 (open + 1 h). Last [1769940000000, …, 103.75, …] closes at 1769943600000.
    assert len(series) == 1451
    assert next(iter(series)) == Point(1_764_720_000_000 + 3_600_000, Decimal("138.16"))
    assert list(series)[-1] == Point(1_769_940_000_000 + 3_600_000, Decimal("103.75"))
    assert series.at_or_before(ms(2025, 12, 3, 1, 30)) == Point(ms(2025, 12, 3, 1), Decimal("138.16"))
    assert series.at_or_before(ms(2025, 12, 3, 0, 59)) is None


def test_candle_length_is_read_despite_real_gaps() -> None:
    series = load_freqtrade_json(BINANCE_1M_GAPS)
    # The 1-minute candle opened 2021-04-20 01:59 closes 30.4787 at 02:00; the next one opened at 04:30
    # (a 9,060 s exchange gap) and closes 30.2953 at 04:31.
    assert series.at_or_before(ms(2021, 4, 20, 4, 30)) == Point(ms(2021, 4, 20, 2), Decimal("30.4787"))
    assert series.at_or_before(ms(2021, 4, 20, 4, 31)) == Point(ms(2021, 4, 20, 4, 31), Decimal("30.2953"))


def test_binance_csv() -> None:
    series = load_binance_csv(BINANCE_5M_CSV)
    # "2023-01-01 00:00:00,9.97,10.02,9.95,10.0,…" closes 10.0 at 00:05 UTC; 2,016 candles.
    assert len(series) == 2016
    assert next(iter(series)) == Point(ms(2023, 1, 1, 0, 5), Decimal("10.0"))
    # "2023-01-07 23:55:00,13.11,13.11,13.09,13.1,…" closes 13.1 at 2023-01-08 00:00.
    assert list(series)[-1] == Point(ms(2023, 1, 8), Decimal("13.1"))


def test_points_csv_round_trip_and_series_helpers() -> None:
    series = PriceSeries([(3, Decimal("1.5E-7")), (1, Decimal("2")), (2, Decimal("3.25"))])
    text = dump_points_csv(series)
    assert text == "time_ms,price_usd\n1,2\n2,3.25\n3,0.00000015\n"
    assert load_points_csv(text.encode()) == series
    assert series.between(2, 3) == [Point(2, Decimal("3.25")), Point(3, Decimal("1.5E-7"))]
    assert list(series.without(2, 2)) == [Point(1, Decimal(2)), Point(3, Decimal("1.5E-7"))]
    merged = PriceSeries.merge(series, PriceSeries([(3, Decimal(9)), (4, Decimal(10))]))
    assert [p.price for p in merged] == [Decimal(2), Decimal("3.25"), Decimal(9), Decimal(10)]
    assert (merged.first_ms, merged.last_ms) == (1, 4)
    with pytest.raises(ValueError, match="null"):
        dump_points_csv(PriceSeries([(1, None)]))


def test_bundled_series_are_the_recorded_ones() -> None:
    # The bundled compact files hold exactly the points of the fixtures they were made from.
    assert bundled(BUNDLED_COINGECKO_DAILY) == load_coingecko_csv(COINGECKO_DAILY)
    assert bundled(BUNDLED_BINANCE_1H) == load_freqtrade_json(BINANCE_1H)
    solana = bundled_solana()
    assert len(solana) == 1713 + 1451
    assert solana.at_or_before(ms(2024, 12, 18, 12)) == Point(ms(2024, 12, 18), Decimal("222.74032965988914"))
    assert solana.at_or_before(ms(2025, 12, 3, 1)) == Point(ms(2025, 12, 3, 1), Decimal("138.16"))


def test_bundled_data_is_package_data_and_small() -> None:
    data = resources.files("pricing").joinpath("data")
    sizes = {entry.name: len(entry.read_bytes()) for entry in data.iterdir() if entry.name.endswith(".csv")}
    assert set(sizes) == {BUNDLED_COINGECKO_DAILY, BUNDLED_BINANCE_1H}
    assert sum(sizes.values()) < 2_000_000
    assert "stand in for CoinGecko" in data.joinpath("README.md").read_text()


@pytest.mark.parametrize(
    ("loader", "content", "message"),
    [
        (load_coingecko_csv, b"date,close\n", "CoinGecko export header"),
        (load_coingecko_csv, b"snapped_at,price\n2020-04-11,1\n", "line 2: bad snapped_at"),
        (load_coingecko_csv, b"snapped_at,price\n2020-04-11 00:00:00 UTC,abc\n", "line 2: not a number"),
        (load_freqtrade_json, b"{}", "array of candles"),
        (load_freqtrade_json, b"[[1, 2, 3]]", "candle 0"),
        (load_freqtrade_json, b"[[1, 2, 3, 4, 5, 6]]", "fewer than two candles"),
        (load_freqtrade_json, b"[[1,2,3,4,null,6],[2,2,3,4,5,6]]", "close is not a number"),
        (load_freqtrade_json, b"not json", "not JSON"),
        (load_binance_csv, b"time,price\n", "timestamp,open"),
        (load_binance_csv, b"timestamp,open,high,low,close,volume\nyesterday,1,1,1,1,1\n", "line 2"),
        (load_points_csv, b"ms,price\n", "header"),
        (load_points_csv, b"time_ms,price_usd\n1,NaN\n", "line 2: not a finite number"),
        (load_points_csv, b"time_ms,price_usd\nabc\n", "line 2"),
    ],
)
def test_bad_files_are_refused_naming_the_line(loader: object, content: bytes, message: str) -> None:
    with pytest.raises(SeriesFormatError, match=message) as caught:
        loader(content)  # type: ignore[operator]
    assert isinstance(caught.value, PricingError) and isinstance(caught.value, ValueError)


def test_raw_fixture_agrees_with_loader_on_every_candle() -> None:
    # Independent of the loader: each freqtrade row [open_ms, o, h, l, c, v] is a point (open + 1 h, c).
    rows = json.loads(BINANCE_1H.read_text(), parse_float=Decimal)
    series = load_freqtrade_json(BINANCE_1H)
    assert [(p.time_ms, p.price) for p in series] == [(row[0] + 3_600_000, row[4]) for row in rows]
