"""Chain reconciliation end to end: the demo's recorded mainnet transactions served by the loopback
replay node, a real backfill into SQLite or PostgreSQL, then `reconcile_chain` against the same node.

Balances in the expected figures are read from the recorded replies (meta.preBalances/postBalances and
the token balances of the account's index), e.g. 3h1zGm…: 24,252,840 -> 34,252,840 lamports in
5hJfaZ… (+0.01 SOL), 34,252,840 -> 34,247,840 in rhvqAx… (its 5,000-lamport fee), then 55,500,593
before and after 27wHYC… (a MAPS token inflow: no SOL moves). The recordings are samples of mainnet,
so between rhvqAx… and 27wHYC… 21,252,753 lamports arrived in transactions the replay node does not
have: a history gap, reported as a warning.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import delete, select, text
from structlog.testing import capture_logs

from indexer import demo, store
from indexer.proof import last_chain_run
from ledger_client import Ledger
from reconcile.chain import CHANGE_NOT_RECORDED, NOT_RECORDED, RECORDED_NOT_ON_CHAIN, Candidate, HistoryGap
from tests.backfill_support import json_lines, treasury
from tests.proof_support import (
    FEE_OUT,
    MAPS,
    MEMO_SOL,
    MEMO_SOL_WALLET,
    OLD_SOL,
    OLD_SOL_WALLET,
    SERUM,
    SERUM_WALLET,
    TREASURY_OSR,
    USDC_ACCOUNT,
    backfill,
    by_account,
    environment,
    fresh_ledger,
    osr_transaction,
    reconcile,
    servers,
    settings_for,
    signature_of,
)

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
OSR = "E2grvu8fyeeuVaxj2DrHVBqv8j21jK3vyJpXG8FJjJNc"
SERUM_USDC_ACCOUNT = "375DTPnEBUjCnvQpGQtg5nRQudwa6oXWEYB15X6MmJs6"  # created in the swap, owner from its init
DUST_USDC_ACCOUNT = "H51DXRt3ubThhdhNeDMScfkbC5X4AWzYfHaZS3JKEfPh"
FAILED_PAYER = "G8PrkEwmVx3kt3rXBin5o1bdDC1cvz7oBnXbHksNg7R4"  # fee payer of the failed Orca swap
FAILED_SWAP = "376DxeSPgG1ynjpGFLLx5xFTTkVmQ54MmUcTuopKyEQXWQCu9PRzUZ2EijYi4YZq4eAPpRDdoQHzy59bfuNndLX4"


def test_a_clean_history_reconciles_to_zero(ledger_url: str) -> None:
    with servers(demo.demo_chain()) as (rpc, coingecko):
        settings = settings_for(rpc, coingecko, ledger_url)
        with Ledger.open(ledger_url, quiet=True) as ledger:
            backfill(settings, ledger)
            result = reconcile(ledger, settings)
            run = last_chain_run(ledger)
    assert result.clean
    assert (result.differences, len(result.accounts)) == (0, 10)  # 7 wallets (SOL) and 3 USDC accounts
    accounts = by_account(result)
    figures = {
        key: (item.chain_transactions, item.chain_change_raw, item.inflows_raw, item.outflows_raw, item.fees_raw)
        for key, item in accounts.items()
    }
    assert figures[(MEMO_SOL_WALLET, "SOL")] == (1, 1_000_000, 1_000_000, 0, 0)  # 0 -> 1,000,000
    # +10,000,000 in 5hJfaZ…, −5,000 (the fee it paid) in rhvqAx…, 0 in 27wHYC… and in 5rbHnS… (no SOL moved).
    assert figures[(OLD_SOL_WALLET, "SOL")] == (4, 9_995_000, 10_000_000, 5_000, 0)
    # Its own Serum swap: 597,945,720 -> 472,533,680 lamports (rent of a new account, fees).
    assert figures[(SERUM_WALLET, "SOL")] == (1, -125_412_040, 0, 125_412_040, 0)
    assert figures[(USDC_ACCOUNT, USDC)] == (1, 3_800_000, 3_800_000, 0, 0)  # 11,200,000 -> 15,000,000
    assert figures[(SERUM_USDC_ACCOUNT, USDC)] == (1, 14_198_095, 14_198_095, 0, 0)  # new account: 0 -> 14,198,095
    assert figures[(DUST_USDC_ACCOUNT, USDC)] == (1, 1_000, 1_000, 0, 0)  # dust: recorded (ignored), reconciled
    assert figures[("B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M", "SOL")] == (0, 0, 0, 0, 0)
    old = accounts[(OLD_SOL_WALLET, "SOL")]
    # 55,500,593 − 34,247,840 = 21,252,753 missing from the recordings; the live balance (after
    # 5rbHnS…, whose reply was not kept: it moved nothing) is 52,397,767 = 55,500,593 − 3,102,826.
    assert old.gaps == (HistoryGap(FEE_OUT, MAPS, 21_252_753), HistoryGap(MAPS, None, -3_102_826))
    assert (old.opening_raw, old.closing_raw, old.live) == (24_252_840, 52_397_767, True)
    assert result.warnings == 2
    assert run is not None and run.id == result.run_id
    assert (run.clean, run.accounts, run.differences, run.warnings) == (True, 10, 0, 2)


def test_a_window_in_the_past_ends_at_its_last_transaction() -> None:
    # [2021-04-01, 2021-04-30): 3h1zGm… has 5hJfaZ… (2021-04-06) and rhvqAx… in it, nothing after: no
    # live balance, no gap.
    with servers(demo.demo_chain()) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        backfill(settings, ledger)
        with capture_logs() as logs:
            result = reconcile(
                ledger, settings, dt.datetime(2021, 4, 1, tzinfo=dt.UTC), dt.datetime(2021, 4, 30, tzinfo=dt.UTC)
            )
    # One line per account, one for the run: 7 wallets and the 2 discovered USDC accounts (375DTP…, known
    # only from its changes in September 2021, has none in this window).
    [line] = [entry for entry in logs if entry["event"] == "chain_reconciled"]
    assert (line["accounts"], line["differences"], line["warnings"]) == (9, 0, 0)
    assert sum(entry["event"] == "chain_account_reconciled" for entry in logs) == 9
    old = by_account(result)[(OLD_SOL_WALLET, "SOL")]
    assert (old.chain_transactions, old.opening_raw, old.closing_raw, old.gaps, old.live) == (
        2,
        24_252_840,
        34_247_840,
        (),
        False,
    )
    assert result.clean and result.warnings == 0
    assert by_account(result)[(MEMO_SOL_WALLET, "SOL")].chain_transactions == 0  # its deposit is in 2023


def test_deposits_hidden_from_the_scan_are_found_and_named() -> None:
    with servers(demo.demo_chain()) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        # The node leaves two deposits out of the one page that would hold each during the backfill.
        rpc.faults.hide_signature(MEMO_SOL)
        rpc.faults.hide_signature(OLD_SOL)
        backfill(settings, ledger)
        recorded = ledger.read(lambda uow: {row.signature for row in store.list_deposits(uow.connection)})
        assert MEMO_SOL not in recorded and OLD_SOL not in recorded
        result = reconcile(ledger, settings)
    assert result.differences == 2
    accounts = by_account(result)
    memo = accounts[(MEMO_SOL_WALLET, "SOL")]
    # 2023-03-30 (slot 185471096, block time 1680146043 in the reply): 0 -> 1,000,000 lamports, fetched now.
    assert memo.difference_raw == 1_000_000
    assert memo.candidates == (Candidate(MEMO_SOL, 185_471_096, 1_680_146_043, NOT_RECORDED, 1_000_000, 0),)
    old = accounts[(OLD_SOL_WALLET, "SOL")]
    assert old.difference_raw == 10_000_000  # 24,252,840 -> 34,252,840
    assert [(c.signature, c.reason, c.chain_change_raw) for c in old.candidates] == [
        (OLD_SOL, NOT_RECORDED, 10_000_000)
    ]
    assert all(item.clean for key, item in accounts.items() if key[0] not in (MEMO_SOL_WALLET, OLD_SOL_WALLET))


def test_an_outflow_never_recorded_is_named() -> None:
    with servers(demo.demo_chain()) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        rpc.faults.hide_signature(FEE_OUT)
        backfill(settings, ledger)
        result = reconcile(ledger, settings)
    old = by_account(result)[(OLD_SOL_WALLET, "SOL")]
    assert old.difference_raw == -5_000  # 34,252,840 -> 34,247,840: the fee 3h1zGm… paid
    assert [(c.signature, c.reason, c.chain_change_raw, c.recorded_change_raw) for c in old.candidates] == [
        (FEE_OUT, NOT_RECORDED, -5_000, 0)
    ]
    assert result.differences == 1


def test_an_outflow_lost_from_the_tables_is_named() -> None:
    with servers(demo.demo_chain()) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        backfill(settings, ledger)
        # The swap's SOL outflow row is deleted by hand; the transaction and its reply stay.
        ledger.run(
            lambda uow: uow.connection.execute(delete(store.outflows).where(store.outflows.c.signature == SERUM))
        )
        result = reconcile(ledger, settings)
    serum = by_account(result)[(SERUM_WALLET, "SOL")]
    assert (serum.difference_raw, serum.outflows_raw) == (-125_412_040, 0)
    assert serum.candidates == (
        Candidate(SERUM, 94_882_851, 1_630_753_387, CHANGE_NOT_RECORDED, -125_412_040, 0),  # slot, time of the reply
    )


def test_the_fee_of_a_failed_transaction_paid_by_a_treasury_wallet_is_accounted_for() -> None:
    # The failed Orca swap (slot 83929593) took its 15,000-lamport fee from G8Prk…: 42,147,962 -> 42,132,962.
    with servers(demo.demo_chain()) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url, TREASURY_WALLETS=",".join((*demo.WALLETS, FAILED_PAYER)))
        backfill(settings, ledger)
        stored = ledger.read(
            lambda uow: uow.connection.execute(
                select(store.transactions.c.failed, store.transactions.c.fee_lamports, store.transactions.c.raw).where(
                    store.transactions.c.signature == FAILED_SWAP
                )
            ).one()
        )
        assert tuple(stored) == (True, 15_000, None)  # recorded as failed, no reply kept, no outflow
        result = reconcile(ledger, settings)
    payer = by_account(result)[(FAILED_PAYER, "SOL")]
    assert (payer.fees_raw, payer.recorded_change_raw, payer.chain_change_raw, payer.difference_raw) == (
        15_000,
        -15_000,
        -15_000,
        0,
    )
    assert (payer.opening_raw, payer.closing_raw, payer.gaps) == (42_147_962, 42_132_962, ())
    assert result.clean


def test_a_recorded_deposit_whose_fork_was_dropped_is_named() -> None:
    # An OSR deposit (derived from the recorded USDC transfer) is seen at confirmed and recorded, then
    # its fork is abandoned: the chain no longer lists it, the indexer still holds its inflow.
    chain = demo.demo_chain()
    deposit = osr_transaction(1, kind="deposit", amount_raw=10_000 * 10**9, treasury_before_raw=0)
    chain.add(deposit, commitment="confirmed")
    with servers(chain) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        backfill(settings, ledger, commitment="confirmed")
        chain.drop(signature_of(deposit))
        result = reconcile(ledger, settings)
    osr = by_account(result)[(TREASURY_OSR, OSR)]
    assert osr.difference_raw == -10_000 * 10**9
    assert [(c.signature, c.reason, c.chain_change_raw, c.recorded_change_raw) for c in osr.candidates] == [
        (signature_of(deposit), RECORDED_NOT_ON_CHAIN, 0, 10_000 * 10**9)
    ]


def test_the_command_exits_0_clean_1_with_differences_and_2_on_bad_usage(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with servers(demo.demo_chain()) as (rpc, coingecko):
        settings = settings_for(rpc, coingecko, url)
        rpc.faults.hide_signature(MEMO_SOL)
        with Ledger.open(url, quiet=True) as ledger:
            ledger.ensure_schema()
            backfill(settings, ledger)
        env = environment(settings)
        window = ["--since", "2020-01-01", "--until", "2027-01-01"]
        done = treasury("reconcile", "chain", *window, "--format", "json", env=env)
        assert done.returncode == 1, done.stderr
        [record] = json_lines(done.stdout)
        assert (record["clean"], record["differences"], record["accounts_total"]) == (False, 1, 10)
        [memo] = [item for item in record["accounts"] if item["status"] != "ok"]
        assert (memo["account"], memo["difference_raw"], memo["difference"]) == (MEMO_SOL_WALLET, "1000000", "0.001")
        assert memo["candidates"][0]["signature"] == MEMO_SOL
        assert MEMO_SOL_WALLET in done.stderr and done.stderr.count("\n") == 1
        table = treasury("reconcile", "chain", "--since", "2023-03-01", "--until", "2023-04-01", env=env)
        assert table.returncode == 1
        assert f"not_recorded {MEMO_SOL}" in table.stdout
        # A window without the hidden deposit is clean.
        clean = treasury("reconcile", "chain", "--since", "2021-04-01", "--until", "2021-05-01", env=env)
        assert clean.returncode == 0, clean.stderr
        assert "0 with differences" in clean.stdout
        runs = treasury("reconcile", "chain", "--since", "2021-05-01", "--until", "2021-04-01", env=env)
        assert runs.returncode == 2 and "is not after --since" in runs.stderr
        bad = treasury("reconcile", "chain", "--since", "yesterday", "--until", "2021-04-01", env=env)
        assert bad.returncode == 2 and "--since" in bad.stderr and bad.stderr.count("\n") == 1
        # A node that refuses the history (HTTP 410): the work failed, exit 1, one line, no run recorded.
        rpc.faults.disable("getSignaturesForAddress")
        refused = treasury("reconcile", "chain", *window, env=env)
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr.startswith(f"treasury: reconcile chain: the chain at {rpc.rpc_url}")
        assert refused.stderr.count("\n") == 1
    # Bad usage writes nothing: the two failing commands recorded no run; three runs were recorded.
    with Ledger.open(url, quiet=True) as ledger:
        count = ledger.read(
            lambda uow: uow.connection.execute(text("SELECT count(*) FROM reconcile_chain_runs")).scalar()
        )
        assert count == 3
        run = last_chain_run(ledger)
        assert run is not None and run.clean
        assert json.loads(json.dumps(run.report))["accounts"] == []  # a clean run stores no account detail


def test_bad_usage_creates_no_database(tmp_path: Any) -> None:
    database = tmp_path / "none.db"
    env = {"TREASURY_DATABASE_URL": f"sqlite:///{database}", "PATH": "/usr/bin:/bin"}
    done = treasury("reconcile", "chain", "--since", "2026-01-02", "--until", "2026-01-01", env=env)
    assert done.returncode == 2
    assert not database.exists()
