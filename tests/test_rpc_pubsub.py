"""SolanaPubsub against the replay server's websocket: subscriptions, notifications, and how each
websocket fault surfaces (PubsubClosed 1006, PubsubSilent, a refused handshake)."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Iterator

import pytest
import websockets.exceptions as ws_errors
from websockets.datastructures import Headers
from websockets.http11 import Response

from indexer.replay import ReplayChain, ReplayServer
from indexer.rpc import (
    InvalidParams,
    Notification,
    PubsubClosed,
    PubsubSilent,
    RateLimited,
    RpcConnectionError,
    RpcError,
    ServerError,
    SolanaPubsub,
)
from indexer.rpc.errors import WEBSOCKET_ERRORS, translate_websocket_errors
from tests.conftest import SOLANA
from tests.replay_support import run

LIVE_FILE = "usdc_transferchecked_durable_nonce_mainnet_jsonparsed_response.json"
LIVE_SIGNATURE = "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX"
LIVE_SLOT = 419685246
PAYER = "3V9bd3EN5aNuhE4RiHGbZ1eZakJ1F9cDb8V4YLjCG8cg"
RECEIVING_ACCOUNT = "Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv"
HISTORY_FILE = "sol_transfer_mainnet_2025_jsonparsed_response.json"  # slot 399683256


@pytest.fixture
def chain() -> ReplayChain:
    return ReplayChain.from_replies([(SOLANA / HISTORY_FILE).read_bytes()])


@pytest.fixture
def server(chain: ReplayChain) -> Iterator[ReplayServer]:
    with ReplayServer(chain) as started:
        yield started


def test_every_websockets_exception_class_is_mapped() -> None:
    classes = [getattr(ws_errors, name) for name in ws_errors.__all__]
    assert len(classes) == 26
    assert all(inspect.isclass(cls) and issubclass(cls, Exception) for cls in classes)
    assert [cls.__name__ for cls in classes if cls not in WEBSOCKET_ERRORS] == []


@pytest.mark.parametrize(("status", "expected"), [(503, ServerError), (429, RateLimited), (404, RpcConnectionError)])
def test_refused_handshake_by_status(status: int, expected: type[RpcError]) -> None:
    original = ws_errors.InvalidStatus(Response(status, "x", Headers({"Retry-After": "2"})))
    with pytest.raises(RpcError) as caught, translate_websocket_errors("connect"):
        raise original
    assert type(caught.value) is expected
    assert caught.value.http_status == status
    assert caught.value.__cause__ is original


def test_subscribe_notify_unsubscribe(server: ReplayServer, chain: ReplayChain) -> None:
    async def go() -> tuple[list[Notification], bool, bool]:
        async with SolanaPubsub(server.ws_url, silence_limit_s=5) as pubsub:
            logs = await pubsub.logs_subscribe(PAYER)
            account = await pubsub.account_subscribe(RECEIVING_ACCOUNT)
            signature = await pubsub.signature_subscribe(LIVE_SIGNATURE)
            chain.add((SOLANA / LIVE_FILE).read_bytes(), commitment="confirmed")
            chain.finalize(LIVE_SIGNATURE)
            received = [await pubsub.next_notification() for _ in range(3)]
            assert {item.subscription for item in received} == {logs, account, signature}
            # The signature subscription ended with its notification; the logs one is still open.
            return received, await pubsub.unsubscribe(signature), await pubsub.unsubscribe(logs)

    received, signature_gone, logs_ended = run(go())
    by_method = {item.method: item for item in received}
    assert by_method["logsNotification"].slot == LIVE_SLOT
    assert by_method["logsNotification"].value["signature"] == LIVE_SIGNATURE
    # USDC account of B2v68t…: 11,200,000 -> 15,000,000 in 4LXpF3….
    account_value = by_method["accountNotification"].value
    assert account_value["data"]["parsed"]["info"]["tokenAmount"]["amount"] == "15000000"
    assert by_method["signatureNotification"].value == {"err": None}
    assert (signature_gone, logs_ended) == (False, True)


def test_subscription_error_is_typed(server: ReplayServer) -> None:
    async def go() -> int:
        async with SolanaPubsub(server.ws_url) as pubsub:
            return await pubsub.account_subscribe(PAYER, commitment="soon")

    with pytest.raises(InvalidParams, match="unknown commitment"):
        run(go())


def test_abrupt_close_is_pubsub_closed_1006(server: ReplayServer) -> None:
    async def go() -> PubsubClosed:
        async with SolanaPubsub(server.ws_url, silence_limit_s=5) as pubsub:
            await pubsub.slot_subscribe()
            await asyncio.to_thread(server.faults.ws_close_abruptly)
            with pytest.raises(PubsubClosed) as caught:
                await pubsub.next_notification()
            with pytest.raises(PubsubClosed):  # every later call sees the same failure
                await pubsub.slot_subscribe()
            return caught.value

    closed = run(go())
    assert closed.close_code == 1006


def test_silence_is_detected(server: ReplayServer, chain: ReplayChain) -> None:
    async def go() -> Notification:
        async with SolanaPubsub(server.ws_url, silence_limit_s=0.3) as pubsub:
            await pubsub.slot_subscribe()
            server.faults.ws_silence()
            chain.advance_slot()
            with pytest.raises(PubsubSilent):
                await pubsub.next_notification()
            server.faults.ws_silence(False)
            chain.advance_slot()
            return await pubsub.next_notification()

    # The root is the finalized slot: the recorded transaction (slot 399683256) was added finalized.
    assert run(go()).value == {"parent": 399683257, "root": 399683256, "slot": 399683258}


def test_refused_and_unreachable(server: ReplayServer) -> None:
    server.faults.ws_refuse(times=1)

    async def connect(url: str) -> None:
        async with SolanaPubsub(url, open_timeout_s=2):
            pass

    with pytest.raises(ServerError) as caught:
        run(connect(server.ws_url))
    assert caught.value.http_status == 503
    run(connect(server.ws_url))  # the refusal was for one attempt
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RpcConnectionError):
        run(connect(f"ws://127.0.0.1:{port}"))
