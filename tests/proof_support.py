"""Helpers of the proof tests (issue 9): the demo chain and a backfill run in-process, the checks run
against the same loopback servers, and OSR transactions derived from a real recorded transfer.

OSR has no recorded transactions (the mint is young and quiet), so OSR deposits, burns and transfers
are derived from the real recorded USDC `transferChecked` to the treasury's token account
(usdc_transferchecked_durable_nonce_mainnet_jsonparsed_response.json, slot 419685246), the way
tests/test_parser_handbuilt.py derives its cases: the mint becomes OSR (9 decimals), the two token
accounts become OSR associated token accounts (of the treasury wallet B2v68t… and of the sender
3V9bd3…, or of the burn address), the amounts and the instruction are rewritten, and the transaction
gets a fresh signature, slot and block time. Everything else (keys, lamports, fee, other instructions)
stays as recorded. The owner's signature is not modelled (the sender 3V9bd3… still signs): the
indexer reads balances, and instructions only annotate them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Final

from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address

from indexer import demo
from indexer.app import open_pipeline
from indexer.config import Settings, load_settings
from indexer.pipeline import RunSummary
from indexer.replay import ReplayChain, ReplayServer
from indexer.replay.chain import fresh_signature
from indexer.rpc import SolanaRpc
from ledger_client import Ledger
from pricing.replay import ReplayServer as CoinGeckoReplay
from pricing.series import bundled_solana
from tests.conftest import SOLANA

OSR_MINT: Final = "E2grvu8fyeeuVaxj2DrHVBqv8j21jK3vyJpXG8FJjJNc"
TREASURY: Final = "B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M"  # a demo wallet: owner of the recorded USDC account
SENDER: Final = "3V9bd3EN5aNuhE4RiHGbZ1eZakJ1F9cDb8V4YLjCG8cg"  # the recorded transfer's signer and sender
INCINERATOR: Final = "1nc1nerator11111111111111111111111111111111"  # a well-known burn address
TREASURY_OSR: Final = str(get_associated_token_address(Pubkey.from_string(TREASURY), Pubkey.from_string(OSR_MINT)))
SENDER_OSR: Final = str(get_associated_token_address(Pubkey.from_string(SENDER), Pubkey.from_string(OSR_MINT)))
INCINERATOR_OSR: Final = str(
    get_associated_token_address(Pubkey.from_string(INCINERATOR), Pubkey.from_string(OSR_MINT))
)
OSR_UNIT: Final = 10**9  # OSR has 9 decimals
# The recorded transfer: slot 419685246, block time 1778761079 (2026-05-14 12:17:59 UTC).
RECORDED_SLOT: Final = 419_685_246
RECORDED_TIME: Final = 1_778_761_079
SENDER_BALANCE_RAW: Final = 50_000_000 * OSR_UNIT  # the sender's OSR before the first derived deposit

# Demo signatures used by the tests (indexer/demo_data).
MEMO_SOL: Final = "5QMfuqThWSMMpLCRe3tk7qn7iSwWKfJV8EvD1ZPvyqAWa7Z2JftZ4rPq8YCxCwzSykX7dMkDB8RrovQMoL9ZZWKY"
OLD_SOL: Final = "5hJfaZoyjTrJcchXLFXRySgDMtGRiLsqvmrtpXcQjZq1Zc2d7Qj3LisaAtaFDtS9tDdv4aZ5n4fbtJNfVMCNV8Lj"
FEE_OUT: Final = "rhvqAxG59Q4z4tFP1tJSfkYW1qqkx8A2ttKucjLroSqhS4VEHdrs8VCMb7RZKNq5kXVUqm7F4dLBu8vnM8JJ5q2"
MAPS: Final = "27wHYCjoKaobUQdWVb26UpJNWu54h1uJEZH5x4fV3hS4gWuws9KytSdfatJt77fC42STShKygb7kRtB53PknAp94"
SERUM: Final = "3j1Z9HqnV6txTrdxHMx9cSfukfef9WskWV7W5SGp7Mg6FMHH1JTdeyPXaqudEtP6XaaG5UotzhtU57dWqrRQLF7H"
USDC_3_8: Final = "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX"
MEMO_SOL_WALLET: Final = "2b7iQq3PbWwWTotRSDFNXT9DauU418aCHK4jcAzETUem"
OLD_SOL_WALLET: Final = "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG"
SERUM_WALLET: Final = "D7XYERWodEGaoN2X855T2qLvse28BSjfkvfCyW2EDBWy"
USDC_ACCOUNT: Final = "Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv"

EVERYTHING: Final = (dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
# "Now" for the checks: after every demo and derived transaction, before the end of EVERYTHING (a live run).
NOW: Final = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


def settings_for(rpc: ReplayServer, coingecko: CoinGeckoReplay, database_url: str, **extra: str) -> Settings:
    """The demo's settings (its wallets, memo pattern and two days of price age) on these servers."""
    environ = {
        "TREASURY_DATABASE_URL": database_url,
        "TREASURY_RPC_URL": rpc.rpc_url,
        "TREASURY_COINGECKO_URL": coingecko.url,
        "TREASURY_WALLETS": ",".join(demo.WALLETS),
        "TREASURY_PRICE_MAX_AGE_S": str(demo.DEMO_MAX_AGE_S),
        "TREASURY_MEMO_PATTERN": demo.MEMO_PATTERN,
    }
    environ.update(extra)
    return load_settings(environ=environ)


def environment(settings: Settings) -> dict[str, str]:
    """The same settings as TREASURY_* variables, for the CLI in a subprocess."""
    import os  # noqa: PLC0415

    env = {key: value for key, value in os.environ.items() if not key.startswith("TREASURY_")}
    env.update(
        TREASURY_DATABASE_URL=settings.database_url,
        TREASURY_RPC_URL=settings.rpc_url,
        TREASURY_COINGECKO_URL=settings.coingecko_url,
        TREASURY_WALLETS=",".join(settings.wallets),
        TREASURY_PRICE_MAX_AGE_S=str(settings.price_max_age_s),
        TREASURY_MEMO_PATTERN=settings.memo_pattern.pattern,
    )
    if settings.osr_burn_address is not None:
        env["TREASURY_OSR_BURN_ADDRESS"] = settings.osr_burn_address
    return env


@contextlib.contextmanager
def servers(chain: ReplayChain) -> Iterator[tuple[ReplayServer, CoinGeckoReplay]]:
    with (
        ReplayServer(chain) as rpc,
        CoinGeckoReplay({"solana": bundled_solana()}, now=demo.PRICE_SOURCE_NOW) as coingecko,
    ):
        yield rpc, coingecko


@contextlib.contextmanager
def fresh_ledger() -> Iterator[tuple[Ledger, str]]:
    """A fresh, migrated SQLite ledger in a temporary folder: (ledger, its URL)."""
    with tempfile.TemporaryDirectory(prefix="proof-") as folder:
        url = f"sqlite:///{folder}/ledger.db"
        with Ledger.open(url, quiet=True) as ledger:
            ledger.ensure_schema()
            yield ledger, url


def backfill(settings: Settings, ledger: Ledger, *, commitment: str = "finalized") -> RunSummary:
    """`treasury backfill` in-process (the demo's billing state first: a link, a reference, a claim)."""
    demo._prepare(ledger)

    async def main() -> RunSummary:
        async with open_pipeline(settings, ledger, rpc_options=FAST_RPC) as pipeline:
            return await pipeline.backfill(commitment=commitment)

    summary = asyncio.run(main())
    assert summary.complete, summary.scan_errors
    return summary


FAST_RPC: Final[dict[str, Any]] = {
    "timeout_s": 5.0,
    "max_retries": 3,
    "max_retry_time_s": 30.0,
    "backoff_initial_s": 0.01,
    "backoff_max_s": 0.05,
}


def reconcile(
    ledger: Ledger,
    settings: Settings,
    since: dt.datetime = EVERYTHING[0],
    until: dt.datetime = EVERYTHING[1],
    *,
    now: dt.datetime = NOW,
) -> Any:
    from indexer.proof import reconcile_chain  # noqa: PLC0415

    async def main() -> Any:
        async with SolanaRpc(settings.rpc_url, **FAST_RPC) as rpc:
            return await reconcile_chain(ledger, rpc, since, until, now=now, settings=settings)

    return asyncio.run(main())


def by_account(result: Any) -> dict[tuple[str, str], Any]:
    return {(item.account.address, item.account.asset): item for item in result.accounts}


# --- OSR transactions derived from a real recorded USDC transfer ---


def _recorded_transfer() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (SOLANA / "usdc_transferchecked_durable_nonce_mainnet_jsonparsed_response.json").read_text()
    )
    return document["result"]


def _ui(amount_raw: int) -> dict[str, Any]:
    text = str(Decimal(amount_raw).scaleb(-9).normalize())
    text = f"{Decimal(text):f}"
    return {"amount": str(amount_raw), "decimals": 9, "uiAmount": float(text), "uiAmountString": text}


def _balance(index: int, owner: str, amount_raw: int) -> dict[str, Any]:
    return {
        "accountIndex": index,
        "mint": OSR_MINT,
        "owner": owner,
        "programId": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        "uiTokenAmount": _ui(amount_raw),
    }


def osr_transaction(
    number: int,
    *,
    kind: str,
    amount_raw: int,
    treasury_before_raw: int,
    other_before_raw: int = SENDER_BALANCE_RAW,
) -> dict[str, Any]:
    """A derived OSR transaction (a bare getTransaction result), the `number`-th after the recorded one
    (slot + 10 × number, block time + 4 × number s), with a fresh signature.

    kind "deposit": the sender's OSR account pays `amount_raw` into the treasury's OSR account;
    "burn": `burnChecked` of `amount_raw` from the treasury's account (the sender's account unchanged);
    "to_incinerator": `transferChecked` of `amount_raw` from the treasury's account to the incinerator's.
    `treasury_before_raw` is the treasury account's balance before it (0: no pre entry, it is new)."""
    result = copy.deepcopy(_recorded_transfer())
    signature = fresh_signature("osr-proof", number)
    result["transaction"]["signatures"][0] = signature
    result["slot"] = RECORDED_SLOT + 10 * number
    result["blockTime"] = RECORDED_TIME + 4 * number
    keys = result["transaction"]["message"]["accountKeys"]
    other, other_owner = (INCINERATOR_OSR, INCINERATOR) if kind == "to_incinerator" else (SENDER_OSR, SENDER)
    keys[3]["pubkey"] = other
    keys[4]["pubkey"] = TREASURY_OSR
    keys[6]["pubkey"] = OSR_MINT
    if kind == "deposit":
        other_after, treasury_after = other_before_raw - amount_raw, treasury_before_raw + amount_raw
    elif kind == "burn":
        other_after, treasury_after = other_before_raw, treasury_before_raw - amount_raw
    elif kind == "to_incinerator":
        other_after, treasury_after = other_before_raw + amount_raw, treasury_before_raw - amount_raw
    else:
        raise ValueError(kind)
    meta = result["meta"]
    meta["preTokenBalances"] = [_balance(3, other_owner, other_before_raw)] if other_before_raw else []
    if treasury_before_raw or kind != "deposit":
        meta["preTokenBalances"].append(_balance(4, TREASURY, treasury_before_raw))
    meta["postTokenBalances"] = [_balance(3, other_owner, other_after), _balance(4, TREASURY, treasury_after)]
    instruction = result["transaction"]["message"]["instructions"][1]
    amount = {**_ui(amount_raw)}
    if kind == "burn":
        instruction["parsed"] = {
            "type": "burnChecked",
            "info": {"account": TREASURY_OSR, "authority": TREASURY, "mint": OSR_MINT, "tokenAmount": amount},
        }
    else:
        source, destination = (SENDER_OSR, TREASURY_OSR) if kind == "deposit" else (TREASURY_OSR, INCINERATOR_OSR)
        authority = SENDER if kind == "deposit" else TREASURY
        instruction["parsed"] = {
            "type": "transferChecked",
            "info": {
                "authority": authority,
                "destination": destination,
                "mint": OSR_MINT,
                "source": source,
                "tokenAmount": amount,
            },
        }
    return result


def signature_of(result: dict[str, Any]) -> str:
    signature: str = result["transaction"]["signatures"][0]
    return signature
