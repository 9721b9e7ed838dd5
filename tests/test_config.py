"""The configuration layer: defaults, TOML file, TREASURY_* variables, options, and bad values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from indexer.config import ConfigError, Secret, load_settings, redact_url
from pricing.assets import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID


def test_defaults_are_the_real_system_r_setup() -> None:
    settings = load_settings(environ={})
    assert settings.wallets == ("9Nc6u9ft3uAr6DSaqHijFjQS53hZPDRL2LoVYvH4vK5H",)
    assert settings.database_url == "sqlite:///./treasury.db"
    assert settings.rpc_url == "https://api.mainnet-beta.solana.com"
    assert settings.websocket_url == "wss://api.mainnet-beta.solana.com"
    assert settings.coingecko_url == "https://api.coingecko.com/api/v3"
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert str(settings.osr_price) == "fixed:0.005"
    assert settings.osr_bonus == Decimal("0.5")
    assert settings.osr_burn_share == Decimal("0.7")
    assert settings.price_max_age_s == 7200
    assert settings.health_addr == ("127.0.0.1", 8787)
    assert settings.start is None
    assert dict(settings.dust_raw) == {
        "SOL": 100_000,
        "USDC": 10_000,
        "USDT": 10_000,
        "PYUSD": 10_000,
        "OSR": 1_000_000_000,
    }
    table = {asset.symbol: (asset.mint, asset.decimals, asset.token_program) for asset in settings.assets}
    assert table == {
        "SOL": (None, 9, None),
        "USDC": ("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6, TOKEN_PROGRAM_ID),
        "USDT": ("Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6, TOKEN_PROGRAM_ID),
        "PYUSD": ("2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo", 6, TOKEN_2022_PROGRAM_ID),
        "OSR": ("E2grvu8fyeeuVaxj2DrHVBqv8j21jK3vyJpXG8FJjJNc", 9, TOKEN_PROGRAM_ID),
    }


def test_file_then_environment_then_options(tmp_path: Path) -> None:
    config = tmp_path / "treasury.toml"
    config.write_text(
        'rpc_url = "http://127.0.0.1:9000"\n'
        'database_url = "postgresql://postgres@127.0.0.1:5432/ledger"\n'
        "price_max_age_s = 3600\n"
        'wallets = ["3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG"]\n'
        "[dust]\nSOL = 5\n"
    )
    settings = load_settings(
        config_path=str(config),
        environ={"TREASURY_PRICE_MAX_AGE_S": "60", "TREASURY_OSR_PRICE": "coingecko:osr-token"},
        options={"rpc_url": "http://127.0.0.1:9001"},
    )
    assert settings.rpc_url == "http://127.0.0.1:9001"
    assert settings.websocket_url == "ws://127.0.0.1:9001"
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/ledger"
    assert settings.price_max_age_s == 60
    assert settings.wallets == ("3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG",)
    assert settings.dust_raw["SOL"] == 5
    assert settings.dust_raw["USDC"] == 10_000  # unnamed assets keep their defaults
    assert settings.osr_price.kind == "coingecko"
    assert settings.osr_price.coin_id == "osr-token"


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text('coingecko_url = "http://127.0.0.1:7000/api/v3/"\n')
    settings = load_settings(environ={"TREASURY_CONFIG": str(config)})
    assert settings.coingecko_url == "http://127.0.0.1:7000/api/v3"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TREASURY_WALLETS", "abc", "not a Solana address"),
        ("TREASURY_WALLETS", "", "at least one treasury wallet"),
        ("TREASURY_DUST", "SOL=1.5", "whole number"),
        ("TREASURY_DUST", "DOGE=5", "unknown asset DOGE"),
        ("TREASURY_OSR_PRICE", "fixed:0", "must be positive"),
        ("TREASURY_OSR_PRICE", "binance:osr", "expected coingecko"),
        ("TREASURY_OSR_BONUS", "-1", "at least 0"),
        ("TREASURY_PRICE_MAX_AGE_S", "0", "positive whole number"),
        ("TREASURY_HEALTH_ADDR", "8787", "HOST:PORT"),
        ("TREASURY_START", "yesterday", "ISO 8601"),
        ("TREASURY_RPC_URL", "ftp://x", "http(s) URL"),
        ("TREASURY_DATABASE_URL", "mysql://root:hunter2@db/x", "unsupported database scheme"),
    ],
)
def test_bad_values_name_their_source(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={variable: value})
    assert caught.value.source == variable
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text('rpc_ulr = "http://x"\n')
    with pytest.raises(ConfigError, match="rpc_ulr: unknown setting"):
        load_settings(config_path=str(config), environ={})


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text("rpc_url = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_path=str(config), environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config_path=str(tmp_path / "missing.toml"), environ={})


def test_secrets_never_render() -> None:
    settings = load_settings(environ={"TREASURY_STRIPE_API_KEY": "sk_test_123", "TREASURY_COINGECKO_API_KEY": "CG-x"})
    assert isinstance(settings.stripe_api_key, Secret)
    assert settings.stripe_api_key.reveal() == "sk_test_123"
    assert "sk_test_123" not in repr(settings)
    assert "CG-x" not in repr(settings)
    assert redact_url("postgresql://app:hunter2@db:5432/ledger") == "postgresql://app:***@db:5432/ledger"


def test_start_time_is_utc() -> None:
    settings = load_settings(environ={"TREASURY_START": "2025-10-26T12:00:00+02:00"})
    assert settings.start == dt.datetime(2025, 10, 26, 10, 0, tzinfo=dt.UTC)
    assert load_settings(environ={"TREASURY_START": "2025-10-26"}).start == dt.datetime(2025, 10, 26, tzinfo=dt.UTC)


def test_asset_table_override(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text(
        '[[assets]]\nsymbol = "SOL"\ndecimals = 9\nprice_rule = "market"\n'
        '[[assets]]\nsymbol = "USDC"\nmint = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"\ndecimals = 6\n'
        f'token_program = "{TOKEN_PROGRAM_ID}"\nprice_rule = "stable"\n'
    )
    settings = load_settings(config_path=str(config), environ={"TREASURY_DUST": "USDC=1"})
    assert [asset.symbol for asset in settings.assets] == ["SOL", "USDC"]
    config.write_text(
        '[[assets]]\nsymbol = "USDC"\nmint = "x"\ndecimals = 6\ntoken_program = "y"\nprice_rule = "stable"\n'
    )
    with pytest.raises(ConfigError, match="not a Solana address"):
        load_settings(config_path=str(config), environ={})
