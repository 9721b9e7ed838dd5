"""The backfill survives what production does to it: SIGKILL at any point, rate limits and server
errors, a lagging node, a node that forgets `until`, and two workers on one PostgreSQL ledger.
Each run must end with the same ledger as one clean run (tests/backfill_support.fingerprint)."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.backfill_support import demo_chain, environment, fingerprint, json_lines, servers, start_treasury, treasury

PAGE = ("--page-limit", "20")
# The clones land after the bundled price series ends (2026-02-01): a year of accepted age prices them
# all at its last point, so that most deposits are credited and a crash has credits to break.
AGE = {"TREASURY_PRICE_MAX_AGE_S": "31536000"}
SYNTHESISED = 900  # clones of the recorded transactions: a few hundred deposits to the test wallets


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], float]:
    """The fingerprint of one clean backfill of the synthesised chain, and how long it took."""
    database = tmp_path_factory.mktemp("clean") / "ledger.db"
    with servers(demo_chain(SYNTHESISED)) as (rpc, coingecko):
        env = environment(rpc, coingecko, f"sqlite:///{database}", **AGE)
        started = time.monotonic()
        done = treasury("backfill", *PAGE, env=env)
        elapsed_s = time.monotonic() - started
        assert done.returncode == 0, done.stderr
    result = fingerprint(f"sqlite:///{database}")
    # The synthesised history really is there: hundreds of deposits and credits.
    assert len(result["deposits"]) > 250
    assert len(result["transactions"]) > 200
    return result, elapsed_s


def test_killed_at_random_points_then_resumed_gives_the_same_ledger(
    clean: tuple[dict[str, Any], float], tmp_path: Path
) -> None:
    expected, clean_s = clean
    rng = random.Random(20261203)
    with servers(demo_chain(SYNTHESISED)) as (rpc, coingecko):
        for run in range(20):
            database = tmp_path / f"run{run}.db"
            env = environment(rpc, coingecko, f"sqlite:///{database}", **AGE)
            process = start_treasury("backfill", *PAGE, env=env)
            time.sleep(rng.uniform(0.05, clean_s * 1.1))
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)  # reaps it and closes its pipes
            resumed = treasury("backfill", *PAGE, env=env)
            assert resumed.returncode == 0, f"run {run}: {resumed.stderr}"
            assert fingerprint(f"sqlite:///{database}") == expected, f"run {run} differs"
            verify = treasury("ledger", "verify", env=env)
            assert verify.returncode == 0, verify.stdout


def test_rate_limits_and_server_errors_give_the_same_ledger(
    clean: tuple[dict[str, Any], float], tmp_path: Path
) -> None:
    expected, _ = clean
    with servers(demo_chain(SYNTHESISED)) as (rpc, coingecko):
        rpc.faults.rate_limit(times=2, method="getTransaction", retry_after_s=1)
        rpc.faults.server_error(times=3, method="getSignaturesForAddress")
        rpc.faults.server_error(times=2, method="getTransaction", status=503)
        database = tmp_path / "faults.db"
        env = environment(rpc, coingecko, f"sqlite:///{database}", **AGE)
        started = time.monotonic()
        done = treasury("backfill", *PAGE, env=env)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started >= 2.0  # Retry-After: 1 s, twice, was honoured
        assert fingerprint(f"sqlite:///{database}") == expected


def test_lagging_node_leaves_no_gap_and_no_duplicate(clean: tuple[dict[str, Any], float], tmp_path: Path) -> None:
    expected, _ = clean
    chain = demo_chain(SYNTHESISED)
    slots = sorted(transaction.slot for transaction in chain.transactions())
    with servers(chain) as (rpc, coingecko):
        database = tmp_path / "lag.db"
        env = environment(rpc, coingecko, f"sqlite:///{database}", **AGE)
        rpc.faults.lag(slots[len(slots) // 2])  # the node knows only the older half of history
        first = treasury("backfill", *PAGE, "--format", "json", env=env)
        assert first.returncode == 0, first.stderr
        partial = fingerprint(f"sqlite:///{database}")
        assert 0 < len(partial["deposits"]) < len(expected["deposits"])
        rpc.faults.clear()
        second = treasury("backfill", *PAGE, env=env)
        assert second.returncode == 0, second.stderr
        assert fingerprint(f"sqlite:///{database}") == expected


def test_node_that_forgets_until_is_detected_and_nothing_is_taken_twice(tmp_path: Path) -> None:
    chain = demo_chain()
    with servers(chain) as (rpc, coingecko):
        database = tmp_path / "until.db"
        env = environment(rpc, coingecko, f"sqlite:///{database}", **AGE)
        assert treasury("backfill", *PAGE, env=env).returncode == 0
        before = fingerprint(f"sqlite:///{database}")
        # New history arrives; the node then answers forward polls as if `until` were absent.
        chain.synthesise(60, per_slot=2, seed="later")
        rpc.faults.forget_until()
        confused = treasury("backfill", *PAGE, "--format", "json", env=env)
        assert confused.returncode == 1
        [summary] = json_lines(confused.stdout)
        assert summary["complete"] is False
        assert any("until" in error for error in summary["errors"])
        assert fingerprint(f"sqlite:///{database}") == before  # the confused pages were discarded
        rpc.faults.clear()
        assert treasury("backfill", *PAGE, env=env).returncode == 0
        after = fingerprint(f"sqlite:///{database}")
    # The same as a clean run over the whole (extended) chain.
    fresh = tmp_path / "fresh.db"
    with servers(chain) as (rpc, coingecko):
        env = environment(rpc, coingecko, f"sqlite:///{fresh}", **AGE)
        assert treasury("backfill", *PAGE, env=env).returncode == 0
    assert after == fingerprint(f"sqlite:///{fresh}")
    assert len(after["deposits"]) > len(before["deposits"])


@pytest.mark.postgres
def test_two_backfills_at_once_on_postgresql_credit_each_deposit_once(
    clean: tuple[dict[str, Any], float], pg_url: str
) -> None:
    expected, _ = clean
    with servers(demo_chain(SYNTHESISED)) as (rpc, coingecko):
        env = environment(rpc, coingecko, pg_url, **AGE)
        first = start_treasury("backfill", *PAGE, env=env)
        second = start_treasury("backfill", *PAGE, env=env)
        outputs = [process.communicate(timeout=300) for process in (first, second)]
        assert first.returncode == 0, outputs[0][1]
        assert second.returncode == 0, outputs[1][1]
        assert fingerprint(pg_url) == expected
        verify = treasury("ledger", "verify", env=env)
        assert verify.returncode == 0, verify.stdout
