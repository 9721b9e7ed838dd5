"""The daemon's nightly proof jobs (issue 9): chain reconciliation and the audit of the previous UTC day,
run in-process on a real Daemon against the loopback replay node, and what `treasury status` shows.

The daemon's clock is set to 2026-05-15 00:10 UTC, so "the previous day" is 2026-05-14, which holds one
credit of the demo data: 4LXpF3…, 3.8 USDC (3,800,000 base units, stable 1:1 -> 3,800,000 micro-USD,
held in suspense) to the token account Efc6bp…, at 2026-05-14 12:17:59 UTC.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import text

from indexer import demo
from indexer.app import build_oracle
from indexer.commands.daemon import status_record
from indexer.daemon import Daemon
from indexer.rpc import SolanaRpc
from ledger_client import Ledger, deposit_key
from tests.proof_support import FAST_RPC, USDC_3_8, USDC_ACCOUNT, backfill, servers, settings_for

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
CLOCK = dt.datetime(2026, 5, 15, 0, 10, tzinfo=dt.UTC)


def run_jobs(settings: Any, ledger: Ledger) -> dict[str, dict[str, Any]]:
    async def main() -> dict[str, dict[str, Any]]:
        async with SolanaRpc(settings.rpc_url, **FAST_RPC) as rpc:
            daemon = Daemon(
                settings=settings, ledger=ledger, rpc=rpc, oracle=build_oracle(settings), clock=lambda: CLOCK
            )
            try:
                return {
                    "reconcile_chain": await daemon.run_job("reconcile_chain", daemon._job_reconcile_chain),
                    "audit": await daemon.run_job("audit", daemon._job_audit),
                }
            finally:
                daemon.pipeline.close()

    return asyncio.run(main())


def test_nightly_chain_reconciliation_and_audit_of_the_previous_day(ledger_url: str) -> None:
    with servers(demo.demo_chain()) as (rpc, coingecko):
        settings = settings_for(rpc, coingecko, ledger_url)
        with Ledger.open(ledger_url, quiet=True) as ledger:
            backfill(settings, ledger)
            clean = run_jobs(settings, ledger)
            assert clean["reconcile_chain"] == {"ok": True, "window": "2026-05-14", "differences": 0, "warnings": 0}
            assert clean["audit"] == {"ok": True, "window": "2026-05-14", "credits": 1, "differences": 0}

            # Someone edits the day's credit by hand: 3.800000 becomes 3.900000 in suspense.
            key = deposit_key(USDC_3_8, USDC_ACCOUNT, USDC)
            ledger.run(
                lambda uow: uow.connection.execute(
                    text(
                        "UPDATE ledger_postings SET amount = amount + :delta WHERE currency = 'USD' AND account = "
                        ":account AND transaction_id = (SELECT id FROM ledger_transactions WHERE idempotency_key = :key)"
                    ),
                    [
                        {"delta": 100_000, "account": "suspense", "key": key},
                        {"delta": -100_000, "account": "conversion:USDC", "key": key},
                    ],
                )
            )
            caught = run_jobs(settings, ledger)
        record = status_record(settings)
    assert caught["reconcile_chain"]["ok"] is True  # the chain still agrees with the recorded inflows
    assert caught["audit"] == {"ok": False, "window": "2026-05-14", "credits": 1, "differences": 2}
    assert record["last_audit"] == {
        "since": "2026-05-14T00:00:00+00:00",
        "until": "2026-05-15T00:00:00+00:00",
        "finished_at": "2026-05-15T00:10:00+00:00",
        "credits": 1,
        "differences": 2,
        "clean": False,
    }
    chain = record["last_chain_reconciliation"]
    assert (chain["since"], chain["until"], chain["differences"], chain["clean"]) == (
        "2026-05-14T00:00:00+00:00",
        "2026-05-15T00:00:00+00:00",
        0,
        True,
    )
    assert record["jobs"]["audit"]["ok"] is False
    assert record["jobs"]["reconcile_chain"]["ok"] is True
