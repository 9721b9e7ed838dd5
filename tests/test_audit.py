"""`treasury audit`: every crypto credit re-derived from its stored evidence and compared with the ledger.

The demo's backfill credits three deposits (prices from the bundled CoinGecko daily export):
- 5QMfuq… 0.001 SOL × 21.13233391276909 = 0.02113233… -> 21,132 micro-USD to agt_demo_alice (linked sender);
- 5hJfaZ… 0.01 SOL × 22.942985835974703 = 0.22942985… -> 229,429 micro-USD held in suspense;
- 4LXpF3… 3.8 USDC × 1 -> 3,800,000 micro-USD held in suspense.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from structlog.testing import capture_logs

from indexer import demo
from indexer.proof import audit, last_audit, proof_status
from ledger_client import Ledger, deposit_key
from tests.backfill_support import json_lines, treasury
from tests.proof_support import (
    EVERYTHING,
    MEMO_SOL,
    MEMO_SOL_WALLET,
    NOW,
    OLD_SOL,
    OLD_SOL_WALLET,
    OSR_MINT,
    TREASURY_OSR,
    USDC_3_8,
    USDC_ACCOUNT,
    backfill,
    environment,
    fresh_ledger,
    osr_transaction,
    servers,
    settings_for,
    signature_of,
)

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
MEMO_KEY = deposit_key(MEMO_SOL, MEMO_SOL_WALLET, "SOL")
OLD_KEY = deposit_key(OLD_SOL, OLD_SOL_WALLET, "SOL")
USDC_KEY = deposit_key(USDC_3_8, USDC_ACCOUNT, USDC)


def run_audit(
    ledger: Ledger, settings: Any, since: dt.datetime = EVERYTHING[0], until: dt.datetime = EVERYTHING[1]
) -> Any:
    return audit(ledger, since, until, settings=settings, now=NOW)


def fields(result: Any) -> list[tuple[str, str, str, str]]:
    return [(item.deposit, item.field, item.evidence, item.ledger) for item in result.differences]


def test_a_correct_ledger_audits_clean(ledger_url: str) -> None:
    with servers(demo.demo_chain()) as (rpc, coingecko):
        settings = settings_for(rpc, coingecko, ledger_url)
        with Ledger.open(ledger_url, quiet=True) as ledger:
            backfill(settings, ledger)
            # The operator assigns the USDC hold: the assignment is audited too (3.800000 out of suspense).
            ledger.assign_suspense(USDC_KEY, "agt_demo_carol", actor="test", reason="claim checked")
            with capture_logs() as logs:
                result = run_audit(ledger, settings)
            record = last_audit(ledger)
            status = proof_status(ledger)
    assert result.clean
    [line] = [entry for entry in logs if entry["event"] == "audit_done"]
    assert (line["credits"], line["assignments"], line["differences"]) == (3, 1, 0)
    assert status["audit"] == {
        "since": "2020-01-01T00:00:00+00:00",
        "until": "2027-01-01T00:00:00+00:00",
        "finished_at": "2026-12-03T00:00:00+00:00",
        "credits": 3,
        "differences": 0,
        "clean": True,
    }
    assert status["chain"] is None  # no chain reconciliation ran
    assert (result.credits, result.assignments, result.differences) == (3, 1, ())
    assert record is not None and (record.id, record.credits, record.differences) == (result.run_id, 3, 0)


def test_a_credit_edited_by_hand_is_caught() -> None:
    with servers(demo.demo_chain()) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        backfill(settings, ledger)
        credit = ledger.transaction_by_key(MEMO_KEY)
        assert credit is not None
        # 1,000 micro-USD more to the customer, balanced by the conversion leg (so it still sums to 0).
        ledger.run(
            lambda uow: uow.connection.execute(
                text(
                    "UPDATE ledger_postings SET amount = amount + :delta "
                    "WHERE transaction_id = :id AND currency = 'USD' AND account = :account"
                ),
                [
                    {"delta": -1_000, "id": credit.id, "account": "agt_demo_alice"},
                    {"delta": 1_000, "id": credit.id, "account": "conversion:SOL"},
                ],
            )
        )
        result = run_audit(ledger, settings)
    # Postings are signed (debit +, credit −): the customer's credit is −0.021132 by the evidence.
    assert fields(result) == [
        (MEMO_KEY, "posting agt_demo_alice USD", "-0.021132", "-0.022132"),
        (MEMO_KEY, "posting conversion:SOL USD", "0.021132", "0.022132"),
    ]
    assert result.differences[0].deposit_id == 1 and result.differences[0].signature == MEMO_SOL
    assert (result.credits, result.differences_total, result.deposits_with_differences) == (3, 2, 1)


def test_the_command_lists_every_difference_and_exits_1(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with servers(demo.demo_chain()) as (rpc, coingecko):
        settings = settings_for(rpc, coingecko, url)
        with Ledger.open(url, quiet=True) as ledger:
            ledger.ensure_schema()
            backfill(settings, ledger)
        env = environment(settings)
        window = ["--since", "2020-01-01", "--until", "2027-01-01"]
        clean = treasury("audit", *window, env=env)
        assert clean.returncode == 0, clean.stderr
        assert "3 credit(s) and 0 assignment(s) audited, 0 difference(s)" in clean.stdout
        with Ledger.open(url, quiet=True) as ledger:
            ledger.run(
                lambda uow: uow.connection.execute(
                    text(
                        "UPDATE ledger_postings SET amount = 229430 WHERE account = 'conversion:SOL' AND amount = 229429"
                    )
                )
            )
        done = treasury("audit", *window, "--format", "json", env=env)
        assert done.returncode == 1
        [record] = json_lines(done.stdout)
        assert (record["clean"], record["credits"], record["differences_total"]) == (False, 3, 1)
        [difference] = record["differences"]
        assert (difference["deposit"], difference["field"], difference["evidence"], difference["ledger"]) == (
            OLD_KEY,
            "posting conversion:SOL USD",
            "0.229429",
            "0.229430",
        )
        assert OLD_KEY in done.stderr and done.stderr.count("\n") == 1
        table = treasury("audit", *window, env=env)
        assert table.returncode == 1
        assert "posting conversion:SOL USD" in table.stdout and "0.229430" in table.stdout
        inverted = treasury("audit", "--since", "2027-01-01", "--until", "2020-01-01", env=env)
        assert inverted.returncode == 2 and "is not after --since" in inverted.stderr
        bad = treasury("audit", "--since", "2020-13-01", "--until", "2027-01-01", env=env)
        assert bad.returncode == 2 and "--since" in bad.stderr


def test_an_edited_quote_or_deposit_row_and_a_missing_credit_are_caught() -> None:
    with servers(demo.demo_chain()) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        backfill(settings, ledger)

        def tamper(uow: Any) -> None:
            connection = uow.connection
            # The stored quote of the 0.001 SOL credit now says 31.13233391276909 USD per SOL.
            connection.execute(
                text(
                    "UPDATE ledger_transactions SET evidence = replace(evidence, :old, :new) WHERE idempotency_key = :key"
                ),
                {"old": '"price_usd":"21.13233391276909"', "new": '"price_usd":"31.13233391276909"', "key": MEMO_KEY},
            )
            # The deposits table says the 0.01 SOL deposit gave 229,430 micro-USD.
            connection.execute(text("UPDATE deposits SET credits_micros = 229430 WHERE signature = :s"), {"s": OLD_SOL})
            # A deposit waiting for a price is marked credited by hand, with no ledger credit.
            connection.execute(
                text(
                    "UPDATE deposits SET status = 'credited', credits_micros = 8400000 WHERE status = 'pending_price' AND memo IS NOT NULL"
                )
            )

        ledger.run(tamper)
        result = run_audit(ledger, settings)
    found = fields(result)
    # 0.001 SOL × 31.13233391276909 = 0.03113233… -> 31,132 micro-USD by the (edited) evidence.
    assert (MEMO_KEY, "posting agt_demo_alice USD", "-0.031132", "-0.021132") in found
    assert (MEMO_KEY, "evidence credit.credits_micros", "0.031132", "0.021132") in found
    assert (OLD_KEY, "deposit row credits_micros", "0.229429", "0.229430") in found
    [missing] = [item for item in result.differences if item.field == "credit"]
    assert (missing.evidence, missing.ledger) == ("credited: 8.400000", "none")
    assert (
        missing.signature == "2E9Ddokz6HZkn457gAhd7uaUYnWtgUuRQaGGKFb2xDtYY3Mxn81DaXPMKfLLmcWMUAEQwZG1WF6mfcXMKr2yBqZU"
    )


def test_the_current_rules_are_applied() -> None:
    # With a SOL dust threshold of 2,000,000 lamports, today's rules would not credit the 1,000,000-lamport
    # deposit: the audit says so.
    with servers(demo.demo_chain()) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        backfill(settings_for(rpc, coingecko, url), ledger)
        stricter = settings_for(rpc, coingecko, url, TREASURY_DUST="SOL=2000000")
        result = run_audit(ledger, stricter)
    assert fields(result) == [(MEMO_KEY, "status", "ignored (dust)", "crypto_deposit")]


def test_an_osr_credit_is_rederived_with_the_bonus_and_burn_share_of_its_evidence() -> None:
    # 10,000 OSR (10^13 base units) at the fixed 0.005 USD: 50.000000 + 50 % bonus 25.000000 = 75.000000
    # credits; 70 % = 7,000 OSR owed to burn, 3,000 retained.
    chain = demo.demo_chain()
    deposit = osr_transaction(1, kind="deposit", amount_raw=10_000 * 10**9, treasury_before_raw=0)
    chain.add(deposit)
    with servers(chain) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        backfill(settings, ledger)
        key = deposit_key(signature_of(deposit), TREASURY_OSR, OSR_MINT)
        credit = ledger.transaction_by_key(key)
        assert credit is not None
        assert sorted(credit.postings) == sorted(
            [
                ("osr:to-burn", "OSR", 7_000 * 10**9),
                ("osr:retained", "OSR", 3_000 * 10**9),
                ("osr:received", "OSR", -10_000 * 10**9),
                ("osr:received", "USD", 50_000_000),
                ("expense:bonus", "USD", 25_000_000),
                ("suspense", "USD", -75_000_000),
            ]
        )
        # Today's settings give another bonus and burn share: the credit keeps those of its evidence.
        changed = settings_for(rpc, coingecko, url, TREASURY_OSR_BONUS="0.6", TREASURY_OSR_BURN_SHARE="0.5")
        assert run_audit(ledger, changed).clean
        ledger.run(
            lambda uow: uow.connection.execute(
                text(
                    "UPDATE ledger_postings SET amount = amount - 1000000000 WHERE transaction_id = :id AND account IN "
                    "('osr:to-burn')"
                ),
                {"id": credit.id},
            )
        )
        ledger.run(
            lambda uow: uow.connection.execute(
                text(
                    "UPDATE ledger_postings SET amount = amount + 1000000000 WHERE transaction_id = :id AND account = 'osr:retained'"
                ),
                {"id": credit.id},
            )
        )
        result = run_audit(ledger, changed)
    assert fields(result) == [
        (key, "posting osr:retained OSR", "3000000000000", "3001000000000"),
        (key, "posting osr:to-burn OSR", "7000000000000", "6999000000000"),
    ]


def test_the_window_takes_credits_by_block_time_and_by_posting_time() -> None:
    with servers(demo.demo_chain()) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        backfill(settings, ledger)
        posted_at = ledger.transaction_by_key(MEMO_KEY).created_at  # type: ignore[union-attr]
        # 2021 holds the 0.01 SOL deposit (2021-04-06) only.
        in_2021 = run_audit(
            ledger, settings, dt.datetime(2021, 1, 1, tzinfo=dt.UTC), dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
        )
        # The hour the backfill ran holds every credit it posted.
        posted = run_audit(ledger, settings, posted_at - dt.timedelta(hours=1), posted_at + dt.timedelta(hours=1))
        # 2022 holds nothing.
        empty = run_audit(
            ledger, settings, dt.datetime(2022, 1, 1, tzinfo=dt.UTC), dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
        )
    assert (in_2021.credits, posted.credits, empty.credits) == (1, 3, 0)
    assert in_2021.clean and posted.clean and empty.clean
