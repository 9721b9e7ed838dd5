"""The price rules of DESIGN.md §4 as pure functions: no I/O, no clock (times come in as arguments).

- A market price is the latest point at or before the block time, no older than `max_age_s`.
- A live `/simple/price` point is acceptable when its `last_updated_at` lies in
  [block time − max_age_s, block time + LIVE_AHEAD_S].
- CoinGecko picks the granularity of `/market_chart/range` by the length of the range (and, for one
  day, by its distance from now); ranges are fetched in chunks of at most MAX_RANGE_S so that they stay
  hourly or finer.

Times here are integers: seconds for ranges and ages, milliseconds for price points (CoinGecko's unit).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from decimal import Decimal
from typing import Final, NamedTuple

from pricing.errors import BAD_PRICE, NO_POINT, STALE
from pricing.quote import GRANULARITY_5M, GRANULARITY_DAILY, GRANULARITY_HOURLY

DAY_S: Final = 86_400
MAX_RANGE_S: Final = 90 * DAY_S  # CoinGecko: 2–90 days hourly, beyond that daily
LIVE_AHEAD_S: Final = 60  # a live point may be this much younger than the block time


class Point(NamedTuple):
    """One price point. `price` is None when CoinGecko sent null (kept so that it is never skipped)."""

    time_ms: int
    price: Decimal | None


class Rejection(NamedTuple):
    """Why no point is acceptable: a PriceUnavailable reason and a one-line detail."""

    reason: str
    detail: str


def is_valid_price(price: Decimal | None) -> bool:
    return price is not None and price.is_finite() and price > 0


def auto_granularity(from_s: int, to_s: int, now_s: int) -> str:
    """The granularity CoinGecko serves for /market_chart/range without `interval` (its documentation):
    1 day from the current time: 5-minutely; any other range up to 90 days: hourly; beyond: daily."""
    length_s = to_s - from_s
    if length_s <= DAY_S and from_s >= now_s - DAY_S:
        return GRANULARITY_5M
    if length_s <= MAX_RANGE_S:
        return GRANULARITY_HOURLY
    return GRANULARITY_DAILY


def granularity_step_s(granularity: str) -> int:
    return {GRANULARITY_5M: 300, GRANULARITY_HOURLY: 3_600, GRANULARITY_DAILY: DAY_S}[granularity]


def choose_point(
    times_ms: Sequence[int], prices: Sequence[Decimal | None], at_ms: int, max_age_s: int
) -> int | Rejection:
    """Index of the latest point at or before `at_ms` when it is acceptable, else why not.

    `times_ms` is sorted ascending and `prices` parallel to it. A point with a null or non-positive
    price is never skipped for an older one: the deposit waits instead.
    """
    index = bisect.bisect_right(times_ms, at_ms) - 1
    if index < 0:
        return Rejection(NO_POINT, "no price point at or before the block time")
    age_ms = at_ms - times_ms[index]
    if age_ms > max_age_s * 1000:
        return Rejection(
            STALE, f"the latest point at or before the block time is {age_ms / 1000:.0f} s old (max {max_age_s} s)"
        )
    if not is_valid_price(prices[index]):
        return Rejection(BAD_PRICE, f"the point at or before the block time has price {prices[index]}")
    return index


def live_point_acceptable(point_ms: int, at_ms: int, max_age_s: int) -> bool:
    """Is a /simple/price point of time `point_ms` acceptable for a deposit at `at_ms`?"""
    return at_ms - max_age_s * 1000 <= point_ms <= at_ms + LIVE_AHEAD_S * 1000


def split_range(from_s: int, to_s: int, max_length_s: int = MAX_RANGE_S) -> list[tuple[int, int]]:
    """[from_s, to_s] as chunks of at most `max_length_s` that share their boundaries (a point on a
    boundary is in both replies), so together they cover every instant; empty when to_s < from_s."""
    if max_length_s <= 0:
        raise ValueError("max_length_s must be positive")
    if to_s < from_s:
        return []
    chunks = []
    start = from_s
    while True:
        end = min(start + max_length_s, to_s)
        chunks.append((start, end))
        if end >= to_s:
            return chunks
        start = end


def missing_ranges(covered: Sequence[tuple[int, int]], low: int, high: int) -> list[tuple[int, int]]:
    """The parts of the integer interval [low, high] not inside any of the sorted, disjoint closed
    intervals `covered` (any unit: the oracle uses milliseconds)."""
    gaps = []
    cursor = low
    for start, end in covered:
        if end < cursor:
            continue
        if start > high:
            break
        if start > cursor:
            gaps.append((cursor, start - 1))
        cursor = max(cursor, end + 1)
        if cursor > high:
            break
    if cursor <= high:
        gaps.append((cursor, high))
    return gaps


def merge_interval(covered: list[tuple[int, int]], new: tuple[int, int]) -> list[tuple[int, int]]:
    """`covered` (sorted, disjoint, closed) with `new` added; touching intervals are joined."""
    merged: list[tuple[int, int]] = []
    start, end = new
    for current_start, current_end in covered:
        if current_end + 1 < start:
            merged.append((current_start, current_end))
        elif current_start > end + 1:
            merged.append((start, end))
            start, end = current_start, current_end
        else:
            start, end = min(start, current_start), max(end, current_end)
    merged.append((start, end))
    return merged


def cell_window(at_s: int, cell_s: int) -> tuple[int, int]:
    """The aligned cell of `cell_s` seconds that contains `at_s`: one range call serves every deposit in it."""
    start = at_s - at_s % cell_s
    return start, start + cell_s - 1
