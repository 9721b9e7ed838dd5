"""The daemon (issue 6): latency from a finalized notification to the committed credit (p50, p99), and
its resident memory after 1,000 replayed deposits versus after 50,000 (it must not grow).

`treasury run` runs in a subprocess against the replay node (served from this process, which scripts
the chain). Deposits are clones of the recorded 3.8 USDC mainnet deposit: announced at confirmed (the
daemon records them as pending), then finalized; the latency is the deposit's `credited_at` (stamped
by the daemon in the transaction that posts the credit) minus the moment the chain finalized it.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.report import write_section
from indexer import store
from ledger_client import Ledger
from tests.backfill_support import demo_chain, environment, servers
from tests.daemon_support import DaemonProcess, daemon_environment, wait_for

USDC_TEMPLATE = "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX"
LATENCY_SAMPLES = 200
MEMORY_SMALL = 1_000
MEMORY_LARGE = 50_000
MEMORY_CHECKPOINTS = (MEMORY_SMALL, 10_000, 25_000, MEMORY_LARGE)
BURST = 500


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _credited(ledger: Ledger) -> int:
    counts = ledger.read(lambda uow: store.status_counts(uow.connection))
    return int(counts.get(store.SUSPENSE, 0) + counts.get(store.CREDITED, 0))


def run() -> None:
    chain = demo_chain()
    [template] = [t for t in chain.transactions() if t.signature == USDC_TEMPLATE]
    with tempfile.TemporaryDirectory() as folder, servers(chain) as (rpc, coingecko):
        url = f"sqlite:///{folder}/daemon.db"
        env, port = daemon_environment(environment(rpc, coingecko, url, TREASURY_WS_URL=rpc.ws_url))
        daemon = DaemonProcess(env, port)
        try:
            daemon.wait_healthy()
            with Ledger.open(url, quiet=True) as ledger:
                wait_for(lambda: _credited(ledger) >= 3, 60, "the catch-up")
                latencies_ms: list[float] = []
                for number in range(LATENCY_SAMPLES):
                    [signature] = chain.synthesise(
                        1, templates=[template], commitment="confirmed", notify=True, seed=f"l{number}"
                    )
                    time.sleep(0.05)
                    finalized_at = dt.datetime.now(dt.UTC)
                    chain.finalize(signature)
                    row: list[store.DepositRow] = []

                    def done(signature: str = signature, row: list[store.DepositRow] = row) -> bool:
                        found = ledger.read(lambda uow: store.deposits_of_signatures(uow.connection, [signature]))
                        if found and found[0].credited_at is not None:
                            row.append(found[0])
                            return True
                        return False

                    wait_for(done, 30, "a credit")
                    assert row[0].credited_at is not None
                    latencies_ms.append((row[0].credited_at - finalized_at).total_seconds() * 1000)

                rss: dict[int, float] = {}
                base = _credited(ledger)
                replayed = 0
                started = time.monotonic()
                for target in MEMORY_CHECKPOINTS:
                    while replayed < target:
                        count = min(BURST, target - replayed)
                        chain.synthesise(
                            count, templates=[template], commitment="finalized", notify=True, seed=f"m{replayed}"
                        )
                        chain.advance_slot(1, finalize=True)
                        replayed += count
                        wait_for(lambda goal=base + replayed: _credited(ledger) >= goal, 600, "the replay")
                    rss[target] = _rss_mib(daemon.process.pid)
                replay_s = time.monotonic() - started
            assert daemon.terminate() == 0
        finally:
            daemon.kill()
            daemon.close()

    quantiles = statistics.quantiles(latencies_ms, n=100)
    lines = [
        f"`treasury run` against the loopback replay node (websocket notifications at confirmed and at finalized), "
        f"SQLite ledger, {os.cpu_count()} cores shared by the node, the daemon and this script.",
        "",
        f"Latency from the chain finalizing a deposit to its committed credit, {LATENCY_SAMPLES} deposits, one at "
        "a time:",
        "",
        "| p50 ms | p99 ms | max ms |",
        "|---:|---:|---:|",
        f"| {statistics.median(latencies_ms):.0f} | {quantiles[98]:.0f} | {max(latencies_ms):.0f} |",
        "",
        f"Resident memory of the daemon (VmRSS) while deposits are replayed in bursts of {BURST} (finalized, "
        f"notified); replaying {MEMORY_LARGE:,} took {replay_s:.0f} s ({MEMORY_LARGE / replay_s:,.0f} deposits/s "
        "credited):",
        "",
        "| deposits replayed | " + " | ".join(f"{n:,}" for n in MEMORY_CHECKPOINTS) + " |",
        "|---|" + "---:|" * len(MEMORY_CHECKPOINTS),
        "| VmRSS MiB | " + " | ".join(f"{rss[n]:.0f}" for n in MEMORY_CHECKPOINTS) + " |",
        "",
        f"Growth from {MEMORY_SMALL:,} to {MEMORY_LARGE:,}: {rss[MEMORY_LARGE] - rss[MEMORY_SMALL]:+.0f} MiB.",
    ]
    body = "\n".join(lines)
    write_section("daemon", "Daemon latency and memory (issue 6)", body)
    print(body)
