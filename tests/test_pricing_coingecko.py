"""The CoinGecko adapter through the real httpx client against the loopback CoinGecko (pricing.replay)."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from pricing.coingecko import CoinGeckoClient, SimplePrice, _map_errors, parse_retry_after, resolve_plan
from pricing.errors import (
    BadReply,
    CoinGeckoError,
    CoinGeckoRejected,
    CoinGeckoTimeout,
    CoinGeckoUnavailable,
    CoinNotFound,
    RateLimited,
)
from pricing.replay import (
    BAD_JSON,
    DROP,
    EMPTY_OBJECT,
    MARKET_CHART_RANGE,
    MISSING_COIN,
    NO_POINTS,
    NULL_PRICE,
    PRICE,
    SIMPLE_PRICE,
    Fault,
    ReplayServer,
)
from pricing.rules import Point
from tests.pricing_helpers import COINGECKO, at, capturing_logs, ms, series, serving

T = TypeVar("T")
KEY = "CG-test-KEY-3x4mpl3"  # a fake key; must never show in logs or errors
BITCOIN_RANGE = COINGECKO / "coingecko_market_chart_range_bitcoin_usd_2022-08-08.json"
SIMPLE_EXAMPLE = COINGECKO / "coingecko_simple_price_example.json"
RANGE_EXAMPLE = COINGECKO / "coingecko_market_chart_range_example.json"
NOW = at(2025, 12, 3, 12)
SOL_SERIES = series((at(2025, 12, 3, 10), "139.00"), (at(2025, 12, 3, 11), "140.25"), (at(2025, 12, 3, 12), "141.5"))


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    yield from serving()


@pytest.fixture
def captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    yield from capturing_logs()


def call(
    server: ReplayServer, use: Callable[[CoinGeckoClient], Awaitable[T]], **options: Any
) -> tuple[T, CoinGeckoClient]:
    options = {"timeout_s": 2.0, "backoff_initial_s": 0.01, "backoff_max_s": 0.05, **options}

    async def run() -> tuple[T, CoinGeckoClient]:
        async with CoinGeckoClient(server.url, **options) as client:
            return await use(client), client

    return asyncio.run(run())


def simple(coin_id: str = "solana") -> Callable[[CoinGeckoClient], Awaitable[SimplePrice]]:
    return lambda client: client.simple_price(coin_id)


def chart(coin_id: str, from_s: int, to_s: int) -> Callable[[CoinGeckoClient], Awaitable[list[Point]]]:
    return lambda client: client.market_chart_range(coin_id, from_s, to_s)


def solana_server(server: ReplayServer) -> ReplayServer:
    server.set_series("solana", SOL_SERIES)
    server.now = NOW
    return server


# --- recorded replies ---


def test_recorded_range_reply_is_read_exactly(replay: ReplayServer) -> None:
    replay.add_fault(Fault.reply(200, BITCOIN_RANGE.read_bytes(), endpoint=MARKET_CHART_RANGE))
    points, _ = call(replay, chart("bitcoin", 1_659_974_400, 1_659_996_000))
    recorded = json.loads(BITCOIN_RANGE.read_text(), parse_float=Decimal)["prices"]
    assert points == [Point(t, p) for t, p in recorded]
    # The first point as written in the recording: [1659974406971, 23988.969591535944], no float on the way.
    assert points[0] == Point(1_659_974_406_971, Decimal("23988.969591535944"))
    assert len(points) == 6


def test_recorded_range_example(replay: ReplayServer) -> None:
    replay.add_fault(Fault.reply(200, RANGE_EXAMPLE.read_bytes(), endpoint=MARKET_CHART_RANGE))
    points, _ = call(replay, chart("bitcoin", 1_779_027_000, 1_779_029_000))
    assert points == [
        Point(1_779_027_899_041, Decimal("77953.82550382407")),
        Point(1_779_028_199_661, Decimal("78052.87543398788")),
    ]


def test_recorded_simple_price_example(replay: ReplayServer) -> None:
    replay.add_fault(Fault.reply(200, SIMPLE_EXAMPLE.read_bytes(), endpoint=SIMPLE_PRICE))
    price, _ = call(replay, simple("bitcoin"))
    # {"bitcoin": {"usd": 76975, …, "last_updated_at": 1779092258}}: 1779092258 = 2026-05-18T08:17:38Z.
    assert price == SimplePrice("bitcoin", Decimal(76975), at(2026, 5, 18, 8, 17, 38))


def test_requests_are_shaped_like_coingecko_expects(replay: ReplayServer) -> None:
    solana_server(replay)
    price, _ = call(replay, simple())
    points, _ = call(replay, chart("solana", ms(at(2025, 12, 3, 9)) // 1000, ms(at(2025, 12, 3, 12)) // 1000))
    # The server's now is 12:00: /simple/price reports the 12:00 point.
    assert price == SimplePrice("solana", Decimal("141.5"), at(2025, 12, 3, 12))
    assert [p.price for p in points] == [Decimal("139.00"), Decimal("140.25"), Decimal("141.5")]
    first, second = replay.requests
    assert first.path == "/api/v3/simple/price"
    assert dict(first.params) == {
        "ids": "solana",
        "vs_currencies": "usd",
        "include_last_updated_at": "true",
        "precision": "full",
    }
    assert second.path == "/api/v3/coins/solana/market_chart/range"
    assert dict(second.params) == {"vs_currency": "usd", "from": "1764752400", "to": "1764763200", "precision": "full"}


# --- 429, 5xx, timeouts ---


def test_429_waits_at_least_retry_after(replay: ReplayServer) -> None:
    solana_server(replay)
    replay.add_fault(Fault.rate_limited("1"))
    price, client = call(replay, simple())
    assert price.price_usd == Decimal("141.5")
    first, second = replay.requests
    # Retry-After: 1 -> the second request comes at least 1 s after the first.
    assert second.received_at - first.received_at >= 1.0
    assert client.requests_made == 2


def test_429_with_a_long_retry_after_is_raised_at_once(replay: ReplayServer) -> None:
    # The recorded real reply said retry-after: 119; beyond max_retry_after_s the caller reschedules.
    solana_server(replay)
    replay.add_fault(Fault.rate_limited("119"))
    with pytest.raises(RateLimited) as caught:
        call(replay, simple(), max_retry_after_s=30)
    assert caught.value.retry_after_s == 119
    assert "HTTP 429" in str(caught.value) and "Rate Limit" in str(caught.value)
    assert replay.count() == 1


def test_429_retries_are_bounded(replay: ReplayServer) -> None:
    solana_server(replay)
    replay.add_fault(Fault.rate_limited(None), times=10)
    with pytest.raises(RateLimited) as caught:
        call(replay, simple(), max_attempts=3)
    assert caught.value.retry_after_s is None
    assert replay.count() == 3


def test_retry_after_forms() -> None:
    now = at(2025, 12, 3, 12)
    assert parse_retry_after("119", now=now) == 119.0
    assert parse_retry_after("Wed, 03 Dec 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 03 Dec 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_are_retried(replay: ReplayServer, status: int) -> None:
    solana_server(replay)
    replay.add_fault(Fault.server_error(status))
    price, _ = call(replay, simple())
    assert price.price_usd == Decimal("141.5")
    assert replay.count() == 2


def test_server_errors_give_up_after_max_attempts(replay: ReplayServer) -> None:
    solana_server(replay)
    replay.add_fault(Fault.server_error(500), times=10)
    with pytest.raises(CoinGeckoUnavailable, match="HTTP 500"):
        call(replay, simple(), max_attempts=4)
    assert replay.count() == 4


def test_timeout_is_retried_then_raised(replay: ReplayServer) -> None:
    solana_server(replay)
    replay.add_fault(Fault.slow(1.0))
    price, _ = call(replay, simple(), timeout_s=0.2)
    assert price.price_usd == Decimal("141.5")
    replay.add_fault(Fault.slow(1.0), times=2)
    with pytest.raises(CoinGeckoTimeout, match="timed out"):
        call(replay, simple(), timeout_s=0.2, max_attempts=2)


def test_dropped_connection_is_retried(replay: ReplayServer) -> None:
    solana_server(replay)
    replay.add_fault(Fault(DROP))
    price, _ = call(replay, simple())
    assert price.price_usd == Decimal("141.5")
    replay.add_fault(Fault(DROP), times=2)
    with pytest.raises(CoinGeckoUnavailable):
        call(replay, simple(), max_attempts=2)


# --- bad replies: errors, never 0 ---


def test_empty_object(replay: ReplayServer) -> None:
    solana_server(replay)
    replay.add_fault(Fault(EMPTY_OBJECT), times=2)
    with pytest.raises(BadReply, match="empty object"):
        call(replay, simple())
    with pytest.raises(BadReply, match="prices"):
        call(replay, chart("solana", 1_764_752_400, 1_764_763_200))
    assert replay.count() == 2  # not retried


def test_missing_coin(replay: ReplayServer) -> None:
    solana_server(replay)
    replay.add_fault(Fault(MISSING_COIN), times=2)
    with pytest.raises(BadReply, match=r"empty object \(CoinGecko does not know 'solana'\)"):
        call(replay, simple())  # CoinGecko answers {} (200) for an id it does not know
    with pytest.raises(CoinNotFound, match="solana"):
        call(replay, chart("solana", 1_764_752_400, 1_764_763_200))  # 404 {"error":"coin not found"}
    # Another coin in the reply is not the one asked for.
    replay.add_fault(Fault.reply(200, b'{"bitcoin":{"usd":1,"last_updated_at":1}}', endpoint=SIMPLE_PRICE))
    with pytest.raises(CoinNotFound):
        call(replay, simple())


@pytest.mark.parametrize(
    ("fault", "message"),
    [(Fault(NULL_PRICE), "price is None"), (Fault(PRICE, price="0"), "price is 0"), (Fault(PRICE, price="-5"), "-5")],
)
def test_null_or_non_positive_simple_price(replay: ReplayServer, fault: Fault, message: str) -> None:
    solana_server(replay)
    replay.add_fault(fault)
    with pytest.raises(BadReply, match=message):
        call(replay, simple())


def test_simple_price_without_time_is_refused(replay: ReplayServer) -> None:
    replay.add_fault(Fault.reply(200, b'{"solana":{"usd":140.25}}', endpoint=SIMPLE_PRICE))
    with pytest.raises(BadReply, match="last_updated_at"):
        call(replay, simple())


def test_range_keeps_null_points_for_the_oracle(replay: ReplayServer) -> None:
    solana_server(replay)
    replay.add_fault(Fault(NULL_PRICE, endpoint=MARKET_CHART_RANGE))
    points, _ = call(replay, chart("solana", 1_764_752_400, 1_764_763_200))
    assert points[-1] == Point(ms(at(2025, 12, 3, 12)), None)
    replay.add_fault(Fault(NO_POINTS))
    assert call(replay, chart("solana", 1_764_752_400, 1_764_763_200))[0] == []


@pytest.mark.parametrize(
    "body",
    [b"<html>error code: 1020</html>", b'{"prices": "many"}', b'{"prices": [[1]]}', b'{"prices": [[-1, 2]]}', b""],
)
def test_unusable_range_bodies(replay: ReplayServer, body: bytes) -> None:
    replay.add_fault(Fault.reply(200, body, endpoint=MARKET_CHART_RANGE))
    with pytest.raises(BadReply):
        call(replay, chart("solana", 1, 2))


def test_not_json(replay: ReplayServer) -> None:
    solana_server(replay)
    replay.add_fault(Fault(BAD_JSON))
    with pytest.raises(BadReply, match="unusable reply"):
        call(replay, simple())


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (
            401,
            b'{"status":{"error_code":10012,"error_message":"Your request exceeds the allowed time range."}}',
            CoinGeckoRejected,
            10012,
        ),
        (401, b'{"status":{"error_code":10002,"error_message":"API Key Missing"}}', CoinGeckoRejected, 10002),
        (400, b'{"error":"invalid vs_currency"}', CoinGeckoRejected, None),
        (404, b"<html>Not Found</html>", CoinGeckoRejected, None),
        (302, b"", CoinGeckoError, None),
    ],
)
def test_rejections_are_not_retried(
    replay: ReplayServer, status: int, body: bytes, error: type[CoinGeckoError], code: int | None
) -> None:
    replay.add_fault(Fault.reply(status, body))
    with pytest.raises(error, match=f"HTTP {status}") as caught:
        call(replay, chart("solana", 1, 2))
    assert type(caught.value) is error
    if isinstance(caught.value, CoinGeckoRejected):
        assert (caught.value.status, caught.value.error_code) == (status, code)
    assert replay.count() == 1


# --- plans, headers, secrecy ---


@pytest.mark.parametrize(
    ("base_url", "key", "plan", "expected"),
    [
        ("https://api.coingecko.com/api/v3", None, "auto", "keyless"),
        ("https://api.coingecko.com/api/v3", "k", "auto", "demo"),
        ("https://pro-api.coingecko.com/api/v3", "k", "auto", "pro"),
        ("http://127.0.0.1:8080/api/v3", "k", "pro", "pro"),
        ("http://127.0.0.1:8080/api/v3", None, "keyless", "keyless"),
    ],
)
def test_plan_resolution(base_url: str, key: str | None, plan: str, expected: str) -> None:
    assert resolve_plan(base_url, key, plan) == expected


@pytest.mark.parametrize(
    ("base_url", "key", "plan"),
    [
        ("https://pro-api.coingecko.com/api/v3", None, "auto"),
        ("https://api.coingecko.com/api/v3", None, "demo"),
        ("https://api.coingecko.com/api/v3", "k", "keyless"),
        ("https://api.coingecko.com/api/v3", "k", "gold"),
    ],
)
def test_plan_and_key_must_fit(base_url: str, key: str | None, plan: str) -> None:
    with pytest.raises(ValueError):
        resolve_plan(base_url, key, plan)


@pytest.mark.parametrize(
    ("plan", "key", "header"),
    [("keyless", None, None), ("demo", KEY, "x-cg-demo-api-key"), ("pro", KEY, "x-cg-pro-api-key")],
)
def test_the_plan_picks_the_header(replay: ReplayServer, plan: str, key: str | None, header: str | None) -> None:
    solana_server(replay)
    _, client = call(replay, simple(), plan=plan, api_key=key)
    assert client.plan == plan
    [request] = replay.requests
    sent = {name: value for name, value in request.headers.items() if name.startswith("x-cg-")}
    assert sent == ({header: KEY} if header else {})
    assert KEY not in request.path and all(KEY not in value for value in request.params.values())


def test_the_key_never_shows_in_errors_or_logs(
    replay: ReplayServer, captured_logs: list[MutableMapping[str, Any]]
) -> None:
    solana_server(replay)
    # A server that echoes the key back in its error message, after a 429 and a 500 that are retried.
    replay.add_fault(Fault.rate_limited("0"))
    replay.add_fault(Fault.server_error(503))
    echo = b'{"status":{"error_code":10010,"error_message":"Invalid API Key: %s"}}' % KEY.encode()
    replay.add_fault(Fault.reply(401, echo))
    with pytest.raises(CoinGeckoRejected) as caught:
        call(replay, simple(), plan="demo", api_key=KEY)
    assert KEY not in str(caught.value) and "Invalid API Key: ***" in str(caught.value)
    assert [entry["event"] for entry in captured_logs if entry["event"] == "coingecko.retry"] == ["coingecko.retry"] * 2
    assert len([e for e in captured_logs if e["event"] == "coingecko.request"]) == 3
    assert KEY not in repr(captured_logs)
    assert replay.requests[0].headers["x-cg-demo-api-key"] == KEY  # it was sent, in the header only


def test_bad_base_url_is_a_coingecko_error() -> None:
    async def run() -> None:
        async with CoinGeckoClient("ftp://127.0.0.1/api/v3", max_attempts=1) as client:
            await client.simple_price("solana")

    with pytest.raises(CoinGeckoError, match="UnsupportedProtocol"):
        asyncio.run(run())


def test_connection_refused_is_unavailable() -> None:
    with ReplayServer() as server:
        url = server.url

    async def run() -> None:
        async with CoinGeckoClient(url, max_attempts=2, backoff_initial_s=0.01) as client:
            await client.simple_price("solana")

    with pytest.raises(CoinGeckoUnavailable, match="ConnectError"):
        asyncio.run(run())


# --- the error mapping is complete ---

REQUEST = httpx.Request("GET", "http://127.0.0.1/api/v3/ping")
EXPECTED_TIMEOUT = {"TimeoutException", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout"}
EXPECTED_UNAVAILABLE = {"NetworkError", "ReadError", "WriteError", "ConnectError", "CloseError"}
EXPECTED_UNAVAILABLE |= {"RemoteProtocolError", "ProxyError"}


def _instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("boom", request=REQUEST, response=httpx.Response(500, request=REQUEST))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=REQUEST)
    parameters = [p for p in inspect.signature(cls).parameters.values() if p.default is inspect.Parameter.empty]
    return cls("boom") if parameters else cls()


def test_every_httpx_error_maps_into_the_pricing_tree() -> None:
    classes = [obj for obj in vars(httpx).values() if inspect.isclass(obj) and issubclass(obj, Exception)]
    assert len(classes) >= 25  # httpx 0.29 exports 28 exception classes
    for cls in classes:
        original = _instance(cls)
        with pytest.raises(CoinGeckoError) as caught, _map_errors(str, "CoinGecko /ping"):
            raise original
        assert caught.value.__cause__ is original, cls
        name = cls.__name__
        if name in EXPECTED_TIMEOUT:
            assert type(caught.value) is CoinGeckoTimeout, name
        elif name in EXPECTED_UNAVAILABLE:
            assert type(caught.value) is CoinGeckoUnavailable, name
        else:
            assert type(caught.value) is CoinGeckoError, name


def test_decoding_errors_map_to_bad_reply_and_others_pass() -> None:
    for original in (msgspec.DecodeError("bad"), msgspec.ValidationError("bad")):
        with pytest.raises(BadReply) as caught, _map_errors(str, "x"):
            raise original
        assert caught.value.__cause__ is original
    # Our own errors and programming errors are not reclassified.
    with pytest.raises(CoinNotFound), _map_errors(str, "x"):
        raise CoinNotFound("solana")
    with pytest.raises(KeyError), _map_errors(str, "x"):
        raise KeyError("bug")


def test_the_scrubber_is_applied_to_mapped_messages() -> None:
    with pytest.raises(CoinGeckoError) as caught, _map_errors(lambda text: text.replace(KEY, "***"), "x"):
        raise httpx.ConnectError(f"cannot reach host?key={KEY}", request=REQUEST)
    assert KEY not in str(caught.value)


def test_times_are_utc(replay: ReplayServer) -> None:
    solana_server(replay)
    price, _ = call(replay, simple())
    assert price.last_updated_at.tzinfo == dt.UTC
