"""A ledger for the export and report tests: the demo's recorded mainnet history backfilled on
2026-05-01, then a derived 10,000 OSR deposit backfilled on 2026-06-10 (the ledger's clock is set, so
the journal's posting dates are known).

What the tests expect, worked out by hand from the data (indexer/demo_data, tests/proof_support.py):
- 5QMfuq… 0.001 SOL (1,000,000 lamports) at 2023-03-30 03:14:03 UTC, slot 185471096, from the linked
  wallet DT1mBD… of agt_demo_alice; price 21.13233391276909 (CoinGecko point 2023-03-30 00:00 UTC):
  0.001 × 21.13233391276909 = 0.02113233… -> 0.021132 USD credited.
- 5hJfaZ… 0.01 SOL at 2021-04-06 04:41:07 UTC, slot 72410024; price 22.942985835974703 (point
  2021-04-06 00:00 UTC): 0.22942985… -> 0.229429 USD held in suspense (sender not linked).
- 4LXpF3… 3.8 USDC (3,800,000 base units) at 2026-05-14 12:17:59 UTC, slot 419685246, to Efc6bp…
  (owned by B2v68t…): stable 1:1 -> 3.800000 USD held in suspense.
- the OSR deposit: 10,000 OSR (10,000 × 10^9 base units) at 2026-05-14 12:18:03 UTC (the recorded
  transfer's block time + 4 s), slot 419685256, at the default fixed rate 0.005: value 50.000000 USD,
  bonus 50% = 25.000000, credits 75.000000 held in suspense; burn 70% = 7,000 OSR, retained 3,000 OSR.
- ignored: 2S2rTZ… 0.001 USDC (dust), MAPS41… (unsupported mint), 3j1Z9H… 14.198095 USDC
  (treasury_signed); waiting for a price: 2E9Ddo… 0.042 SOL (memo for agt_demo_bob), 2kHbPU…
  0.024922118 SOL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, Final

from indexer import demo
from indexer.config import Settings
from ledger_client import Ledger
from tests.proof_support import OSR_MINT, OSR_UNIT, backfill, osr_transaction, servers, settings_for

FIRST_POSTED: Final = dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)
OSR_POSTED: Final = dt.datetime(2026, 6, 10, 9, 0, tzinfo=dt.UTC)
OSR_DEPOSIT: Final = osr_transaction(1, kind="deposit", amount_raw=10_000 * OSR_UNIT, treasury_before_raw=0)
OSR_SIGNATURE: Final = OSR_DEPOSIT["transaction"]["signatures"][0]

SOL_LINKED: Final = "5QMfuqThWSMMpLCRe3tk7qn7iSwWKfJV8EvD1ZPvyqAWa7Z2JftZ4rPq8YCxCwzSykX7dMkDB8RrovQMoL9ZZWKY"
SOL_SUSPENSE: Final = "5hJfaZoyjTrJcchXLFXRySgDMtGRiLsqvmrtpXcQjZq1Zc2d7Qj3LisaAtaFDtS9tDdv4aZ5n4fbtJNfVMCNV8Lj"
USDC_SUSPENSE: Final = "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX"
USDC_DUST: Final = "2S2rTZjaqzxYRw9mnqzwtyqitKtSsnE8GVqLn1KrD5R2YpXZnU4GdjppsgfSAbrzJfaqadfi8CtrqEBy588WVQ3E"
SERUM_SWAP: Final = "3j1Z9HqnV6txTrdxHMx9cSfukfef9WskWV7W5SGp7Mg6FMHH1JTdeyPXaqudEtP6XaaG5UotzhtU57dWqrRQLF7H"
USDC_MINT: Final = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"

# Expected columns of the credited or held deposits (every value by hand, see above).
EXPECTED: Final[dict[str, dict[str, Any]]] = {
    SOL_LINKED: {
        "received_at": "2023-03-30T03:14:03Z",
        "slot": 185471096,
        "sender": "DT1mBDFsNBc1UXa25RdxNvnjL5Lro7su7gX1zpLyCmWe",
        "treasury_account": "2b7iQq3PbWwWTotRSDFNXT9DauU418aCHK4jcAzETUem",
        "asset": "SOL",
        "mint": None,
        "amount": "0.001000000",
        "amount_raw": "1000000",
        "decimals": 9,
        "price_usd": "21.13233391276909",
        "price_source": "coingecko:market_chart_range",
        "price_point_time": "2023-03-30T00:00:00Z",
        "usd_value": "0.021132",
        "bonus": "0.000000",
        "credits": "0.021132",
        "osr_burn": None,
        "osr_retained": None,
        "customer": "agt_demo_alice",
        "attribution": "linked_wallet",
        "status": "credited",
    },
    SOL_SUSPENSE: {
        "received_at": "2021-04-06T04:41:07Z",
        "slot": 72410024,
        "asset": "SOL",
        "amount": "0.010000000",
        "amount_raw": "10000000",
        "price_usd": "22.942985835974703",
        "price_point_time": "2021-04-06T00:00:00Z",
        "usd_value": "0.229429",
        "credits": "0.229429",
        "customer": None,
        "status": "suspense",
    },
    USDC_SUSPENSE: {
        "received_at": "2026-05-14T12:17:59Z",
        "slot": 419685246,
        "sender": "3V9bd3EN5aNuhE4RiHGbZ1eZakJ1F9cDb8V4YLjCG8cg",
        "treasury_account": "Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv",
        "treasury_wallet": "B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M",
        "asset": "USDC",
        "mint": USDC_MINT,
        "amount": "3.800000",
        "amount_raw": "3800000",
        "decimals": 6,
        "price_usd": "1",
        "price_source": "stable",
        "price_point_time": "2026-05-14T12:17:59Z",
        "usd_value": "3.800000",
        "bonus": "0.000000",
        "credits": "3.800000",
        "status": "suspense",
    },
    OSR_SIGNATURE: {
        "received_at": "2026-05-14T12:18:03Z",
        "slot": 419685256,
        "asset": "OSR",
        "mint": OSR_MINT,
        "amount": "10000.000000000",
        "amount_raw": "10000000000000",
        "decimals": 9,
        "price_usd": "0.005",
        "price_source": "fixed",
        "usd_value": "50.000000",
        "bonus": "25.000000",
        "credits": "75.000000",
        "osr_burn": "7000.000000000",
        "osr_retained": "3000.000000000",
        "status": "suspense",
    },
    # Through the Serum Swap program (22Y43y…, a known program id): its top-level instruction is the
    # swap; the treasury signed it, so it is not a deposit.
    SERUM_SWAP: {
        "amount": "14.198095",
        "status": "ignored",
        "reason": "treasury_signed",
        "program": "Serum Swap",
        "program_instruction": None,
    },
    USDC_DUST: {
        "amount": "0.001000",
        "status": "ignored",
        "reason": "dust",
        "credits": None,
        "ledger_transaction_id": None,
    },
}
# 0.021132 credited; 0.229429 + 3.800000 + 75.000000 held.
CREDITED_TOTAL: Final = "0.021132"
SUSPENSE_TOTAL: Final = "79.029429"
ALL_ROWS: Final = 9  # the demo's 8 inflows and the OSR deposit


class _Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@contextlib.contextmanager
def export_ledger(database_url: str) -> Iterator[tuple[Ledger, Settings]]:
    """The ledger described above, on `database_url` (migrated and empty), with its settings."""
    chain = demo.demo_chain()
    clock = _Clock(FIRST_POSTED)
    with servers(chain) as (rpc, coingecko), Ledger.open(database_url, quiet=True, clock=clock) as ledger:
        ledger.ensure_schema()
        settings = settings_for(rpc, coingecko, database_url)
        backfill(settings, ledger)
        chain.add(OSR_DEPOSIT)
        clock.now = OSR_POSTED
        backfill(settings, ledger)
        yield ledger, settings
