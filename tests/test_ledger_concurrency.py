"""Exactly-once under real concurrency on PostgreSQL: 8 processes (not threads), killed connections,
real deadlocks. Workers are module-level functions so that `spawn` children can import them.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.synchronize import Barrier
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, text

from ledger_client import Ledger, PostResult, UnitOfWork
from ledger_client.schema import postings_table, transactions_table
from tests.ledger_data import topup, usdc_deposit

pytestmark = pytest.mark.postgres

PROCESSES = 8
KEYS_PER_PROCESS = 1_000
BATCH = 25
CUSTOMERS = 16
JOIN_TIMEOUT_S = 300


def _same_key_worker(url: str, barrier: Barrier, results: Any) -> None:
    with Ledger.open(url) as ledger:
        draft = usdc_deposit("contested", "agt_racer", 5_000_000)  # built the same way in every process
        ledger.engine.connect().close()  # connect before the barrier: the race is on the insert
        barrier.wait(timeout=60)
        result = ledger.post(draft)
        results.put((result.transaction_id, result.created))


def _amount(key_number: int) -> int:
    return 1_000_000 + key_number


def _many_keys_worker(url: str, worker: int, barrier: Barrier, results: Any) -> None:
    """Posts its 1,000 keys in batches of 25, interleaved with re-posts of its neighbour's keys and its own."""
    created = existed = 0
    with Ledger.open(url) as ledger:
        barrier.wait(timeout=60)
        neighbour = (worker + 1) % PROCESSES
        for start in range(0, KEYS_PER_PROCESS, BATCH):
            numbers = [worker * KEYS_PER_PROCESS + j for j in range(start, start + BATCH)]
            if start % (4 * BATCH) == 0:
                # Duplicates sprinkled in: 3 of the neighbour's keys (maybe not posted yet) and 2 of ours.
                numbers += [neighbour * KEYS_PER_PROCESS + j for j in range(start, start + 3)]
                numbers += [worker * KEYS_PER_PROCESS + j for j in range(max(0, start - 2), start)]
            drafts = [topup(f"k{k}", f"agt_c{k % CUSTOMERS}", _amount(k)) for k in numbers]
            for result in ledger.post_many(drafts):
                created += result.created
                existed += not result.created
    results.put((worker, created, existed))


def _run_processes(targets: list[tuple[Any, ...]], *, function: Any) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=function, args=args) for args in targets]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=JOIN_TIMEOUT_S)
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(timeout=10)
    assert [process.exitcode for process in processes] == [0] * len(processes)


def test_eight_processes_posting_one_key_through_a_barrier_make_one_transaction(pg_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    _run_processes([(pg_url, barrier, results) for _ in range(PROCESSES)], function=_same_key_worker)
    outcomes = [results.get(timeout=10) for _ in range(PROCESSES)]
    assert len({transaction_id for transaction_id, _ in outcomes}) == 1  # all 8 got the same id
    assert sum(created for _, created in outcomes) == 1  # exactly one created it
    with Ledger.open(pg_url) as ledger:
        assert ledger.balance("agt_racer") == 5_000_000  # credited once: 5 USDC
        assert ledger.read(_count_transactions) == 1
        assert ledger.verify() == []


def test_eight_processes_posting_a_thousand_keys_each_with_duplicates_count_exactly(pg_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    _run_processes([(pg_url, worker, barrier, results) for worker in range(PROCESSES)], function=_many_keys_worker)
    outcomes = [results.get(timeout=10) for _ in range(PROCESSES)]
    created = sum(c for _, c, _ in outcomes)
    existed = sum(e for _, _, e in outcomes)
    # Each worker posts 40 batches of 25 own keys = 1,000, and in every 4th batch (10 of them) 3
    # neighbour keys plus 2 of its own earlier keys (none before its first batch): 10 × 3 + 9 × 2 = 48.
    assert created + existed == PROCESSES * (KEYS_PER_PROCESS + 48)
    assert created == PROCESSES * KEYS_PER_PROCESS  # 8,000 distinct keys, each created exactly once
    with Ledger.open(pg_url) as ledger:
        assert ledger.read(_count_transactions) == 8_000
        assert ledger.read(_count_postings) == 16_000  # two legs each
        # Customer c holds keys k = c + 16m, m = 0..499 (8,000 / 16 = 500), each 1,000,000 + k micro-USD:
        # 500 × 1,000,000 + 16 × (0 + … + 499) + 500c = 500,000,000 + 16 × 124,750 + 500c
        # = 501,996,000 + 500c.
        for customer in range(CUSTOMERS):
            assert ledger.balance(f"agt_c{customer}") == 501_996_000 + 500 * customer
        # Stripe clearing holds the total: 16 × 501,996,000 + 500 × (0 + … + 15) = 8,031,936,000 + 60,000.
        assert ledger.balance("stripe:clearing") == 8_031_996_000
        assert ledger.verify() == []


def test_a_connection_killed_mid_transaction_leaves_nothing_and_the_retry_lands_once(
    pg_url: str, pg_server: Any
) -> None:
    seen_before_attempt: list[bool] = []
    terminated: list[int] = []
    draft = usdc_deposit("killed", "agt_survivor", 7_500_000)

    def post_then_lose_the_connection(uow: UnitOfWork) -> PostResult:
        # What a fresh attempt sees before it posts: the earlier attempt left no trace.
        seen_before_attempt.append(uow.transaction_by_key(draft.key) is not None)
        result = uow.post(draft)
        if not terminated:
            backend = uow.connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with psycopg.connect(pg_url, autocommit=True) as other_session:
                other_session.execute("SELECT pg_terminate_backend(%s)", (backend,))
            terminated.append(backend)
            uow.connection.execute(text("SELECT 1"))  # the server is gone: this raises
        return result

    with Ledger.open(pg_url) as ledger:
        result = ledger.run(post_then_lose_the_connection)
        assert result.created  # the first attempt never committed
        assert seen_before_attempt == [False, False]  # two attempts, and the second found nothing
        assert len(terminated) == 1
        assert ledger.read(_count_transactions) == 1
        assert ledger.read(_count_postings) == 4  # treasury:USDC, conversion:USDC ×2, customer
        assert ledger.balance("agt_survivor") == 7_500_000
        assert ledger.post(draft) == PostResult(result.transaction_id, False)
        assert ledger.verify() == []


def test_a_real_deadlock_is_retried_until_both_transactions_land(pg_url: str) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    attempts = {"a": 0, "b": 0}

    def locking(first: str, second: str, name: str) -> Any:
        def fn(uow: UnitOfWork) -> PostResult:
            attempts[name] += 1
            # Locks taken by hand in crossed orders (lock_names would sort them and never deadlock).
            uow.connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": first})
            if attempts[name] == 1:
                barrier.wait(timeout=30)  # both hold their first lock: each now waits for the other's
            uow.connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": second})
            return uow.post(topup(f"deadlock_{name}", "agt_deadlock", 1_000_000))

        return fn

    with Ledger.open(pg_url) as ledger:

        def run(name: str, first: str, second: str) -> None:
            try:
                ledger.run(locking(first, second, name))
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=("a", "x", "y")),
            threading.Thread(target=run, args=("b", "y", "x")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert sorted(attempts.values()) == [1, 2]  # PostgreSQL aborted one of them; it was retried
        assert ledger.balance("agt_deadlock") == 2_000_000


def _count_transactions(uow: UnitOfWork) -> int:
    return int(uow.connection.execute(select(func.count()).select_from(transactions_table)).scalar_one())


def _count_postings(uow: UnitOfWork) -> int:
    return int(uow.connection.execute(select(func.count()).select_from(postings_table)).scalar_one())
