"""CoinGecko adapter over httpx (async): `/simple/price` and `/coins/{id}/market_chart/range`. I/O only.

Plans and the API key header (INTERFACE.md: "the plan picks the header"), chosen by `resolve_plan`:

    plan "auto" (default): a base URL on pro-api.coingecko.com means pro (`x-cg-pro-api-key`);
                           otherwise a key means demo (`x-cg-demo-api-key`); no key means keyless.
    plan "keyless" / "demo" / "pro": forced (TREASURY_COINGECKO_PLAN), e.g. for a proxy or a test server;
                           demo and pro need a key, keyless refuses one.

The key travels only in that header (never in the query string, which servers and proxies log) and
never appears in logs or error messages.

Prices are decoded as exact Decimals from the JSON text (msgspec), never through float. HTTP 429 is
retried after its Retry-After (seconds or an HTTP date) when that is at most `max_retry_after_s`, else
RateLimited is raised at once with `retry_after_s` for the caller to schedule; 408, 5xx, timeouts and
transport failures are retried with exponential backoff; every retry loop is bounded by
`max_attempts` (tenacity, every option explicit). Foreign errors (httpx, msgspec) are translated into
the pricing tree in one place, `_map_errors`; HTTP statuses in `_raise_for_status`.

Shapes (checked against CoinGecko's OpenAPI examples and recorded replies):
    /simple/price?ids=solana&vs_currencies=usd&include_last_updated_at=true&precision=full
        -> {"solana": {"usd": 140.25, "last_updated_at": 1764720000}}   unknown id -> {} (200)
    /coins/solana/market_chart/range?vs_currency=usd&from=S&to=S&precision=full
        -> {"prices": [[ms, price], ...], "market_caps": [...], "total_volumes": [...]}
           unknown id -> 404 {"error": "coin not found"}
    errors -> {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit..."}}
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import time
import urllib.parse
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Final, TypeVar

import httpx
import msgspec
import structlog
import tenacity

from pricing.errors import (
    BadReply,
    CoinGeckoError,
    CoinGeckoRejected,
    CoinGeckoTimeout,
    CoinGeckoUnavailable,
    CoinNotFound,
    RateLimited,
)
from pricing.rules import Point, is_valid_price

PLAN_AUTO: Final = "auto"
PLAN_KEYLESS: Final = "keyless"
PLAN_DEMO: Final = "demo"
PLAN_PRO: Final = "pro"
PLANS: Final = frozenset({PLAN_AUTO, PLAN_KEYLESS, PLAN_DEMO, PLAN_PRO})
PRO_HOST: Final = "pro-api.coingecko.com"
KEY_HEADERS: Final = {PLAN_DEMO: "x-cg-demo-api-key", PLAN_PRO: "x-cg-pro-api-key"}
USER_AGENT: Final = "systemr-treasury/0.1 (+pricing)"
_MAX_MESSAGE_CHARS: Final = 200

log = structlog.get_logger("pricing.coingecko")
T = TypeVar("T")


def resolve_plan(base_url: str, api_key: str | None, plan: str = PLAN_AUTO) -> str:
    """The effective plan ("keyless", "demo" or "pro"); ValueError when plan and key do not fit."""
    if plan not in PLANS:
        raise ValueError(f"unknown CoinGecko plan {plan!r} (auto, keyless, demo or pro)")
    if plan == PLAN_AUTO:
        host = urllib.parse.urlsplit(base_url).hostname or ""
        plan = PLAN_PRO if host == PRO_HOST else PLAN_DEMO if api_key else PLAN_KEYLESS
    if plan == PLAN_PRO and not api_key:
        raise ValueError("the CoinGecko pro plan needs an API key (TREASURY_COINGECKO_API_KEY)")
    if plan == PLAN_DEMO and not api_key:
        raise ValueError("the CoinGecko demo plan needs an API key (TREASURY_COINGECKO_API_KEY)")
    if plan == PLAN_KEYLESS and api_key:
        raise ValueError("an API key is set but the CoinGecko plan is keyless")
    return plan


@dataclasses.dataclass(frozen=True, slots=True)
class SimplePrice:
    coin_id: str
    price_usd: Decimal
    last_updated_at: dt.datetime


# --- the reply shapes we read (msgspec decodes JSON numbers into Decimal exactly) ---


class _SimpleEntry(msgspec.Struct):
    usd: Decimal | None = None
    last_updated_at: int | None = None


class _Range(msgspec.Struct):
    prices: list[tuple[Decimal, Decimal | None]]


class _ErrorStatus(msgspec.Struct):
    error_code: int | None = None
    error_message: str | None = None


class _ErrorBody(msgspec.Struct):
    status: _ErrorStatus | None = None
    error: str | None = None


_SIMPLE_DECODER: Final = msgspec.json.Decoder(dict[str, _SimpleEntry])
_RANGE_DECODER: Final = msgspec.json.Decoder(_Range)
_ERROR_DECODER: Final = msgspec.json.Decoder(_ErrorBody)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_MAX_MESSAGE_CHARS]


class _Scrubber:
    """Removes the API key from any text that could reach a log or an error message."""

    __slots__ = ("_key",)

    def __init__(self, key: str | None) -> None:
        self._key = key or None

    def __call__(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


@contextlib.contextmanager
def _map_errors(scrub: Callable[[str], str], what: str) -> Iterator[None]:
    """The one place where httpx and msgspec errors become pricing errors (raised from the original).

    Classification is closed: anything httpx raises that is not named here is a plain CoinGeckoError.
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise CoinGeckoTimeout(scrub(f"{what}: timed out ({type(exc).__name__})")) from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
        raise CoinGeckoUnavailable(scrub(f"{what}: {type(exc).__name__}: {_one_line(str(exc))}")) from exc
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadReply(scrub(f"{what}: unusable reply: {_one_line(str(exc))}")) from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict) as exc:
        raise CoinGeckoError(scrub(f"{what}: {type(exc).__name__}: {_one_line(str(exc))}")) from exc


def parse_retry_after(value: str | None, *, now: dt.datetime) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def _raise_for_status(response: httpx.Response, coin_id: str, what: str, scrub: Callable[[str], str]) -> None:
    status = response.status_code
    if status == 200:
        return
    error_code: int | None = None
    message = ""
    coin_missing = False
    try:
        body = _ERROR_DECODER.decode(response.content)
        if body.status is not None:
            error_code = body.status.error_code
            message = body.status.error_message or ""
        message = message or body.error or ""
        coin_missing = "coin not found" in (body.error or "").lower()
    except (msgspec.DecodeError, msgspec.ValidationError):
        message = response.text
    detail = scrub(f"{what}: HTTP {status}" + (f": {_one_line(message)}" if message.strip() else ""))
    if status == 429:
        retry_after_s = parse_retry_after(response.headers.get("retry-after"), now=dt.datetime.now(dt.UTC))
        raise RateLimited(detail, retry_after_s=retry_after_s)
    if status == 408 or status >= 500:
        raise CoinGeckoUnavailable(detail)
    if status == 404 and coin_missing:
        raise CoinNotFound(coin_id)
    if 400 <= status < 500:
        raise CoinGeckoRejected(detail, status=status, error_code=error_code)
    raise CoinGeckoError(detail)


class CoinGeckoClient:
    """An async CoinGecko client. Use as `async with CoinGeckoClient(...) as client:` or call `aclose()`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        plan: str = PLAN_AUTO,
        timeout_s: float = 10.0,
        max_attempts: int = 4,
        max_retry_after_s: float = 30.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 8.0,
    ) -> None:
        if max_attempts < 1 or timeout_s <= 0 or max_retry_after_s < 0 or backoff_initial_s < 0:
            raise ValueError("max_attempts >= 1, timeout_s > 0, max_retry_after_s >= 0, backoff_initial_s >= 0")
        self.plan = resolve_plan(base_url, api_key, plan)
        self.base_url = base_url.rstrip("/")
        self._scrub = _Scrubber(api_key)
        self._max_attempts = max_attempts
        self._max_retry_after_s = max_retry_after_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        headers = {"accept": "application/json", "user-agent": USER_AGENT}
        if self.plan in KEY_HEADERS and api_key:
            headers[KEY_HEADERS[self.plan]] = api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        )
        self.requests_made = 0  # HTTP requests sent, retries included

    async def __aenter__(self) -> CoinGeckoClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- endpoints ---

    async def simple_price(self, coin_id: str) -> SimplePrice:
        """The current USD price of `coin_id` with its `last_updated_at`. An empty object, a missing coin,
        a null or non-positive price or a missing time are errors, never 0."""
        params = {
            "ids": coin_id,
            "vs_currencies": "usd",
            "include_last_updated_at": "true",
            "precision": "full",
        }
        what = f"CoinGecko /simple/price {coin_id}"
        reply = await self._get("simple/price", params, coin_id, what, _SIMPLE_DECODER.decode)
        if not reply:
            raise BadReply(f"{what}: empty object (CoinGecko does not know {coin_id!r})")
        entry = reply.get(coin_id)
        if entry is None:
            raise CoinNotFound(coin_id)
        if not is_valid_price(entry.usd):
            raise BadReply(f"{what}: price is {entry.usd} (null, zero or negative)")
        if entry.last_updated_at is None or entry.last_updated_at <= 0:
            raise BadReply(f"{what}: no last_updated_at")
        assert entry.usd is not None  # is_valid_price
        return SimplePrice(coin_id, entry.usd, dt.datetime.fromtimestamp(entry.last_updated_at, dt.UTC))

    async def market_chart_range(self, coin_id: str, from_s: int, to_s: int) -> list[Point]:
        """The `prices` of [from_s, to_s] (UNIX seconds), sorted. Null and non-positive prices are kept
        as points (price None or as sent) so that the oracle never skips them for an older point."""
        params = {"vs_currency": "usd", "from": str(from_s), "to": str(to_s), "precision": "full"}
        what = f"CoinGecko /coins/{coin_id}/market_chart/range {from_s}..{to_s}"
        path = f"coins/{urllib.parse.quote(coin_id, safe='')}/market_chart/range"
        reply = await self._get(path, params, coin_id, what, _RANGE_DECODER.decode)
        points = []
        for time_ms, price in reply.prices:
            if not time_ms.is_finite() or time_ms < 0:
                raise BadReply(f"{what}: bad timestamp {time_ms}")
            points.append(Point(int(time_ms), price))
        points.sort(key=lambda point: point.time_ms)
        return points

    # --- one request, retried with bounds ---

    async def _get(self, path: str, params: dict[str, str], coin_id: str, what: str, decode: Callable[[bytes], T]) -> T:
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(self._should_retry),
            stop=tenacity.stop_after_attempt(self._max_attempts),
            wait=self._wait_s,
            reraise=True,
            before_sleep=self._log_retry,
        )
        result: T = await retrying(self._get_once, path, params, coin_id, what, decode)
        return result

    async def _get_once(
        self, path: str, params: dict[str, str], coin_id: str, what: str, decode: Callable[[bytes], T]
    ) -> T:
        started = time.monotonic()
        self.requests_made += 1
        status: int | None = None
        try:
            with _map_errors(self._scrub, what):
                response = await self._http.get(path, params=params)
                status = response.status_code
                _raise_for_status(response, coin_id, what, self._scrub)
                return decode(response.content)
        finally:
            log.debug(
                "coingecko.request",
                path="/" + path,
                coin_id=coin_id,
                status=status,
                plan=self.plan,
                elapsed_ms=round((time.monotonic() - started) * 1000, 1),
            )

    def _should_retry(self, exc: BaseException) -> bool:
        if isinstance(exc, RateLimited):
            return exc.retry_after_s is None or exc.retry_after_s <= self._max_retry_after_s
        return isinstance(exc, CoinGeckoUnavailable)

    def _wait_s(self, state: tenacity.RetryCallState) -> float:
        backoff_s = min(self._backoff_initial_s * 2.0 ** (state.attempt_number - 1), self._backoff_max_s)
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            return max(exc.retry_after_s, backoff_s)
        return backoff_s

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "coingecko.retry",
            attempt=state.attempt_number,
            max_attempts=self._max_attempts,
            wait_s=round(state.upcoming_sleep, 3),
            error=type(exc).__name__,
            detail=str(exc),
        )
