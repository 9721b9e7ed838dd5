"""Scripted faults of the replay server, set from tests or the demo while it runs (thread-safe).

HTTP faults apply to a whole HTTP request (a batch counts once) and match when `method` is None or
any item of the request calls it; `times=None` means until `clear()`. Faults are consumed in the
order they were scripted.

- `rate_limit`: HTTP 429 with Retry-After and the recorded public-RPC 429 body;
- `server_error`: HTTP 500 (or another 5xx) with a plain-text body;
- `slow`: the reply is held back `delay_s` (longer than a client's timeout: a timeout);
- `disable`: HTTP 410 with the recorded "disabled" body (`"id": null`);
- `rpc_error`: a JSON-RPC error object for each matching item, inside an HTTP 200 reply (so one
  item of a batch can fail while the others succeed), e.g. -32004 block not available;
- `lag(slot)`: a lagging node: history, statuses, balances and getSlot only up to `slot`;
- `forget_until`: the node does not know `until` signatures and answers the newest page instead;
- `hide_signature`: a signature is left out of getSignaturesForAddress pages;
- websocket: `ws_silence` (nothing is sent, the socket stays open and answers pings),
  `ws_refuse` (handshakes are rejected with HTTP 503, for some seconds or some attempts) and
  `ws_close_abruptly` (every open socket is cut without a close frame: the client sees 1006).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Final

_DATA: Final = resources.files("indexer.replay") / "data"
RATE_LIMIT_BODY: Final = (_DATA / "solana_error_429_rpcpool_rate_limit_body.json").read_bytes()
DISABLED_BODY: Final = (_DATA / "solana_error_410_rpc_call_disabled_response.json").read_bytes()


@dataclasses.dataclass(slots=True)
class HttpFault:
    kind: str  # "rate_limit", "server_error", "slow", "disable"
    method: str | None
    remaining: int | None
    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0
    body: bytes = b""


@dataclasses.dataclass(slots=True)
class ItemFault:
    method: str | None
    remaining: int | None
    code: int
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class HttpAction:
    """What the server does with one HTTP request: wait `delay_s`, then answer normally (status 0)
    or with `status`, `headers` and `body`."""

    delay_s: float = 0.0
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


class Faults:
    """The faults scripted on one replay server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http: list[HttpFault] = []
        self._items: list[ItemFault] = []
        self._hidden: dict[str, int | None] = {}
        self.lag_slot: int | None = None
        self._forget_until: int | bool | None = False  # False: off; None: always; int: that many pages
        self.ws_silent = False
        self._ws_refuse_until: float | None = None
        self._ws_refuse_times: int | None = None
        self._ws_close_hook: Callable[[], None] | None = None

    # --- scripting ---

    def rate_limit(self, times: int | None = 1, *, method: str | None = None, retry_after_s: int | None = 1) -> None:
        retry_after = str(retry_after_s) if retry_after_s is not None else None
        self._add(HttpFault("rate_limit", method, times, 429, retry_after, body=RATE_LIMIT_BODY))

    def server_error(self, times: int | None = 1, *, method: str | None = None, status: int = 500) -> None:
        if not 500 <= status <= 599:
            raise ValueError("status must be 5xx")
        self._add(HttpFault("server_error", method, times, status, body=b"Internal Server Error\n"))

    def slow(self, delay_s: float, *, times: int | None = 1, method: str | None = None) -> None:
        if not 0 < delay_s <= 600:
            raise ValueError("delay_s must be in (0, 600]")
        self._add(HttpFault("slow", method, times, delay_s=delay_s))

    def disable(self, method: str, *, times: int | None = None) -> None:
        self._add(HttpFault("disable", method, times, 410, body=DISABLED_BODY))

    def rpc_error(self, code: int, message: str, *, times: int | None = 1, method: str | None = None) -> None:
        with self._lock:
            self._items.append(ItemFault(method, times, code, message))

    def lag(self, slot: int | None) -> None:
        """Serve only history up to `slot` (None: no lag)."""
        self.lag_slot = slot

    def forget_until(self, times: int | None = None) -> None:
        """Answer `times` getSignaturesForAddress requests (None: all) as if `until` were absent."""
        with self._lock:
            self._forget_until = times

    def hide_signature(self, signature: str, *, times: int | None = 1) -> None:
        """Leave `signature` out of the next `times` pages that would hold it (None: always)."""
        with self._lock:
            self._hidden[signature] = times

    def ws_silence(self, silent: bool = True) -> None:
        self.ws_silent = silent

    def ws_refuse(self, *, seconds: float | None = None, times: int | None = None) -> None:
        """Reject websocket handshakes (HTTP 503) for `seconds`, or for the next `times` attempts."""
        if (seconds is None) == (times is None):
            raise ValueError("give seconds or times")
        with self._lock:
            self._ws_refuse_until = time.monotonic() + seconds if seconds is not None else None
            self._ws_refuse_times = times

    def ws_close_abruptly(self) -> None:
        """Cut every open websocket now, without a close frame (the client sees code 1006)."""
        hook = self._ws_close_hook
        if hook is None:
            raise RuntimeError("the websocket server is not running")
        hook()

    def attach_websocket_closer(self, hook: Callable[[], None] | None) -> None:
        """The running server's way to cut its websockets (None when it stops)."""
        self._ws_close_hook = hook

    def clear(self) -> None:
        with self._lock:
            self._http.clear()
            self._items.clear()
            self._hidden.clear()
            self._forget_until = False
            self._ws_refuse_until = None
            self._ws_refuse_times = None
        self.lag_slot = None
        self.ws_silent = False

    # --- consulted by the server ---

    def _add(self, fault: HttpFault) -> None:
        with self._lock:
            self._http.append(fault)

    def http_action(self, methods: Iterable[str]) -> HttpAction:
        """Consume the faults that apply to one HTTP request calling `methods`."""
        names = set(methods)
        delay_s = 0.0
        with self._lock:
            for fault in list(self._http):
                if fault.method is not None and fault.method not in names:
                    continue
                _consume(self._http, fault)
                if fault.kind == "slow":
                    delay_s += fault.delay_s
                    continue
                headers: tuple[tuple[str, str], ...] = (
                    (("Retry-After", fault.retry_after),) if fault.retry_after is not None else ()
                )
                content_type = "application/json" if fault.body.startswith(b"{") else "text/plain"
                return HttpAction(delay_s, fault.status, (("Content-Type", content_type), *headers), fault.body)
        return HttpAction(delay_s)

    def item_error(self, method: str) -> tuple[int, str] | None:
        """A scripted JSON-RPC error for one item calling `method`, consumed."""
        with self._lock:
            for fault in self._items:
                if fault.method is None or fault.method == method:
                    _consume(self._items, fault)
                    return fault.code, fault.message
        return None

    def until_forgotten(self) -> bool:
        with self._lock:
            state = self._forget_until
            if state is False:
                return False
            if state is None:
                return True
            assert isinstance(state, int)
            if state <= 0:
                self._forget_until = False
                return False
            self._forget_until = state - 1 if state > 1 else False
            return True

    def consume_hidden(self, signatures: Iterable[str]) -> None:
        """Count one page against each hidden signature that was left out of it."""
        with self._lock:
            for signature in signatures:
                remaining = self._hidden.get(signature, 0)
                if remaining is None:
                    continue
                if remaining <= 1:
                    self._hidden.pop(signature, None)
                else:
                    self._hidden[signature] = remaining - 1

    @property
    def hiding(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._hidden)

    def ws_refusing(self) -> bool:
        """Whether to reject this handshake (consumes one of `times`)."""
        with self._lock:
            if self._ws_refuse_times is not None:
                if self._ws_refuse_times <= 0:
                    self._ws_refuse_times = None
                    return False
                self._ws_refuse_times -= 1
                return True
            if self._ws_refuse_until is not None:
                if time.monotonic() < self._ws_refuse_until:
                    return True
                self._ws_refuse_until = None
            return False


def _consume(faults: list[HttpFault] | list[ItemFault], fault: HttpFault | ItemFault) -> None:
    if fault.remaining is None:
        return
    fault.remaining -= 1
    if fault.remaining <= 0:
        faults.remove(fault)  # type: ignore[arg-type]  # the fault comes from this list
