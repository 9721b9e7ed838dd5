"""`treasury replay serve` in a subprocess, the fetch-only throughput function, and bundled mints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import orjson

from indexer.replay import ReplayChain, ReplayServer
from indexer.replay.mints import add_asset_mints
from indexer.replay.throughput import measure_fetch_throughput
from tests.conftest import SOLANA
from tests.replay_support import PYUSD, TOKEN, TOKEN_2022, USDC, fast_rpc, run

SOL_2025 = "sol_transfer_mainnet_2025_jsonparsed_response.json"
SOL_2025_RECIPIENT = "3eF3iBQqi2DmDLS7o9y8gG7necF5VBbwYy5gqF7sh899"


def test_serve_command_until_sigterm() -> None:
    command = [sys.executable, "-m", "indexer", "replay", "serve", "--data", str(SOLANA), "--synthesise", "10"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as process:
        assert process.stdout is not None
        ready = orjson.loads(process.stdout.readline())
        # 22 usable recorded transactions in tests/data/solana (see test_replay_chain.test_from_folder) + 10 clones.
        assert ready["transactions"] == 32
        assert ready["ws_url"].startswith("ws://127.0.0.1:")
        reply = httpx.post(ready["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"}, timeout=5)
        assert reply.json() == {"jsonrpc": "2.0", "result": "ok", "id": 1}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


def test_serve_command_bad_data() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "indexer", "replay", "serve", "--data", "/nonexistent/folder"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "treasury: replay serve: --data /nonexistent/folder: not a folder\n"
    assert result.stdout == ""


def test_fetch_throughput_reads_every_transaction_once() -> None:
    chain = ReplayChain.from_replies([(SOLANA / SOL_2025).read_bytes()])
    chain.synthesise(2345, per_slot=3)
    with ReplayServer(chain) as server:
        stats = run(measure_fetch_throughput(server.rpc_url, [SOL_2025_RECIPIENT], page_limit=1000, batch_size=50))
        # 2,346 signatures: pages of 1,000, 1,000 and 346 (the fourth, empty, is not counted).
        assert (stats.transactions, stats.missing, stats.pages) == (2346, 0, 3)
        assert server.count("getSignaturesForAddress") == 4
        # 1,000 / 50 = 20 batches per full page, 346 / 50 -> 7: 47 getTransaction requests of 2,346 items.
        assert server.count("getTransaction") == 2346
        assert server.http_requests == 4 + 47
    assert stats.reply_bytes > 0
    assert stats.transactions_per_s > 0


def test_bundled_mints_of_the_asset_table() -> None:
    chain = ReplayChain()
    add_asset_mints(chain)

    async def go() -> list[tuple[int, str]]:
        async with fast_rpc(server) as rpc:
            found = []
            for mint in (
                USDC,
                "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
                PYUSD,
                "E2grvu8fyeeuVaxj2DrHVBqv8j21jK3vyJpXG8FJjJNc",
            ):
                info = await rpc.check_mint(mint)
                found.append((info.decimals, info.token_program))
            return found

    with ReplayServer(chain) as server:
        # DESIGN.md §1: USDC 6 Token, USDT 6 Token, PYUSD 6 Token-2022, OSR 9 Token.
        assert run(go()) == [(6, TOKEN), (6, TOKEN), (6, TOKEN_2022), (9, TOKEN)]
