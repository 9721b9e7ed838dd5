"""Ledger posting throughput: 100,000 deposit credits with realistic evidence, new and then all duplicates,
through `Ledger.post_many`, beside a plain executemany `INSERT … ON CONFLICT DO NOTHING` of the same rows,
on PostgreSQL and on SQLite, in one run.

Each credit is a SOL deposit (4 postings: treasury, conversion ×2, customer) to one of 5,000 customers,
with evidence like the pipeline stores: a recorded mainnet getTransaction reply (jsonParsed, about
4.6 KB) with the deposit's own signature, plus the price quote and the rule applied. The plain
insert writes the same key, kind and evidence JSON into a table with a unique key and nothing else:
the floor for storing evidence idempotently. PostgreSQL is the server on 127.0.0.1:5432 when it
answers (else a throwaway one, as in the tests), in a database created for the run and dropped after.

`LEDGER_BENCH_COUNT` runs fewer credits (for a quick look); the figures in docs/BENCHMARKS.md are
from the full 100,000.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import based58
import orjson
import psycopg

from bench.report import write_section
from ledger_client import Draft, crypto_deposit_entry, deposit_key
from ledger_client.entries import encode_json
from ledger_client.ledger import Ledger
from tests import pg

COUNT = int(os.environ.get("LEDGER_BENCH_COUNT", "100000"))
BATCH = 1_000
CUSTOMERS = 5_000
TREASURY = "9Nc6u9ft3uAr6DSaqHijFjQS53hZPDRL2LoVYvH4vK5H"
RECORDED = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "data"
    / "solana"
    / "usdc_transferchecked_durable_nonce_mainnet_jsonparsed_response.json"
)
PRICE = Decimal("150.25")

_PLAIN_PG = """
CREATE TABLE plain_credits (
    id BIGSERIAL PRIMARY KEY,
    idempotency_key VARCHAR(512) NOT NULL UNIQUE,
    kind VARCHAR(64) NOT NULL,
    evidence JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""
_PLAIN_SQLITE = """
CREATE TABLE plain_credits (
    id INTEGER PRIMARY KEY,
    idempotency_key VARCHAR(512) NOT NULL UNIQUE,
    kind VARCHAR(64) NOT NULL,
    evidence JSON NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
)"""


def _signature(n: int) -> str:
    return based58.b58encode(hashlib.sha512(f"bench-{n}".encode()).digest()).decode()


class Credits:
    """The n-th deposit credit, built the same way every time it is asked for."""

    def __init__(self) -> None:
        reply = orjson.loads(RECORDED.read_bytes())
        self.template: dict[str, Any] = reply["result"]

    def draft(self, n: int) -> Draft:
        signature = _signature(n)
        transaction = copy.copy(self.template)
        transaction["transaction"] = {**self.template["transaction"], "signatures": [signature]}
        amount_raw = 100_000_000 + n  # 0.1 SOL and a little more
        # amount × price in micro-USD, rounded down: raw / 10^9 × 150.25 × 10^6 = raw × 15025 / 100000.
        usd_micros = amount_raw * 15_025 // 100_000
        evidence = {
            "signature": signature,
            "slot": 419685246 + n,
            "block_time": 1_767_000_000 + n,
            "transaction": transaction,
            "quote": {
                "source": "coingecko",
                "coin_id": "solana",
                "price_usd": PRICE,
                "point_at": "2026-12-01T12:00:00Z",
                "granularity": "5m",
                "fetched_at": "2026-12-01T12:00:07Z",
            },
            "rule": "market",
        }
        key = deposit_key(signature, TREASURY, "SOL")
        customer = f"agt_{n % CUSTOMERS:08d}"
        return crypto_deposit_entry(key, customer, "SOL", amount_raw, usd_micros, 0, usd_micros, 0, 0, evidence)

    def batches(self) -> Iterator[list[Draft]]:
        for start in range(0, COUNT, BATCH):
            yield [self.draft(n) for n in range(start, min(start + BATCH, COUNT))]


def _timed(step: Callable[[list[Draft]], None], credits: Credits) -> tuple[float, float]:
    """(seconds spent in `step`, seconds building drafts) over all batches."""
    spent = building = 0.0
    batches = credits.batches()
    while True:
        started = time.perf_counter()
        batch = next(batches, None)
        building += time.perf_counter() - started
        if batch is None:
            return spent, building
        started = time.perf_counter()
        step(batch)
        spent += time.perf_counter() - started


def _ledger_passes(ledger: Ledger, credits: Credits) -> dict[str, float]:
    created = existed = 0

    def post(batch: list[Draft]) -> None:
        nonlocal created, existed
        for result in ledger.post_many(batch):
            created += result.created
            existed += not result.created

    new_s, build_s = _timed(post, credits)
    assert (created, existed) == (COUNT, 0), (created, existed)
    duplicate_s, _ = _timed(post, credits)
    assert (created, existed) == (COUNT, COUNT), (created, existed)
    return {"new": new_s, "duplicates": duplicate_s, "build": build_s}


def _plain_rows(batch: list[Draft]) -> list[tuple[str, str, str]]:
    return [(draft.key, draft.kind, encode_json(draft.evidence)) for draft in batch]


def _plain_postgresql(url: str, credits: Credits) -> dict[str, float]:
    with psycopg.connect(url) as connection:
        connection.execute(_PLAIN_PG)
        connection.commit()

        def insert(batch: list[Draft]) -> None:
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO plain_credits (idempotency_key, kind, evidence) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    _plain_rows(batch),
                )
            connection.commit()

        new_s, _ = _timed(insert, credits)
        duplicate_s, _ = _timed(insert, credits)
        count = connection.execute("SELECT count(*) FROM plain_credits").fetchone()
        assert count is not None and count[0] == COUNT
    return {"new": new_s, "duplicates": duplicate_s}


def _plain_sqlite(path: Path, credits: Credits) -> dict[str, float]:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(_PLAIN_SQLITE)

        def insert(batch: list[Draft]) -> None:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                "INSERT INTO plain_credits (idempotency_key, kind, evidence) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                _plain_rows(batch),
            )
            connection.execute("COMMIT")

        new_s, _ = _timed(insert, credits)
        duplicate_s, _ = _timed(insert, credits)
        assert connection.execute("SELECT count(*) FROM plain_credits").fetchone() == (COUNT,)
    finally:
        connection.close()
    return {"new": new_s, "duplicates": duplicate_s}


@contextlib.contextmanager
def _postgresql() -> Iterator[str]:
    server = pg.session_server()
    name = pg.unique_name("ledger_bench")
    try:
        url = server.create_database(name)
        yield url
    finally:
        with contextlib.suppress(psycopg.Error):
            server.drop_database(name)
        server.stop()


def _rows(database: str, ledger: dict[str, float], plain: dict[str, float]) -> list[str]:
    def rate(seconds: float) -> str:
        return f"{COUNT / seconds:,.0f}"

    return [
        f"| {database} | ledger `post_many`, new | {ledger['new']:.2f} | {rate(ledger['new'])} "
        f"| {ledger['new'] / plain['new']:.2f} |",
        f"| {database} | ledger `post_many`, all duplicates | {ledger['duplicates']:.2f} "
        f"| {rate(ledger['duplicates'])} | {ledger['duplicates'] / plain['duplicates']:.2f} |",
        f"| {database} | plain executemany, new | {plain['new']:.2f} | {rate(plain['new'])} | 1.00 |",
        f"| {database} | plain executemany, all duplicates | {plain['duplicates']:.2f} "
        f"| {rate(plain['duplicates'])} | 1.00 |",
    ]


def run() -> None:
    load_before = os.getloadavg()[0]
    credits = Credits()
    evidence_bytes = sum(len(encode_json(credits.draft(n).evidence)) for n in range(100)) // 100
    results: dict[str, tuple[dict[str, float], dict[str, float]]] = {}

    with _postgresql() as url:
        with Ledger.open(url, quiet=True) as ledger:
            ledger.upgrade()
            pg_ledger = _ledger_passes(ledger, credits)
            assert ledger.verify() == []
        results["PostgreSQL"] = (pg_ledger, _plain_postgresql(url, credits))
        with psycopg.connect(url) as connection:
            version = connection.execute("SHOW server_version").fetchone()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as folder:
        with Ledger.open(f"sqlite:///{folder}/ledger.db", quiet=True) as ledger:
            ledger.upgrade()
            sqlite_ledger = _ledger_passes(ledger, credits)
        results["SQLite"] = (sqlite_ledger, _plain_sqlite(Path(folder) / "plain.db", credits))

    plain_new = COUNT / results["PostgreSQL"][1]["new"]
    pg_new = COUNT / results["PostgreSQL"][0]["new"]
    pg_dup = COUNT / results["PostgreSQL"][0]["duplicates"]
    pg_ratio = results["PostgreSQL"][0]["new"] / results["PostgreSQL"][1]["new"]
    lines = [
        f"{COUNT:,} SOL deposit credits (4 postings each, {CUSTOMERS:,} customers) in batches of {BATCH:,} "
        f"(`Ledger.post_many`, one transaction per batch), evidence about {evidence_bytes:,} bytes of JSON each "
        "(a recorded mainnet getTransaction reply with the deposit's signature, the quote and the rule); then "
        "the same credits again, all duplicates. Beside it, a plain psycopg/sqlite3 `executemany` of `INSERT … "
        "ON CONFLICT DO NOTHING` of the same key, kind and evidence into a table with only a unique key, "
        f"committed per batch. PostgreSQL {version[0] if version else '?'} on 127.0.0.1 (default settings, "
        "synchronous commit on); SQLite in WAL mode with synchronous=FULL. Draft building (the caller's work) "
        f"is not timed: {results['PostgreSQL'][0]['build']:.1f} s for {COUNT:,}.",
        "",
        "| database | measure | seconds | credits / s | ratio to plain insert |",
        "|---|---|---:|---:|---:|",
        *_rows("PostgreSQL", *results["PostgreSQL"]),
        *_rows("SQLite", *results["SQLite"]),
        "",
        f"Targets on PostgreSQL: at least 10,000 new credits/s (measured {pg_new:,.0f}), duplicates at least as "
        f"fast (measured {pg_dup:,.0f}/s), within 3× of the plain insert (measured {pg_ratio:.2f}×).",
        "",
        f"Client and server share the machine's {os.cpu_count()} cores (load average {load_before:.2f} when the "
        "run began; other helpers share the machine).",
    ]
    if plain_new < 10_000:
        lines.append(
            f"Here the plain insert of the evidence rows alone reaches {plain_new:,.0f}/s, so a ledger that also "
            "writes four postings per credit cannot be expected to reach 10,000/s on this machine; its cost beyond "
            "that floor is the postings (binary COPY, with their foreign-key checks) and the checks and hashing "
            "in Python."
        )
    body = "\n".join(lines)
    if COUNT == 100_000:
        write_section("ledger", "Ledger posting throughput (issue 3)", body)
    print(body)
