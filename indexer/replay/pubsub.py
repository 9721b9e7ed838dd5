"""Websocket subscriptions of the replay node (like a node's pubsub port, 8900), in the node's shapes.

logsSubscribe (`{"mentions": [address]}`, "all", "allWithVotes"), accountSubscribe,
signatureSubscribe (one notification, then the subscription ends, as on a node; sent at once when the
signature already has the commitment) and slotSubscribe, each with its unsubscribe. Notifications are
pushed when the chain changes (`ReplayChain.add`, `finalize`, `advance_slot`); a subscription's
commitment picks the moment ("processed" is treated as "confirmed": the model has no earlier stage).

Each connection has a bounded outgoing queue drained by one writer task, so notifications keep
their order; a client that falls `MAX_QUEUED` messages behind is disconnected, as nodes do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import itertools
from typing import Any, Final

import based58
import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from indexer.instructions import SYSTEM_PROGRAM_ID
from indexer.replay.chain import CONFIRMED, FINALIZED, Event, ReplayChain, SlotEvent, TransactionEvent
from indexer.replay.faults import Faults
from indexer.replay.methods import account_json, token_account_json

MAX_QUEUED: Final = 10_000
MAX_SUBSCRIPTIONS_PER_CONNECTION: Final = 1_000
_VOTE_PROGRAM_ID: Final = "Vote111111111111111111111111111111111111111"
_SUBSCRIBE_KINDS: Final = {
    "logsSubscribe": "logs",
    "accountSubscribe": "account",
    "signatureSubscribe": "signature",
    "slotSubscribe": "slot",
}
_UNSUBSCRIBE_KINDS: Final = {
    "logsUnsubscribe": "logs",
    "accountUnsubscribe": "account",
    "signatureUnsubscribe": "signature",
    "slotUnsubscribe": "slot",
}
_NOTIFICATION_METHODS: Final = {
    "logs": "logsNotification",
    "account": "accountNotification",
    "signature": "signatureNotification",
    "slot": "slotNotification",
}


@dataclasses.dataclass(slots=True)
class Subscription:
    id: int
    kind: str  # "logs", "account", "signature" or "slot"
    session: Session
    key: str | None  # the mentioned address, account or signature; "all"/"allWithVotes" for logs
    commitment: str
    encoding: str


class Session:
    """One websocket connection: its subscriptions and its ordered outgoing queue."""

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.queue: asyncio.Queue[str] = asyncio.Queue(MAX_QUEUED)
        self.subscriptions: dict[int, Subscription] = {}

    def push(self, message: str) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.connection.transport.abort()  # a slow consumer is cut off

    async def writer(self) -> None:
        while True:
            message = await self.queue.get()
            await self.connection.send(message)


class PubsubHub:
    """All sessions and subscriptions of one replay server; runs on the server's event loop."""

    def __init__(self, chain: ReplayChain, faults: Faults, counts: Any) -> None:
        self.chain = chain
        self.faults = faults
        self.counts = counts
        self.sessions: set[Session] = set()
        self.subscriptions: dict[int, Subscription] = {}
        self._ids = itertools.count(1)
        self.connections_total = 0

    # --- connections ---

    async def handle(self, connection: ServerConnection) -> None:
        session = Session(connection)
        self.sessions.add(session)
        self.connections_total += 1
        writer = asyncio.create_task(session.writer())
        try:
            async for message in connection:
                reply = self._request(session, message)
                if reply is not None:
                    self._send(session, reply)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer
            for subscription_id in list(session.subscriptions):
                self.subscriptions.pop(subscription_id, None)
            self.sessions.discard(session)

    def close_abruptly(self) -> None:
        """Cut every connection without a close frame: clients see 1006."""
        for session in list(self.sessions):
            session.connection.transport.abort()

    def _send(self, session: Session, message: str) -> None:
        if self.faults.ws_silent:
            return  # silence: nothing goes out, the socket stays open
        session.push(message)

    # --- requests ---

    def _request(self, session: Session, message: str | bytes) -> str | None:
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            return _error(None, -32700, "Parse error")
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, -32600, "Invalid request")
        method: str = request["method"]
        request_id = request.get("id")
        params = request.get("params") or []
        self.counts[f"ws:{method}"] += 1
        if not isinstance(params, list):
            return _error(request_id, -32602, "Invalid params")
        if method in _SUBSCRIBE_KINDS:
            try:
                subscription = self._subscribe(session, _SUBSCRIBE_KINDS[method], params)
            except ValueError as exc:
                return _error(request_id, -32602, str(exc))
            self._send(session, _result(request_id, subscription.id))
            self._initial(subscription)
            return None
        if method in _UNSUBSCRIBE_KINDS:
            target = params[0] if params else None
            found = self.subscriptions.get(target) if isinstance(target, int) else None
            if found is None or found.session is not session or found.kind != _UNSUBSCRIBE_KINDS[method]:
                return _error(request_id, -32602, "Invalid subscription id.")
            self._remove(found)
            return _result(request_id, True)
        return _error(request_id, -32601, "Method not found")

    def _subscribe(self, session: Session, kind: str, params: list[Any]) -> Subscription:
        if len(session.subscriptions) >= MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise ValueError("Invalid params: too many subscriptions on this connection")
        config = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        if kind == "slot":
            key = None
            config = {}
        elif kind == "logs":
            selector = params[0] if params else None
            if selector in ("all", "allWithVotes"):
                key = str(selector)
            elif isinstance(selector, dict) and isinstance(selector.get("mentions"), list):
                mentions = selector["mentions"]
                if len(mentions) != 1 or not isinstance(mentions[0], str):
                    raise ValueError("Invalid Request: Only 1 address supported")
                key = mentions[0]
            else:
                raise ValueError("Invalid params: logs filter")
        else:
            if not params or not isinstance(params[0], str):
                raise ValueError("Invalid params")
            key = params[0]
        commitment = config.get("commitment", FINALIZED)
        if commitment == "processed":
            commitment = CONFIRMED
        if commitment not in (CONFIRMED, FINALIZED):
            raise ValueError(f"Invalid params: unknown commitment {commitment!r}")
        encoding = config.get("encoding", "base58")
        if encoding not in ("base58", "base64", "jsonParsed"):
            raise ValueError(f"Invalid params: unknown encoding {encoding!r}")
        subscription = Subscription(next(self._ids), kind, session, key, commitment, encoding)
        self.subscriptions[subscription.id] = subscription
        session.subscriptions[subscription.id] = subscription
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        self.subscriptions.pop(subscription.id, None)
        subscription.session.subscriptions.pop(subscription.id, None)

    def _initial(self, subscription: Subscription) -> None:
        """A signature that already has the commitment is notified at once."""
        if subscription.kind != "signature" or subscription.key is None:
            return
        transaction = self.chain.transaction(subscription.key, commitment=subscription.commitment)
        if transaction is not None:
            self._notify(subscription, {"context": {"slot": transaction.slot}, "value": {"err": transaction.err}})
            self._remove(subscription)

    # --- chain events (called on the loop thread) ---

    def on_event(self, event: Event) -> None:
        if isinstance(event, SlotEvent):
            for subscription in list(self.subscriptions.values()):
                if subscription.kind == "slot":
                    self._notify(subscription, {"parent": event.parent, "root": event.root, "slot": event.slot})
            return
        transaction = event.transaction
        if self.faults.lag_slot is not None and transaction.slot > self.faults.lag_slot:
            return  # a lagging node has not seen it
        keys = set(transaction.keys)
        context = {"slot": transaction.slot}
        for subscription in list(self.subscriptions.values()):
            if subscription.commitment != event.commitment:
                continue
            if subscription.kind == "logs":
                if subscription.key == "all" and _VOTE_PROGRAM_ID in keys:
                    continue
                if subscription.key not in ("all", "allWithVotes") and subscription.key not in keys:
                    continue
                value = {
                    "signature": transaction.signature,
                    "err": transaction.err,
                    "logs": list(transaction.logs or ()),
                }
                self._notify(subscription, {"context": context, "value": value})
            elif subscription.kind == "account" and subscription.key in keys:
                account = self._account_after(event, subscription)
                if account is not None:
                    self._notify(subscription, {"context": context, "value": account})
            elif subscription.kind == "signature" and subscription.key == transaction.signature:
                self._notify(subscription, {"context": context, "value": {"err": transaction.err}})
                self._remove(subscription)

    def _account_after(self, event: TransactionEvent, subscription: Subscription) -> dict[str, Any] | None:
        transaction = event.transaction
        address = subscription.key
        assert address is not None
        token = token_account_json(transaction, address, subscription.encoding)
        if token is not None:
            return token
        registered = self.chain.account(address)
        owner = registered.owner if registered is not None else SYSTEM_PROGRAM_ID
        data = registered.data if registered is not None else b""
        lamports = transaction.lamports.get(address, 0)
        if subscription.encoding == "base58":
            encoded: Any = [based58.b58encode(data).decode("ascii"), "base58"]
        else:
            encoded = [base64.b64encode(data).decode("ascii"), "base64"]
        if registered is not None and subscription.encoding == "jsonParsed" and registered.parsed is not None:
            return account_json(registered, "jsonParsed") | {"lamports": lamports}
        return {
            "data": encoded,
            "executable": False,
            "lamports": lamports,
            "owner": owner,
            "rentEpoch": 18446744073709551615,
            "space": len(data),
        }

    def _notify(self, subscription: Subscription, result: Any) -> None:
        self.counts[f"ws:{_NOTIFICATION_METHODS[subscription.kind]}"] += 1
        message = {
            "jsonrpc": "2.0",
            "method": _NOTIFICATION_METHODS[subscription.kind],
            "params": {"result": result, "subscription": subscription.id},
        }
        self._send(subscription.session, orjson.dumps(message).decode())


def _result(request_id: Any, result: Any) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "result": result, "id": request_id}).decode()


def _error(request_id: Any, code: int, message: str) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}).decode()
