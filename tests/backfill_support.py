"""Helpers for the end-to-end tests of the pipeline: the recorded chain and price servers on loopback,
the CLI in a subprocess, and a fingerprint of the final ledger to compare runs with."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from indexer import store
from indexer.replay import ReplayChain, ReplayServer
from indexer.replay.mints import add_asset_mints
from ledger_client import Ledger
from ledger_client.schema import postings_table, transactions_table
from pricing.replay import ReplayServer as CoinGeckoReplay
from pricing.series import bundled_solana
from tests.replay_support import recorded_chain

TREASURY = shutil.which("treasury", path=str(Path(sys.executable).parent)) or "treasury"

# Treasury wallets of the end-to-end tests: the receivers of real recorded mainnet deposits.
MEMO_SOL_WALLET = "2b7iQq3PbWwWTotRSDFNXT9DauU418aCHK4jcAzETUem"  # 0.001 SOL 2023-03-30 from DT1mBD…
OLD_SOL_WALLET = "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG"  # 0.01 SOL 2021-04-06 from 6QuXb6…; MAPS
USDC_WALLET = "B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M"  # 3.8 USDC 2026-05-14 from 3V9bd3…
DUST_WALLET = "3i476kTBBTy7pBGx4CXwJpJ6phuwLQgcwLTdHhU3c7ui"  # 0.001 USDC 2023-03-27: dust
CFP_WALLET = "AjWkS35VV8eptekzw59fAyXXQRXjcwanPezL4EDQfSd8"  # 0.042 SOL 2025-10-28, memo "CFP #4115716"
LATE_SOL_WALLET = "3eF3iBQqi2DmDLS7o9y8gG7necF5VBbwYy5gqF7sh899"  # 0.024922118 SOL 2026-02-12
WALLETS = (MEMO_SOL_WALLET, OLD_SOL_WALLET, USDC_WALLET, DUST_WALLET, CFP_WALLET, LATE_SOL_WALLET)

# The price source's clock: after every recorded transaction.
PRICE_NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def demo_chain(synthesised: int = 0) -> ReplayChain:
    chain = recorded_chain()
    add_asset_mints(chain)
    if synthesised:
        chain.synthesise(synthesised, per_slot=3, seed="backfill-test")
    return chain


@contextlib.contextmanager
def servers(chain: ReplayChain) -> Iterator[tuple[ReplayServer, CoinGeckoReplay]]:
    with ReplayServer(chain) as rpc, CoinGeckoReplay({"solana": bundled_solana()}, now=PRICE_NOW) as coingecko:
        yield rpc, coingecko


def environment(rpc: ReplayServer, coingecko: CoinGeckoReplay, database_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TREASURY_")}
    env.update(
        TREASURY_RPC_URL=rpc.rpc_url,
        TREASURY_COINGECKO_URL=coingecko.url,
        TREASURY_WALLETS=",".join(WALLETS),
        TREASURY_DATABASE_URL=database_url,
        # The bundled 2020-2024 series is daily (points at 00:00 UTC): two days of age admit it.
        TREASURY_PRICE_MAX_AGE_S="172800",
        TREASURY_MEMO_PATTERN=r"CFP #\d+",
    )
    env.update(extra)
    return env


def treasury(*args: str, env: dict[str, str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TREASURY, *args], capture_output=True, text=True, timeout=timeout_s, env=env, check=False)


def start_treasury(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([TREASURY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def fingerprint(database_url: str) -> dict[str, Any]:
    """What must be identical after any crash, fault or race: every ledger transaction (key, kind,
    postings) and every deposit's outcome. Ids, times and evidence (fetch times) are left out."""
    with Ledger.open(database_url, quiet=True) as ledger:

        def read(uow: Any) -> dict[str, Any]:
            connection = uow.connection
            t = transactions_table.c
            p = postings_table.c
            rows = connection.execute(
                select(t.idempotency_key, t.kind, p.account, p.currency, p.amount).join(
                    postings_table, p.transaction_id == t.id
                )
            ).all()
            transactions: dict[str, Any] = {}
            for key, kind, account, currency, amount in rows:
                entry = transactions.setdefault(key, {"kind": kind, "postings": []})
                entry["postings"].append((account, currency, amount))
            for entry in transactions.values():
                entry["postings"].sort()
            d = store.deposits.c
            deposits = {
                row.key: (
                    row.status,
                    row.customer,
                    row.amount_raw,
                    row.credits_micros,
                    row.reason if row.status != store.PENDING_PRICE else None,
                )
                for row in connection.execute(
                    select(d.key, d.status, d.customer, d.amount_raw, d.credits_micros, d.reason)
                )
            }
            outflows = sorted(row[0] for row in connection.execute(select(store.outflows.c.key)))
            return {"transactions": transactions, "deposits": deposits, "outflows": outflows}

        return ledger.read(read)
