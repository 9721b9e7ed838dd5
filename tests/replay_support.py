"""Helpers shared by the RPC and replay tests: the recorded chain, its known history, a fast client."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from indexer.replay import ReplayChain, ReplayServer
from indexer.rpc import SolanaRpc
from tests.conftest import SOLANA

T = TypeVar("T")
RPC_DATA = Path(__file__).parent / "data" / "rpc"

TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
SYSTEM = "11111111111111111111111111111111"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
PYUSD = "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"

# Recorded transactions whose account keys (static + loaded) contain the USDC mint, newest first by
# slot (slots read from the files: 419763372, 419685246, 375777791, 184930610, 94882851).
USDC_HISTORY = [
    "3p9fzShSPEC5ocZ52UqQBszEKrr6m1w5QwCFrChwQBgQAKbAG1dgMraQuXKtZhSvg6sSHZzaQvDjhh8wKCWL6f9D",
    "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX",
    "39ZSBSYRmfzrRq1REHxesJQwUqA5YFgKaxgZ6Aah6CKCGVqRw4LVqrQgL44d3c2ZpvfLgdGZPkpEeafVBA97TeUE",
    "2S2rTZjaqzxYRw9mnqzwtyqitKtSsnE8GVqLn1KrD5R2YpXZnU4GdjppsgfSAbrzJfaqadfi8CtrqEBy588WVQ3E",
    "3j1Z9HqnV6txTrdxHMx9cSfukfef9WskWV7W5SGp7Mg6FMHH1JTdeyPXaqudEtP6XaaG5UotzhtU57dWqrRQLF7H",
]

# Transaction files with slot and blockTime, one per signature (the vote transaction is recorded in
# three encodings: only its base64 reply is used here; test_replay_chain.py covers all three).
RECORDED_FILES = sorted(
    path.name
    for path in SOLANA.glob("*.json")
    if "getsignatures" not in path.name
    and path.name
    not in {
        "ata_create_transfer_memo_v1_json_block_tx.json",  # a getBlock entry: no slot, no blockTime
        "vote_tx_json_response.json",
        "vote_tx_jsonparsed_response.json",
    }
)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def recorded_chain() -> ReplayChain:
    return ReplayChain.from_replies((SOLANA / name).read_bytes() for name in RECORDED_FILES)


def fast_rpc(server: ReplayServer, **options: Any) -> SolanaRpc:
    """A client with short waits, for tests (the defaults are for mainnet)."""
    settings: dict[str, Any] = {
        "timeout_s": 5.0,
        "max_retries": 3,
        "max_retry_time_s": 30.0,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
    }
    settings.update(options)
    return SolanaRpc(server.rpc_url, **settings)
