"""OSR burn tracking: burns recognised on chain and posted against the obligation, once; over- and
under-burn reported. The OSR transactions are derived from the real recorded USDC transfer to the
treasury (tests/proof_support.py says how): a deposit of 10,000 OSR into the treasury's OSR account,
then a `burnChecked` and a transfer to the incinerator out of it.

Arithmetic: 10,000 OSR = 10^13 base units; 70 % is owed to burn: 7,000 OSR = 7 × 10^12; 30 % retained.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from indexer import demo
from indexer.app import open_pipeline
from indexer.burns import (
    BURN_ADDRESS,
    BURN_INSTRUCTION,
    BurnRule,
    Outflow,
    burns_report,
    post_pending_burns,
    recognise,
)
from indexer.pipeline import RunSummary
from ledger_client import Ledger
from ledger_client.schema import transactions_table
from tests.backfill_support import json_lines, treasury
from tests.proof_support import (
    FAST_RPC,
    INCINERATOR,
    OSR_MINT,
    OSR_UNIT,
    TREASURY_OSR,
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

DEPOSIT = osr_transaction(1, kind="deposit", amount_raw=10_000 * OSR_UNIT, treasury_before_raw=0)
BURN = osr_transaction(2, kind="burn", amount_raw=5_000 * OSR_UNIT, treasury_before_raw=10_000 * OSR_UNIT)
TO_INCINERATOR = osr_transaction(
    3, kind="to_incinerator", amount_raw=1_000 * OSR_UNIT, treasury_before_raw=5_000 * OSR_UNIT, other_before_raw=0
)
OVER_BURN = osr_transaction(2, kind="burn", amount_raw=8_000 * OSR_UNIT, treasury_before_raw=10_000 * OSR_UNIT)


def chain_with(*transactions: dict[str, Any]) -> Any:
    chain = demo.demo_chain()
    for transaction in transactions:
        chain.add(transaction)
    return chain


def burn_transactions(ledger: Ledger) -> int:
    return int(
        ledger.read(
            lambda uow: uow.connection.execute(
                select(func.count()).select_from(transactions_table).where(transactions_table.c.kind == "osr_burn")
            ).scalar_one()
        )
    )


def test_burns_are_posted_once_against_the_obligation() -> None:
    with servers(chain_with(DEPOSIT, BURN, TO_INCINERATOR)) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url, TREASURY_OSR_BURN_ADDRESS=INCINERATOR)
        backfill(settings, ledger)
        burned = ledger.transaction_by_key(f"osr-burn:{signature_of(BURN)}")
        sent = ledger.transaction_by_key(f"osr-burn:{signature_of(TO_INCINERATOR)}")
        assert burned is not None and sent is not None
        assert sorted(burned.postings) == [
            ("osr:burned", "OSR", 5_000 * OSR_UNIT),
            ("osr:to-burn", "OSR", -5_000 * OSR_UNIT),
        ]
        assert sorted(sent.postings) == [
            ("osr:burned", "OSR", 1_000 * OSR_UNIT),
            ("osr:to-burn", "OSR", -1_000 * OSR_UNIT),
        ]
        assert [item["how"] for item in burned.evidence["burns"]] == [BURN_INSTRUCTION]
        assert [item["how"] for item in sent.evidence["burns"]] == [BURN_ADDRESS]
        # Again: a second backfill and a catch-up post nothing new.
        backfill(settings, ledger)
        assert [result.created for result in post_pending_burns(ledger, settings)] == [False, False]
        assert burn_transactions(ledger) == 2
        report = burns_report(ledger, settings)
        # Owed 7,000; burned 5,000 + 1,000 = 6,000; still owed 1,000 (an under-burn, not an error).
        assert (report.obligation_raw, report.burned_raw, report.owed_raw, report.retained_raw) == (
            7_000 * OSR_UNIT,
            6_000 * OSR_UNIT,
            1_000 * OSR_UNIT,
            3_000 * OSR_UNIT,
        )
        assert (report.status, report.under_burn_raw, report.over_burn_raw, report.unposted) == (
            "under_burn",
            1_000 * OSR_UNIT,
            0,
            (),
        )
        assert [(burn.signature, burn.amount_raw) for burn in report.posted] == [
            (signature_of(BURN), 5_000 * OSR_UNIT),
            (signature_of(TO_INCINERATOR), 1_000 * OSR_UNIT),
        ]
        # The treasury's OSR account reconciles with the chain: +10,000, −5,000, −1,000.
        osr = by_account(reconcile(ledger, settings))[(TREASURY_OSR, OSR_MINT)]
        assert (osr.chain_change_raw, osr.inflows_raw, osr.outflows_raw, osr.clean) == (
            4_000 * OSR_UNIT,
            10_000 * OSR_UNIT,
            6_000 * OSR_UNIT,
            True,
        )


def test_without_a_burn_address_a_transfer_out_is_not_a_burn() -> None:
    with servers(chain_with(DEPOSIT, BURN, TO_INCINERATOR)) as (rpc, coingecko), fresh_ledger() as (ledger, url):
        settings = settings_for(rpc, coingecko, url)
        backfill(settings, ledger)
        report = burns_report(ledger, settings)
    assert (report.burned_raw, report.owed_raw, report.status) == (5_000 * OSR_UNIT, 2_000 * OSR_UNIT, "under_burn")


def test_an_over_burn_is_reported_and_the_command_exits_1(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with servers(chain_with(DEPOSIT, OVER_BURN)) as (rpc, coingecko):
        settings = settings_for(rpc, coingecko, url)
        with Ledger.open(url, quiet=True) as ledger:
            ledger.ensure_schema()
            backfill(settings, ledger)
            report = burns_report(ledger, settings)
        # Owed 7,000, burned 8,000: 1,000 burned beyond the obligation.
        assert (report.owed_raw, report.over_burn_raw, report.status) == (
            -1_000 * OSR_UNIT,
            1_000 * OSR_UNIT,
            "over_burn",
        )
        done = treasury("burns", "--format", "json", env=environment(settings))
        assert done.returncode == 1
        [record] = json_lines(done.stdout)
        assert (record["status"], record["obligation"], record["burned"], record["owed"], record["over_burn"]) == (
            "over_burn",
            "7000",
            "8000",
            "-1000",
            "1000",
        )
        assert [burn["signature"] for burn in record["burns"]] == [signature_of(OVER_BURN)]
        assert "over-burn: 1000 OSR" in done.stderr and done.stderr.count("\n") == 1
        table = treasury("burns", env=environment(settings))
        assert table.returncode == 1 and "OVER-BURN: 1000 OSR" in table.stdout


def test_a_burn_seen_at_confirmed_is_posted_once_it_is_final(tmp_path: Any) -> None:
    chain = chain_with(DEPOSIT)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with servers(chain) as (rpc, coingecko):
        settings = settings_for(rpc, coingecko, url)
        env = environment(settings)
        with Ledger.open(url, quiet=True) as ledger:
            ledger.ensure_schema()
            backfill(settings, ledger)  # the deposit, final and credited: 7,000 OSR owed
            chain.add(BURN, commitment="confirmed")
            backfill(settings, ledger, commitment="confirmed")  # a live poll sees the burn at confirmed
            assert burn_transactions(ledger) == 0  # not final: not posted
            [pending] = burns_report(ledger, settings).unposted
            assert (pending.outflow.signature, pending.outflow.amount_raw) == (signature_of(BURN), 5_000 * OSR_UNIT)
            chain.finalize(signature_of(BURN))
            _finalize(settings, ledger, signature_of(BURN))  # the daemon's finalizer posts it
            assert burn_transactions(ledger) == 1
        posted = treasury("burns", "--post", "--format", "json", env=env)
        assert posted.returncode == 0, posted.stderr
        [record] = json_lines(posted.stdout)
        # 7,000 owed - 5,000 burned = 2,000 still owed; nothing left for --post to do.
        assert (record["posted_now"], record["status"], record["owed"], record["unposted"]) == (
            0,
            "under_burn",
            "2000",
            [],
        )
        again = treasury("burns", "--post", "--format", "json", env=env)
        assert json_lines(again.stdout)[0]["posted_now"] == 0
        with Ledger.open(url, quiet=True) as ledger:
            assert burn_transactions(ledger) == 1


def test_recognition_rules() -> None:
    rule = BurnRule(OSR_MINT, INCINERATOR)

    def outflow(**changes: Any) -> Outflow:
        values: dict[str, Any] = {
            "signature": "s",
            "slot": 1,
            "block_time": 2,
            "account": TREASURY_OSR,
            "asset": OSR_MINT,
            "amount_raw": 5,
            "instruction_kind": "transferChecked",
            "instruction_path": "1",
            "recipient": "someone",
        }
        values.update(changes)
        return Outflow(**values)

    assert recognise(outflow(instruction_kind="burn"), rule) is not None
    assert recognise(outflow(instruction_kind="burnChecked"), rule) is not None
    assert recognise(outflow(recipient=INCINERATOR), rule) is not None
    assert recognise(outflow(), rule) is None  # a transfer to someone else
    assert recognise(outflow(recipient=INCINERATOR), BurnRule(OSR_MINT)) is None  # no burn address configured
    assert (
        recognise(outflow(asset="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", instruction_kind="burn"), rule) is None
    )
    assert recognise(outflow(instruction_kind="burn"), BurnRule(None)) is None  # no OSR in the asset table


def _finalize(settings: Any, ledger: Ledger, signature: str) -> None:
    """The daemon's finalizer step for one signature: fetched again at finalized, recorded, burns posted."""

    async def main() -> None:
        async with open_pipeline(settings, ledger, rpc_options=FAST_RPC) as pipeline:
            assert await pipeline.finalize([signature], RunSummary()) == 1

    asyncio.run(main())


def test_on_the_demo_data_nothing_is_owed_and_a_bad_burn_address_is_refused(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with servers(demo.demo_chain()) as (rpc, coingecko):
        settings = settings_for(rpc, coingecko, url)
        with Ledger.open(url, quiet=True) as ledger:
            ledger.ensure_schema()
            backfill(settings, ledger)
        env = environment(settings)
        done = treasury("burns", "--format", "json", env=env)
        assert done.returncode == 0, done.stderr
        [record] = json_lines(done.stdout)
        assert (record["status"], record["obligation_raw"], record["burned_raw"], record["burns"]) == (
            "ok",
            "0",
            "0",
            [],
        )
        bad = treasury("burns", env={**env, "TREASURY_OSR_BURN_ADDRESS": "not-an-address"})
        assert bad.returncode == 2 and "TREASURY_OSR_BURN_ADDRESS" in bad.stderr
