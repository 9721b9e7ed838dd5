"""The replay server's websocket pubsub, spoken with the real `websockets` client: subscribe, notify
(in the recorded notification shapes), unsubscribe, and each websocket fault."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from indexer.replay import ReplayChain, ReplayServer
from tests.conftest import SOLANA
from tests.replay_support import RPC_DATA, USDC, run

LIVE_FILE = "usdc_transferchecked_durable_nonce_mainnet_jsonparsed_response.json"
LIVE_SIGNATURE = "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX"
LIVE_SLOT = 419685246
PAYER = "3V9bd3EN5aNuhE4RiHGbZ1eZakJ1F9cDb8V4YLjCG8cg"  # key 0 of 4LXpF3…
RECEIVING_ACCOUNT = "Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv"  # key 4: USDC 11,200,000 -> 15,000,000
RECEIVING_OWNER = "B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M"
HISTORY_FILE = "sol_transfer_mainnet_2025_jsonparsed_response.json"  # slot 399683256, before LIVE_SLOT
WAIT_S = 5.0


def _recorded(name: str) -> bytes:
    return (SOLANA / name).read_bytes()


@pytest.fixture
def chain() -> ReplayChain:
    return ReplayChain.from_replies([_recorded(HISTORY_FILE)])


@pytest.fixture
def server(chain: ReplayChain) -> Iterator[ReplayServer]:
    with ReplayServer(chain) as started:
        yield started


async def request(ws: ClientConnection, method: str, params: list[Any], request_id: int = 1) -> Any:
    await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).decode())
    reply = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
    assert reply["id"] == request_id, reply
    return reply.get("result", reply.get("error"))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
    return message


def test_logs_subscription_confirmed_then_finalized(server: ReplayServer, chain: ReplayChain) -> None:
    async def go() -> tuple[int, int, dict[str, Any], dict[str, Any]]:
        async with connect(server.ws_url) as confirmed_ws, connect(server.ws_url) as finalized_ws:
            confirmed_id = await request(
                confirmed_ws, "logsSubscribe", [{"mentions": [PAYER]}, {"commitment": "confirmed"}]
            )
            finalized_id = await request(finalized_ws, "logsSubscribe", [{"mentions": [PAYER]}])  # default: finalized
            chain.add(_recorded(LIVE_FILE), commitment="confirmed")
            at_confirmed = await receive(confirmed_ws)
            with pytest.raises(TimeoutError):  # not final yet
                await asyncio.wait_for(finalized_ws.recv(), 0.3)
            chain.finalize(LIVE_SIGNATURE)
            at_finalized = await receive(finalized_ws)
            return confirmed_id, finalized_id, at_confirmed, at_finalized

    confirmed_id, finalized_id, at_confirmed, at_finalized = run(go())
    logs = orjson.loads(_recorded(LIVE_FILE))["result"]["meta"]["logMessages"]
    assert len(logs) == 9
    for message, subscription in ((at_confirmed, confirmed_id), (at_finalized, finalized_id)):
        assert message == {
            "jsonrpc": "2.0",
            "method": "logsNotification",
            "params": {
                "result": {
                    "context": {"slot": LIVE_SLOT},
                    "value": {"signature": LIVE_SIGNATURE, "err": None, "logs": logs},
                },
                "subscription": subscription,
            },
        }
    recorded = orjson.loads((RPC_DATA / "ws_logs_notification_failed_tx.json").read_bytes())
    # The recorded notification's keys at every level (its err is an object, ours null).
    assert set(at_confirmed) == set(recorded)
    assert set(at_confirmed["params"]) == set(recorded["params"])
    assert set(at_confirmed["params"]["result"]) == set(recorded["params"]["result"])
    assert set(at_confirmed["params"]["result"]["value"]) == set(recorded["params"]["result"]["value"])
    assert server.count("ws:logsSubscribe") == 2
    assert server.count("ws:logsNotification") == 2


def test_account_subscription_on_a_token_account(server: ReplayServer, chain: ReplayChain) -> None:
    async def go() -> tuple[int, dict[str, Any]]:
        async with connect(server.ws_url) as ws:
            subscription = await request(
                ws, "accountSubscribe", [RECEIVING_ACCOUNT, {"encoding": "jsonParsed", "commitment": "confirmed"}]
            )
            chain.add(_recorded(LIVE_FILE), commitment="confirmed")
            return subscription, await receive(ws)

    subscription, message = run(go())
    recorded = orjson.loads((RPC_DATA / "ws_account_notification_usdc_token_account_jsonparsed.json").read_bytes())
    assert message["method"] == "accountNotification"
    assert message["params"]["subscription"] == subscription
    value = message["params"]["result"]["value"]
    assert message["params"]["result"]["context"] == {"slot": LIVE_SLOT}
    # The recorded notification's fields, plus `space` reported by current nodes.
    assert set(value) == {*recorded["params"]["result"]["value"], "space"}
    assert value["lamports"] == 2039280  # postBalances[4]
    assert value["owner"] == "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
    assert value["data"]["parsed"]["info"] == {
        "isNative": False,
        "mint": USDC,
        "owner": RECEIVING_OWNER,
        "state": "initialized",
        "tokenAmount": {"amount": "15000000", "decimals": 6, "uiAmount": 15.0, "uiAmountString": "15"},
    }


def test_signature_subscription_fires_once(server: ReplayServer, chain: ReplayChain) -> None:
    async def go() -> tuple[dict[str, Any], Any, dict[str, Any]]:
        async with connect(server.ws_url) as ws:
            subscription = await request(ws, "signatureSubscribe", [LIVE_SIGNATURE, {"commitment": "finalized"}])
            chain.add(_recorded(LIVE_FILE), commitment="confirmed")
            chain.finalize(LIVE_SIGNATURE)
            notification = await receive(ws)
            # The subscription ended with its notification, as on a node.
            gone = await request(ws, "signatureUnsubscribe", [subscription], request_id=2)
            # A signature that is already final is notified at once.
            await ws.send(
                orjson.dumps(
                    {"jsonrpc": "2.0", "id": 3, "method": "signatureSubscribe", "params": [LIVE_SIGNATURE]}
                ).decode()
            )
            await receive(ws)  # the subscription id
            return notification, gone, await receive(ws)

    notification, gone, immediate = run(go())
    expected_result = {"context": {"slot": LIVE_SLOT}, "value": {"err": None}}
    assert notification["method"] == "signatureNotification"
    assert notification["params"]["result"] == expected_result
    recorded = orjson.loads((RPC_DATA / "ws_signature_notification_ok_mainnet.json").read_bytes())
    assert recorded["params"]["result"]["value"] == {"err": None}
    assert gone == {"code": -32602, "message": "Invalid subscription id."}
    assert immediate["params"]["result"] == expected_result


def test_slot_subscription_and_unsubscribe(server: ReplayServer, chain: ReplayChain) -> None:
    async def go() -> tuple[dict[str, Any], Any, Any, dict[str, Any]]:
        async with connect(server.ws_url) as ws:
            slot_id = await request(ws, "slotSubscribe", [])
            logs_id = await request(ws, "logsSubscribe", ["all", {"commitment": "confirmed"}], request_id=2)
            tip = chain.advance_slot(3, finalize=True)
            assert tip == 399683256 + 3
            advanced = await receive(ws)
            unsubscribed = await request(ws, "logsUnsubscribe", [logs_id], request_id=3)
            again = await request(ws, "logsUnsubscribe", [logs_id], request_id=4)
            chain.add(_recorded(LIVE_FILE), commitment="confirmed")
            # The logs subscription is gone: the next message is the slot moving to the new transaction.
            return advanced, unsubscribed, again, await receive(ws) | {"slot_id": slot_id}

    advanced, unsubscribed, again, after = run(go())
    assert advanced["method"] == "slotNotification"
    assert advanced["params"]["result"] == {"parent": 399683256, "root": 399683259, "slot": 399683259}
    assert unsubscribed is True
    assert again == {"code": -32602, "message": "Invalid subscription id."}
    assert after["method"] == "slotNotification"
    assert after["params"]["subscription"] == after["slot_id"]
    assert after["params"]["result"] == {"parent": 399683259, "root": 399683259, "slot": LIVE_SLOT}


def test_bad_requests(server: ReplayServer) -> None:
    async def go() -> list[Any]:
        async with connect(server.ws_url) as ws:
            return [
                await request(ws, "logsSubscribe", [{"mentions": [PAYER, USDC]}]),
                await request(ws, "noSuchSubscribe", [], request_id=2),
                await request(ws, "accountSubscribe", [PAYER, {"commitment": "soon"}], request_id=3),
            ]

    assert run(go()) == [
        {"code": -32602, "message": "Invalid Request: Only 1 address supported"},
        {"code": -32601, "message": "Method not found"},
        {"code": -32602, "message": "Invalid params: unknown commitment 'soon'"},
    ]


# --- faults ---


def test_abrupt_close_is_1006(server: ReplayServer) -> None:
    async def go() -> ConnectionClosedError:
        async with connect(server.ws_url) as ws:
            await request(ws, "slotSubscribe", [])
            await asyncio.to_thread(server.faults.ws_close_abruptly)
            with pytest.raises(ConnectionClosedError) as caught:
                await asyncio.wait_for(ws.recv(), WAIT_S)
            return caught.value

    closed = run(go())
    assert closed.rcvd is None  # no close frame came
    assert closed.sent is None
    assert server.ws_connections_open == 0


def test_silence_keeps_the_socket(server: ReplayServer, chain: ReplayChain) -> None:
    async def go() -> tuple[float, dict[str, Any]]:
        async with connect(server.ws_url) as ws:
            await request(ws, "slotSubscribe", [])
            server.faults.ws_silence()
            chain.advance_slot()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
            started = time.monotonic()
            pong = await ws.ping()
            await asyncio.wait_for(pong, WAIT_S)  # the socket itself is alive
            latency_s = time.monotonic() - started
            server.faults.ws_silence(False)
            chain.advance_slot()
            return latency_s, await receive(ws)

    latency_s, message = run(go())
    assert latency_s < WAIT_S
    # The notification sent during the silence was lost; the next one arrives.
    assert message["params"]["result"]["slot"] == 399683256 + 2


def test_refusing_connections_for_some_attempts(server: ReplayServer) -> None:
    server.faults.ws_refuse(times=2)

    async def attempt() -> int | None:
        try:
            async with connect(server.ws_url) as ws:
                await request(ws, "slotSubscribe", [])
                return None
        except InvalidStatus as exc:
            return exc.response.status_code

    async def go() -> list[int | None]:
        return [await attempt() for _ in range(3)]

    assert run(go()) == [503, 503, None]
    assert server.ws_connections_total == 1


def test_refusing_connections_for_a_while(server: ReplayServer) -> None:
    server.faults.ws_refuse(seconds=0.5)

    async def go() -> tuple[int, Any]:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(server.ws_url):
                pass
        await asyncio.sleep(0.6)
        async with connect(server.ws_url) as ws:
            return caught.value.response.status_code, await request(ws, "slotSubscribe", [])

    status, subscription = run(go())
    assert status == 503
    assert isinstance(subscription, int)


def test_synthesised_clones_can_be_announced(server: ReplayServer, chain: ReplayChain) -> None:
    recipient = "3eF3iBQqi2DmDLS7o9y8gG7necF5VBbwYy5gqF7sh899"  # account key 1 of the history transaction

    async def go() -> list[dict[str, Any]]:
        async with connect(server.ws_url) as ws:
            await request(ws, "logsSubscribe", [{"mentions": [recipient]}, {"commitment": "confirmed"}])
            chain.synthesise(2, seed="quiet")  # a bulk load: no transaction notifications
            signatures = chain.synthesise(2, seed="loud", notify=True, commitment="confirmed")
            received = [await receive(ws), await receive(ws)]
            assert [item["params"]["result"]["value"]["signature"] for item in received] == signatures
            return received

    assert len(run(go())) == 2
