"""The reconciliation report as JSON, CSV or a table. Pure: a RunResult in, text out.

JSON (INTERFACE.md, binding):

    {"since": …, "until": …,
     "totals": {"currency": "USD", "sessions": n, "paid": n, "gross": "…", "fees": "…", "net": "…",
                "expected": "…", "credited": "…", "refunded": "…", "disputed": "…", "reversed": "…",
                "counts": {"matched": n, …every class…}, "fixed": n},
     "findings": [{"class": …, "session": "cs_…", "amount": "…", "currency": "…", "detail": "…"}]}

`amount` is in the currency's major units ("25.00"; ¥800 is "800"), `currency` its upper-case ISO
code; totals are USD: gross, fees and net from Stripe's balance transactions of the paid sessions,
expected (what the window's creditable sessions credit), credited (the ledger's top-up credits for
them), refunded and disputed (succeeded refunds and lost disputes at Stripe) and reversed (the
ledger's debits for them, net of re-credits). CSV: one header row, then one row per finding (the
totals are in the table and JSON forms).
"""

from __future__ import annotations

import csv
import io
from typing import Any, Final

from reconcile.currency import USD, format_micros, format_minor
from reconcile.job import RunResult
from reconcile.matcher import CLASSES, Finding

CSV_FIELDS: Final = ("class", "session", "amount", "currency", "detail")


def finding_record(finding: Finding) -> dict[str, str]:
    return {
        "class": finding.cls,
        "session": finding.session,
        "amount": finding.amount,
        "currency": finding.currency.upper(),
        "detail": finding.description,
    }


def totals_record(result: RunResult) -> dict[str, Any]:
    totals = result.totals
    return {
        "currency": USD.upper(),
        "sessions": totals.sessions,
        "paid": totals.paid,
        "gross": format_minor(totals.gross_cents, USD),
        "fees": format_minor(totals.fees_cents, USD),
        "net": format_minor(totals.net_cents, USD),
        "expected": format_micros(totals.expected_micros),
        "credited": format_micros(totals.credited_micros),
        "refunded": format_minor(totals.refunded_cents, USD),
        "disputed": format_minor(totals.disputed_cents, USD),
        "reversed": format_micros(totals.reversed_micros),
        "counts": result.counts,
        "fixed": result.fixed,
    }


def report_record(result: RunResult) -> dict[str, Any]:
    """The JSON object of INTERFACE.md."""
    return {
        "since": result.since.isoformat(),
        "until": result.until.isoformat(),
        "totals": totals_record(result),
        "findings": [finding_record(finding) for finding in result.findings],
    }


def report_csv(result: RunResult) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for finding in result.findings:
        writer.writerow(finding_record(finding))
    return buffer.getvalue()


def report_table(result: RunResult) -> str:
    records = [finding_record(finding) for finding in result.findings]
    widths = {
        name: max([len(name), *(len(record[name]) for record in records)])
        for name in ("class", "session", "amount", "currency")
    }
    lines = [
        f"Stripe reconciliation {result.since.isoformat()} .. {result.until.isoformat()}"
        + (" (--fix)" if result.fix else ""),
        "",
    ]
    if records:
        header = "  ".join(
            [
                "CLASS".ljust(widths["class"]),
                "SESSION".ljust(widths["session"]),
                "AMOUNT".rjust(widths["amount"]),
                "CURRENCY".ljust(widths["currency"]),
                "DETAIL",
            ]
        )
        lines.append(header)
        for record in records:
            lines.append(
                "  ".join(
                    [
                        record["class"].ljust(widths["class"]),
                        record["session"].ljust(widths["session"]),
                        record["amount"].rjust(widths["amount"]),
                        record["currency"].ljust(widths["currency"]),
                        record["detail"],
                    ]
                )
            )
    else:
        lines.append("no sessions and no credits in this window")
    totals = totals_record(result)
    counts = result.counts
    found = ", ".join(f"{name} {counts[name]}" for name in CLASSES if counts[name]) or "none"
    lines += [
        "",
        f"sessions {totals['sessions']}, paid top-ups {totals['paid']}",
        f"gross {totals['gross']} USD, fees {totals['fees']} USD, net {totals['net']} USD",
        f"expected {totals['expected']} USD, credited {totals['credited']} USD",
        f"refunded {totals['refunded']} USD, disputed {totals['disputed']} USD, reversed {totals['reversed']} USD",
        f"findings: {found}",
    ]
    if result.fix:
        lines.append(f"fixed: {result.fixed} transaction(s) posted")
    return "\n".join(lines) + "\n"
