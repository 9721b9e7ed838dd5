"""Reports of chain reconciliation and the audit as JSON-safe records and text tables. Pure.

Chain reconciliation (`treasury reconcile chain --format json`):

    {"since": …, "until": …, "clean": bool, "accounts_total": n, "differences": n, "warnings": n,
     "accounts": [{"account": …, "owner": …, "asset": "SOL"|mint, "symbol": …, "kind": "wallet"|"token_account",
                   "decimals": n, "status": "ok"|"difference", "live": bool,
                   "chain_transactions": n, "recorded_transactions": n, "unknown_changes": n,
                   "opening_raw": "…"|null, "closing_raw": "…"|null, "chain_change_raw": "…",
                   "inflows_raw": "…", "outflows_raw": "…", "fees_raw": "…", "recorded_change_raw": "…",
                   "difference_raw": "…", "difference": "…",
                   "candidates": [{"signature", "slot", "block_time", "reason", "chain_change_raw",
                                   "recorded_change_raw"}],
                   "gaps": [{"after", "before", "amount_raw"}]}]}

Raw amounts are integer strings in base units (lamports, token base units); `difference` is the same
in whole tokens. The audit (`treasury audit --format json`):

    {"since": …, "until": …, "clean": bool, "credits": n, "assignments": n, "differences_total": n,
     "deposits_with_differences": n,
     "differences": [{"deposit": key, "deposit_id": n|null, "signature": …, "field": …,
                      "evidence": …, "ledger": …, "detail": …}]}
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pricing.quote import iso

if TYPE_CHECKING:
    from reconcile.audit import AuditResult
    from reconcile.chain import AccountResult, ChainResult


def amount_text(amount_raw: int, decimals: int) -> str:
    """Base units as a plain decimal (no exponent, no trailing zeros): 1000000 lamports -> "0.001"."""
    sign = "-" if amount_raw < 0 else ""
    whole, fraction = divmod(abs(amount_raw), 10**decimals)
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(fraction).zfill(decimals).rstrip('0')}"


def _optional(value: int | None) -> str | None:
    return None if value is None else str(value)


def account_record(result: AccountResult) -> dict[str, Any]:
    account = result.account
    return {
        "account": account.address,
        "owner": account.owner,
        "asset": account.asset,
        "symbol": account.symbol,
        "kind": account.kind,
        "decimals": account.decimals,
        "status": "ok" if result.clean else "difference",
        "live": result.live,
        "chain_transactions": result.chain_transactions,
        "recorded_transactions": result.recorded_transactions,
        "unknown_changes": result.unknown_changes,
        "opening_raw": _optional(result.opening_raw),
        "closing_raw": _optional(result.closing_raw),
        "chain_change_raw": str(result.chain_change_raw),
        "inflows_raw": str(result.inflows_raw),
        "outflows_raw": str(result.outflows_raw),
        "fees_raw": str(result.fees_raw),
        "recorded_change_raw": str(result.recorded_change_raw),
        "difference_raw": str(result.difference_raw),
        "difference": amount_text(result.difference_raw, account.decimals),
        "candidates": [
            {
                "signature": candidate.signature,
                "slot": candidate.slot,
                "block_time": candidate.block_time,
                "reason": candidate.reason,
                "chain_change_raw": _optional(candidate.chain_change_raw),
                "recorded_change_raw": str(candidate.recorded_change_raw),
            }
            for candidate in result.candidates
        ],
        "gaps": [
            {"after": gap.after_signature, "before": gap.before_signature, "amount_raw": str(gap.amount_raw)}
            for gap in result.gaps
        ],
    }


def chain_record(result: ChainResult) -> dict[str, Any]:
    return {
        "since": iso(result.since),
        "until": iso(result.until),
        "clean": result.clean,
        "accounts_total": len(result.accounts),
        "differences": result.differences,
        "warnings": result.warnings,
        "accounts": [account_record(account) for account in result.accounts],
    }


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows
    )


def _when(block_time: int | None) -> str:
    if block_time is None:
        return "-"
    return dt.datetime.fromtimestamp(block_time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def chain_table(result: ChainResult) -> str:
    """One line per account, then the transactions that explain each difference and the warnings."""
    rows: list[tuple[str, ...]] = [
        ("account", "asset", "transactions", "chain change", "recorded change", "difference", "status")
    ]
    for item in result.accounts:
        decimals = item.account.decimals
        rows.append(
            (
                item.account.address,
                item.account.symbol or item.account.asset,
                str(item.chain_transactions),
                amount_text(item.chain_change_raw, decimals),
                amount_text(item.recorded_change_raw, decimals),
                amount_text(item.difference_raw, decimals),
                "ok" if item.clean else "DIFFERENCE",
            )
        )
    lines = [_table(rows)]
    for item in result.accounts:
        decimals = item.account.decimals
        label = f"{item.account.address} ({item.account.symbol or item.account.asset})"
        for candidate in item.candidates:
            change = "?" if candidate.chain_change_raw is None else amount_text(candidate.chain_change_raw, decimals)
            lines.append(
                f"  {label}: {candidate.reason} {candidate.signature} at {_when(candidate.block_time)}: "
                f"chain {change}, recorded {amount_text(candidate.recorded_change_raw, decimals)}\n"
            )
        if item.unknown_changes:
            lines.append(f"  {label}: {item.unknown_changes} transaction(s) whose change could not be read\n")
        for gap in item.gaps:
            before = gap.before_signature or "the live balance"
            lines.append(
                f"  warning: {label}: balances do not chain between {gap.after_signature} and {before} "
                f"({amount_text(gap.amount_raw, decimals)}): the node's history may be incomplete\n"
            )
    lines.append(
        f"{iso(result.since)} .. {iso(result.until)}: {len(result.accounts)} account(s), "
        f"{result.differences} with differences, {result.warnings} warning(s)\n"
    )
    return "".join(lines)


def audit_record(result: AuditResult) -> dict[str, Any]:
    return {
        "since": iso(result.since),
        "until": iso(result.until),
        "clean": result.clean,
        "credits": result.credits,
        "assignments": result.assignments,
        "differences_total": result.differences_total,
        "deposits_with_differences": result.deposits_with_differences,
        "differences": [
            {
                "deposit": item.deposit,
                "deposit_id": item.deposit_id,
                "signature": item.signature,
                "field": item.field,
                "evidence": item.evidence,
                "ledger": item.ledger,
                "detail": item.detail,
            }
            for item in result.differences
        ],
    }


def audit_table(result: AuditResult) -> str:
    lines = []
    if result.differences:
        rows: list[tuple[str, ...]] = [("deposit", "id", "field", "evidence gives", "ledger holds", "detail")]
        rows += [
            (
                item.deposit,
                "-" if item.deposit_id is None else str(item.deposit_id),
                item.field,
                item.evidence,
                item.ledger,
                item.detail,
            )
            for item in result.differences
        ]
        lines.append(_table(rows))
    more = result.differences_total - len(result.differences)
    lines.append(
        f"{iso(result.since)} .. {iso(result.until)}: {result.credits} credit(s) and {result.assignments} "
        f"assignment(s) audited, {result.differences_total} difference(s)"
        + (f" ({more} not listed)" if more else "")
        + "\n"
    )
    return "".join(lines)
