"""A loopback CoinGecko: a real HTTP server on 127.0.0.1 that answers like CoinGecko from recorded series.

Serves `/simple/price`, `/coins/{id}/market_chart/range` and `/ping` under any prefix (`url` ends in
`/api/v3`), the way CoinGecko does:

- `/coins/{id}/market_chart/range`: the points of [from, to] thinned to CoinGecko's automatic
  granularity (`pricing.rules.auto_granularity`: 5-minutely for one day from now, hourly up to 90 days,
  daily beyond), keeping the first recorded point of each 5-minute, hour or day bucket; a coarser
  recording stays as coarse as it is. Unknown coin: 404 `{"error":"coin not found"}`. `market_caps` and
  `total_volumes` are served empty (the recordings hold prices only).
- `/simple/price`: the latest point at or before the server's `now` (the wall clock unless set),
  with `last_updated_at` when asked. Unknown ids are left out (`{}` when none is known).

Scriptable faults (`add_fault`), taken in order by the requests they match: 429 with Retry-After,
a 5xx, a slow reply (the client times out), an empty object, a missing coin, a null or given price,
a stale `/simple/price` point, a range with no points, a body that is not JSON, a dropped connection,
or any recorded reply verbatim. Gaps (a missing point before a block time, a stale point) are made by
cutting points out of a series (`cut`). Every request is recorded with its headers (`requests`).

Used by the tests and by `treasury demo` (issue 5); `python -m pricing.replay` serves the bundled SOL
series until interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.server
import re
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType, TracebackType
from typing import Any, Final

import orjson

from pricing.credit import decimal_text
from pricing.rules import Point, auto_granularity, granularity_step_s
from pricing.series import PriceSeries, bundled_solana

SIMPLE_PRICE: Final = "simple_price"
MARKET_CHART_RANGE: Final = "market_chart_range"
PING: Final = "ping"
UNKNOWN: Final = "unknown"

RATE_LIMITED: Final = "rate_limited"
SERVER_ERROR: Final = "server_error"
SLOW: Final = "slow"
EMPTY_OBJECT: Final = "empty_object"
MISSING_COIN: Final = "missing_coin"
NULL_PRICE: Final = "null_price"
PRICE: Final = "price"
STALE: Final = "stale"
NO_POINTS: Final = "no_points"
BAD_JSON: Final = "bad_json"
DROP: Final = "drop"
REPLY: Final = "reply"
FAULT_KINDS: Final = frozenset(
    {RATE_LIMITED, SERVER_ERROR, SLOW, EMPTY_OBJECT, MISSING_COIN, NULL_PRICE, PRICE, STALE, NO_POINTS, BAD_JSON}
    | {DROP, REPLY}
)

_RANGE_PATH: Final = re.compile(r"/coins/([^/]+)/market_chart/range$")
# CoinGecko's real 429 body (recorded in a client log, 2022).
RATE_LIMIT_BODY: Final = (
    b'{"status":{"error_code":429,"error_message":"You\'ve exceeded the Rate Limit. Please visit '
    b'https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits."}}'
)
MAX_RECORDED_REQUESTS: Final = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour. `endpoint` limits it to SIMPLE_PRICE or MARKET_CHART_RANGE (None: any)."""

    kind: str
    endpoint: str | None = None
    retry_after: str | None = None  # RATE_LIMITED: the Retry-After header (None: no header)
    status: int = 500  # SERVER_ERROR and REPLY
    delay_s: float = 0.0  # SLOW: wait this long, then answer normally
    age_s: int = 0  # STALE: /simple/price reports a point this much older than now
    price: str = "0"  # PRICE: the price sent instead (JSON number text)
    body: bytes = b""  # REPLY: sent verbatim
    content_type: str = "application/json"  # REPLY

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1", *, endpoint: str | None = None) -> Fault:
        return cls(RATE_LIMITED, endpoint, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500, *, endpoint: str | None = None) -> Fault:
        return cls(SERVER_ERROR, endpoint, status=status)

    @classmethod
    def slow(cls, delay_s: float, *, endpoint: str | None = None) -> Fault:
        return cls(SLOW, endpoint, delay_s=delay_s)

    @classmethod
    def reply(
        cls, status: int, body: bytes, *, endpoint: str | None = None, content_type: str = "application/json"
    ) -> Fault:
        return cls(REPLY, endpoint, status=status, body=body, content_type=content_type)


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedRequest:
    endpoint: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]  # names in lower case
    received_at: float  # time.monotonic()


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    replay: ReplayServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and went away is part of the scenarios, not an error of the server.
        return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        try:
            self.server.replay._handle(self)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def send_body(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
        for name, value in (headers or {}).items():
            if name != "Content-Type":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _price_json(price: Decimal | None) -> str:
    return "null" if price is None else decimal_text(price)


def _to_seconds(text: str | None) -> int | None:
    """CoinGecko accepts UNIX seconds or ISO dates for `from` and `to`."""
    if text is None:
        return None
    try:
        return int(Decimal(text))
    except ArithmeticError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


class ReplayServer:
    """The loopback CoinGecko. `with ReplayServer({"solana": series}) as server: ... server.url ...`"""

    def __init__(
        self,
        series: Mapping[str, PriceSeries] | None = None,
        *,
        now: dt.datetime | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.now = now
        self._series: dict[str, PriceSeries] = dict(series or {})
        self._lock = threading.Lock()
        self._faults: list[list[Any]] = []  # [Fault, remaining]
        self._requests: list[RecordedRequest] = []
        self._closing = threading.Event()
        self._http = _HTTPServer((host, port), _Handler)
        self._http.replay = self
        self._thread: threading.Thread | None = None

    # --- life cycle ---

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give as TREASURY_COINGECKO_URL."""
        return f"http://127.0.0.1:{self.port}/api/v3"

    def start(self) -> ReplayServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="coingecko-replay", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes slow replies
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._http.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # --- scripting ---

    def set_series(self, coin_id: str, series: PriceSeries) -> None:
        with self._lock:
            self._series[coin_id] = series

    def series(self, coin_id: str) -> PriceSeries:
        with self._lock:
            return self._series[coin_id]

    def cut(self, coin_id: str, start: dt.datetime, end: dt.datetime) -> None:
        """Remove the points of `coin_id` from `start` to `end` inclusive (a gap in the data)."""
        with self._lock:
            self._series[coin_id] = self._series[coin_id].without(_ms(start), _ms(end))

    def add_fault(self, fault: Fault, *, times: int = 1) -> None:
        """Answer the next `times` requests matching the fault's endpoint with it (faults queue in order)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append([fault, times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, endpoint: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self._requests if endpoint is None or r.endpoint == endpoint)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- serving ---

    def _now_ms(self) -> int:
        moment = self.now if self.now is not None else dt.datetime.now(dt.UTC)
        return _ms(moment)

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for entry in self._faults:
                fault: Fault = entry[0]
                if fault.endpoint is None or fault.endpoint == endpoint:
                    entry[1] -= 1
                    if entry[1] == 0:
                        self._faults.remove(entry)
                    return fault
        return None

    def _handle(self, handler: _Handler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        range_match = _RANGE_PATH.search(parts.path)
        if parts.path.endswith("/simple/price"):
            endpoint = SIMPLE_PRICE
        elif range_match:
            endpoint = MARKET_CHART_RANGE
        elif parts.path.endswith("/ping"):
            endpoint = PING
        else:
            endpoint = UNKNOWN
        with self._lock:
            if len(self._requests) < MAX_RECORDED_REQUESTS:
                self._requests.append(
                    RecordedRequest(
                        endpoint,
                        parts.path,
                        MappingProxyType(params),
                        MappingProxyType({k.lower(): v for k, v in handler.headers.items()}),
                        time.monotonic(),
                    )
                )
        fault = self._take_fault(endpoint) if endpoint in (SIMPLE_PRICE, MARKET_CHART_RANGE) else None
        if fault is not None:
            if fault.kind == SLOW:
                self._closing.wait(fault.delay_s)
            elif fault.kind == DROP:
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            elif fault.kind == RATE_LIMITED:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                handler.send_body(429, RATE_LIMIT_BODY, headers)
                return
            elif fault.kind == SERVER_ERROR:
                body = b'{"status":{"error_code":%d,"error_message":"Internal Server Error"}}' % fault.status
                handler.send_body(fault.status, body)
                return
            elif fault.kind == EMPTY_OBJECT:
                handler.send_body(200, b"{}")
                return
            elif fault.kind == BAD_JSON:
                handler.send_body(200, b"<html><body>error code: 1020</body></html>", {"Content-Type": "text/html"})
                return
            elif fault.kind == REPLY:
                handler.send_body(fault.status, fault.body, {"Content-Type": fault.content_type})
                return
        if endpoint == SIMPLE_PRICE:
            status, body = self._simple_price(params, fault)
        elif endpoint == MARKET_CHART_RANGE:
            assert range_match is not None
            status, body = self._market_chart_range(urllib.parse.unquote(range_match.group(1)), params, fault)
        elif endpoint == PING:
            status, body = 200, b'{"gecko_says":"(V3) To the Moon!"}'
        else:
            status, body = 404, b'{"error":"Not Found"}'
        handler.send_body(status, body)

    def _simple_price(self, params: Mapping[str, str], fault: Fault | None) -> tuple[int, bytes]:
        ids = [coin.strip() for coin in params.get("ids", "").split(",") if coin.strip()]
        currencies = [c.strip().lower() for c in params.get("vs_currencies", "").split(",")]
        with_time = params.get("include_last_updated_at", "false").lower() == "true"
        now_ms = self._now_ms()
        reply: dict[str, str] = {}
        for coin_id in ids:
            with self._lock:
                series = self._series.get(coin_id)
            if series is None or (fault is not None and fault.kind == MISSING_COIN):
                continue
            at_ms = now_ms - fault.age_s * 1000 if fault is not None and fault.kind == STALE else now_ms
            point = series.at_or_before(at_ms)
            if point is None:
                continue
            fields = []
            if "usd" in currencies:
                price = point.price
                if fault is not None and fault.kind == NULL_PRICE:
                    price_text = "null"
                elif fault is not None and fault.kind == PRICE:
                    price_text = fault.price
                else:
                    price_text = _price_json(price)
                fields.append(f'"usd":{price_text}')
            if with_time:
                fields.append(f'"last_updated_at":{point.time_ms // 1000}')
            reply[coin_id] = "{" + ",".join(fields) + "}"
        body = "{" + ",".join(f"{orjson.dumps(k).decode()}:{v}" for k, v in reply.items()) + "}"
        return 200, body.encode()

    def _market_chart_range(self, coin_id: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, bytes]:
        with self._lock:
            series = self._series.get(coin_id)
        if series is None or (fault is not None and fault.kind == MISSING_COIN):
            return 404, b'{"error":"coin not found"}'
        from_s, to_s = _to_seconds(params.get("from")), _to_seconds(params.get("to"))
        if from_s is None or to_s is None or params.get("vs_currency", "").lower() != "usd":
            return 400, b'{"error":"Missing or invalid parameter: vs_currency, from, to"}'
        points: list[Point] = []
        if fault is None or fault.kind != NO_POINTS:
            step_ms = granularity_step_s(auto_granularity(from_s, to_s, self._now_ms() // 1000)) * 1000
            seen_buckets: set[int] = set()
            for point in series.between(from_s * 1000, to_s * 1000):
                bucket = point.time_ms // step_ms
                if bucket not in seen_buckets:
                    seen_buckets.add(bucket)
                    points.append(point)
        prices = [f"[{p.time_ms},{_price_json(p.price)}]" for p in points]
        if prices and fault is not None and fault.kind in (NULL_PRICE, PRICE):
            replacement = "null" if fault.kind == NULL_PRICE else fault.price
            prices[-1] = f"[{points[-1].time_ms},{replacement}]"
        body = '{"prices":[' + ",".join(prices) + '],"market_caps":[],"total_volumes":[]}'
        return 200, body.encode()


def _ms(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times given to the replay server must be timezone-aware")
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def main(argv: list[str] | None = None) -> None:
    """`python -m pricing.replay [--port N] [--now ISO8601]`: serve the bundled SOL series as "solana"."""
    parser = argparse.ArgumentParser(prog="python -m pricing.replay", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--now", type=dt.datetime.fromisoformat, default=None, help="the server's clock")
    args = parser.parse_args(argv)
    now = args.now.replace(tzinfo=args.now.tzinfo or dt.UTC) if args.now else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ReplayServer({"solana": bundled_solana()}, now=now, port=args.port) as server:
        print(f"CoinGecko replay on {server.url}", flush=True)  # noqa: T201 - a command's output
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
