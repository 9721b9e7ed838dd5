"""Settings that pricing reads: TREASURY_COINGECKO_PLAN and the mapping of Settings to a PriceOracle."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from indexer.app import build_oracle
from indexer.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("environ", "plan"),
    [
        ({}, "keyless"),
        ({"TREASURY_COINGECKO_API_KEY": "k"}, "demo"),
        ({"TREASURY_COINGECKO_API_KEY": "k", "TREASURY_COINGECKO_URL": "https://pro-api.coingecko.com/api/v3"}, "pro"),
        ({"TREASURY_COINGECKO_API_KEY": "k", "TREASURY_COINGECKO_PLAN": "PRO"}, "pro"),
    ],
)
def test_plan_of_the_oracle(environ: dict[str, str], plan: str) -> None:
    settings = load_settings(environ=environ)
    oracle = build_oracle(settings)
    try:
        assert oracle.plan == plan
    finally:
        asyncio.run(oracle.aclose())


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TREASURY_COINGECKO_PLAN": "gold"}, "TREASURY_COINGECKO_PLAN: expected one of auto, demo, keyless, pro"),
        ({"TREASURY_COINGECKO_PLAN": "demo"}, "demo plan needs an API key"),
        ({"TREASURY_COINGECKO_PLAN": "keyless", "TREASURY_COINGECKO_API_KEY": "k"}, "plan is keyless"),
        ({"TREASURY_COINGECKO_URL": "https://pro-api.coingecko.com/api/v3"}, "pro plan needs an API key"),
    ],
)
def test_bad_plan_settings(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_settings_reach_the_oracle() -> None:
    settings = load_settings(
        environ={
            "TREASURY_PRICE_MAX_AGE_S": "3600",
            "TREASURY_OSR_PRICE": "coingecko:osr-token",
        }
    )
    oracle = build_oracle(settings)
    try:
        assert oracle.max_age_s == 3600
        assert oracle.coin_id_for(settings.asset_table.resolve("OSR")) == "osr-token"  # type: ignore[arg-type]
        assert oracle.coin_id_for(settings.asset_table.resolve("SOL")) == "solana"  # type: ignore[arg-type]
        assert oracle.coin_id_for(settings.asset_table.resolve("USDC")) is None  # type: ignore[arg-type]
    finally:
        asyncio.run(oracle.aclose())
    fixed = load_settings(environ={"TREASURY_OSR_PRICE": "fixed:0.01"})
    assert (fixed.osr_price.kind, fixed.osr_price.fixed_usd) == ("fixed", Decimal("0.01"))
