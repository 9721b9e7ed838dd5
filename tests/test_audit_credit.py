"""The audit of one credit (reconcile.audit.audit_credit), pure: a credit built as the pipeline builds it
from a real recorded reply — 3.8 USDC into Efc6bp… (owner B2v68t…), slot 419685246 — and then spoiled
one way at a time. The reply is read by the current parser through indexer.proof.IndexerAuditEvidence."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from indexer.parser import Watch
from indexer.proof import IndexerAuditEvidence
from ledger_client import Transaction, crypto_deposit_entry, deposit_key, suspense_assignment_entry
from pricing.assets import AssetTable
from reconcile.audit import StoredDeposit, audit_credit, missing_credit
from tests.conftest import SOLANA

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SIGNATURE = "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX"
ACCOUNT = "Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv"
OWNER = "B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M"
KEY = deposit_key(SIGNATURE, ACCOUNT, USDC)
REPLY = (SOLANA / "usdc_transferchecked_durable_nonce_mainnet_jsonparsed_response.json").read_text()
OTHER_REPLY = (SOLANA / "sol_transfer_jsonparsed_result.json").read_text()  # 0.01 SOL to 3h1zGm…, 5hJfaZ…
EVIDENCE = IndexerAuditEvidence(Watch(frozenset({OWNER}), assets=AssetTable(), dust_raw={"USDC": 10_000}), AssetTable())
QUOTE = {
    "asset": "USDC",
    "price_usd": "1",
    "source": "stable",
    "coin_id": None,
    "point_time": "2026-05-14T12:17:59Z",
    "granularity": None,
    "fetched_at": "2026-12-01T00:00:00Z",
    "rule": "stable_1_usd",
    "reason": None,
}


def evidence(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "deposit": {"signature": SIGNATURE, "account": ACCOUNT, "asset": USDC},
        "transaction": REPLY,
        "quote": dict(QUOTE),
        "credit": {
            "usd_value_micros": 3_800_000,
            "bonus_micros": 0,
            "credits_micros": 3_800_000,
            "osr_bonus": "0.5",
            "osr_burn_share": "0.7",
        },
    }
    record.update(changes)
    return record


def credit(customer: str | None = "agt_a", credits_micros: int = 3_800_000, **changes: Any) -> Transaction:
    # 3.8 USDC = 3,800,000 base units at 1 USD: 3,800,000 micro-USD.
    draft = crypto_deposit_entry(KEY, customer, "USDC", 3_800_000, credits_micros, 0, credits_micros, 0, 0, {})
    return Transaction(
        7, KEY, draft.kind, dt.datetime(2026, 12, 1, tzinfo=dt.UTC), evidence(**changes), None, draft.postings
    )


def audited(transaction: Transaction, **kwargs: Any) -> list[tuple[str, str, str]]:
    reply = transaction.evidence.get("transaction")
    derivation = EVIDENCE.derive(reply, ACCOUNT, USDC) if isinstance(reply, str) else None
    found = audit_credit(transaction, derivation, EVIDENCE.asset(USDC), kwargs.get("stored"), kwargs.get("assignment"))
    return [(item.field, item.evidence, item.ledger) for item in found]


def row(**changes: Any) -> StoredDeposit:
    values: dict[str, Any] = {
        "id": 4,
        "key": KEY,
        "signature": SIGNATURE,
        "status": "credited",
        "amount_raw": 3_800_000,
        "usd_value_micros": 3_800_000,
        "bonus_micros": 0,
        "credits_micros": 3_800_000,
        "burn_raw": None,
        "retained_raw": None,
        "ledger_transaction_id": 7,
        "customer": "agt_a",
    }
    values.update(changes)
    return StoredDeposit(**values)


def test_a_credit_built_from_its_evidence_audits_clean() -> None:
    assert audited(credit(), stored=row()) == []
    assert audited(credit(None), stored=row(status="suspense", customer=None)) == []


def test_a_credit_of_another_amount_is_named_leg_by_leg() -> None:
    # 3.800001 credited where the evidence gives 3.800000.
    assert audited(credit(credits_micros=3_800_001)) == [
        ("posting agt_a USD", "-3.800000", "-3.800001"),
        ("posting conversion:USDC USD", "3.800000", "3.800001"),
    ]


def test_evidence_holding_another_transaction_is_named() -> None:
    assert audited(credit(transaction=OTHER_REPLY))[:1] == [
        (
            "transaction signature",
            "5hJfaZoyjTrJcchXLFXRySgDMtGRiLsqvmrtpXcQjZq1Zc2d7Qj3LisaAtaFDtS9tDdv4aZ5n4fbtJNfVMCNV8Lj",  # its signature
            SIGNATURE,
        )
    ]
    assert audited(credit(transaction=OTHER_REPLY))[1] == ("amount_raw", "no inflow to this account", "3800000")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"transaction": None}, ("transaction", "no stored reply", "3.800000")),
        ({"transaction": "{not json"}, ("transaction", "unreadable: not valid JSON", "3.800000")),
        ({"quote": {"price_usd": 1}}, ("quote", "unreadable: unreadable quote evidence", "3.800000")),
        ({"quote": {**QUOTE, "price_usd": "1.01"}}, ("price_usd", "1", "1.01")),
        ({"quote": {**QUOTE, "asset": "USDT"}}, ("quote asset", "USDT", "USDC")),
        (
            {"deposit": {"signature": SIGNATURE, "account": OWNER, "asset": USDC}},
            ("evidence deposit.account", OWNER, ACCOUNT),
        ),
    ],
)
def test_spoiled_evidence_is_named(changes: dict[str, Any], expected: tuple[str, str, str]) -> None:
    found = audited(credit(**changes))
    assert found
    field, given, held = found[0]
    assert (field, held) == (expected[0], expected[2])
    assert given.startswith(expected[1])


def test_the_deposit_row_and_the_assignment_are_compared() -> None:
    stored = row(status="ignored", credits_micros=3_700_000, ledger_transaction_id=8, customer="agt_z")
    assert audited(credit(), stored=stored) == [
        ("deposit row status", "credited or suspense", "ignored"),
        ("deposit row ledger_transaction", "7", "8"),
        ("deposit row credits_micros", "3.800000", "3.700000"),
        ("deposit row customer", "agt_a", "agt_z"),
    ]
    wrong = suspense_assignment_entry(KEY, "agt_b", 3_900_000, {})
    assignment = Transaction(
        9, wrong.key, wrong.kind, dt.datetime(2026, 12, 2, tzinfo=dt.UTC), {}, None, wrong.postings
    )
    assert audited(credit(None), assignment=assignment) == [
        ("assignment posting agt_b USD", "-3.800000", "-3.900000"),
        ("assignment posting suspense USD", "3.800000", "3.900000"),
    ]


def test_a_deposit_shown_credited_without_a_credit_is_named() -> None:
    found = missing_credit(row())
    assert (found.deposit, found.deposit_id, found.field, found.evidence, found.ledger) == (
        KEY,
        4,
        "credit",
        "credited: 3.800000",
        "none",
    )


def test_dust_by_todays_threshold_is_named() -> None:
    strict = IndexerAuditEvidence(
        Watch(frozenset({OWNER}), assets=AssetTable(), dust_raw={"USDC": 5_000_000}), AssetTable()
    )
    transaction = credit()
    found = audit_credit(transaction, strict.derive(REPLY, ACCOUNT, USDC), strict.asset(USDC), None, None)
    assert [(item.field, item.evidence) for item in found] == [("status", "ignored (dust)")]


def test_an_untouched_copy_of_the_evidence_is_not_modified() -> None:
    transaction = credit()
    before = copy.deepcopy(dict(transaction.evidence))
    audited(transaction)
    assert dict(transaction.evidence) == before
