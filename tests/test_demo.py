"""`treasury demo`: offline, on the bundled recorded mainnet transactions; figures worked out by hand
(see tests/test_backfill.py for the arithmetic: the same transactions and prices)."""

from __future__ import annotations

from pathlib import Path

from ledger_client import Ledger
from tests.backfill_support import treasury


def test_demo_prints_what_was_credited_and_why_and_keeps_its_ledger(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TREASURY_DATABASE_URL": "postgresql://nobody@192.0.2.1/never"}  # not used
    done = treasury("demo", "--keep", str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    text = done.stdout
    # 0.001 SOL × 21.13233391276909 -> 0.021132 to the linked sender's customer.
    assert any(
        "0.001" in line and "21.13233391276909" in line and "0.021132" in line and "agt_demo_alice" in line
        for line in lines
    )
    # 0.01 SOL × 22.942985835974703 -> 0.229429, and 3.8 USDC, held in suspense.
    assert any("22.942985835974703" in line and "0.229429" in line and "suspense" in line for line in lines)
    assert any(" 3.8 " in line and "3.800000" in line and "suspense" in line for line in lines)
    assert "ignored: dust" in text
    assert "ignored: unsupported_mint" in text
    assert "ignored: treasury_signed" in text
    assert "for agt_demo_bob, memo" in text  # attributed by its memo reference, waiting for a price
    assert "agt_demo_alice 0.021132" in text
    assert "suspense 4.029429" in text
    assert "ledger verify: ok" in text
    # Issue 9's checks on a correct ledger: 7 wallets' SOL and 3 USDC accounts; the 3 credits above.
    assert "reconcile chain: 10 treasury accounts, 0 differences" in text
    assert "audit: 3 credits re-derived from their evidence, 0 differences" in text
    database = tmp_path / "treasury-demo.db"
    with Ledger.open(f"sqlite:///{database}", quiet=True) as ledger:
        assert ledger.balance("agt_demo_alice") == 21_132
        assert ledger.balance("suspense") == 4_029_429
        assert ledger.verify() == []


def test_demo_refuses_a_keep_path_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    done = treasury("demo", "--keep", str(path), env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "not a directory" in done.stderr
