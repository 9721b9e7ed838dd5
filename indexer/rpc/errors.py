"""The RPC adapter's error tree, and the ONE place where foreign errors become ours.

Four sources of failure are translated here and nowhere else:

- httpx exceptions (`translate_httpx_errors`, a context manager): every exception class httpx exports
  is named in `HTTPX_ERRORS` (tests/test_rpc_errors.py proves the table is complete);
- websockets exceptions and socket errors (`translate_websocket_errors`): every class in
  `websockets.exceptions.__all__` is named in `WEBSOCKET_ERRORS` (proved complete likewise);
- HTTP status codes (`error_for_http_status`): 429 rate limited, 5xx server error, 410 disabled, …;
- JSON-RPC error codes (`error_for_code`): Solana's server codes (-32004 … -32019) and the JSON-RPC
  standard ones.

Classification is closed by default: a code or status not listed is a `PermanentRpcError` (never
retried) and is logged, so a new node behaviour shows up in the logs instead of in a retry storm.

Errors (each keeps `code`, the JSON-RPC error code, and `http_status`, when known):
    RpcError
      ├── TransientRpcError                 worth retrying (after a wait)
      │     ├── RateLimited                 HTTP 429 or code 429; `retry_after_s` from Retry-After
      │     ├── ServerError                 HTTP 5xx, -32603 internal error, -32019 storage unreachable
      │     ├── RpcTimeout                  connect/read/write/pool timeout
      │     ├── RpcConnectionError          refused, reset, closed mid-reply, proxy failure, handshake refused
      │     ├── NodeBehind                  -32004, -32005, -32007, -32009, -32014, -32016, -32017
      │     ├── PubsubClosed                the websocket closed (`close_code`: 1006 when cut without a close frame)
      │     └── PubsubSilent                the websocket sent nothing for longer than the silence limit
      └── PermanentRpcError                 retrying the same request cannot help
            ├── InvalidParams               -32602 (also "could not find account")
            ├── MethodNotFound              -32601
            ├── InvalidRequest              -32600, -32700, or a request httpx refuses to send
            ├── TransactionVersionUnsupported   -32015
            ├── RpcDisabled                 HTTP or code 410 (method or parameters disabled)
            ├── RpcUnauthorized             HTTP 401 / 403
            ├── InvalidResponse             the reply is not the JSON-RPC reply it should be
            ├── NotAMint                    check_mint: the account is not an SPL mint
            └── UnclassifiedRpcError        any other code or status (logged)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
from collections.abc import Iterator, Mapping
from typing import Final

import httpx
import structlog
import websockets.exceptions as ws_errors

_log = structlog.get_logger("indexer.rpc")

_MESSAGE_CHARS: Final = 300  # a node's message is kept, cut to this length


class RpcError(Exception):
    """Base of the RPC adapter's errors."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        method: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.method = method

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            parts.append(f"code {self.code}")
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.method is not None:
            parts.append(f"method {self.method}")
        return f"{parts[0]} ({', '.join(parts[1:])})" if len(parts) > 1 else parts[0]

    @property
    def kind(self) -> str:
        """A short stable name for metrics and logs (the class name)."""
        return type(self).__name__


class TransientRpcError(RpcError):
    """A failure that may pass: retried with a bounded backoff."""


class RateLimited(TransientRpcError):
    """HTTP 429 or JSON-RPC code 429. `retry_after_s` is the server's Retry-After, when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        code: int | None = None,
        http_status: int | None = None,
        method: str | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, method=method)
        self.retry_after_s = retry_after_s


class ServerError(TransientRpcError):
    """HTTP 5xx or a node's internal error."""


class RpcTimeout(TransientRpcError):
    """No reply in time (connect, read, write or waiting for a pooled connection)."""


class RpcConnectionError(TransientRpcError):
    """The connection failed: refused, reset, closed in the middle of a reply, proxy failure."""


class NodeBehind(TransientRpcError):
    """The node does not have the slot, block or status yet (or has skipped it): ask again later."""


class PubsubClosed(TransientRpcError):
    """The websocket closed. `close_code` is the code received, 1006 when the socket was cut without a
    close frame (the usual death of a subscription connection); reconnect and resubscribe."""

    def __init__(self, message: str, *, close_code: int | None = None, method: str | None = None) -> None:
        super().__init__(message, method=method)
        self.close_code = close_code


class PubsubSilent(TransientRpcError):
    """Nothing arrived on the websocket for longer than the silence limit: treat it as dead."""


class PermanentRpcError(RpcError):
    """Retrying the same request cannot help."""


class InvalidParams(PermanentRpcError):
    """JSON-RPC -32602."""


class MethodNotFound(PermanentRpcError):
    """JSON-RPC -32601."""


class InvalidRequest(PermanentRpcError):
    """JSON-RPC -32600 / -32700, or a request httpx refuses to build or send (bad URL, …)."""


class TransactionVersionUnsupported(PermanentRpcError):
    """JSON-RPC -32015: a v0 transaction asked for without maxSupportedTransactionVersion."""


class RpcDisabled(PermanentRpcError):
    """HTTP 410 or code 410: the provider disabled this method or these parameters."""


class RpcUnauthorized(PermanentRpcError):
    """HTTP 401 or 403: a missing or wrong API key."""


class InvalidResponse(PermanentRpcError):
    """The reply is not the JSON-RPC reply asked for (not JSON, wrong shape, missing batch items)."""


class NotAMint(PermanentRpcError):
    """check_mint: the account does not exist or is not an initialised SPL Token / Token-2022 mint."""


class UnclassifiedRpcError(PermanentRpcError):
    """A code or status this adapter does not know: treated as permanent, and logged."""


# --- JSON-RPC codes ---

RATE_LIMIT_CODE: Final = 429
DISABLED_CODE: Final = 410

# Solana's server error codes (agave rpc-client-api custom_error.rs) and the JSON-RPC standard ones.
ERROR_CODES: Final[Mapping[int, type[RpcError]]] = {
    RATE_LIMIT_CODE: RateLimited,
    DISABLED_CODE: RpcDisabled,
    -32700: InvalidRequest,  # parse error: our request was not JSON
    -32600: InvalidRequest,
    -32601: MethodNotFound,
    -32602: InvalidParams,
    -32603: ServerError,  # internal error
    -32001: PermanentRpcError,  # block cleaned up: older than this node keeps
    -32002: PermanentRpcError,  # send transaction preflight failure
    -32003: PermanentRpcError,  # transaction signature verification failure
    -32004: NodeBehind,  # block not available for slot
    -32005: NodeBehind,  # node is unhealthy (behind by N slots)
    -32006: PermanentRpcError,  # transaction precompile verification failure
    -32007: NodeBehind,  # slot skipped, or missing due to ledger jump to recent snapshot
    -32008: ServerError,  # no snapshot
    -32009: NodeBehind,  # slot skipped, or missing in long-term storage
    -32010: PermanentRpcError,  # key excluded from secondary index
    -32011: PermanentRpcError,  # transaction history not available from this node
    -32012: ServerError,  # scan error
    -32013: PermanentRpcError,  # transaction signature length mismatch
    -32014: NodeBehind,  # block status not yet available
    -32015: TransactionVersionUnsupported,
    -32016: NodeBehind,  # minimum context slot has not been reached
    -32017: NodeBehind,  # epoch rewards period active
    -32018: PermanentRpcError,  # slot not an epoch boundary
    -32019: ServerError,  # long-term storage unreachable
}


def error_for_code(
    code: int | None,
    message: str,
    *,
    http_status: int | None = None,
    method: str | None = None,
    retry_after_s: float | None = None,
) -> RpcError:
    """The error for a JSON-RPC error object. Unknown codes are permanent and logged."""
    text = _cut(message) or "JSON-RPC error"
    cls = ERROR_CODES.get(code) if code is not None else None
    if cls is None:
        _log.warning("rpc_unclassified_error", code=code, http_status=http_status, method=method, message=text)
        cls = UnclassifiedRpcError
    if cls is RateLimited:
        return RateLimited(text, retry_after_s=retry_after_s, code=code, http_status=http_status, method=method)
    return cls(text, code=code, http_status=http_status, method=method)


def error_for_http_status(
    status: int,
    *,
    code: int | None = None,
    message: str | None = None,
    retry_after: str | None = None,
    method: str | None = None,
    now: dt.datetime | None = None,
) -> RpcError:
    """The error for a reply whose HTTP status is not 200. A JSON-RPC error in the body, when there is
    one, gives the code and message; the status decides the class, except where only the code does."""
    text = _cut(message) if message else f"HTTP {status}"
    if status == 429:
        return RateLimited(
            text,
            retry_after_s=parse_retry_after(retry_after, now=now),
            code=code,
            http_status=status,
            method=method,
        )
    if 500 <= status <= 599:
        return ServerError(text, code=code, http_status=status, method=method)
    if status == 410:
        return RpcDisabled(text, code=code, http_status=status, method=method)
    if status in (401, 403):
        return RpcUnauthorized(text, code=code, http_status=status, method=method)
    if code is not None:
        return error_for_code(code, text, http_status=status, method=method)
    _log.warning("rpc_unclassified_error", code=None, http_status=status, method=method, message=text)
    return UnclassifiedRpcError(text, http_status=status, method=method)


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
    None when absent or unreadable. `now` is needed only for the date form (defaults to the clock)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        seconds = float(text)  # not standard, but some proxies send "1.5"
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    reference = now if now is not None else dt.datetime.now(dt.UTC)
    return max(0.0, (when - reference).total_seconds())


# --- httpx exceptions ---

# Every exception class httpx exports, mapped exactly (not through inheritance), so that an httpx
# upgrade that adds one fails tests/test_rpc_errors.py instead of falling through silently.
HTTPX_ERRORS: Final[Mapping[type[Exception], type[RpcError]]] = {
    httpx.HTTPError: RpcConnectionError,
    httpx.RequestError: RpcConnectionError,
    httpx.TransportError: RpcConnectionError,
    httpx.TimeoutException: RpcTimeout,
    httpx.ConnectTimeout: RpcTimeout,
    httpx.ReadTimeout: RpcTimeout,
    httpx.WriteTimeout: RpcTimeout,
    httpx.PoolTimeout: RpcTimeout,
    httpx.NetworkError: RpcConnectionError,
    httpx.ConnectError: RpcConnectionError,
    httpx.ReadError: RpcConnectionError,
    httpx.WriteError: RpcConnectionError,
    httpx.CloseError: RpcConnectionError,
    httpx.ProtocolError: RpcConnectionError,
    httpx.RemoteProtocolError: RpcConnectionError,  # the server closed or garbled the connection
    httpx.LocalProtocolError: InvalidRequest,  # we built an invalid HTTP request
    httpx.ProxyError: RpcConnectionError,
    httpx.UnsupportedProtocol: InvalidRequest,  # the URL's scheme is not http(s)
    httpx.DecodingError: InvalidResponse,  # the body's content encoding is broken
    httpx.TooManyRedirects: InvalidResponse,
    httpx.HTTPStatusError: UnclassifiedRpcError,  # never raised here (no raise_for_status); by status below
    httpx.InvalidURL: InvalidRequest,
    httpx.CookieConflict: InvalidRequest,
    httpx.StreamError: InvalidRequest,  # the four below are programming errors in reading a stream
    httpx.StreamConsumed: InvalidRequest,
    httpx.StreamClosed: InvalidRequest,
    httpx.ResponseNotRead: InvalidRequest,
    httpx.RequestNotRead: InvalidRequest,
}

_HTTPX_BASES: Final = (httpx.HTTPError, httpx.InvalidURL, httpx.CookieConflict, httpx.StreamError)


def error_for_httpx(exc: Exception, *, method: str | None = None) -> RpcError:
    """Our error for an httpx exception: the entry of its own class, else of its nearest listed base."""
    if isinstance(exc, httpx.HTTPStatusError):
        return error_for_http_status(exc.response.status_code, method=method)
    for cls in type(exc).__mro__:
        target = HTTPX_ERRORS.get(cls)
        if target is not None:
            detail = str(exc).strip() or type(exc).__name__
            return target(_cut(f"{type(exc).__name__}: {detail}"), method=method)
    return UnclassifiedRpcError(_cut(f"{type(exc).__name__}: {exc}"), method=method)


@contextlib.contextmanager
def translate_httpx_errors(method: str | None = None) -> Iterator[None]:
    """Raise our error, `from` the original, for any httpx exception inside the block."""
    try:
        yield
    except _HTTPX_BASES as exc:
        raise error_for_httpx(exc, method=method) from exc


# --- websockets exceptions ---

# Every class in websockets.exceptions.__all__, mapped exactly (tests/test_rpc_errors.py checks).
WEBSOCKET_ERRORS: Final[Mapping[type[Exception], type[RpcError]]] = {
    ws_errors.WebSocketException: RpcConnectionError,
    ws_errors.ConnectionClosed: PubsubClosed,
    ws_errors.ConnectionClosedOK: PubsubClosed,
    ws_errors.ConnectionClosedError: PubsubClosed,
    ws_errors.InvalidURI: InvalidRequest,
    ws_errors.InvalidProxy: InvalidRequest,
    ws_errors.InvalidHandshake: RpcConnectionError,
    ws_errors.SecurityError: InvalidResponse,  # the server's handshake broke a safety limit
    ws_errors.ProxyError: RpcConnectionError,
    ws_errors.InvalidProxyMessage: RpcConnectionError,
    ws_errors.InvalidProxyStatus: RpcConnectionError,
    ws_errors.InvalidMessage: RpcConnectionError,  # a garbled handshake reply, often a dying server
    ws_errors.InvalidStatus: RpcConnectionError,  # by its HTTP status below (503, 429, 401, …)
    ws_errors.InvalidHeader: RpcConnectionError,
    ws_errors.InvalidHeaderFormat: RpcConnectionError,
    ws_errors.InvalidHeaderValue: RpcConnectionError,
    ws_errors.InvalidOrigin: InvalidRequest,
    ws_errors.InvalidUpgrade: RpcConnectionError,  # e.g. a proxy answering plain HTTP
    ws_errors.NegotiationError: InvalidRequest,
    ws_errors.DuplicateParameter: InvalidResponse,
    ws_errors.InvalidParameterName: InvalidResponse,
    ws_errors.InvalidParameterValue: InvalidResponse,
    ws_errors.ProtocolError: PubsubClosed,  # the connection is unusable after a protocol violation
    ws_errors.PayloadTooBig: PubsubClosed,
    ws_errors.InvalidState: PubsubClosed,  # sending on a closed or closing connection
    ws_errors.ConcurrencyError: InvalidRequest,  # two readers on one connection: our bug
}


def error_for_websocket(exc: BaseException, *, method: str | None = None) -> RpcError:
    """Our error for a websockets exception, a socket error or a timeout while connecting."""
    detail = _cut(f"{type(exc).__name__}: {str(exc).strip() or type(exc).__name__}")
    if isinstance(exc, ws_errors.InvalidStatus):
        status = exc.response.status_code
        retry_after = exc.response.headers.get("Retry-After")
        if status == 429 or 500 <= status <= 599 or status in (401, 403, 410):
            return error_for_http_status(status, message=detail, retry_after=retry_after, method=method)
        return RpcConnectionError(detail, http_status=status, method=method)
    if isinstance(exc, ws_errors.ConnectionClosed):
        received = exc.rcvd.code if exc.rcvd is not None else 1006
        return PubsubClosed(detail, close_code=received, method=method)
    if isinstance(exc, TimeoutError):
        return RpcTimeout(detail, method=method)
    if isinstance(exc, OSError):
        return RpcConnectionError(detail, method=method)
    for cls in type(exc).__mro__:
        target = WEBSOCKET_ERRORS.get(cls)
        if target is PubsubClosed:
            return PubsubClosed(detail, method=method)
        if target is not None:
            return target(detail, method=method)
    return UnclassifiedRpcError(detail, method=method)


@contextlib.contextmanager
def translate_websocket_errors(method: str | None = None) -> Iterator[None]:
    """Raise our error, `from` the original, for websockets exceptions, socket errors and timeouts."""
    try:
        yield
    except (ws_errors.WebSocketException, OSError, TimeoutError) as exc:
        raise error_for_websocket(exc, method=method) from exc


def _cut(text: str | None) -> str:
    if not text:
        return ""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _MESSAGE_CHARS else one_line[: _MESSAGE_CHARS - 1] + "…"
