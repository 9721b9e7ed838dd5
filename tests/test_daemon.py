"""`treasury run` against the loopback replay node (HTTP + websocket): live deposits, websocket
failures, SIGTERM, two daemons on one PostgreSQL ledger, health and metrics, `treasury status`.

The live deposits are clones (fresh signatures) of the recorded 3.8 USDC mainnet deposit to
B2v68t… (3,800,000 base units, stable 1:1 -> 3.800000 credits held in suspense: its sender is not
linked), so every expected figure is the recorded one.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from indexer.replay import ReplayChain
from tests.backfill_support import demo_chain, environment, fingerprint, servers, treasury
from tests.daemon_support import (
    credit_count,
    daemon_environment,
    deposit_status,
    running,
    wait_for,
)

USDC_TEMPLATE = "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX"
USDC_ACCOUNT = "Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv"


def live_usdc(chain: ReplayChain, count: int = 1, *, commitment: str = "confirmed", seed: str = "live") -> list[str]:
    [template] = [t for t in chain.transactions() if t.signature == USDC_TEMPLATE]
    return chain.synthesise(count, templates=[template], commitment=commitment, notify=True, seed=seed)


def credited(url: str, signature: str) -> bool:
    return deposit_status(url, signature) == [("suspense", "3800000")]


def test_live_deposit_is_seen_pending_then_credited_once_when_final(tmp_path: Path) -> None:
    chain = demo_chain()
    with servers(chain) as (rpc, coingecko):
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        env, port = daemon_environment(environment(rpc, coingecko, url, TREASURY_WS_URL=rpc.ws_url))
        with running(env, port) as daemon:
            # The first poll is the backfill: the recorded 3.8 USDC deposit is credited.
            wait_for(lambda: credited(url, USDC_TEMPLATE), 60, "the catch-up")
            [signature] = live_usdc(chain)
            # Seen through the websocket at confirmed: pending (the poller reads finalized history only).
            wait_for(lambda: deposit_status(url, signature) == [("pending", None)], 30, "the live deposit, pending")
            chain.finalize(signature)
            chain.advance_slot(2, finalize=True)
            wait_for(lambda: credited(url, signature), 30, "the live deposit, credited")
            assert credit_count(url, f"sol:{signature}:") == 1
            assert daemon.metric("treasury_deposits_credited_total", asset="USDC") >= 2
            assert daemon.metric("treasury_credited_usd_micros_total", asset="USDC") >= 7_600_000
            status, health = daemon.healthz()
            assert status == 200
            assert health["checks"] == {"database": True, "rpc": True, "websocket": True, "lag": True}
            assert daemon.metric("treasury_scheduler_leader") == 1
            # Read-only commands work while the daemon writes, on SQLite too.
            done = treasury("status", "--format", "json", env=env)
            assert done.returncode == 0, done.stderr
            record = json.loads(done.stdout)
            assert record["deposits"]["suspense"] >= 3
            assert record["scheduler"]["holder"].startswith("daemon-")
            assert {item["address"] for item in record["addresses"]} >= {USDC_ACCOUNT}
            assert treasury("deposits", "list", "--format", "jsonl", env=env).returncode == 0
            assert daemon.terminate() == 0
        assert "daemon_stopped" in daemon.stderr


@pytest.mark.parametrize("fault", ["dropped", "silent", "refused"])
def test_websocket_failures_still_credit_once_through_the_poller(tmp_path: Path, fault: str) -> None:
    chain = demo_chain()
    with servers(chain) as (rpc, coingecko):
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        env, port = daemon_environment(
            environment(rpc, coingecko, url, TREASURY_WS_URL=rpc.ws_url), TREASURY_WS_SILENCE_S="2"
        )
        with running(env, port) as daemon:
            wait_for(lambda: credited(url, USDC_TEMPLATE), 60, "the catch-up")
            if fault == "dropped":
                rpc.faults.ws_refuse(seconds=4)  # and it cannot come back at once
                rpc.faults.ws_close_abruptly()  # close 1006: no close frame
            elif fault == "silent":
                rpc.faults.ws_silence(True)
            else:
                rpc.faults.ws_refuse(seconds=6)
                rpc.faults.ws_close_abruptly()
            wait_for(lambda: daemon.healthz()[0] == 503, 20, "/healthz to report the dead websocket")
            # While the socket is gone, a deposit lands and finalizes: no notification reaches the daemon.
            [signature] = live_usdc(chain, commitment="finalized", seed=f"during-{fault}")
            chain.advance_slot(2, finalize=True)
            wait_for(lambda: credited(url, signature), 40, "the poller to credit it")
            if fault == "silent":
                rpc.faults.ws_silence(False)
            wait_for(lambda: daemon.metric("treasury_websocket_reconnects_total") >= 1, 30, "a reconnect")
            wait_for(lambda: daemon.healthz()[0] == 200, 40, "the daemon to be healthy again")
            assert credit_count(url, f"sol:{signature}:") == 1
            assert daemon.terminate() == 0


def test_never_finalized_deposit_is_dropped(tmp_path: Path) -> None:
    chain = demo_chain()
    with servers(chain) as (rpc, coingecko):
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        env, port = daemon_environment(
            environment(rpc, coingecko, url, TREASURY_WS_URL=rpc.ws_url), TREASURY_DROP_AFTER_SLOTS="5"
        )
        with running(env, port) as daemon:
            [signature] = live_usdc(chain)
            wait_for(lambda: deposit_status(url, signature) == [("pending", None)], 30, "the live deposit, pending")
            chain.drop(signature)  # its fork was abandoned
            chain.advance_slot(10)
            wait_for(lambda: deposit_status(url, signature) == [("dropped", None)], 30, "the deposit to be dropped")
            assert credit_count(url, f"sol:{signature}:") == 0
            assert daemon.metric("treasury_deposits_dropped_total") == 1
            assert daemon.terminate() == 0


def _reference(chain: ReplayChain, tmp_path: Path, name: str) -> dict[str, Any]:
    """The ledger one clean backfill of the chain gives."""
    database = tmp_path / f"{name}.db"
    with servers(chain) as (rpc, coingecko):
        env = environment(rpc, coingecko, f"sqlite:///{database}", TREASURY_PRICE_MAX_AGE_S="31536000")
        done = treasury("backfill", env=env)
        assert done.returncode == 0, done.stderr
    return fingerprint(f"sqlite:///{database}")


def test_sigterm_while_crediting_then_restart_credits_exactly_once(tmp_path: Path) -> None:
    chain = demo_chain()
    with servers(chain) as (rpc, coingecko):
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        env, port = daemon_environment(environment(rpc, coingecko, url, TREASURY_WS_URL=rpc.ws_url))
        with running(env, port) as daemon:
            wait_for(lambda: credited(url, USDC_TEMPLATE), 60, "the catch-up")
            before = credit_count(url, "sol:")
            signatures = live_usdc(chain, 400, commitment="finalized", seed="burst")
            chain.advance_slot(2, finalize=True)
            wait_for(lambda: credit_count(url, "sol:") > before + 20, 60, "crediting of the burst to start")
            assert daemon.terminate() == 0  # mid-way through the burst
            assert "daemon_stopped" in daemon.stderr
        partial = credit_count(url, "sol:")
        with running(env, port) as daemon:
            wait_for(lambda: all(credited(url, s) for s in signatures), 120, "the rest after the restart")
            assert daemon.terminate() == 0
    assert before < partial <= before + 400
    assert credit_count(url, "sol:") == before + 400
    assert fingerprint(url) == _reference(chain, tmp_path, "reference")


@pytest.mark.postgres
def test_two_daemons_on_one_postgresql_ledger(tmp_path: Path, pg_url: str) -> None:
    chain = demo_chain()
    with servers(chain) as (rpc, coingecko):
        base = environment(rpc, coingecko, pg_url, TREASURY_WS_URL=rpc.ws_url)
        env_a, port_a = daemon_environment(base)
        env_b, port_b = daemon_environment(base)
        with running(env_a, port_a) as first, running(env_b, port_b) as second:
            signatures = live_usdc(chain, 200, commitment="confirmed", seed="pair")
            time.sleep(2)  # both see them live, at confirmed
            for signature in signatures:
                chain.finalize(signature)
            chain.advance_slot(2, finalize=True)
            wait_for(lambda: all(credited(pg_url, s) for s in signatures), 120, "every live credit")
            leaders = [first.metric("treasury_scheduler_leader"), second.metric("treasury_scheduler_leader")]
            assert sorted(leaders) == [0, 1]  # exactly one runs the scheduled jobs
            assert first.terminate() == 0
            assert second.terminate() == 0
    assert fingerprint(pg_url) == _reference(chain, tmp_path, "reference")


def test_an_hour_of_traffic_compressed_with_faults_ends_in_the_expected_ledger(tmp_path: Path) -> None:
    """An hour of chain time replayed in about a minute: deposits arrive at confirmed and finalize a
    little later, while the node rate-limits, fails, slows down and the websocket is cut and silenced.
    The ledger must end exactly as a clean backfill of the same history builds it."""
    chain = demo_chain()
    templates = [t for t in chain.transactions() if t.err is None]
    rng = random.Random(6)
    with servers(chain) as (rpc, coingecko):
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        env, port = daemon_environment(
            environment(rpc, coingecko, url, TREASURY_WS_URL=rpc.ws_url), TREASURY_WS_SILENCE_S="3"
        )
        with running(env, port) as daemon:
            waiting: list[str] = []
            for tick in range(120):  # 120 ticks × 0.5 s; each tick is 30 s of chain time
                fresh = chain.synthesise(
                    rng.randint(1, 4), templates=templates, commitment="confirmed", notify=True, seed=f"hour-{tick}"
                )
                waiting += fresh
                while len(waiting) > 6:  # finalized a few ticks after they land
                    chain.finalize(waiting.pop(0))
                chain.advance_slot(75, finalize=False)
                fault = rng.randrange(12)
                if fault == 0:
                    rpc.faults.rate_limit(times=2, retry_after_s=1)
                elif fault == 1:
                    rpc.faults.server_error(times=2)
                elif fault == 2:
                    rpc.faults.ws_close_abruptly()
                elif fault == 3:
                    rpc.faults.slow(0.5, times=3)
                elif fault == 4 and tick < 100:
                    rpc.faults.ws_silence(True)
                elif fault == 5:
                    rpc.faults.ws_silence(False)
                time.sleep(0.5)
            rpc.faults.clear()
            rpc.faults.ws_silence(False)
            for signature in waiting:
                chain.finalize(signature)
            chain.advance_slot(2, finalize=True)
            expected = _reference(chain, tmp_path, "reference")
            wait_for(lambda: fingerprint(url)["transactions"] == expected["transactions"], 180, "the expected ledger")
            wait_for(lambda: fingerprint(url) == expected, 60, "every deposit in its final state")
            assert daemon.metric("treasury_websocket_reconnects_total") >= 1
            assert daemon.terminate() == 0
    verify = treasury("ledger", "verify", env=env)
    assert verify.returncode == 0, verify.stdout
