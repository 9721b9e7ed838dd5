"""The pricing package's one exception tree (drawn in `pricing/__init__.py`).

Every failure of pricing is a `PricingError`. Callers that price deposits catch `PriceUnavailable`
(the deposit waits as `pending_price` and is retried); the CoinGecko adapter raises the
`CoinGeckoError` branch, which the oracle turns into `PriceUnavailable(reason="coingecko_error")`.
Messages never contain an API key.
"""

from __future__ import annotations

from typing import Final


class PricingError(Exception):
    """Base of every error raised by `pricing`."""


class BadEvidence(PricingError, ValueError):
    """A stored quote or credit evidence object cannot be read back (missing key, bad value)."""


class SeriesFormatError(PricingError, ValueError):
    """A recorded price file is not in the format its loader reads (the message names the line)."""


# --- PriceUnavailable: no acceptable price, the deposit waits as pending_price ---

NO_POINT: Final = "no_point"  # no price point at or before the block time
STALE: Final = "stale"  # the latest point at or before the block time is older than the maximum age
BAD_PRICE: Final = "bad_price"  # the point to use has a null, zero or negative price
COINGECKO_ERROR: Final = "coingecko_error"  # CoinGecko failed (after bounded retries); see __cause__
NO_SOURCE: Final = "no_source"  # the asset has no configured price source
FUTURE: Final = "future"  # the time to price lies after `now` (+60 s of clock skew)
REASONS: Final = frozenset({NO_POINT, STALE, BAD_PRICE, COINGECKO_ERROR, NO_SOURCE, FUTURE})


class PriceUnavailable(PricingError):
    """No acceptable price: never a credit at 0 or at a stale price; the deposit waits as pending_price.

    `reason` is one of REASONS; `retry_after_s` is set when CoinGecko asked us to wait (429).
    """

    def __init__(self, reason: str, detail: str, *, retry_after_s: float | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown PriceUnavailable reason {reason!r}")
        super().__init__(f"price unavailable ({reason}): {detail}")
        self.reason = reason
        self.detail = detail
        self.retry_after_s = retry_after_s


# --- the CoinGecko adapter ---


class CoinGeckoError(PricingError):
    """CoinGecko could not give a usable answer. Also: a bad base URL or an unexpected httpx failure."""


class CoinGeckoUnavailable(CoinGeckoError):
    """A transport failure, 408 or 5xx: worth retrying (the adapter does, with bounds)."""


class CoinGeckoTimeout(CoinGeckoUnavailable):
    """Connect, read, write or pool timeout."""


class RateLimited(CoinGeckoUnavailable):
    """HTTP 429. `retry_after_s` is the server's Retry-After in seconds (None when it sent none)."""

    def __init__(self, message: str, *, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CoinGeckoRejected(CoinGeckoError):
    """A 4xx other than 404/408/429: bad key (401), plan limits (10005, 10012: beyond 365 days), bad request.

    `status` is the HTTP status, `error_code` CoinGecko's `status.error_code` when the body had one.
    """

    def __init__(self, message: str, *, status: int, error_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class CoinNotFound(CoinGeckoError):
    """The coin id is unknown: 404 `{"error":"coin not found"}`, or /simple/price left the coin out."""

    def __init__(self, coin_id: str) -> None:
        super().__init__(f"CoinGecko does not know the coin {coin_id!r}")
        self.coin_id = coin_id


class BadReply(CoinGeckoError):
    """A 200 reply we cannot use: not JSON, wrong shape, an empty object, a null or non-positive price."""
