"""Backfill throughput (issue 5): 20,000 transactions (the recorded mainnet deposits cloned with fresh
signatures) from the replay node into SQLite and into PostgreSQL, beside the node's own fetch-only
serve rate for the same addresses in the same run; and the backfill's peak memory at 5,000 and at
20,000 transactions (it must not grow with the history).

The replay node runs in its own process (bench/replay_process.py) and each backfill is the real
`treasury backfill` command in a subprocess, whose peak resident memory is read from wait4().
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.report import write_section
from bench.scratch import scratch_database
from indexer.demo import PRICE_SOURCE_NOW, WALLETS
from indexer.replay.throughput import FetchStats, measure_fetch_throughput
from pricing.replay import ReplayServer as CoinGeckoReplay
from pricing.series import bundled_solana

SIZES = (5_000, 20_000)
TREASURY = str(Path(sys.executable).parent / "treasury")


@contextlib.contextmanager
def replay_node(count: int) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.replay_process", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        ready = orjson.loads(process.stdout.readline())
        yield ready["rpc_url"]
    finally:
        process.terminate()
        process.wait(timeout=60)


def postgres_database() -> contextlib.AbstractContextManager[str]:
    return scratch_database("bench_backfill")


def backfill(rpc_url: str, coingecko_url: str, database_url: str) -> tuple[dict[str, Any], float, int]:
    """Run `treasury backfill`; its summary, wall seconds and peak RSS in KiB."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TREASURY_")}
    env.update(
        TREASURY_RPC_URL=rpc_url,
        TREASURY_COINGECKO_URL=coingecko_url,
        TREASURY_DATABASE_URL=database_url,
        TREASURY_WALLETS=",".join(WALLETS),
        # The clones land after the bundled series ends: a year of age prices them at its last point.
        TREASURY_PRICE_MAX_AGE_S="31536000",
    )
    # Migrate first, outside the timing: a new ledger is created once, not per backfill.
    subprocess.run([TREASURY, "db", "upgrade"], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [TREASURY, "backfill", "--format", "json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed_s = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"backfill exited {process.returncode}")
    return orjson.loads(output), elapsed_s, usage.ru_maxrss


def run() -> None:
    results: dict[int, dict[str, Any]] = {}
    with CoinGeckoReplay({"solana": bundled_solana()}, now=PRICE_SOURCE_NOW) as coingecko:
        for count in SIZES:
            with replay_node(count) as rpc_url:
                fetch: FetchStats = asyncio.run(measure_fetch_throughput(rpc_url, list(WALLETS)))
                with tempfile.TemporaryDirectory() as folder:
                    sqlite = backfill(rpc_url, coingecko.url, f"sqlite:///{folder}/bench.db")
                with postgres_database() as url:
                    postgresql = backfill(rpc_url, coingecko.url, url)
            results[count] = {"fetch": fetch, "sqlite": sqlite, "postgresql": postgresql}

    lines = [
        "The recorded mainnet deposits of `treasury demo` cloned with fresh signatures, 4 to a slot; the seven "
        "demo wallets watched. The replay node runs in its own process; each backfill is `treasury backfill` "
        "(pages of 1,000, batches of 100) in a subprocess on a migrated, empty ledger. Fetch-only is "
        "`measure_fetch_throughput` over the same addresses in the same run (pages + batches, no parsing).",
        "",
        "| transactions | database | signatures | deposits | credited | seconds | transactions / s | "
        "fetch-only / s | end-to-end ÷ fetch-only | peak RSS MiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for count, result in results.items():
        fetch = result["fetch"]
        for database in ("sqlite", "postgresql"):
            summary, seconds, rss_kib = result[database]
            fetched = summary["transactions_fetched"]
            rate = fetched / seconds
            credited = summary["credited"] + summary["held_in_suspense"]
            lines.append(
                f"| {count:,} | {database} | {summary['signatures']:,} | {summary['deposits_found']:,} | {credited:,} "
                f"| {seconds:.1f} | {rate:,.0f} | {fetch.transactions_per_s:,.0f} | "
                f"{rate / fetch.transactions_per_s:.0%} | {rss_kib / 1024:.0f} |"
            )
    small, large = (results[size]["sqlite"][2] for size in SIZES)
    lines += [
        "",
        f"Peak memory, SQLite: {small / 1024:.0f} MiB at {SIZES[0]:,} transactions, {large / 1024:.0f} MiB at "
        f"{SIZES[1]:,} ({(large - small) / 1024:+.0f} MiB for {SIZES[1] / SIZES[0]:.0f}× the history). "
        "Target: end-to-end ≥ 50% of fetch-only; memory flat.",
        f"Run at {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
    ]
    body = "\n".join(lines)
    write_section("backfill", "Backfill throughput and memory (issue 5)", body)
    print(body)
