"""Stripe reconciliation throughput: 100,000 Checkout Sessions from the loopback Stripe against a
PostgreSQL ledger holding their credits, beside the fetch alone.

The fake Stripe (`reconcile.testing.FakeStripe`, objects in Stripe's recorded shapes) runs in its own
process with the 100,000 paid sessions (1% refunded, 0.1% with a lost dispute, each reversal already
debited in the ledger). Each measurement runs in a fresh process (spawned, so it inherits nothing)
and reports its own peak resident memory (`ru_maxrss`):

- fetch alone: `StripeApiSource.sessions` over the window (1,000 pages of 100 expanded sessions, plus
  one dispute list per disputed charge), decoded into records;
- reconciliation: `reconcile_window(..., fix=True)` — the same fetch, the ledger lookups (100,000 keys
  and the scan of card transactions), matching, and recording the run; every session is matched, so
  it posts nothing.

PostgreSQL is the server on 127.0.0.1:5432 when it answers (else a throwaway one, as in the tests), in
a database created for the run and dropped after. `STRIPE_BENCH_COUNT` runs fewer sessions (for a
quick look); the figures in docs/BENCHMARKS.md are from the full 100,000.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import resource
import time
from multiprocessing.connection import Connection
from typing import Any

from bench.report import write_section
from ledger_client import Draft, card_dispute_lost_entry, card_refund_entry, card_topup_entry
from ledger_client.ledger import Ledger
from tests import pg

COUNT = int(os.environ.get("STRIPE_BENCH_COUNT", "100000"))
SINCE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
UNTIL = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
CUSTOMERS = 5_000
POST_BATCH = 5_000


def _session(n: int) -> tuple[str, str, int, int]:
    """The n-th session: (id, customer, created, amount in cents) — $5.00 … $9,004.00, spread over January."""
    created = int(SINCE.timestamp()) + n * (31 * 86_400 - 1) // max(COUNT, 1)
    return f"cs_test_bench{n:010d}", f"agt_{n % CUSTOMERS:04d}", created, 500 + (n % 9000) * 100


def _refunded(n: int) -> bool:
    return n % 100 == 7


def _disputed(n: int) -> bool:
    return n % 1000 == 3


def _serve(pipe: Connection) -> None:
    """The fake Stripe's process: build the sessions, say where it listens, serve until told to stop."""
    from reconcile.testing import FakeStripe  # noqa: PLC0415 - in the spawned process

    with FakeStripe(record_requests=False) as fake:
        started = time.perf_counter()
        ids: dict[int, tuple[str | None, str | None]] = {}
        for n in range(COUNT):
            session_id, customer, created, amount = _session(n)
            topup = fake.add_session(created=created, amount_total=amount, customer=customer, session_id=session_id)
            refund = fake.add_refund(session_id, amount // 2) if _refunded(n) else None
            dispute = fake.add_dispute(session_id, status="lost") if _disputed(n) else None
            ids[n] = (refund, dispute)
            assert topup.session == session_id
        pipe.send((fake.url, time.perf_counter() - started, ids))
        pipe.recv()  # stop


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _fetch(url: str, api_key: str, pipe: Connection) -> None:
    from reconcile.stripe_source import StripeApiSource  # noqa: PLC0415

    started = time.perf_counter()
    with StripeApiSource(api_key=api_key, api_base=url) as source:
        count = sum(1 for _session in source.sessions(SINCE, UNTIL))
        requests = source.requests_made
    pipe.send((time.perf_counter() - started, count, requests, _peak_rss_mib()))


def _reconcile(url: str, api_key: str, database_url: str, pipe: Connection) -> None:
    from reconcile.job import reconcile_window  # noqa: PLC0415
    from reconcile.stripe_source import StripeApiSource  # noqa: PLC0415

    with StripeApiSource(api_key=api_key, api_base=url) as source, Ledger.open(database_url, quiet=True) as ledger:
        started = time.perf_counter()
        result = reconcile_window(ledger, source, SINCE, UNTIL, fix=True, now=dt.datetime.now(dt.UTC))
        elapsed = time.perf_counter() - started
    pipe.send((elapsed, result.counts, result.fixed, len(result.findings), _peak_rss_mib()))


def _in_process(target: Any, *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, send))
    process.start()
    result = receive.recv()
    process.join(timeout=60)
    return result


def _drafts(ids: dict[int, tuple[str | None, str | None]]) -> list[Draft]:
    drafts = []
    for n in range(COUNT):
        session_id, customer, _created, amount = _session(n)
        drafts.append(card_topup_entry(session_id, customer, amount * 10_000, {"checkout_session": session_id}))
        refund, dispute = ids[n]
        if refund is not None:
            drafts.append(card_refund_entry(refund, customer, amount // 2 * 10_000, {"checkout_session": session_id}))
        if dispute is not None:
            taken = amount - (amount // 2 if refund is not None else 0)  # never more than what is left
            drafts.append(card_dispute_lost_entry(dispute, customer, taken * 10_000, {"checkout_session": session_id}))
    return drafts


def run() -> None:
    from reconcile.testing import DEFAULT_API_KEY  # noqa: PLC0415

    server = pg.session_server()
    database = pg.unique_name("bench_stripe")
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    fake = context.Process(target=_serve, args=(child,))
    fake.start()
    try:
        url, build_s, ids = parent.recv()
        database_url = server.create_database(database)
        try:
            with Ledger.open(database_url, quiet=True) as ledger:
                ledger.upgrade()
                drafts = _drafts(ids)
                started = time.perf_counter()
                for start in range(0, len(drafts), POST_BATCH):
                    ledger.post_many(drafts[start : start + POST_BATCH])
                post_s = time.perf_counter() - started
            fetch_s, fetched, requests, fetch_rss = _in_process(_fetch, url, DEFAULT_API_KEY)
            assert fetched == COUNT, fetched
            reconcile_s, counts, fixed, findings, reconcile_rss = _in_process(
                _reconcile, url, DEFAULT_API_KEY, database_url
            )
            assert counts["matched"] == COUNT and findings == COUNT and fixed == 0, counts
        finally:
            server.drop_database(database)
    finally:
        parent.send("stop")
        fake.join(timeout=30)
        server.stop()
    body = f"""
{COUNT:,} paid Checkout Sessions (1% refunded, 0.1% with a lost dispute) served by the loopback Stripe
in its own process, read through the real `stripe` library (`StripeClient.raw_request`, pages of 100
sessions with PaymentIntent, charge, balance transaction and refunds expanded: {requests:,} requests);
the ledger on PostgreSQL holds their {len(drafts):,} credits and reversals. Each measurement runs in a
fresh process; peak memory is that process's maximum resident set.

| measurement | time | sessions/s | peak memory |
|---|---:|---:|---:|
| fetch alone (Stripe → records) | {fetch_s:.1f} s | {fetched / fetch_s:,.0f} | {fetch_rss:,.0f} MiB |
| reconciliation (fetch, ledger, matching, run recorded; `--fix`) \
| {reconcile_s:.1f} s | {COUNT / reconcile_s:,.0f} | {reconcile_rss:,.0f} MiB |

Every session came out `matched`, so `--fix` posted nothing. Setting up took {build_s:.1f} s to build
the sessions in the fake and {post_s:.1f} s to post the ledger's {len(drafts):,} transactions
(`post_many`, batches of {POST_BATCH:,}). What the reconciliation adds to the fetch is the ledger side and
matching: one scan of the {len(drafts):,} card transactions, decoded with their evidence (the keys --fix
would post are then looked up only where the scan did not meet them: none here), and {COUNT:,}
findings built; it holds the sessions, the ledger's entries and the findings at once, hence its
peak. The fetch is bounded by the JSON the fake serves and the library parses (about 7 KB per
expanded session); building the library's `StripeObject`s as well cost 8× as much (367 sessions/s in
a probe of 3,000), hence `raw_request`.
"""
    write_section("stripe", "Stripe reconciliation", body)
    print(body)


if __name__ == "__main__":
    run()
