"""Recorded price series: loaders for the formats in ../shared/fixtures/prices and the bundled data.

A `PriceSeries` is a sorted list of (time in ms, exact Decimal price) points, what CoinGecko's
`market_chart` returns in `prices`. Loaders:

- `load_coingecko_csv`: CoinGecko's "download CSV" export (`snapped_at,price,market_cap,total_volume`,
  `2020-04-11 00:00:00 UTC`): one point per row.
- `load_freqtrade_json`: freqtrade OHLCV `[[ms, open, high, low, close, volume], ...]` (Binance candles).
- `load_binance_csv`: `timestamp,open,high,low,close,volume` with naive UTC times (ccxt downloads).
- `load_points_csv` / `dump_points_csv`: the compact `ms,price` format of the bundled files.

Candles become the close price at the candle's close time (open time + candle length, the length being
the most common spacing of the file): a price stamped with its open time would be a price from the future.

Bundled (package data in pricing/data, see its README.md): the CoinGecko daily SOL/USD export
2020-04-11..2024-12-18 and Binance SOL/USDT 1 h closes 2025-12-03..2026-02-01, which stand in for
CoinGecko USD points in the demo.
"""

from __future__ import annotations

import bisect
import collections
import csv
import datetime as dt
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Final

from pricing.credit import decimal_text
from pricing.errors import SeriesFormatError
from pricing.rules import Point

BUNDLED_COINGECKO_DAILY: Final = "sol_usd_coingecko_daily_2020-04-11_2024-12-18.csv"
BUNDLED_BINANCE_1H: Final = "sol_usdt_binance_1h_close_2025-12-03_2026-02-01.csv"


class PriceSeries:
    """Price points sorted by time, one per millisecond timestamp."""

    __slots__ = ("prices", "times_ms")

    def __init__(self, points: Iterable[Point | tuple[int, Decimal | None]]) -> None:
        by_time: dict[int, Decimal | None] = {}
        for time_ms, price in points:
            by_time[int(time_ms)] = price
        self.times_ms: list[int] = sorted(by_time)
        self.prices: list[Decimal | None] = [by_time[t] for t in self.times_ms]

    def __len__(self) -> int:
        return len(self.times_ms)

    def __iter__(self) -> Iterator[Point]:
        return (Point(t, p) for t, p in zip(self.times_ms, self.prices, strict=True))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PriceSeries) and (self.times_ms, self.prices) == (other.times_ms, other.prices)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container: not hashable

    def between(self, from_ms: int, to_ms: int) -> list[Point]:
        """The points with from_ms <= time <= to_ms."""
        low = bisect.bisect_left(self.times_ms, from_ms)
        high = bisect.bisect_right(self.times_ms, to_ms)
        return [Point(self.times_ms[i], self.prices[i]) for i in range(low, high)]

    def at_or_before(self, time_ms: int) -> Point | None:
        index = bisect.bisect_right(self.times_ms, time_ms) - 1
        return Point(self.times_ms[index], self.prices[index]) if index >= 0 else None

    def without(self, from_ms: int, to_ms: int) -> PriceSeries:
        """A copy with the points from_ms <= time <= to_ms removed (a gap, as exchanges have)."""
        return PriceSeries(p for p in self if not from_ms <= p.time_ms <= to_ms)

    @staticmethod
    def merge(*series: PriceSeries) -> PriceSeries:
        """One series of all points; where two share a time, the later argument wins."""
        return PriceSeries(point for one in series for point in one)

    @property
    def first_ms(self) -> int:
        return self.times_ms[0]

    @property
    def last_ms(self) -> int:
        return self.times_ms[-1]


def _decimal(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise SeriesFormatError(f"{where}: not a number: {text!r}") from None
    if not value.is_finite():
        raise SeriesFormatError(f"{where}: not a finite number: {text!r}")
    return value


def _utc_ms(moment: dt.datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    delta = moment.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _text(source: str | Path | bytes) -> str:
    if isinstance(source, bytes):
        return source.decode()
    return Path(source).read_text()


def load_coingecko_csv(source: str | Path | bytes) -> PriceSeries:
    """CoinGecko's CSV export: `snapped_at,price,market_cap,total_volume`, times like `2020-04-11 00:00:00 UTC`."""
    rows = csv.reader(io.StringIO(_text(source)))
    header = next(rows, None)
    if header is None or [h.strip() for h in header[:2]] != ["snapped_at", "price"]:
        raise SeriesFormatError(f"line 1: expected a CoinGecko export header, got {header!r}")
    points = []
    for number, row in enumerate(rows, start=2):
        if not row:
            continue
        where = f"line {number}"
        try:
            moment = dt.datetime.strptime(row[0].strip(), "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=dt.UTC)
        except (ValueError, IndexError):
            raise SeriesFormatError(f"{where}: bad snapped_at {row[:1]!r}") from None
        if len(row) < 2:
            raise SeriesFormatError(f"{where}: no price")
        points.append(Point(_utc_ms(moment), _decimal(row[1], where)))
    return PriceSeries(points)


def _candle_ms(open_times_ms: Sequence[int]) -> int:
    """The candle length: the most common spacing of consecutive open times (gaps are rarer)."""
    spacings = collections.Counter(b - a for a, b in itertools.pairwise(open_times_ms))
    if not spacings:
        raise SeriesFormatError("fewer than two candles: cannot tell the candle length")
    return spacings.most_common(1)[0][0]


def _closes(candles: Sequence[tuple[int, Decimal]]) -> PriceSeries:
    length_ms = _candle_ms([open_ms for open_ms, _ in candles])
    return PriceSeries(Point(open_ms + length_ms, close) for open_ms, close in candles)


def load_freqtrade_json(source: str | Path | bytes) -> PriceSeries:
    """freqtrade OHLCV JSON `[[ms, open, high, low, close, volume], ...]`: closes at close time."""
    try:
        rows = json.loads(_text(source), parse_float=Decimal, parse_int=int)
    except json.JSONDecodeError as exc:
        raise SeriesFormatError(f"not JSON: {exc}") from None
    if not isinstance(rows, list):
        raise SeriesFormatError("expected a JSON array of candles")
    candles = []
    for number, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) >= 5 and isinstance(row[0], int)):
            raise SeriesFormatError(f"candle {number}: expected [ms, open, high, low, close, ...], got {row!r}")
        close = row[4]
        if isinstance(close, bool) or not isinstance(close, int | Decimal):
            raise SeriesFormatError(f"candle {number}: close is not a number: {close!r}")
        candles.append((row[0], Decimal(close)))
    return _closes(candles)


def load_binance_csv(source: str | Path | bytes) -> PriceSeries:
    """`timestamp,open,high,low,close,volume` with naive UTC times (`2024-01-01 00:00:00`): closes at close time."""
    rows = csv.reader(io.StringIO(_text(source)))
    header = [h.strip() for h in next(rows, [])]
    if "timestamp" not in header or "close" not in header:
        raise SeriesFormatError(f"line 1: expected timestamp,open,high,low,close,volume, got {header!r}")
    time_column, close_column = header.index("timestamp"), header.index("close")
    candles = []
    for number, row in enumerate(rows, start=2):
        if not row:
            continue
        where = f"line {number}"
        try:
            moment = dt.datetime.fromisoformat(row[time_column].strip())
            close = row[close_column]
        except (ValueError, IndexError):
            raise SeriesFormatError(f"{where}: bad row {row!r}") from None
        candles.append((_utc_ms(moment), _decimal(close, where)))
    return _closes(candles)


def load_points_csv(source: str | Path | bytes) -> PriceSeries:
    """The compact `ms,price` format (header `time_ms,price_usd`)."""
    lines = _text(source).splitlines()
    if not lines or lines[0].strip() != "time_ms,price_usd":
        raise SeriesFormatError("line 1: expected the header time_ms,price_usd")
    points = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        time_text, sep, price_text = line.partition(",")
        if not sep or not time_text.strip().isdigit():
            raise SeriesFormatError(f"line {number}: expected ms,price, got {line!r}")
        points.append(Point(int(time_text), _decimal(price_text, f"line {number}")))
    return PriceSeries(points)


def dump_points_csv(series: PriceSeries) -> str:
    lines = ["time_ms,price_usd"]
    for time_ms, price in series:
        if price is None:
            raise ValueError(f"a null price at {time_ms} cannot be written")
        lines.append(f"{time_ms},{decimal_text(price)}")
    return "\n".join(lines) + "\n"


def bundled(name: str) -> PriceSeries:
    """A series bundled in pricing/data (BUNDLED_COINGECKO_DAILY or BUNDLED_BINANCE_1H)."""
    return load_points_csv(resources.files("pricing").joinpath("data", name).read_bytes())


def bundled_solana() -> PriceSeries:
    """Every bundled SOL point: the CoinGecko daily export, then the Binance 1 h closes (for the demo)."""
    return PriceSeries.merge(bundled(BUNDLED_COINGECKO_DAILY), bundled(BUNDLED_BINANCE_1H))
