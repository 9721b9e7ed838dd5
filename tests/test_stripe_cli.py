"""`treasury reconcile stripe` as an operator runs it: the installed console script, in a subprocess,
against the loopback Stripe and a SQLite ledger file.

Binding (INTERFACE.md): the JSON shape, the ten classes, exit 0 only when every finding is matched,
1 otherwise, 2 on bad usage with one line and nothing written; the secret key never printed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger_client import Ledger, card_topup_entry
from reconcile.matcher import CLASSES
from reconcile.testing import DEFAULT_API_KEY, FakeStripe, Fault
from tests.stripe_support import at

TREASURY = shutil.which("treasury", path=str(Path(sys.executable).parent)) or "treasury"
WINDOW = ("--since", "2025-03-01T00:00:00Z", "--until", "2025-03-02")


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "treasury.db"


def treasury(
    db: Path, fake_url: str, *args: str, key: str | None = DEFAULT_API_KEY
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TREASURY_", "STRIPE_"))}
    env = {**clean, "TREASURY_DATABASE_URL": f"sqlite:///{db}", "TREASURY_STRIPE_API_BASE": fake_url}
    if key is not None:
        env["TREASURY_STRIPE_API_KEY"] = key
    return subprocess.run(
        [TREASURY, "reconcile", "stripe", *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def one_line_error(done: subprocess.CompletedProcess[str], status: int) -> str:
    assert done.returncode == status, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert lines[0].startswith("treasury")
    return lines[0]


def report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    value = json.loads(done.stdout)
    assert isinstance(value, dict)
    return value


def test_the_json_report_has_exactly_the_interface_shape(fake: FakeStripe, db: Path) -> None:
    yen = fake.add_session(created=at(1), amount_total=800, currency="jpy", customer="agt_ivy")
    carol = fake.add_session(created=at(2), amount_total=10000, customer="agt_carol", fee=320)
    done = treasury(db, fake.url, *WINDOW, "--format", "json")
    assert done.returncode == 1, done.stderr  # findings other than matched
    assert "currency_mismatch 1" in one_line_error(done, 1)
    body = report(done)
    assert list(body) == ["since", "until", "totals", "findings"]
    assert (body["since"], body["until"]) == ("2025-03-01T00:00:00+00:00", "2025-03-02T00:00:00+00:00")
    assert body["findings"][0] == {
        "class": "currency_mismatch",
        "session": yen.session,
        "amount": "800",  # ¥800, not 8.00
        "currency": "JPY",
        "detail": "paid 800 JPY: only USD top-ups are credited automatically",
    }
    [missing] = body["findings"][1:]
    assert list(missing) == ["class", "session", "amount", "currency", "detail"]
    assert (missing["class"], missing["session"], missing["amount"], missing["currency"]) == (
        "missing_credit",
        carol.session,
        "100.00",
        "USD",
    )
    totals = body["totals"]
    # Gross: carol's $100.00 (ivy's balance transaction is in JPY); fee $3.20 given; net $96.80.
    assert (totals["gross"], totals["fees"], totals["net"]) == ("100.00", "3.20", "96.80")
    assert (totals["expected"], totals["credited"], totals["fixed"]) == ("100.00", "0.00", 0)
    assert list(totals["counts"]) == list(CLASSES)
    assert totals["counts"]["currency_mismatch"] == 1 and totals["counts"]["missing_credit"] == 1


def test_fix_posts_once_and_every_finding_matched_exits_0(fake: FakeStripe, db: Path) -> None:
    carol = fake.add_session(created=at(2), amount_total=10000, customer="agt_carol")
    fixed = treasury(db, fake.url, *WINDOW, "--fix", "--format", "json")
    assert "--fix posted 1 transaction(s)" in one_line_error(fixed, 1)  # it found a missing credit
    body = report(fixed)
    assert body["totals"]["fixed"] == 1
    assert body["findings"][0]["detail"].endswith(f"fixed: posted stripe:{carol.session} (transaction 1)")
    again = treasury(db, fake.url, *WINDOW, "--fix", "--format", "json")
    assert (again.returncode, again.stderr) == (0, "")
    assert report(again)["totals"]["fixed"] == 0
    assert [f["class"] for f in report(again)["findings"]] == ["matched"]
    with Ledger.open(f"sqlite:///{db}") as ledger:
        assert ledger.balance("agt_carol") == 100_000_000


def test_table_and_csv_formats(fake: FakeStripe, db: Path) -> None:
    carol = fake.add_session(created=at(2), amount_total=10000, customer="agt_carol")
    with Ledger.open(f"sqlite:///{db}") as ledger:
        ledger.ensure_schema()
        ledger.post(card_topup_entry(carol.session, "agt_carol", 100_000_000, {}))
    table = treasury(db, fake.url, *WINDOW)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "Stripe reconciliation 2025-03-01T00:00:00+00:00 .. 2025-03-02T00:00:00+00:00"
    assert lines[2].split()[:5] == ["CLASS", "SESSION", "AMOUNT", "CURRENCY", "DETAIL"]
    assert lines[3].split()[:4] == ["matched", carol.session, "100.00", "USD"]
    assert "expected 100.00 USD, credited 100.00 USD" in table.stdout
    assert "findings: matched 1" in table.stdout
    done = treasury(db, fake.url, *WINDOW, "--format", "csv")
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["class", "session", "amount", "currency", "detail"]
    assert rows[1][:4] == ["matched", carol.session, "100.00", "USD"]
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "2025-03-02", "--until", "2025-03-01"), "--until 2025-03-01 is not after --since 2025-03-02"),
        (("--since", "2025-03-01", "--until", "2025-03-01"), "is not after"),
        (("--since", "yesterday", "--until", "2025-03-01"), "--since: not an ISO 8601 time: 'yesterday'"),
        (("--since", "2025-03-01", "--until", "2025-13-01"), "--until: not an ISO 8601 time"),
        (("--until", "2025-03-01"), "the following arguments are required: --since"),
        ((*WINDOW, "--format", "xml"), "invalid choice: 'xml'"),
    ],
)
def test_bad_usage_exits_2_with_one_line_and_writes_nothing(
    fake: FakeStripe, db: Path, args: tuple[str, ...], message: str
) -> None:
    assert message in one_line_error(treasury(db, fake.url, *args), 2)
    assert not db.exists()  # not even an empty ledger
    assert fake.requests == []


def test_no_api_key_exits_2_and_writes_nothing(fake: FakeStripe, db: Path) -> None:
    line = one_line_error(treasury(db, fake.url, *WINDOW, key=None), 2)
    assert "TREASURY_STRIPE_API_KEY" in line
    assert not db.exists()
    assert fake.requests == []


def test_the_secret_key_never_appears_in_output_or_logs(fake: FakeStripe, db: Path) -> None:
    fake.add_session(created=at(2), amount_total=10000, customer="agt_carol")
    fake.add_fault(Fault.rate_limited())  # a retry gets logged with --verbose
    done = treasury(db, fake.url, *WINDOW, "--fix", "--verbose", "--format", "json")
    assert done.returncode == 1
    assert "stripe_rate_limited" in done.stderr and "stripe_reconciled" in done.stderr
    assert DEFAULT_API_KEY not in done.stdout + done.stderr
    wrong = "sk_test_not_the_key_9f8e7d6c5b4a"
    refused = treasury(db, fake.url, *WINDOW, "--verbose", key=wrong)
    line = one_line_error(refused, 1)
    assert "Stripe refused the API key (HTTP 401)" in line
    assert wrong not in refused.stdout + refused.stderr


def test_stripe_unreachable_exits_1_with_one_line(db: Path) -> None:
    with FakeStripe() as gone:
        url = gone.url
    line = one_line_error(treasury(db, url, *WINDOW), 1)
    assert "cannot reach Stripe" in line


def test_a_stripe_server_error_exits_1_after_the_librarys_retries(fake: FakeStripe, db: Path) -> None:
    fake.add_fault(Fault.server_error(500), times=10)
    line = one_line_error(treasury(db, fake.url, *WINDOW), 1)
    assert "Stripe failed (HTTP 500)" in line
    assert fake.count(status=500) == 3  # 1 + max_network_retries 2
