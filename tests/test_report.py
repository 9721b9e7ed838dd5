"""`treasury report` (issue 8): the page opens in headless Chromium (Debian's, driven by Playwright) with
no console error, no page error and no request leaving the file; its totals equal the sums of the
deposits export of the same window, computed here from the CSV; and the hand-worked figures of
tests/export_support.py. A screenshot of each run is kept in build/test-artifacts/ (its path is printed).
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.backfill_support import treasury
from tests.export_support import ALL_ROWS, CREDITED_TOTAL, SUSPENSE_TOTAL, export_ledger
from tests.proof_support import environment

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it (scripts/ensure-chromium.sh)
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"
EVERYTHING = ("--since", "2020-01-01T00:00:00Z", "--until", "2027-01-01T00:00:00Z")


def _sums_from_csv(path: Path) -> dict[str, dict[str, Any]]:
    """Per asset, from the export: inflows and amount received (all rows); amount, USD value and credits
    of the rows credited or held."""
    sums: dict[str, dict[str, Any]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            asset = row["asset"] or row["mint"]
            item = sums.setdefault(
                asset,
                {"inflows": 0, "amount": Decimal(0), "usd": Decimal(0), "credited": Decimal(0), "held": Decimal(0)},
            )
            item.setdefault("issued", Decimal(0))
            item["inflows"] += 1
            item["amount"] += Decimal(row["amount"])
            if row["status"] in ("credited", "suspense"):
                item["issued"] += Decimal(row["amount"])
                item["usd"] += Decimal(row["usd_value"])
                item["credited" if row["status"] == "credited" else "held"] += Decimal(row["credits"])
    return sums


def test_report_opens_in_chromium_and_agrees_with_the_export(
    ledger_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert CHROMIUM.exists(), "Debian's chromium is missing: run `sh scripts/ensure-chromium.sh` (make test does)"
    with export_ledger(ledger_url) as (_ledger, settings):
        env = environment(settings)
        audited = treasury("audit", *EVERYTHING, env=env)
        assert audited.returncode == 0, audited.stdout + audited.stderr
        exported = treasury(
            "export", "deposits", *EVERYTHING, "--format", "csv", "--out", str(tmp_path / "d.csv"), env=env
        )
        assert exported.returncode == 0, exported.stderr
        done = treasury("report", *EVERYTHING, "--out", str(tmp_path / "report"), env=env)
        assert done.returncode == 0, done.stderr
    page_path = tmp_path / "report" / "index.html"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / f"report-{request.node.callspec.id}.png"
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda req: None if req.url.startswith("file://") else problems.append(req.url))
            page.goto(page_path.as_uri())
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"report screenshot: {screenshot}")
            by_asset = page.eval_on_selector_all(
                "#totals-by-asset tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
            )
            suspense_rows = page.locator("#suspense tbody tr").count()
            pending_rows = page.locator("#pending tbody tr").count()
            programs = page.eval_on_selector_all(
                "#programs tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
            )
            bars = page.locator("#daily-chart rect").count()
            credited = page.locator("#total-credited").text_content()
            held = page.locator("#total-suspense").text_content()
            audit_row = page.locator("#reconciliation tbody tr", has_text="Audit").text_content() or ""
        finally:
            browser.close()
    assert problems == []
    assert (credited, held) == (CREDITED_TOTAL, SUSPENSE_TOTAL)
    table = {row[0]: row for row in by_asset}
    sums = _sums_from_csv(tmp_path / "d.csv")
    assert set(table) == {*sums, "all"}
    for asset, item in sums.items():
        row = table[asset]
        assert int(row[1]) == item["inflows"]
        assert Decimal(row[2]) == item["amount"]
        assert Decimal(row[3]) == item["issued"]
        assert Decimal(row[4]) == item["usd"]
        assert Decimal(row[6]) == item["credited"]
        assert Decimal(row[7]) == item["held"]
    assert table["all"][1] == str(ALL_ROWS)
    # By hand: OSR 10,000 received, 50.000000 value, 25.000000 bonus, 75.000000 held, 7,000 / 3,000 split.
    assert table["OSR"][1:] == [
        "1",
        "10000.000000000",
        "10000.000000000",
        "50.000000",
        "25.000000",
        "0.000000",
        "75.000000",
        "7000.000000000",
        "3000.000000000",
    ]
    # 3 held (0.01 SOL, 3.8 USDC, 10,000 OSR); 2 waiting for a price (0.042 and 0.024922118 SOL).
    assert (suspense_rows, pending_rows) == (3, 2)
    assert programs == [["Serum Swap", "", "1"]]
    # Seven years drawn in 22-day bars: 2021-04-06 SOL, 2023-03-30 SOL, 2026-05-14 USDC and OSR.
    assert bars == 4
    assert "differences: 0" in audit_row and "credits: 4" in audit_row
    totals = json.loads((tmp_path / "report" / "totals.json").read_text())
    assert (totals["credited"], totals["held_in_suspense"], totals["rows"]) == (
        CREDITED_TOTAL,
        SUSPENSE_TOTAL,
        ALL_ROWS,
    )
