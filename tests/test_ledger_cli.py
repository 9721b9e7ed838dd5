"""The ledger commands as an operator runs them: the installed `treasury` console script, in a subprocess.

Exit status 0 on success, 1 when the work failed, 2 on bad input with one line on stderr naming
what was wrong (INTERFACE.md). Deposits held in suspense are posted through the Python API (the
pipeline that posts them is issue 5), then handled through the commands.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ledger_client import Ledger
from ledger_client.migrate import head_revision
from tests.ledger_data import address, signature, usdc_deposit
from tests.pg import free_port

TREASURY = shutil.which("treasury", path=str(Path(sys.executable).parent)) or "treasury"


def treasury(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TREASURY_")}
    return subprocess.run(
        [TREASURY, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "TREASURY_DATABASE_URL": url},
        check=False,
    )


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def one_line_error(done: subprocess.CompletedProcess[str], status: int) -> str:
    assert done.returncode == status, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert lines[0].startswith("treasury")
    return lines[0]


@pytest.fixture
def url(tmp_path: Path) -> str:
    """An empty SQLite ledger: every command must create and migrate it by itself."""
    return f"sqlite:///{tmp_path / 'treasury.db'}"


def test_db_upgrade_creates_the_database_then_has_nothing_to_do(url: str) -> None:
    first = treasury(url, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith(f"migrated from an empty database to revision {head_revision()}")
    again = treasury(url, "db", "upgrade")
    assert again.stdout.strip().endswith(f"already at revision {head_revision()}")


def test_balance_of_a_new_customer_on_an_empty_database_is_zero(url: str) -> None:
    assert ok_json(treasury(url, "ledger", "balance", "agt_a1b2c3d4", "--format", "json")) == {
        "account": "agt_a1b2c3d4",
        "currency": "USD",
        "balance": "0.000000",
    }
    text = treasury(url, "ledger", "balance", "agt_a1b2c3d4")
    assert (text.returncode, text.stdout) == (0, "agt_a1b2c3d4 0.000000 USD\n")


def test_adjust_credits_and_debits_exactly_and_is_idempotent_on_its_key(url: str) -> None:
    credited = ok_json(
        treasury(
            url,
            "ledger",
            "adjust",
            "agt_a1b2c3d4",
            "12.345678",
            "--reason",
            "welcome",
            "--key",
            "w-1",
            "--format",
            "json",
        )
    )
    assert credited == {
        "transaction_id": 1,
        "created": True,
        "key": "adjust:w-1",
        "account": "agt_a1b2c3d4",
        "currency": "USD",
        "amount": "12.345678",
        "balance": "12.345678",
    }
    again = ok_json(
        treasury(
            url,
            "ledger",
            "adjust",
            "agt_a1b2c3d4",
            "12.345678",
            "--reason",
            "retry",
            "--key",
            "w-1",
            "--format",
            "json",
        )
    )
    assert (again["transaction_id"], again["created"], again["balance"]) == (1, False, "12.345678")
    # A negative amount (it starts with "-"): 12.345678 - 1.5 = 10.845678.
    debited = treasury(url, "ledger", "adjust", "agt_a1b2c3d4", "-1.5", "--reason", "usage", "--key", "u-1")
    assert debited.returncode == 0, debited.stderr
    assert ok_json(treasury(url, "ledger", "balance", "agt_a1b2c3d4", "--format", "json"))["balance"] == "10.845678"


def test_adjust_with_a_used_key_and_another_amount_exits_2_naming_the_conflict(url: str) -> None:
    assert treasury(url, "ledger", "adjust", "agt_a", "5", "--reason", "r", "--key", "k-1").returncode == 0
    line = one_line_error(treasury(url, "ledger", "adjust", "agt_a", "6", "--reason", "r", "--key", "k-1"), 2)
    assert "'k-1' was already used for a different adjustment (transaction 1)" in line
    assert ok_json(treasury(url, "ledger", "balance", "agt_a", "--format", "json"))["balance"] == "5.000000"


def test_adjust_with_more_decimals_than_the_currency_exits_2_and_writes_nothing(url: str, tmp_path: Path) -> None:
    line = one_line_error(treasury(url, "ledger", "adjust", "agt_a", "1.0000001", "--reason", "r", "--key", "k"), 2)
    assert "more decimal places than the currency" in line
    assert not (tmp_path / "treasury.db").exists()  # checked before the database was even opened
    sol = one_line_error(
        treasury(
            url, "ledger", "adjust", "treasury:SOL", "0.0000000001", "--currency", "SOL", "--reason", "r", "--key", "k"
        ),
        2,
    )
    assert "at most 9 decimal places" in sol


def test_adjust_a_token_account_in_its_currency(url: str) -> None:
    done = treasury(
        url, "ledger", "adjust", "treasury:SOL", "0.5", "--currency", "SOL", "--reason", "chain", "--key", "s"
    )
    assert done.returncode == 0, done.stderr
    assert ok_json(treasury(url, "ledger", "balance", "treasury:SOL", "--format", "json")) == {
        "account": "treasury:SOL",
        "currency": "SOL",  # a token account's own currency is the default
        "balance": "0.500000000",
    }


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("ledger", "balance", "no such account"), "customer id"),
        (("ledger", "balance", "agt_a", "--currency", "EUR"), "unknown currency 'EUR'"),
        (("ledger", "balance", "agt_a", "--currency", "SOL"), "cannot hold SOL"),
        (("ledger", "adjust", "agt_a", "abc", "--reason", "r", "--key", "k"), "not a plain decimal"),
        (("ledger", "adjust", "agt_a", "0", "--reason", "r", "--key", "k"), "must not be zero"),
        (("ledger", "adjust", "agt_a", "1", "--reason", "r", "--key", "has space"), "--key"),
        (("ledger", "adjust", "agt_a", "1", "--key", "k"), "--reason"),
        (("wallets", "link", "not-an-address", "agt_a"), "not a Solana address"),
        (("deposits", "claim", "not-a-signature", "agt_a"), "not a transaction signature"),
        (("deposits", "assign", "nope", "agt_a"), "neither a deposit id nor a deposit key"),
        (("deposits", "assign", "42", "agt_a"), "no deposit with id 42"),
    ],
)
def test_bad_input_exits_2_with_one_line(url: str, args: tuple[str, ...], needle: str) -> None:
    assert needle in one_line_error(treasury(url, *args), 2)


def test_verify_passes_then_names_a_hand_edit(url: str, tmp_path: Path) -> None:
    assert treasury(url, "ledger", "adjust", "agt_v", "3", "--reason", "r", "--key", "v-1").returncode == 0
    passed = treasury(url, "ledger", "verify")
    assert (passed.returncode, passed.stdout) == (0, "ledger verify: every invariant holds\n")
    with sqlite3.connect(tmp_path / "treasury.db") as raw:
        raw.execute("UPDATE ledger_postings SET amount = amount - 1 WHERE account = 'agt_v'")
    failed = treasury(url, "ledger", "verify")
    line = one_line_error(failed, 1)
    assert line == "treasury: ledger verify: 2 broken invariant(s), 0 flag(s): content_mismatch, unbalanced"
    # agt_v's leg went from -3,000,000 to -3,000,001: transaction 1 sums to -1 in USD.
    assert "error: unbalanced: transaction 1 (adjust:v-1) does not balance in USD: postings sum to -1" in failed.stdout
    report = json.loads(treasury(url, "ledger", "verify", "--format", "json").stdout)
    assert report["ok"] is False
    assert sorted(p["code"] for p in report["problems"]) == ["content_mismatch", "unbalanced"]


def test_verify_flags_a_negative_customer_balance(url: str) -> None:
    assert (
        treasury(url, "ledger", "adjust", "agt_neg", "-2", "--reason", "usage after refund", "--key", "n").returncode
        == 0
    )
    assert ok_json(treasury(url, "ledger", "balance", "agt_neg", "--format", "json"))["balance"] == "-2.000000"
    failed = treasury(url, "ledger", "verify")
    assert one_line_error(failed, 1) == "treasury: ledger verify: 0 broken invariant(s), 1 flag(s): negative_balance"
    assert "flag: negative_balance: customer agt_neg has a negative balance of -2.000000 USD" in failed.stdout


def test_wallets_link_one_customer_per_wallet_unless_moved_with_a_reason(url: str) -> None:
    wallet = address("cli-wallet")
    linked = treasury(url, "wallets", "link", wallet, "agt_first")
    assert (linked.returncode, linked.stdout) == (0, f"wallet {wallet} linked to agt_first\n")
    assert treasury(url, "wallets", "link", wallet, "agt_first").stdout == (
        f"wallet {wallet} is already linked to agt_first\n"
    )
    line = one_line_error(treasury(url, "wallets", "link", wallet, "agt_second"), 2)
    assert f"wallet {wallet} is already linked to agt_first" in line and "--move" in line
    assert "--reason" in one_line_error(treasury(url, "wallets", "link", wallet, "agt_second", "--move"), 2)
    moved = ok_json(
        treasury(url, "wallets", "link", wallet, "agt_second", "--move", "--reason", "ticket 9", "--format", "json")
    )
    assert (moved["previous_customer"], moved["customer"], moved["changed"]) == ("agt_first", "agt_second", True)


def test_linking_a_wallet_moves_its_deposits_out_of_suspense_once(url: str) -> None:
    wallet = address("cli-sender")
    hold = usdc_deposit("cli-hold", None, 4_200_000, sender=wallet)  # 4.2 USDC -> 4.200000 USD held
    with Ledger.open(url) as ledger:
        ledger.ensure_schema()
        ledger.post(hold)
    assert ok_json(treasury(url, "ledger", "balance", "suspense", "--format", "json"))["balance"] == "4.200000"
    linked = ok_json(treasury(url, "wallets", "link", wallet, "agt_owner", "--format", "json"))
    assert [a["deposit_key"] for a in linked["assigned"]] == [hold.key]
    assert ok_json(treasury(url, "ledger", "balance", "agt_owner", "--format", "json"))["balance"] == "4.200000"
    assert ok_json(treasury(url, "ledger", "balance", "suspense", "--format", "json"))["balance"] == "0.000000"
    again = ok_json(treasury(url, "wallets", "link", wallet, "agt_owner", "--format", "json"))
    assert again["assigned"] == []
    assert ok_json(treasury(url, "ledger", "balance", "agt_owner", "--format", "json"))["balance"] == "4.200000"


def test_a_claim_never_credits_and_an_operator_assigns_once(url: str) -> None:
    hold = usdc_deposit("cli-claimed", None, 1_250_000, sender=address("unknown-sender"))
    with Ledger.open(url) as ledger:
        ledger.ensure_schema()
        ledger.post(hold)
    claimed = treasury(url, "deposits", "claim", signature("cli-claimed"), "agt_claimer")
    assert claimed.returncode == 0, claimed.stderr
    assert "a claim alone never credits" in claimed.stdout
    assert f"deposit {hold.key} (1.250000 USD) waits in suspense" in claimed.stdout
    assert ok_json(treasury(url, "ledger", "balance", "agt_claimer", "--format", "json"))["balance"] == "0.000000"
    listed = ok_json(treasury(url, "ledger", "suspense", "--format", "json"))
    assert (listed["deposit_key"], listed["credits"]) == (hold.key, "1.250000")
    assert [c["customer"] for c in listed["claims"]] == ["agt_claimer"]

    assigned = ok_json(
        treasury(url, "deposits", "assign", hold.key, "agt_claimer", "--reason", "invoice", "--format", "json")
    )
    assert assigned["created"] is True
    again = ok_json(treasury(url, "deposits", "assign", hold.key, "agt_claimer", "--format", "json"))
    assert (again["transaction_id"], again["created"]) == (assigned["transaction_id"], False)
    line = one_line_error(treasury(url, "deposits", "assign", hold.key, "agt_other"), 2)
    assert "already assigned to agt_claimer" in line
    assert ok_json(treasury(url, "ledger", "balance", "agt_claimer", "--format", "json"))["balance"] == "1.250000"
    missing = deposit_key_of("never-held")
    assert "not found: suspense hold" in one_line_error(treasury(url, "deposits", "assign", missing, "agt_a"), 2)


def deposit_key_of(name: str) -> str:
    return usdc_deposit(name, "agt_x", 1).key


def test_show_and_reverse_a_transaction(url: str) -> None:
    assert treasury(url, "ledger", "adjust", "agt_r", "7", "--reason", "r", "--key", "r-1").returncode == 0
    shown = ok_json(treasury(url, "ledger", "show", "adjust:r-1", "--format", "json"))
    assert (shown["id"], shown["kind"], shown["evidence"]["reason"]) == (1, "adjustment", "r")
    assert shown["postings"] == [
        {"account": "agt_r", "currency": "USD", "amount_raw": "-7000000", "amount": "-7.000000"},
        {"account": "equity:adjustments", "currency": "USD", "amount_raw": "7000000", "amount": "7.000000"},
    ]
    reversed_ = ok_json(treasury(url, "ledger", "reverse", "1", "--reason", "mistake", "--format", "json"))
    assert reversed_ == {"transaction_id": 2, "created": True, "reverses": 1}
    assert ok_json(treasury(url, "ledger", "reverse", "1", "--reason", "again", "--format", "json"))["created"] is False
    assert ok_json(treasury(url, "ledger", "balance", "agt_r", "--format", "json"))["balance"] == "0.000000"
    assert "not found: transaction 99" in one_line_error(treasury(url, "ledger", "show", "99"), 2)


def test_read_only_commands_work_while_a_writer_holds_the_lock(url: str, tmp_path: Path) -> None:
    assert treasury(url, "ledger", "adjust", "agt_wal", "1", "--reason", "r", "--key", "w").returncode == 0
    writer = sqlite3.connect(tmp_path / "treasury.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a daemon in the middle of a write transaction
        writer.execute("UPDATE ledger_accounts SET kind = kind")
        started = time.monotonic()
        assert ok_json(treasury(url, "ledger", "balance", "agt_wal", "--format", "json"))["balance"] == "1.000000"
        assert treasury(url, "ledger", "verify").returncode == 0
        assert time.monotonic() - started < 20  # did not wait out the 30 s busy timeout
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_an_unreachable_database_exits_1_in_one_line_without_the_password() -> None:
    url = f"postgresql://treasury:hunter2@127.0.0.1:{free_port()}/ledger"
    line = one_line_error(treasury(url, "ledger", "balance", "agt_a"), 1)
    assert "hunter2" not in line
    assert "treasury:***@127.0.0.1" in line and "database unavailable" in line


@pytest.mark.postgres
def test_the_commands_work_on_postgresql_with_a_plain_url(pg_url: str) -> None:
    assert pg_url.startswith("postgresql://")
    done = treasury(pg_url, "ledger", "adjust", "agt_pg", "2.5", "--reason", "r", "--key", "pg-1")
    assert done.returncode == 0, done.stderr
    assert ok_json(treasury(pg_url, "ledger", "balance", "agt_pg", "--format", "json"))["balance"] == "2.500000"
    assert treasury(pg_url, "ledger", "verify").returncode == 0
