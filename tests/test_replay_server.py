"""The replay server's JSON-RPC protocol, spoken with a plain httpx client: single and batch requests,
a node's error codes, HTTP faults as they appear on the wire, counters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from indexer.replay import ReplayServer
from tests.conftest import SOLANA
from tests.replay_support import RPC_DATA, TOKEN, USDC, USDC_HISTORY, recorded_chain

V0_SIGNATURE = "2E9Ddokz6HZkn457gAhd7uaUYnWtgUuRQaGGKFb2xDtYY3Mxn81DaXPMKfLLmcWMUAEQwZG1WF6mfcXMKr2yBqZU"
NEWEST_SLOT = 464179372


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer(recorded_chain()) as started:
        yield started


def post(server: ReplayServer, body: Any, *, raw: bytes | None = None) -> httpx.Response:
    content = raw if raw is not None else orjson.dumps(body)
    return httpx.post(server.rpc_url, content=content, headers={"Content-Type": "application/json"}, timeout=5)


def call(method: str, params: list[Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or []}


def test_single_and_batch(server: ReplayServer) -> None:
    single = post(server, call("getSlot", [{"commitment": "finalized"}], "abc"))
    assert single.status_code == 200
    assert single.headers["content-type"] == "application/json"
    assert single.json() == {"jsonrpc": "2.0", "result": NEWEST_SLOT, "id": "abc"}

    batch = post(
        server,
        [
            call("getSlot", request_id=1),
            call("noSuchMethod", request_id=2),
            call("getTransaction", [V0_SIGNATURE, {"encoding": "json"}], request_id=3),
            call("getTransaction", [V0_SIGNATURE, {"encoding": "json", "maxSupportedTransactionVersion": 0}], 4),
        ],
    )
    replies = batch.json()
    assert [reply["id"] for reply in replies] == [1, 2, 3, 4]
    assert replies[0]["result"] == NEWEST_SLOT
    assert replies[1]["error"] == {"code": -32601, "message": "Method not found"}
    # A v0 transaction without maxSupportedTransactionVersion: the live node's -32015.
    assert replies[2]["error"]["code"] == -32015
    assert replies[2]["error"]["message"].startswith(
        "Transaction version (0) is not supported by the requesting client"
    )
    recorded = orjson.loads((SOLANA / "sol_transfer_computebudget_memo_v0_json_response.json").read_bytes())
    assert replies[3]["result"] == recorded["result"]
    assert server.count("getSlot") == 2
    assert server.count("getTransaction") == 2
    assert server.count("noSuchMethod") == 1
    assert server.http_requests == 2


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"{not json", -32700, "Parse error"),
        (b'{"jsonrpc":"2.0","id":1}', -32600, "Invalid request"),
        (b"[]", -32600, "Invalid request"),
    ],
)
def test_malformed_requests(server: ReplayServer, body: bytes, code: int, message: str) -> None:
    reply = post(server, None, raw=body)
    assert reply.status_code == 200
    assert reply.json() == {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": None}


@pytest.mark.parametrize(
    ("request_body", "code", "message"),
    [
        (call("getSignaturesForAddress", [USDC, {"limit": 1001}]), -32602, "Invalid limit; max 1000"),
        (
            call("getSignaturesForAddress", [USDC, {"commitment": "processed"}]),
            -32602,
            "Method does not support commitment below `confirmed`",
        ),
        (
            call("getSignatureStatuses", [[f"{n:064d}" for n in range(257)]]),
            -32602,
            "Too many inputs provided; max 256",
        ),
        (call("getSlot", [{"minContextSlot": NEWEST_SLOT + 1}]), -32016, "Minimum context slot has not been reached"),
        (call("getBalance", ["short"]), -32602, "Invalid param: WrongSize"),
        (call("getTokenAccountBalance", [USDC_HISTORY[0][:44]]), -32602, "Invalid param: could not find account"),
    ],
)
def test_node_errors(server: ReplayServer, request_body: dict[str, Any], code: int, message: str) -> None:
    reply = post(server, request_body).json()
    assert reply["error"] == {"code": code, "message": message}


def test_token_accounts_by_owner_wire_shape(server: ReplayServer) -> None:
    owner = "HLnpSz9h2S4hiLQ43rnSD9XkcUThA7B8hQMKmDaiTLcC"
    reply = post(server, call("getTokenAccountsByOwner", [owner, {"mint": USDC}, {"encoding": "jsonParsed"}])).json()[
        "result"
    ]
    assert reply["context"]["slot"] == NEWEST_SLOT
    first = reply["value"][0]
    # The same shape as the recorded accountNotification of a USDC token account.
    notification = orjson.loads((RPC_DATA / "ws_account_notification_usdc_token_account_jsonparsed.json").read_bytes())
    recorded_value = notification["params"]["result"]["value"]
    # Nodes since 1.17 also report the account's `space`; the recording (slot 99118135) predates it.
    assert set(first["account"]) == {*recorded_value, "space"}
    assert set(first["account"]["data"]["parsed"]["info"]) == set(recorded_value["data"]["parsed"]["info"])
    assert first["account"]["data"]["parsed"]["info"]["tokenAmount"] == {
        "amount": "6000589",
        "decimals": 6,
        "uiAmount": 6.000589,
        "uiAmountString": "6.000589",
    }
    assert first["account"]["owner"] == TOKEN
    bad = post(server, call("getTokenAccountsByOwner", [owner, {"programId": USDC}])).json()
    assert bad["error"]["code"] == -32602


def test_http_faults_on_the_wire(server: ReplayServer) -> None:
    server.faults.rate_limit(times=1, retry_after_s=3)
    limited = post(server, call("getSlot"))
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.content == (RPC_DATA / "solana_error_429_rpcpool_rate_limit_body.json").read_bytes()

    server.faults.server_error(times=1, status=502)
    failed = post(server, call("getSlot"))
    assert failed.status_code == 502
    assert failed.headers["content-type"] == "text/plain"

    server.faults.disable("getTokenAccountsByOwner", times=1)
    assert post(server, call("getSlot")).status_code == 200  # another method is not affected
    disabled = post(server, [call("getSlot"), call("getTokenAccountsByOwner", [USDC, {"programId": TOKEN}])])
    assert disabled.status_code == 410
    assert disabled.content == (RPC_DATA / "solana_error_410_rpc_call_disabled_response.json").read_bytes()

    assert post(server, call("getSlot")).status_code == 200  # each fault was used up
    assert server.count("getSlot") == 5


def test_slow_reply_times_out_a_client(server: ReplayServer) -> None:
    server.faults.slow(1.0, times=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.rpc_url, content=orjson.dumps(call("getSlot")), timeout=0.2)
    assert post(server, call("getSlot")).json()["result"] == NEWEST_SLOT


def test_only_post(server: ReplayServer) -> None:
    assert httpx.get(server.rpc_url, timeout=5).status_code == 405


def test_keep_alive_connection_serves_many_requests(server: ReplayServer) -> None:
    with httpx.Client(timeout=5) as client:
        for request_id in range(50):
            assert (
                client.post(server.rpc_url, content=orjson.dumps(call("getSlot", request_id=request_id))).json()["id"]
                == request_id
            )
    assert server.http_requests == 50
