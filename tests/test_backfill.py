"""`treasury backfill` end to end: the recorded mainnet transactions served by the loopback replay node,
prices by the loopback CoinGecko, the real CLI in a subprocess, on SQLite and PostgreSQL.

Expected figures are worked out by hand from the recorded balances and the bundled price series
(pricing/data): SOL at 00:00 UTC on 2021-04-06 was 22.942985835974703 USD and on 2023-03-30
21.13233391276909 USD (CoinGecko's daily export; accepted with TREASURY_PRICE_MAX_AGE_S=172800).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.backfill_support import (
    CFP_WALLET,
    DUST_WALLET,
    LATE_SOL_WALLET,
    MEMO_SOL_WALLET,
    OLD_SOL_WALLET,
    USDC_WALLET,
    demo_chain,
    environment,
    fingerprint,
    json_lines,
    servers,
    treasury,
)

MEMO_SOL = "5QMfuqThWSMMpLCRe3tk7qn7iSwWKfJV8EvD1ZPvyqAWa7Z2JftZ4rPq8YCxCwzSykX7dMkDB8RrovQMoL9ZZWKY"
OLD_SOL = "5hJfaZoyjTrJcchXLFXRySgDMtGRiLsqvmrtpXcQjZq1Zc2d7Qj3LisaAtaFDtS9tDdv4aZ5n4fbtJNfVMCNV8Lj"
USDC_3_8 = "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX"
CFP_SOL = "2E9Ddokz6HZkn457gAhd7uaUYnWtgUuRQaGGKFb2xDtYY3Mxn81DaXPMKfLLmcWMUAEQwZG1WF6mfcXMKr2yBqZU"
LATE_SOL = "2kHbPUGzehenUXQbBfAVZGcuTrSUVDMEyU2aGcjFbuUAJkG28CyQPCGZF68u369MU7WHMvJboyioqyihvtR75nLn"
DUST_USDC = "2S2rTZjaqzxYRw9mnqzwtyqitKtSsnE8GVqLn1KrD5R2YpXZnU4GdjppsgfSAbrzJfaqadfi8CtrqEBy588WVQ3E"
MAPS = "27wHYCjoKaobUQdWVb26UpJNWu54h1uJEZH5x4fV3hS4gWuws9KytSdfatJt77fC42STShKygb7kRtB53PknAp94"


def deposits_by_signature(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    done = treasury("deposits", "list", "--format", "jsonl", env=env)
    assert done.returncode == 0, done.stderr
    return {record["signature"]: record for record in json_lines(done.stdout)}


def balance(env: dict[str, str], account: str) -> str:
    done = treasury("ledger", "balance", account, "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    value: str = json_lines(done.stdout)[0]["balance"]
    return value


def test_backfill_credits_exactly_the_expected_deposits(ledger_url: str) -> None:
    with servers(demo_chain()) as (rpc, coingecko):
        env = environment(rpc, coingecko, ledger_url)
        # The billing service's state before the scan: one linked wallet, one memo reference, one claim.
        assert (
            treasury("wallets", "link", "DT1mBDFsNBc1UXa25RdxNvnjL5Lro7su7gX1zpLyCmWe", "agt_alice", env=env).returncode
            == 0
        )
        assert treasury("references", "add", "agt_bob", "CFP #4115716", env=env).returncode == 0
        assert treasury("deposits", "claim", USDC_3_8, "agt_carol", env=env).returncode == 0

        done = treasury("backfill", "--format", "json", env=env)
        assert done.returncode == 0, done.stderr
        [summary] = json_lines(done.stdout)
        assert summary["complete"] is True
        assert summary["deposits_found"] == 7
        # 0.001 SOL × 21.13233391276909 = 0.02113233… -> 0.021132 to agt_alice (linked sender);
        # 0.01 SOL × 22.942985835974703 = 0.22942985… -> 0.229429 and 3.8 USDC -> 3.800000 in suspense.
        assert (summary["credited"], summary["held_in_suspense"]) == (1, 2)
        assert summary["ignored"] == {"dust": 1, "unsupported_mint": 1}
        assert sum(summary["pending_price"].values()) == 2  # Oct 2025 and Feb 2026: no point within 2 days
        assert summary["credited_usd_by_asset"] == {"SOL": "0.250561", "USDC": "3.800000"}
        assert summary["totals"] == {
            "pending": 0,
            "pending_price": 2,
            "credited": 1,
            "suspense": 2,
            "ignored": 2,
            "dropped": 0,
        }

        deposits = deposits_by_signature(env)
        assert set(deposits) == {MEMO_SOL, OLD_SOL, USDC_3_8, CFP_SOL, LATE_SOL, DUST_USDC, MAPS}
        memo = deposits[MEMO_SOL]
        assert (memo["status"], memo["customer"], memo["attribution"]) == ("credited", "agt_alice", "linked_wallet")
        assert (memo["price_usd"], memo["usd_value"], memo["bonus"], memo["credits"]) == (
            "21.13233391276909",
            "0.021132",
            "0.000000",
            "0.021132",
        )
        assert (memo["amount_raw"], memo["amount"], memo["sender"], memo["memo"], memo["account"]) == (
            "1000000",
            "0.001",
            "DT1mBDFsNBc1UXa25RdxNvnjL5Lro7su7gX1zpLyCmWe",
            "transfer",
            MEMO_SOL_WALLET,
        )
        assert isinstance(memo["ledger_transaction"], int)
        old = deposits[OLD_SOL]
        assert (old["status"], old["customer"], old["credits"], old["owner"]) == (
            "suspense",
            None,
            "0.229429",
            OLD_SOL_WALLET,
        )
        usdc = deposits[USDC_3_8]
        assert (usdc["status"], usdc["credits"], usdc["price_usd"], usdc["owner"]) == (
            "suspense",
            "3.800000",
            "1",
            USDC_WALLET,
        )
        cfp = deposits[CFP_SOL]
        # The memo names agt_bob's reference, but no price point lies within 2 days of 2025-10-28.
        assert (cfp["status"], cfp["customer"], cfp["attribution"], cfp["credits"]) == (
            "pending_price",
            "agt_bob",
            "memo",
            None,
        )
        assert cfp["owner"] == CFP_WALLET
        assert (deposits[LATE_SOL]["status"], deposits[LATE_SOL]["owner"]) == ("pending_price", LATE_SOL_WALLET)
        assert (deposits[DUST_USDC]["status"], deposits[DUST_USDC]["reason"], deposits[DUST_USDC]["owner"]) == (
            "ignored",
            "dust",
            DUST_WALLET,
        )
        assert (deposits[MAPS]["status"], deposits[MAPS]["reason"]) == ("ignored", "unsupported_mint")

        assert balance(env, "agt_alice") == "0.021132"
        assert balance(env, "agt_carol") == "0.000000"  # a claim alone never credits
        assert balance(env, "suspense") == "4.029429"  # 0.229429 + 3.800000

        # Again: nothing new, nothing changed.
        before = fingerprint(ledger_url)
        again = treasury("backfill", "--format", "json", env=env)
        assert again.returncode == 0, again.stderr
        [summary] = json_lines(again.stdout)
        assert (summary["deposits_found"], summary["credited"], summary["held_in_suspense"]) == (0, 0, 0)
        assert fingerprint(ledger_url) == before

        # An operator prices the memo deposit by hand: 0.042 SOL × 200 = 8.400000 to agt_bob.
        priced = treasury(
            "deposits",
            "price",
            str(cfp["id"]),
            "--usd",
            "200",
            "--reason",
            "no market data",
            "--format",
            "json",
            env=env,
        )
        assert priced.returncode == 0, priced.stderr
        record = json_lines(priced.stdout)[0]
        assert (record["status"], record["customer"], record["credits"], record["price_usd"]) == (
            "credited",
            "agt_bob",
            "8.400000",
            "200",
        )
        assert balance(env, "agt_bob") == "8.400000"
        # Pricing it again is refused: it is credited.
        refused = treasury("deposits", "price", str(cfp["id"]), "--usd", "300", "--reason", "again", env=env)
        assert refused.returncode == 2
        assert "credited" in refused.stderr

        # The operator assigns the claimed USDC deposit; a later link moves the 2021 SOL deposit.
        assigned = treasury("deposits", "assign", str(usdc["id"]), "agt_carol", "--reason", "claim checked", env=env)
        assert assigned.returncode == 0, assigned.stderr
        assert balance(env, "agt_carol") == "3.800000"
        linked = treasury("wallets", "link", "6QuXb6mB6WmRASP2y8AavXh6aabBXEH5ZzrSH5xRrgSm", "agt_dave", env=env)
        assert linked.returncode == 0, linked.stderr
        assert balance(env, "agt_dave") == "0.229429"
        assert balance(env, "suspense") == "0.000000"
        deposits = deposits_by_signature(env)
        assert (deposits[USDC_3_8]["status"], deposits[USDC_3_8]["customer"], deposits[USDC_3_8]["attribution"]) == (
            "credited",
            "agt_carol",
            "operator",
        )
        assert (deposits[OLD_SOL]["status"], deposits[OLD_SOL]["customer"], deposits[OLD_SOL]["attribution"]) == (
            "credited",
            "agt_dave",
            "linked_wallet",
        )
        # Assigning it again to someone else is refused.
        again_assigned = treasury("deposits", "assign", str(usdc["id"]), "agt_eve", env=env)
        assert again_assigned.returncode == 2
        verify = treasury("ledger", "verify", env=env)
        assert verify.returncode == 0, verify.stdout + verify.stderr


def test_status_filter_and_table(ledger_url: str) -> None:
    with servers(demo_chain()) as (rpc, coingecko):
        env = environment(rpc, coingecko, ledger_url)
        assert treasury("backfill", env=env).returncode == 0
        done = treasury("deposits", "list", "--status", "ignored", "--format", "jsonl", env=env)
        assert sorted(record["signature"] for record in json_lines(done.stdout)) == sorted([DUST_USDC, MAPS])
        table = treasury("deposits", "list", env=env)
        assert table.returncode == 0
        assert len(table.stdout.splitlines()) == 1 + 7  # header and one line per deposit
        bad = treasury("deposits", "list", "--status", "lost", env=env)
        assert bad.returncode == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since"),
        (["--limit", "0"], "--limit"),
        (["--until-signature", "xyz"], "--until-signature"),
        (["--page-limit", "5000"], "--page-limit"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(tmp_path: Any, args: list[str], message: str) -> None:
    with servers(demo_chain()) as (rpc, coingecko):
        database = tmp_path / "t.db"
        env = environment(rpc, coingecko, f"sqlite:///{database}")
        done = treasury("backfill", *args, env=env)
        assert done.returncode == 2
        assert message in done.stderr
        assert done.stderr.count("\n") == 1
        assert not database.exists()
