"""`treasury quote` as an operator runs it: the console script in a subprocess, priced by the loopback
CoinGecko (TREASURY_COINGECKO_URL pointed at it); bad input checked in-process (same code, faster)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.cli import run
from pricing.replay import Fault, ReplayServer
from pricing.series import PriceSeries
from tests.pricing_helpers import at, series

TREASURY = shutil.which("treasury", path=str(Path(sys.executable).parent)) or "treasury"
KEY = "CG-cli-secret-K3Y"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
FIELDS = [
    "asset",
    "amount_raw",
    "decimals",
    "price_usd",
    "price_source",
    "price_at",
    "usd_value",
    "bonus",
    "credits",
    "burn_raw",
    "retained_raw",
]
SOLANA = series(
    (at(2025, 11, 20, 11), "140.123456789"),
    (at(2025, 12, 3, 10), "139.00"),
    (at(2025, 12, 3, 11), "140.25"),
    (at(2025, 12, 3, 12), "141.00"),
)


@pytest.fixture(scope="module")
def coingecko() -> Iterator[ReplayServer]:
    with ReplayServer({"solana": SOLANA, "osr-token": series((at(2025, 12, 3, 11), "0.005"))}) as server:
        yield server


def treasury(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TREASURY_")}
    return subprocess.run(
        [TREASURY, *args], capture_output=True, text=True, timeout=60, env={**clean, **(env or {})}, check=False
    )


def quote(server: ReplayServer, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return treasury("quote", *args, env={"TREASURY_COINGECKO_URL": server.url, **(env or {})})


def figures(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    record: dict[str, object] = json.loads(line)
    assert list(record) == FIELDS
    return record


SOL_RANGE = {"price_source": "coingecko:market_chart_range", "price_at": "2025-12-03T11:00:00Z"}


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        pytest.param(
            ["--asset", "SOL", "--amount-raw", "1000000000", "--at", "2025-12-03T11:30:00Z"],
            {},
            # 1 SOL × 140.25 (the 11:00 point, the latest at or before 11:30) = 140.25.
            {
                **SOL_RANGE,
                "asset": "SOL",
                "amount_raw": "1000000000",
                "decimals": 9,
                "price_usd": "140.250000",
                "usd_value": "140.250000",
                "bonus": "0.000000",
                "credits": "140.250000",
                "burn_raw": None,
                "retained_raw": None,
            },
            id="1 SOL at 140.25",
        ),
        pytest.param(
            ["--asset", "sol", "--amount-raw", "1", "--at", "2025-12-03T11:30:00Z"],
            {},
            # 0.000000001 SOL × 140.25 = 0.00000014025 -> 0.000000.
            {**SOL_RANGE, "usd_value": "0.000000", "credits": "0.000000", "amount_raw": "1"},
            id="1 lamport",
        ),
        pytest.param(
            ["--asset", USDC_MINT, "--amount-raw", "1234567", "--at", "2025-12-03T11:30:00Z"],
            {},
            # 1,234,567 base units of USDC (6 decimals) at 1 USD = 1.234567.
            {
                "asset": "USDC",
                "decimals": 6,
                "price_usd": "1.000000",
                "price_source": "stable",
                "price_at": "2025-12-03T11:30:00Z",
                "usd_value": "1.234567",
                "bonus": "0.000000",
                "credits": "1.234567",
                "burn_raw": None,
            },
            id="1,234,567 USDC base units",
        ),
        pytest.param(
            ["--asset", "OSR", "--amount-raw", "10000000000000", "--at", "2025-12-03T11:30:00Z"],
            {},
            # 10,000 OSR × 0.005 (the default fixed rate) = 50; bonus 25; credits 75; burn 7,000 OSR, keep 3,000.
            {
                "asset": "OSR",
                "decimals": 9,
                "price_usd": "0.005000",
                "price_source": "fixed",
                "price_at": "2025-12-03T11:30:00Z",
                "usd_value": "50.000000",
                "bonus": "25.000000",
                "credits": "75.000000",
                "burn_raw": "7000000000000",
                "retained_raw": "3000000000000",
            },
            id="10,000 OSR fixed",
        ),
        pytest.param(
            ["--asset", "OSR", "--amount-raw", "10000000000000", "--at", "2025-12-03T11:30:00Z"],
            {"TREASURY_OSR_PRICE": "coingecko:osr-token"},
            # The same figures with the price from the loopback CoinGecko (osr-token at 0.005 at 11:00).
            {
                "price_usd": "0.005000",
                "price_source": "coingecko:market_chart_range",
                "price_at": "2025-12-03T11:00:00Z",
                "usd_value": "50.000000",
                "bonus": "25.000000",
                "credits": "75.000000",
                "burn_raw": "7000000000000",
                "retained_raw": "3000000000000",
            },
            id="10,000 OSR from CoinGecko",
        ),
        pytest.param(
            ["--asset", "OSR", "--amount-raw", "1", "--at", "2025-12-03T11:30:00Z"],
            {},
            # 1 base unit: 5 × 10**-12 USD -> 0; burn floor(0.7) = 0, retained 1.
            {"usd_value": "0.000000", "bonus": "0.000000", "credits": "0.000000", "burn_raw": "0", "retained_raw": "1"},
            id="1 OSR base unit",
        ),
        pytest.param(
            ["--asset", "SOL", "--amount-raw", "2000000000", "--at", "2025-11-20T11:30:00Z"],
            {},
            # 2 SOL × 140.123456789 = 280.246913578 -> 280.246913; the price is printed unrounded.
            {"price_usd": "140.123456789", "price_at": "2025-11-20T11:00:00Z", "usd_value": "280.246913"},
            id="price with more than 6 decimals",
        ),
        pytest.param(
            ["--asset", "SOL", "--amount-raw", "123456789", "--at", "2025-12-03T11:30:00+00:00"],
            {},
            # 123456789 × 14025 = 1,731,481,465,725 -> 17.31481465725 -> rounded down 17.314814.
            {"usd_value": "17.314814", "credits": "17.314814"},
            id="a value that must round down",
        ),
        pytest.param(
            ["--asset", "OSR", "--amount-raw", "10000000000000", "--at", "2025-12-03T11:30:00Z"],
            {"TREASURY_OSR_BONUS": "0.2", "TREASURY_OSR_BURN_SHARE": "0.5"},
            # Configured: 20% bonus on 50 = 10, credits 60; burn half: 5,000 OSR.
            {
                "bonus": "10.000000",
                "credits": "60.000000",
                "burn_raw": "5000000000000",
                "retained_raw": "5000000000000",
            },
            id="configured bonus and burn",
        ),
    ],
)
def test_quote_figures(
    coingecko: ReplayServer, args: list[str], env: dict[str, str], expected: dict[str, object]
) -> None:
    record = figures(quote(coingecko, *args, env=env))
    assert {key: record[key] for key in expected} == expected


def test_without_at_prices_now_by_the_live_rule(coingecko: ReplayServer) -> None:
    now_s = int(dt.datetime.now(dt.UTC).timestamp())
    live_point = dt.datetime.fromtimestamp(now_s - 30, dt.UTC)
    coingecko.set_series("solana", PriceSeries.merge(SOLANA, series((live_point, "140.25"))))
    try:
        record = figures(quote(coingecko, "--asset", "SOL", "--amount-raw", "1000000000"))
    finally:
        coingecko.set_series("solana", SOLANA)
    assert record["price_source"] == "coingecko:simple_price"
    assert record["price_at"] == live_point.isoformat().replace("+00:00", "Z")
    assert (record["price_usd"], record["credits"]) == ("140.250000", "140.250000")


def test_coingecko_failing_is_exit_1_one_line_no_number(coingecko: ReplayServer) -> None:
    coingecko.add_fault(Fault.server_error(503), times=4)  # every attempt of the adapter (4) fails
    try:
        done = quote(
            coingecko,
            "--asset",
            "SOL",
            "--amount-raw",
            "1000000000",
            "--at",
            "2025-06-01T00:00:00Z",
            env={"TREASURY_COINGECKO_API_KEY": KEY},
        )
    finally:
        coingecko.clear_faults()
    assert (done.returncode, done.stdout) == (1, "")
    [line] = done.stderr.splitlines()
    assert line.startswith("treasury: quote: no price for SOL: price unavailable (coingecko_error)")
    assert "HTTP 503" in line and KEY not in line
    assert [r.headers.get("x-cg-demo-api-key") for r in coingecko.requests[-4:]] == [KEY] * 4


def test_stale_point_is_exit_1(coingecko: ReplayServer) -> None:
    # The latest point before 2025-12-03T09:00 is 2025-11-20T11:00, 13 days old.
    done = quote(coingecko, "--asset", "SOL", "--amount-raw", "1", "--at", "2025-12-03T09:00:00Z")
    assert (done.returncode, done.stdout) == (1, "")
    [line] = done.stderr.splitlines()
    assert "price unavailable (stale)" in line


def test_verbose_shows_retries(coingecko: ReplayServer) -> None:
    coingecko.add_fault(Fault.server_error(500))
    try:
        done = quote(coingecko, "--asset", "SOL", "--amount-raw", "1", "--at", "2025-12-03T11:30:00Z", "--verbose")
    finally:
        coingecko.clear_faults()
    assert done.returncode == 0
    assert '"event": "coingecko.retry"' in done.stderr


# --- bad input: exit 2, one line, nothing on stdout (in-process) ---


@pytest.fixture
def no_treasury_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TREASURY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TREASURY_COINGECKO_URL", "http://127.0.0.1:9/api/v3")  # nothing may be fetched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--asset", "DOGE", "--amount-raw", "1"], "unknown asset 'DOGE'"),
        (["--asset", "So11111111111111111111111111111111111111112", "--amount-raw", "1"], "unknown asset"),
        (["--asset", "SOL", "--amount-raw", "-1"], "whole number of base units, got '-1'"),
        (["--asset", "SOL", "--amount-raw", "1.5"], "whole number"),
        (["--asset", "SOL", "--amount-raw", "1e9"], "whole number"),
        (["--asset", "SOL", "--amount-raw", ""], "whole number"),
        (["--asset", "SOL", "--amount-raw", "١٢"], "whole number"),  # Arabic-Indic digits
        (["--asset", "SOL", "--amount-raw", "18446744073709551616"], "above the largest token amount"),
        (["--asset", "SOL", "--amount-raw", "1", "--at", "yesterday"], "not an ISO 8601 time"),
        (["--asset", "SOL", "--amount-raw", "1", "--at", "2999-01-01T00:00:00Z"], "is in the future"),
        (["--asset", "SOL"], "required: --amount-raw"),
    ],
)
def test_bad_input_is_exit_2(
    no_treasury_env: None, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run(["quote", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert message in line


def test_largest_token_amount_is_accepted(no_treasury_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    # 2**64 - 1 = 18,446,744,073,709,551,615 USDC base units = 18,446,744,073,709.551615 USD (no network).
    assert run(["quote", "--asset", "USDC", "--amount-raw", "18446744073709551615", "--at", "2025-12-03"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["credits"], record["price_at"]) == ("18446744073709.551615", "2025-12-03T00:00:00Z")


def test_plan_without_key_is_a_configuration_error(
    no_treasury_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TREASURY_COINGECKO_PLAN", "pro")
    assert run(["quote", "--asset", "USDC", "--amount-raw", "1"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "treasury: configuration: TREASURY_COINGECKO_PLAN: the CoinGecko pro plan needs an API key "
        "(TREASURY_COINGECKO_API_KEY)"
    )
