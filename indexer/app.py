"""Composition root: builds the pipeline's parts (RPC client, price oracle, ledger) from settings.

Only this module and the command modules turn `Settings` into objects; the parts themselves take
plain values, so they can be built differently in tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from indexer.config import Settings
from indexer.pipeline import Pipeline, RunSummary
from indexer.rpc import SolanaRpc
from ledger_client import Ledger
from pricing.oracle import PriceOracle


@asynccontextmanager
async def open_pipeline(
    settings: Settings,
    ledger: Ledger,
    *,
    rpc_options: dict[str, Any] | None = None,
    on_progress: Callable[[RunSummary, str], None] | None = None,
    page_limit: int = 1000,
) -> AsyncIterator[Pipeline]:
    """A Pipeline over the settings' RPC node and price source; both are closed afterwards."""
    async with SolanaRpc(settings.rpc_url, **(rpc_options or {})) as rpc:
        oracle = build_oracle(settings)
        pipeline = Pipeline(
            settings=settings, ledger=ledger, rpc=rpc, oracle=oracle, on_progress=on_progress, page_limit=page_limit
        )
        try:
            yield pipeline
        finally:
            pipeline.close()
            await oracle.aclose()


def build_oracle(settings: Settings) -> PriceOracle:
    """The PriceOracle configured by `settings` (the composition root's mapping of settings to plain values)."""
    key = settings.coingecko_api_key
    return PriceOracle(
        coingecko_url=settings.coingecko_url,
        api_key=key.reveal() if key is not None else None,
        plan=settings.coingecko_plan,
        max_age_s=settings.price_max_age_s,
        osr_policy=settings.osr_price.kind,
        osr_coin_id=settings.osr_price.coin_id,
        osr_fixed_usd=settings.osr_price.fixed_usd,
    )
