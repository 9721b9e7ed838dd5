"""Fetch-only serve rate of the replay server: 20,000 transactions (the recorded ones cloned with fresh
signatures), read as a backfill reads them (getSignaturesForAddress pages of 1,000, getTransaction
batches of 100, 4 requests in flight), with no parsing. The server runs in this process (a thread,
sharing the GIL with the client, as in the test suite and `treasury demo`) and in its own process
(`treasury replay serve --synthesise`, as a benchmark that wants both cores would run it).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bench.report import write_section
from indexer.replay import ReplayChain, ReplayServer
from indexer.replay.throughput import FetchStats, measure_fetch_throughput

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "solana"
TOTAL = 20_000
PER_SLOT = 4


def _chain() -> ReplayChain:
    chain = ReplayChain.from_folder(DATA, skip_unusable=True)
    chain.synthesise(TOTAL - len(chain.transactions()), per_slot=PER_SLOT, seed="bench")
    return chain


def _addresses(chain: ReplayChain) -> list[str]:
    """Each template's fee payer: together their histories hold every transaction."""
    return sorted({transaction.keys[0] for transaction in chain.transactions()})


def _measure(rpc_url: str, addresses: list[str]) -> FetchStats:
    return asyncio.run(measure_fetch_throughput(rpc_url, addresses))


def _in_thread() -> tuple[FetchStats, float]:
    started = time.perf_counter()
    chain = _chain()
    build_s = time.perf_counter() - started
    with ReplayServer(chain) as server:
        return _measure(server.rpc_url, _addresses(chain)), build_s


def _in_subprocess(addresses: list[str]) -> FetchStats:
    recorded = len(ReplayChain.from_folder(DATA, skip_unusable=True).transactions())
    command = [
        sys.executable,
        "-m",
        "indexer",
        "replay",
        "serve",
        "--data",
        str(DATA),
        "--synthesise",
        str(TOTAL - recorded),
        "--per-slot",
        str(PER_SLOT),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}) as process:
        try:
            assert process.stdout is not None
            ready = orjson.loads(process.stdout.readline())
            return _measure(ready["rpc_url"], addresses)
        finally:
            process.terminate()
            process.wait(timeout=30)


def run() -> None:
    thread_stats, build_s = _in_thread()
    addresses = _addresses(_chain())
    process_stats = _in_subprocess(addresses)
    rows = [("server thread in the client's process", thread_stats), ("server in its own process", process_stats)]
    lines = [
        f"{TOTAL:,} transactions ({TOTAL - 22:,} clones of the 22 recorded ones, {PER_SLOT} to a slot), fetched "
        f"through {len(addresses)} addresses' histories with `SolanaRpc` (pages of 1,000, batches of 100, "
        f"4 requests in flight); no parsing. Building the chain (decode + synthesis) took {build_s:.1f} s.",
        "",
        "| set-up | transactions | pages | MB | seconds | transactions / s | MB / s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, stats in rows:
        lines.append(
            f"| {label} | {stats.transactions:,} | {stats.pages} | {stats.reply_bytes / 1e6:.1f} | {stats.seconds:.2f} "
            f"| {stats.transactions_per_s:,.0f} | {stats.megabytes_per_s:.1f} |"
        )
    lines += [
        "",
        "`indexer.replay.throughput.measure_fetch_throughput` is the fetch-only figure the backfill benchmark "
        "(issue 5) sets its end-to-end rate beside.",
    ]
    body = "\n".join(lines)
    write_section("replay", "Replay server fetch-only rate (issue 5)", body)
    print(body)
