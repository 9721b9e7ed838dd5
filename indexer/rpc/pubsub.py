"""`SolanaPubsub`: one Solana websocket connection with its subscriptions. I/O only.

A thin adapter over the `websockets` client: subscribe / unsubscribe requests are answered through
futures matched by id; notifications go to a bounded queue read with `next_notification()`, which
raises `PubsubSilent` when nothing arrives within `silence_limit_s` (a silent socket is a dead one:
nodes send slot notifications every ~400 ms). It does not reconnect: the caller (the daemon) owns the
reconnect loop with backoff, resubscribes, and polls from its cursors after every reconnect, since
notifications are hints only. Every failure is an `indexer.rpc.errors` error, translated in
`translate_websocket_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from types import TracebackType
from typing import Any, Final, Self

import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect

from indexer.rpc.errors import (
    InvalidResponse,
    PubsubClosed,
    PubsubSilent,
    RpcError,
    error_for_code,
    translate_websocket_errors,
)

_log = structlog.get_logger("indexer.rpc")

MAX_QUEUED_NOTIFICATIONS: Final = 10_000
_UNSUBSCRIBE: Final = {
    "logs": "logsUnsubscribe",
    "account": "accountUnsubscribe",
    "signature": "signatureUnsubscribe",
    "slot": "slotUnsubscribe",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    """One notification: `method` (e.g. "logsNotification"), the subscription id, the context slot
    (None for slot notifications, whose `result` is the slot itself) and the `value` (or result)."""

    method: str
    subscription: int
    slot: int | None
    value: Any


class SolanaPubsub:
    """`async with SolanaPubsub(ws_url) as pubsub:` subscribe, then read `next_notification()`."""

    def __init__(
        self,
        url: str,
        *,
        open_timeout_s: float = 10.0,
        request_timeout_s: float = 10.0,
        silence_limit_s: float = 60.0,
        ping_interval_s: float | None = 20.0,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError("the websocket URL must be ws(s)://host…")
        if min(open_timeout_s, request_timeout_s, silence_limit_s) <= 0:
            raise ValueError("timeouts must be positive")
        self.url = url
        self.open_timeout_s = open_timeout_s
        self.request_timeout_s = request_timeout_s
        self.silence_limit_s = silence_limit_s
        self.ping_interval_s = ping_interval_s
        self._connection: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._queue: asyncio.Queue[Notification | RpcError] = asyncio.Queue(MAX_QUEUED_NOTIFICATIONS)
        self._kinds: dict[int, str] = {}  # subscription id -> kind, for unsubscribe
        self._failure: RpcError | None = None

    async def __aenter__(self) -> Self:
        with translate_websocket_errors("connect"):
            self._connection = await connect(
                self.url,
                open_timeout=self.open_timeout_s,
                ping_interval=self.ping_interval_s,
                ping_timeout=self.ping_interval_s,
                close_timeout=self.open_timeout_s,
                max_size=16 * 1024 * 1024,
                compression=None,
            )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._connection is not None:
            with contextlib.suppress(Exception):  # closing a dead socket: nothing left to report
                await self._connection.close()
        self._fail(PubsubClosed("closed by the client", close_code=1000))

    # --- subscriptions ---

    async def logs_subscribe(self, address: str, commitment: str = "confirmed") -> int:
        """Logs of every transaction whose account keys mention `address`."""
        return await self._subscribe("logs", "logsSubscribe", [{"mentions": [address]}, {"commitment": commitment}])

    async def account_subscribe(
        self, address: str, *, encoding: str = "jsonParsed", commitment: str = "confirmed"
    ) -> int:
        return await self._subscribe(
            "account", "accountSubscribe", [address, {"encoding": encoding, "commitment": commitment}]
        )

    async def signature_subscribe(self, signature: str, commitment: str = "finalized") -> int:
        """One notification when the signature reaches the commitment; the node then ends it."""
        return await self._subscribe("signature", "signatureSubscribe", [signature, {"commitment": commitment}])

    async def slot_subscribe(self) -> int:
        return await self._subscribe("slot", "slotSubscribe", [])

    async def unsubscribe(self, subscription: int) -> bool:
        """True when the node ended the subscription; False when it no longer knew it."""
        kind = self._kinds.pop(subscription, None)
        if kind is None:
            return False
        try:
            result = await self._request(_UNSUBSCRIBE[kind], [subscription])
        except RpcError as exc:
            if exc.code == -32602:  # "Invalid subscription id.": already gone (e.g. a fired signature)
                return False
            raise
        return result is True

    async def next_notification(self) -> Notification:
        """The next notification; PubsubSilent after `silence_limit_s` of nothing, PubsubClosed when
        the socket died (with its close code, 1006 when cut)."""
        if self._queue.empty() and self._failure is not None:
            raise self._failure
        try:
            item = await asyncio.wait_for(self._queue.get(), self.silence_limit_s)
        except TimeoutError:
            raise PubsubSilent(f"no notification for {self.silence_limit_s:g} s") from None
        if isinstance(item, RpcError):
            self._queue.put_nowait(item)  # later readers see the failure too
            raise item
        return item

    # --- transport ---

    async def _subscribe(self, kind: str, method: str, params: list[Any]) -> int:
        result = await self._request(method, params)
        if not isinstance(result, int) or isinstance(result, bool):
            raise InvalidResponse(f"subscription id is not an integer: {result!r}"[:200], method=method)
        self._kinds[result] = kind
        return result

    async def _request(self, method: str, params: list[Any]) -> Any:
        if self._failure is not None:
            raise self._failure
        connection = self._connection
        if connection is None:
            raise PubsubClosed("not connected", method=method)
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            message = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            with translate_websocket_errors(method):
                await connection.send(message.decode())
            try:
                return await asyncio.wait_for(future, self.request_timeout_s)
            except TimeoutError:
                raise PubsubSilent(f"no reply to {method} in {self.request_timeout_s:g} s", method=method) from None
        finally:
            self._pending.pop(request_id, None)

    async def _read(self) -> None:
        connection = self._connection
        assert connection is not None
        try:
            with translate_websocket_errors("recv"):
                async for message in connection:
                    self._dispatch(message)
                # The iterator ends on a normal close (1000/1001).
                code = connection.close_code
                raise PubsubClosed(f"closed by the server (code {code})", close_code=code)
        except RpcError as exc:
            self._fail(exc)

    def _dispatch(self, message: str | bytes) -> None:
        try:
            document = orjson.loads(message)
        except orjson.JSONDecodeError:
            _log.warning("pubsub_bad_message", size=len(message))
            return
        if not isinstance(document, dict):
            return
        if "id" in document and document.get("method") is None:
            future = self._pending.get(document["id"]) if isinstance(document["id"], int) else None
            if future is None or future.done():
                return
            error = document.get("error")
            if isinstance(error, dict):
                future.set_exception(error_for_code(error.get("code"), str(error.get("message", ""))))
            else:
                future.set_result(document.get("result"))
            return
        params = document.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("subscription"), int):
            return
        result = params.get("result")
        slot = None
        value = result
        if isinstance(result, dict) and isinstance(result.get("context"), dict):
            slot = result["context"].get("slot")
            value = result.get("value")
        notification = Notification(str(document.get("method")), params["subscription"], slot, value)
        if notification.method == "signatureNotification":
            self._kinds.pop(notification.subscription, None)  # the node ended it
        try:
            self._queue.put_nowait(notification)
        except asyncio.QueueFull:
            # The consumer stopped reading: fail loudly rather than grow without bound.
            self._fail(PubsubClosed("notification queue full: the consumer is not reading"))
            if self._connection is not None:
                self._connection.transport.abort()

    def _fail(self, error: RpcError) -> None:
        if self._failure is not None:
            return
        self._failure = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(error)
