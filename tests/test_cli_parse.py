"""`treasury parse` as an operator runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SOLANA

TREASURY = shutil.which("treasury", path=str(Path(sys.executable).parent)) or "treasury"
MEMO_DEPOSIT = SOLANA / "sol_transfer_with_memo_jsonparsed_response.json"
MEMO_WALLET = "2b7iQq3PbWwWTotRSDFNXT9DauU418aCHK4jcAzETUem"


def treasury(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TREASURY_")}
    return subprocess.run(
        [TREASURY, *args], capture_output=True, text=True, timeout=60, env={**clean, **(env or {})}, check=False
    )


def test_prints_one_json_line_per_inflow() -> None:
    done = treasury("parse", str(MEMO_DEPOSIT), "--wallet", MEMO_WALLET)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    record = json.loads(line)
    assert list(record) == [
        "signature",
        "slot",
        "block_time",
        "asset",
        "token_program",
        "account",
        "owner",
        "amount_raw",
        "decimals",
        "amount",
        "sender",
        "memo",
        "status",
        "reason",
    ]
    assert (record["amount_raw"], record["amount"], record["memo"], record["status"]) == (
        "1000000",
        "0.001",
        "transfer",
        "creditable",
    )


def test_default_wallet_is_the_treasury() -> None:
    # Nothing in the recorded transactions goes to the real treasury wallet: no output, success.
    done = treasury("parse", str(MEMO_DEPOSIT))
    assert (done.returncode, done.stdout) == (0, "")


def test_failed_transaction_prints_nothing_and_succeeds() -> None:
    done = treasury(
        "parse",
        str(SOLANA / "failed_orca_swap_jsonparsed_result.json"),
        "--wallet",
        "G8PrkEwmVx3kt3rXBin5o1bdDC1cvz7oBnXbHksNg7R4",
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is not json", "not valid JSON"),
        (b"[1, 2, 3]", "not a getTransaction reply"),
        (b'{"jsonrpc": "2.0", "result": null, "id": 1}', "result is null"),
        (b'{"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid param"}, "id": 1}', "-32602"),
        (b'{"hello": "world"}', "not a getTransaction reply"),
    ],
)
def test_bad_files_are_named_and_good_ones_still_parsed(tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    done = treasury("parse", str(bad), str(MEMO_DEPOSIT), "--wallet", MEMO_WALLET)
    assert done.returncode == 2
    [message] = done.stderr.splitlines()
    assert str(bad) in message
    assert expected in message
    assert len(done.stdout.splitlines()) == 1  # the good file after the bad one was still parsed


def test_truncated_reply(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(MEMO_DEPOSIT.read_bytes()[:700])
    done = treasury("parse", str(MEMO_DEPOSIT), str(truncated), "--wallet", MEMO_WALLET)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "truncated.json" in done.stderr
    assert len(done.stdout.splitlines()) == 1


def test_meta_null(tmp_path: Path) -> None:
    document = json.loads(MEMO_DEPOSIT.read_text())
    document["result"]["meta"] = None
    path = tmp_path / "meta-null.json"
    path.write_text(json.dumps(document))
    done = treasury("parse", str(path), "--wallet", MEMO_WALLET)
    assert done.returncode == 2
    assert "meta-null.json: meta is null" in done.stderr


def test_missing_file_and_bad_wallet() -> None:
    done = treasury("parse", "/nonexistent/reply.json", "--wallet", MEMO_WALLET)
    assert done.returncode == 2
    assert done.stderr.strip() == "treasury: /nonexistent/reply.json: cannot read: No such file or directory"
    done = treasury("parse", str(MEMO_DEPOSIT), "--wallet", "not-an-address")
    assert done.returncode == 2
    assert "not a Solana address" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors_are_one_line() -> None:
    done = treasury("parse")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    done = treasury("no-such-command")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1


def test_details_adds_outflows_and_instruction() -> None:
    done = treasury(
        "parse",
        str(SOLANA / "sol_transfer_jsonparsed_result.json"),
        "--details",
        "--wallet",
        "6QuXb6mB6WmRASP2y8AavXh6aabBXEH5ZzrSH5xRrgSm",
    )
    assert done.returncode == 0
    [record] = [json.loads(line) for line in done.stdout.splitlines()]
    assert (record["direction"], record["amount_raw"], record["recipient"], record["instruction"]) == (
        "out",
        "10005000",
        "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG",
        "0",
    )


def test_python_dash_m_runs_the_same_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "indexer", "parse", str(MEMO_DEPOSIT), "--wallet", MEMO_WALLET],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert json.loads(done.stdout)["sender"] == "DT1mBDFsNBc1UXa25RdxNvnjL5Lro7su7gX1zpLyCmWe"


def test_dust_setting_from_environment_and_option() -> None:
    # 1,000,000 lamports; with SOL dust at 2,000,000 the deposit is dust.
    done = treasury("parse", str(MEMO_DEPOSIT), "--wallet", MEMO_WALLET, env={"TREASURY_DUST": "SOL=2000000"})
    assert json.loads(done.stdout)["reason"] == "dust"
    done = treasury(
        "parse", str(MEMO_DEPOSIT), "--wallet", MEMO_WALLET, "--dust", "SOL=5", env={"TREASURY_DUST": "SOL=2000000"}
    )
    assert json.loads(done.stdout)["reason"] is None  # the option overrides the variable
