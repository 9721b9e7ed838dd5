"""Pricing: quotes (CoinGecko and fixed rules), exact credit arithmetic, the OSR bonus and burn split.

Imports none of the project's other packages (DESIGN.md §2): the CLI passes settings values in.

    pricing.assets     the mint table
    pricing.credit     compute_credit, Credit (pure, exact integers)
    pricing.quote      Quote, its evidence form, manual prices
    pricing.rules      the price rules as pure functions (at-or-before, max age, live window, chunks)
    pricing.coingecko  the CoinGecko adapter (httpx): /simple/price, /coins/{id}/market_chart/range
    pricing.oracle     PriceOracle: quote(asset, at, now=, live=), prefetch(asset, start, end)
    pricing.series     recorded price series: loaders and the bundled SOL data
    pricing.replay     a loopback CoinGecko serving recorded series, with scriptable faults

Errors (pricing.errors):
    PricingError
      ├── BadEvidence                  stored quote/credit evidence cannot be read back (also a ValueError)
      ├── SeriesFormatError            a recorded price file is not in its loader's format (also a ValueError)
      ├── PriceUnavailable             no acceptable price: the deposit waits as pending_price
      │                                (.reason: no_point, stale, bad_price, coingecko_error, no_source,
      │                                future; .retry_after_s when CoinGecko said 429)
      └── CoinGeckoError               CoinGecko gave no usable answer (bad URL, unexpected httpx failure)
            ├── CoinGeckoUnavailable   transport failure, 408, 5xx (retried with bounds)
            │     ├── CoinGeckoTimeout connect/read/write/pool timeout
            │     └── RateLimited      429 (.retry_after_s)
            ├── CoinGeckoRejected      other 4xx: bad key, plan limits, bad request (.status, .error_code)
            ├── CoinNotFound           unknown coin id (.coin_id)
            └── BadReply               not JSON, wrong shape, empty object, null or non-positive price
"""

from __future__ import annotations

from pricing.assets import DEFAULT_ASSETS, Asset, AssetTable
from pricing.coingecko import CoinGeckoClient, SimplePrice, resolve_plan
from pricing.credit import Credit, compute_credit, format_micros, format_price
from pricing.errors import (
    BadEvidence,
    BadReply,
    CoinGeckoError,
    CoinGeckoRejected,
    CoinGeckoTimeout,
    CoinGeckoUnavailable,
    CoinNotFound,
    PriceUnavailable,
    PricingError,
    RateLimited,
    SeriesFormatError,
)
from pricing.oracle import PriceOracle
from pricing.quote import Quote

__all__ = [
    "DEFAULT_ASSETS",
    "Asset",
    "AssetTable",
    "BadEvidence",
    "BadReply",
    "CoinGeckoClient",
    "CoinGeckoError",
    "CoinGeckoRejected",
    "CoinGeckoTimeout",
    "CoinGeckoUnavailable",
    "CoinNotFound",
    "Credit",
    "PriceOracle",
    "PriceUnavailable",
    "PricingError",
    "Quote",
    "RateLimited",
    "SeriesFormatError",
    "SimplePrice",
    "compute_credit",
    "format_micros",
    "format_price",
    "resolve_plan",
]
