"""SolanaRpc against the real replay server on 127.0.0.1 serving recorded mainnet/devnet replies.
Expected values are read from the recorded files (slots, balances, amounts), never from the code."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator

import orjson
import pytest
from structlog.testing import capture_logs

from indexer.replay import ReplayServer
from indexer.rpc import (
    AccountInfo,
    InvalidParams,
    MintInfo,
    NodeBehind,
    NotAMint,
    RateLimited,
    RpcConnectionError,
    RpcDisabled,
    RpcTimeout,
    ServerError,
    SignatureInfo,
    SignatureStatus,
    SolanaRpc,
    TokenAccount,
    TransactionVersionUnsupported,
)
from tests.conftest import SOLANA
from tests.replay_support import (
    PYUSD,
    RECORDED_FILES,
    RPC_DATA,
    SYSTEM,
    TOKEN,
    TOKEN_2022,
    USDC,
    USDC_HISTORY,
    fast_rpc,
    recorded_chain,
    run,
)

# Signatures of the base64 replies, from SOURCES.md (checked there against the transaction bytes).
BASE64_SIGNATURES = {
    "ata_create_plus_transferchecked_devnet_usdc_base64_result.json": "2xRfP3gythPLBNUFtfNQ48nD9QBJjvh6AEz6xPgnrGkpQy1RBEvKveMUjix7t3rdPCpemdcS4DaKMLT5t27f92yQ",
    "sol_transfer_devnet_base64_result.json": "5U2YvvKUS6NUrDAJnABHjx2szwLCVmg8LCRK9BDbZwVAbf2q5j8D9Sc9kUoqanoqpn6ZpDguY3rip9W7N7vwCjSw",
    "spl_transferchecked_devnet_usdc_base64_result.json": "5ZrG8iS4RxLXDRQEWkAoddWHzkS1fA1m6ppxaAekgGzskhcFqjkw1ZaFCsLorbhY5V4YUUkjE3SLY2JNLyVanxrM",
    "vote_tx_base64_response.json": "4zExa66hUSr28i2ma6EJwEsm3nZo4VFryEyRYE5Zrr4Q6dZpP1ctzsoMqUhLnp6iHGPp5MB722rZXRBKg927WXN9",
}
NEWEST_SLOT = 464179372  # sol_transfer_plus_wsol_ata_createidempotent_devnet_jsonparsed_response.json
DURABLE_NONCE_PAYER = "3V9bd3EN5aNuhE4RiHGbZ1eZakJ1F9cDb8V4YLjCG8cg"  # fee payer, only in 4LXpF3…
ARBITRAGE_OWNER = "HLnpSz9h2S4hiLQ43rnSD9XkcUThA7B8hQMKmDaiTLcC"  # token owner in 39ZSBS… (v0 + lookups)
TOKEN_2022_MINT = "93NckFnFGA49ugiohaPh1jrhEHRQrmK5vAEh2LfSEEv4"
NOBODY = "9Nc6u9ft3uAr6DSaqHijFjQS53hZPDRL2LoVYvH4vK5H"  # the treasury: in none of the recorded replies


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer(recorded_chain()) as started:
        yield started


def _file_signature(name: str) -> str:
    if name in BASE64_SIGNATURES:
        return BASE64_SIGNATURES[name]
    document = orjson.loads((SOLANA / name).read_bytes())
    result = document.get("result", document)
    signature: str = result["transaction"]["signatures"][0]
    return signature


# --- reading the chain ---


def test_history_includes_loaded_addresses_newest_first(server: ReplayServer) -> None:
    async def go() -> list[SignatureInfo]:
        async with fast_rpc(server) as rpc:
            return await rpc.get_signatures_for_address(USDC)

    page = run(go())
    assert [item.signature for item in page] == USDC_HISTORY
    # 39ZSBS… names USDC only among its loaded addresses (index 22 of static + loaded keys).
    assert page[2].slot == 375777791
    assert page[0] == SignatureInfo(USDC_HISTORY[0], 419763372, 1778792, None, None, "finalized")
    # 2S2rTZ… carries an spl-memo "transfer": 8 bytes, formatted as the node does.
    assert page[3] == SignatureInfo(USDC_HISTORY[3], 184930610, 1679899845, None, "[8] transfer", "finalized")


def test_pages_before_until_limit(server: ReplayServer) -> None:
    async def go() -> tuple[list[str], list[str], list[str], list[str]]:
        async with fast_rpc(server) as rpc:
            first = await rpc.get_signatures_for_address(USDC, limit=2)
            second = await rpc.get_signatures_for_address(USDC, limit=2, before=first[-1].signature)
            newer = await rpc.get_signatures_for_address(USDC, until=USDC_HISTORY[3])
            between = await rpc.get_signatures_for_address(USDC, before=USDC_HISTORY[0], until=USDC_HISTORY[3])
        return (
            [item.signature for item in first],
            [item.signature for item in second],
            [item.signature for item in newer],
            [item.signature for item in between],
        )

    first, second, newer, between = run(go())
    assert first == USDC_HISTORY[:2]
    assert second == USDC_HISTORY[2:4]
    assert newer == USDC_HISTORY[:3]  # until is exclusive
    assert between == USDC_HISTORY[1:3]  # both exclusive


def test_get_transactions_batches_return_recorded_bytes(server: ReplayServer) -> None:
    signatures = [_file_signature(name) for name in RECORDED_FILES]
    unknown = "1" * 64
    assert len(signatures) == 22

    async def go() -> list[bytes | None]:
        async with fast_rpc(server, batch_size=4) as rpc:
            return await rpc.get_transactions([*signatures[:10], unknown, *signatures[10:]])

    replies = run(go())
    assert replies[10] is None
    del replies[10]
    for name, reply in zip(RECORDED_FILES, replies, strict=True):
        recorded = (SOLANA / name).read_bytes()
        assert reply is not None
        assert reply in recorded, name  # the very bytes recorded, whatever the encoding
        document = orjson.loads(recorded)
        assert orjson.loads(reply) == document.get("result", document), name
    # 23 items in batches of 4: ceil(23 / 4) = 6 HTTP requests.
    assert server.count("getTransaction") == 23
    assert server.http_requests == 6


def test_get_transaction_single_and_v0(server: ReplayServer) -> None:
    # 2E9Ddo… is a version 0 transaction: the client always sends maxSupportedTransactionVersion 0.
    name = "sol_transfer_computebudget_memo_v0_json_response.json"

    async def go() -> tuple[bytes | None, bytes | None]:
        async with fast_rpc(server) as rpc:
            return await rpc.get_transaction(_file_signature(name)), await rpc.get_transaction("1" * 64)

    found, missing = run(go())
    assert found is not None and found in (SOLANA / name).read_bytes()
    assert missing is None


def test_signature_statuses_chunked(server: ReplayServer) -> None:
    known = [
        USDC_HISTORY[0],
        "1" * 64,
        "3Q9mu4ePvtbtQzY1kpGmaViJKyBev6hgUppyXDF9hKgWHHnecwGLE2pSoFvNUF3h7acKyFwWd65bkwr9A1jN2CdT",
    ]
    padding = [f"{index:064d}" for index in range(297)]

    async def go() -> list[SignatureStatus | None]:
        async with fast_rpc(server) as rpc:
            return await rpc.get_signature_statuses([*known, *padding])

    statuses = run(go())
    assert len(statuses) == 300
    assert statuses[0] == SignatureStatus(419763372, None, None, "finalized")
    assert statuses[1] is None
    # 3Q9mu4… failed with the transaction-level error "InvalidRentPayingAccount".
    assert statuses[2] == SignatureStatus(132196637, None, "InvalidRentPayingAccount", "finalized")
    assert statuses[3:] == [None] * 297
    assert server.count("getSignatureStatuses") == 2  # 300 = 256 + 44


def test_slot_balance_and_token_balance(server: ReplayServer) -> None:
    async def go() -> tuple[int, int, tuple[int, int], int, tuple[int, int]]:
        async with fast_rpc(server) as rpc:
            return (
                await rpc.get_slot(),
                await rpc.get_block_height(),
                await rpc.get_balance_with_slot(DURABLE_NONCE_PAYER),
                await rpc.get_balance(NOBODY),
                await rpc.get_token_account_balance("3FVkez4kkquVSXqYj44WS63dxdChEsZ19pNY8w4u7uFb"),
            )

    slot, height, balance, nothing, token = run(go())
    assert slot == NEWEST_SLOT
    assert height == NEWEST_SLOT  # the model has no skipped slots
    assert balance == (401428625200, NEWEST_SLOT)  # postBalances[0] of 4LXpF3…
    assert nothing == 0
    assert token == (6000589, 6)  # USDC account of HLnpSz… in 39ZSBS…, post balance


def test_token_account_balance_of_unknown_account_is_invalid_params(server: ReplayServer) -> None:
    async def go() -> None:
        async with fast_rpc(server) as rpc:
            await rpc.get_token_account_balance(DURABLE_NONCE_PAYER)

    with pytest.raises(InvalidParams, match="could not find account") as caught:
        run(go())
    assert caught.value.code == -32602
    assert server.count("getTokenAccountBalance") == 1  # permanent: not retried


def test_token_accounts_of_both_programs(server: ReplayServer) -> None:
    async def go() -> tuple[list[TokenAccount], list[TokenAccount]]:
        async with fast_rpc(server) as rpc:
            return (
                await rpc.get_token_accounts_by_owner(ARBITRAGE_OWNER, TOKEN),
                await rpc.get_token_accounts_by_owner(ARBITRAGE_OWNER, TOKEN_2022),
            )

    classic, token_2022 = run(go())

    async def both() -> list[TokenAccount]:
        async with fast_rpc(server) as rpc:
            return await rpc.get_all_token_accounts(ARBITRAGE_OWNER)

    assert run(both()) == classic + token_2022
    # Post token balances of 39ZSBS… owned by HLnpSz…, by program (amounts as recorded), sorted by address.
    assert classic == [
        TokenAccount("3FVkez4kkquVSXqYj44WS63dxdChEsZ19pNY8w4u7uFb", USDC, ARBITRAGE_OWNER, TOKEN, 6000589, 6),
        TokenAccount("8X4sWAdszyJhXXYAYwHpLCJ3qKdfoRGnn1DQSK1piJLb", USDC, ARBITRAGE_OWNER, TOKEN, 13259862, 6),
        TokenAccount("GMtGJUhNRdW4DDKtzcKP79nWjdyEMmjDCMp3tmxGux8F", USDC, ARBITRAGE_OWNER, TOKEN, 22224746, 6),
    ]
    assert len(classic) == 3
    assert token_2022 == [
        TokenAccount(
            "3AgbMiNixaJmcqwB1BKUyJHs5oFjSL8zX4Q42WeTakw2", TOKEN_2022_MINT, ARBITRAGE_OWNER, TOKEN_2022, 1832524, 6
        ),
        TokenAccount(
            "3zsPi2bTH8sSVXJsg7eWnrvmyfmWXYxKZgxP5j38KLCt", TOKEN_2022_MINT, ARBITRAGE_OWNER, TOKEN_2022, 43055438353, 6
        ),
        TokenAccount(
            "HnQVFPiinxYhgyfq4HZDecrM3fQDWj7i6nTYGFhfHuaN", TOKEN_2022_MINT, ARBITRAGE_OWNER, TOKEN_2022, 344920964, 6
        ),
    ]


def test_account_info(server: ReplayServer) -> None:
    async def go() -> tuple[AccountInfo | None, AccountInfo | None]:
        async with fast_rpc(server) as rpc:
            return await rpc.get_account_info(DURABLE_NONCE_PAYER), await rpc.get_account_info(NOBODY)

    wallet, missing = run(go())
    assert wallet == AccountInfo(DURABLE_NONCE_PAYER, SYSTEM, 401428625200, b"", False, NEWEST_SLOT)
    assert missing is None


def test_check_mint_on_recorded_pyusd_and_usdc() -> None:
    chain = recorded_chain()
    pyusd = base64.b64decode((RPC_DATA / "pyusd_mint_account_data_base64.txt").read_text().strip())
    usdc_reply = orjson.loads((RPC_DATA / "usdc_mint_getaccountinfo_base64_response.json").read_bytes())
    usdc = base64.b64decode(usdc_reply["result"]["value"]["data"][0])
    chain.add_mint(PYUSD, decimals=6, token_program=TOKEN_2022, data=pyusd)
    chain.add_mint(USDC, decimals=6, token_program=TOKEN, data=usdc)
    osr = "E2grvu8fyeeuVaxj2DrHVBqv8j21jK3vyJpXG8FJjJNc"
    chain.add_mint(osr, decimals=9, token_program=TOKEN, supply_raw=10**18)

    async def go() -> tuple[MintInfo, MintInfo, MintInfo]:
        async with fast_rpc(server) as rpc:
            return await rpc.check_mint(PYUSD), await rpc.check_mint(USDC), await rpc.check_mint(osr)

    with ReplayServer(chain) as server:
        pyusd_info, usdc_info, osr_info = run(go())
    assert (pyusd_info.decimals, pyusd_info.token_program, pyusd_info.supply_raw) == (6, TOKEN_2022, 126875521509678)
    assert pyusd_info.extension_types == (3, 12, 1, 4, 16, 14, 18, 19)
    assert (usdc_info.decimals, usdc_info.token_program, usdc_info.supply_raw) == (6, TOKEN, 5034942469126966)
    # A synthesised mint: authorities revoked, as OSR's are.
    assert osr_info == MintInfo(9, TOKEN, 10**18, None, None, ())


def test_check_mint_refuses_what_is_not_a_mint(server: ReplayServer) -> None:
    async def go(address: str) -> MintInfo:
        async with fast_rpc(server) as rpc:
            return await rpc.check_mint(address)

    with pytest.raises(NotAMint, match="no such account"):
        run(go(NOBODY))
    with pytest.raises(NotAMint, match="not by the Token or Token-2022 program"):
        run(go(DURABLE_NONCE_PAYER))
    # A token account (165 bytes, Token program) is not a mint either.
    with pytest.raises(NotAMint, match="exactly 82"):
        run(go("3FVkez4kkquVSXqYj44WS63dxdChEsZ19pNY8w4u7uFb"))


# --- faults and retries ---


def test_rate_limit_retry_after_is_honoured(server: ReplayServer) -> None:
    server.faults.rate_limit(times=2, retry_after_s=1, method="getSlot")

    async def go() -> int:
        async with fast_rpc(server) as rpc:
            return await rpc.get_slot()

    started = time.monotonic()
    with capture_logs() as logs:
        slot = run(go())
    elapsed_s = time.monotonic() - started
    assert slot == NEWEST_SLOT
    assert server.count("getSlot") == 3  # two 429s, then the answer
    assert elapsed_s >= 2.0  # Retry-After: 1, twice; the backoff alone would be ~0.02 s
    retries = [entry for entry in logs if entry["event"] == "rpc_retry"]
    assert [entry["kind"] for entry in retries] == ["RateLimited", "RateLimited"]
    assert all(entry["wait_s"] >= 1.0 and entry["http_status"] == 429 and entry["code"] == 429 for entry in retries)


def test_rate_limit_bounded_then_typed_error(server: ReplayServer) -> None:
    server.faults.rate_limit(times=None, retry_after_s=0)

    async def go() -> int:
        async with fast_rpc(server, max_retries=2) as rpc:
            return await rpc.get_slot()

    with pytest.raises(RateLimited) as caught:
        run(go())
    assert server.count("getSlot") == 3  # 1 + max_retries
    error = caught.value
    assert (error.http_status, error.code, error.retry_after_s) == (429, 429, 0.0)
    # The recorded public-RPC body (irregular spacing) was read for its message.
    assert error.message.startswith("Too many requests for a specific RPC call")


def test_retry_after_beyond_the_budget_is_not_waited(server: ReplayServer) -> None:
    server.faults.rate_limit(times=None, retry_after_s=60)

    async def go() -> int:
        async with fast_rpc(server, max_retry_time_s=5.0) as rpc:
            return await rpc.get_slot()

    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        run(go())
    assert time.monotonic() - started < 3.0
    assert caught.value.retry_after_s == 60.0
    assert server.count("getSlot") == 1


def test_server_error_retried_then_succeeds(server: ReplayServer) -> None:
    server.faults.server_error(times=2)

    async def go() -> list[SignatureInfo]:
        async with fast_rpc(server) as rpc:
            return await rpc.get_signatures_for_address(USDC)

    assert [item.signature for item in run(go())] == USDC_HISTORY
    assert server.count("getSignaturesForAddress") == 3


def test_server_error_persistent(server: ReplayServer) -> None:
    server.faults.server_error(times=None, status=503)

    async def go() -> int:
        async with fast_rpc(server, max_retries=1) as rpc:
            return await rpc.get_slot()

    with pytest.raises(ServerError) as caught:
        run(go())
    assert caught.value.http_status == 503
    assert caught.value.code is None  # a plain-text body
    assert server.count("getSlot") == 2


def test_timeout_retried_then_succeeds(server: ReplayServer) -> None:
    server.faults.slow(1.0, times=1)

    async def go() -> int:
        async with fast_rpc(server, timeout_s=0.2) as rpc:
            return await rpc.get_slot()

    started = time.monotonic()
    assert run(go()) == NEWEST_SLOT
    assert time.monotonic() - started >= 0.2
    assert server.count("getSlot") == 2


def test_timeout_persistent(server: ReplayServer) -> None:
    server.faults.slow(1.0, times=None)

    async def go() -> int:
        async with fast_rpc(server, timeout_s=0.2, max_retries=1) as rpc:
            return await rpc.get_slot()

    with pytest.raises(RpcTimeout):
        run(go())
    assert server.count("getSlot") == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("solana_error_-32602_invalid_param_wrongsize_response.json", InvalidParams),
        ("solana_error_-32015_tx_version_unsupported_getblock_response.json", TransactionVersionUnsupported),
    ],
)
def test_permanent_errors_are_not_retried(server: ReplayServer, name: str, expected: type[Exception]) -> None:
    error = orjson.loads((RPC_DATA / name).read_bytes())["error"]
    server.faults.rpc_error(error["code"], error["message"], times=None)

    async def go() -> int:
        async with fast_rpc(server) as rpc:
            return await rpc.get_slot()

    with pytest.raises(expected) as caught:
        run(go())
    assert server.count("getSlot") == 1
    assert caught.value.code == error["code"]  # type: ignore[attr-defined]
    assert caught.value.message == error["message"]  # type: ignore[attr-defined]
    assert caught.value.http_status is None  # type: ignore[attr-defined]


def test_disabled_method_410(server: ReplayServer) -> None:
    server.faults.disable("getTokenAccountsByOwner")

    async def go() -> list[TokenAccount]:
        async with fast_rpc(server) as rpc:
            return await rpc.get_token_accounts_by_owner(ARBITRAGE_OWNER, TOKEN)

    with pytest.raises(RpcDisabled) as caught:
        run(go())
    assert (caught.value.http_status, caught.value.code) == (410, 410)
    assert caught.value.message == "The RPC call or parameters have been disabled."
    assert server.count("getTokenAccountsByOwner") == 1


def test_batch_partial_failure_retries_only_failed_items(server: ReplayServer) -> None:
    error = orjson.loads((RPC_DATA / "solana_error_-32004_block_not_available_response.json").read_bytes())["error"]
    server.faults.rpc_error(error["code"], error["message"], times=2, method="getTransaction")

    async def go() -> list[bytes | None]:
        async with fast_rpc(server) as rpc:
            return await rpc.get_transactions(USDC_HISTORY)

    with capture_logs() as logs:
        replies = run(go())
    assert all(reply is not None for reply in replies)
    assert [orjson.loads(reply)["slot"] for reply in replies if reply] == [
        419763372,
        419685246,
        375777791,
        184930610,
        94882851,
    ]
    assert server.count("getTransaction") == 7  # 5, then the 2 that failed
    assert server.http_requests == 2
    partial = [entry for entry in logs if entry["event"] == "rpc_batch_partial"]
    assert partial == [
        {
            "event": "rpc_batch_partial",
            "log_level": "info",
            "method": "getTransaction",
            "failed": 2,
            "size": 5,
            "kind": "NodeBehind",
        }
    ]


def test_batch_item_permanent_error_raises(server: ReplayServer) -> None:
    server.faults.rpc_error(-32602, "Invalid param: WrongSize", times=1, method="getTransaction")

    async def go() -> list[bytes | None]:
        async with fast_rpc(server) as rpc:
            return await rpc.get_transactions(USDC_HISTORY)

    with pytest.raises(InvalidParams):
        run(go())
    assert server.count("getTransaction") == 5


def test_node_behind_in_a_single_call_is_retried(server: ReplayServer) -> None:
    server.faults.rpc_error(-32016, "Minimum context slot has not been reached", times=1)

    async def go() -> int:
        async with fast_rpc(server) as rpc:
            return await rpc.get_slot()

    with capture_logs() as logs:
        assert run(go()) == NEWEST_SLOT
    assert [entry["kind"] for entry in logs if entry["event"] == "rpc_retry"] == [NodeBehind.__name__]
    assert server.count("getSlot") == 2


def test_code_429_in_http_200_is_rate_limited(server: ReplayServer) -> None:
    server.faults.rpc_error(429, "Too many requests", times=1)

    async def go() -> int:
        async with fast_rpc(server) as rpc:
            return await rpc.get_slot()

    assert run(go()) == NEWEST_SLOT
    assert server.count("getSlot") == 2


def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def go() -> int:
        async with SolanaRpc(
            f"http://127.0.0.1:{port}", max_retries=1, backoff_initial_s=0.01, backoff_max_s=0.01
        ) as rpc:
            return await rpc.get_slot()

    with pytest.raises(RpcConnectionError) as caught:
        run(go())
    assert isinstance(caught.value.__cause__, Exception)


def test_lagging_node(server: ReplayServer) -> None:
    server.faults.lag(375777791)

    async def go() -> tuple[int, list[str], bytes | None]:
        async with fast_rpc(server) as rpc:
            page = await rpc.get_signatures_for_address(USDC)
            return await rpc.get_slot(), [item.signature for item in page], await rpc.get_transaction(USDC_HISTORY[0])

    slot, page, newest = run(go())
    assert slot == 375777791
    assert page == USDC_HISTORY[2:]  # only history up to the lag slot
    assert newest is None


def test_node_that_does_not_know_until(server: ReplayServer) -> None:
    server.faults.forget_until(times=1)

    async def go() -> tuple[list[str], list[str]]:
        async with fast_rpc(server) as rpc:
            forgotten = await rpc.get_signatures_for_address(USDC, until=USDC_HISTORY[2])
            known = await rpc.get_signatures_for_address(USDC, until=USDC_HISTORY[2])
        return [item.signature for item in forgotten], [item.signature for item in known]

    forgotten, known = run(go())
    assert forgotten == USDC_HISTORY  # the newest page, as if until were absent
    assert known == USDC_HISTORY[:2]


def test_hidden_signature(server: ReplayServer) -> None:
    server.faults.hide_signature(USDC_HISTORY[1], times=1)

    async def go() -> tuple[list[str], list[str]]:
        async with fast_rpc(server) as rpc:
            first = await rpc.get_signatures_for_address(USDC)
            second = await rpc.get_signatures_for_address(USDC)
        return [item.signature for item in first], [item.signature for item in second]

    first, second = run(go())
    assert first == [USDC_HISTORY[0], *USDC_HISTORY[2:]]
    assert second == USDC_HISTORY


def test_client_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="http"):
        SolanaRpc("ftp://example.com")
    with pytest.raises(ValueError, match="batch_size"):
        SolanaRpc("http://127.0.0.1:1", batch_size=0)
