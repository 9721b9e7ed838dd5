"""Helpers shared by the tests of `pricing` (recorded data paths, a loopback CoinGecko, log capture)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, MutableMapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
import structlog.testing

from pricing.assets import DEFAULT_ASSETS
from pricing.replay import ReplayServer
from pricing.series import PriceSeries

DATA = Path(__file__).parent / "data"
COINGECKO = DATA / "coingecko"
PRICES = DATA / "prices"
ASSETS = {asset.symbol: asset for asset in DEFAULT_ASSETS}
SOL, USDC, OSR = ASSETS["SOL"], ASSETS["USDC"], ASSETS["OSR"]
UTC = dt.UTC


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def series(*points: tuple[dt.datetime, str | None]) -> PriceSeries:
    """A hand-made series: (time, price text or None for a null)."""
    return PriceSeries((ms(when), None if price is None else Decimal(price)) for when, price in points)


def serving() -> Iterator[ReplayServer]:
    """A loopback CoinGecko for one test (wrap in a fixture: `yield from serving()`)."""
    with ReplayServer() as server:
        yield server


def capturing_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event, debug included, whatever an earlier test configured (wrap in a fixture)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as entries:
            yield entries
    finally:
        structlog.configure(**saved)
