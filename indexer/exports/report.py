"""`treasury report`: one self-contained HTML page (inline CSS and SVG; no script, no network) of the
deposits received in [since, until).

Its numbers come from the deposits export's own rows and accumulator (`DepositTotals`), read in one
snapshot, so they are the export's numbers for the same window. Rendering is pure: `render(data)`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from collections.abc import Iterable, Sequence
from typing import Any, Final

from indexer.exports.rows import COLUMN_NAMES, EXPLORER_TX_URL, ExportRow
from indexer.exports.totals import DepositTotals
from ledger_client.money import format_units
from pricing.quote import iso

LIST_LIMIT: Final = 500  # rows shown in each of the suspense and pending lists (the rest are counted)
_AT: Final = {name: index for index, name in enumerate(COLUMN_NAMES)}
PENDING_STATUSES: Final = ("pending", "pending_price")
# Colours per asset in the chart, in the assets' sorted order (cycling when there are more).
_PALETTE: Final = ("#6b4fbb", "#e8833a", "#26a17b", "#2775ca", "#c0392b", "#7f8c8d", "#d4ac0d", "#16a085")


@dataclasses.dataclass(slots=True)
class ReportData:
    since: dt.datetime
    until: dt.datetime
    generated_at: dt.datetime
    totals: DepositTotals = dataclasses.field(default_factory=DepositTotals)
    suspense: list[Sequence[Any]] = dataclasses.field(default_factory=list)
    suspense_count: int = 0
    pending: list[Sequence[Any]] = dataclasses.field(default_factory=list)
    pending_count: int = 0
    programs: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)  # (program, instruction) -> n
    reconciliation: dict[str, Any] = dataclasses.field(default_factory=dict)

    def add(self, row: Sequence[Any], numbers: Sequence[Any]) -> None:
        self.totals.add(row, numbers)
        status = row[_AT["status"]]
        if status == "suspense":
            self.suspense_count += 1
            if len(self.suspense) < LIST_LIMIT:
                self.suspense.append(row)
        elif status in PENDING_STATUSES:
            self.pending_count += 1
            if len(self.pending) < LIST_LIMIT:
                self.pending.append(row)
        program = row[_AT["program"]]
        if program is not None:
            key = (program, row[_AT["program_instruction"]] or "")
            self.programs[key] = self.programs.get(key, 0) + 1


def collect(rows: Iterable[ExportRow], data: ReportData) -> ReportData:
    for values, numbers in rows:
        data.add(values, numbers)
    return data


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(ident: str, header: Sequence[str], body: Iterable[Sequence[Any]], numeric: frozenset[int]) -> str:
    head = "".join(f"<th>{_e(name)}</th>" for name in header)
    lines = []
    for row in body:
        cells = "".join(
            f'<td class="num">{cell}</td>' if index in numeric else f"<td>{cell}</td>" for index, cell in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
    if not lines:
        lines.append(f'<tr><td colspan="{len(header)}" class="empty">none</td></tr>')
    return f'<table id="{ident}"><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table>'


def _signature_link(signature: str) -> str:
    return f'<a href="{_e(EXPLORER_TX_URL + signature)}">{_e(signature[:8])}…</a>'


def _usd(micros: int) -> str:
    return format_units(micros, 6)


MAX_BARS: Final = 120  # a longer window is drawn in buckets of several days, so bars stay visible


def chart(totals: DepositTotals, since: dt.datetime, until: dt.datetime) -> str:
    """USD value received per asset (credited or held in suspense) per day, stacked bars, as inline SVG.
    Windows longer than MAX_BARS days are drawn in buckets of whole days (said in the caption)."""
    first = since.astimezone(dt.UTC).date()
    last = (until.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).date()
    span_days = (last - first).days + 1
    bucket_days = -(-span_days // MAX_BARS)
    bars = -(-span_days // bucket_days)
    assets = sorted({asset for _day, asset in totals.daily})
    colour = {asset: _PALETTE[index % len(_PALETTE)] for index, asset in enumerate(assets)}
    buckets: dict[tuple[int, str], list[int]] = {}
    for (day, asset), (count, micros) in totals.daily.items():
        point = buckets.setdefault(((day - first).days // bucket_days, asset), [0, 0])
        point[0] += count
        point[1] += micros
    per_bar: dict[int, int] = {}
    for (index, _asset), (_count, micros) in buckets.items():
        per_bar[index] = per_bar.get(index, 0) + micros
    peak = max(per_bar.values(), default=0) or 1
    width, height, left, bottom = 900, 260, 80, 30
    plot_w, plot_h = width - left - 10, height - bottom - 10
    bar_w = plot_w / bars
    parts = [
        f'<svg id="daily-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="USD value received per asset per day">',
        f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 10}" y2="{10 + plot_h}" stroke="#999"/>',
        f'<text x="{left - 6}" y="16" text-anchor="end" class="axis">{_e(_usd(peak))}</text>',
        f'<text x="{left - 6}" y="{10 + plot_h}" text-anchor="end" class="axis">0</text>',
    ]
    for index in range(bars):
        x = left + index * bar_w
        y = float(10 + plot_h)
        start = first + dt.timedelta(days=index * bucket_days)
        for asset in assets:
            stack = buckets.get((index, asset))
            if not stack or stack[1] == 0:
                continue
            bar_h = max(plot_h * stack[1] / peak, 1.0)  # a tiny deposit still shows
            y -= bar_h
            parts.append(
                f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(bar_w - 1, 2):.2f}" height="{bar_h:.2f}" '
                f'fill="{colour[asset]}"><title>{_e(start.isoformat())} {_e(asset)}: {stack[0]} deposits, '
                f"{_e(_usd(stack[1]))} USD</title></rect>"
            )
    step = max(1, bars // 6)
    for index in range(0, bars, step):
        x = left + index * bar_w
        if x > width - 80:  # a label would run off the right edge
            break
        label = (first + dt.timedelta(days=index * bucket_days)).isoformat()
        parts.append(f'<text x="{x:.2f}" y="{height - 8}" class="axis">{_e(label)}</text>')
    parts.append("</svg>")
    legend = " ".join(
        f'<span class="key"><span class="swatch" style="background:{colour[asset]}"></span>{_e(asset)}</span>'
        for asset in assets
    )
    caption = "one bar per day" if bucket_days == 1 else f"one bar per {bucket_days} days"
    return "".join(parts) + f'<p class="legend">{legend or "no deposits in the window"} ({caption})</p>'


def _reconciliation(record: dict[str, Any]) -> str:
    stripe = record.get("last_stripe_reconciliation")
    chain = record.get("last_chain_reconciliation")
    audit = record.get("last_audit")
    verify = record.get("last_verify")
    rows = [
        (
            "Stripe reconciliation",
            "never"
            if not stripe
            else f"{_e(stripe['since'])} .. {_e(stripe['until'])}; all matched: {_e(stripe['all_matched'])}; "
            f"counts: {_e(', '.join(f'{k} {v}' for k, v in sorted(stripe['counts'].items())) or 'none')}; "
            f"finished {_e(stripe['finished_at'])}",
        ),
        (
            "Chain reconciliation",
            "never"
            if not chain
            else f"{_e(chain['since'])} .. {_e(chain['until'])}; differences: {_e(chain['differences'])}; "
            f"warnings: {_e(chain.get('warnings'))}; finished {_e(chain['finished_at'])}",
        ),
        (
            "Audit",
            "never"
            if not audit
            else f"{_e(audit['since'])} .. {_e(audit['until'])}; credits: {_e(audit['credits'])}; "
            f"differences: {_e(audit['differences'])}; finished {_e(audit['finished_at'])}",
        ),
        (
            "Ledger verify (the daemon's nightly job)",
            "never" if not verify else f"ok: {_e(verify['ok'])}; finished {_e(verify['finished_at'])}",
        ),
    ]
    return _table("reconciliation", ("check", "last result"), rows, frozenset())


_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.empty { color: #888; font-style: italic; }
.axis { font-size: 11px; fill: #555; } .legend .key { margin-right: 1em; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em; vertical-align: middle; }
.note { color: #555; font-size: 0.9em; }
"""


def render(data: ReportData) -> str:
    totals = data.totals
    record = totals.record()
    asset_rows = [
        (
            _e(item["asset"]),
            _e(item["inflows"]),
            _e(item["amount_received"]),
            _e(item["amount_credited_or_held"]),
            _e(item["usd_value"]),
            _e(item["bonus"]),
            _e(item["credited"]),
            _e(item["held_in_suspense"]),
            _e(item["osr_burn"]),
            _e(item["osr_retained"]),
        )
        for item in record["by_asset"]
    ]
    asset_rows.append(
        (
            "<b>all</b>",
            _e(totals.rows),
            "",
            "",
            "",
            "",
            f"<b>{_e(record['credited'])}</b>",
            f"<b>{_e(record['held_in_suspense'])}</b>",
            "",
            "",
        )
    )
    attribution_rows = [(_e(method), _e(amount)) for method, amount in record["credited_by_attribution"].items()]
    status_rows = [(_e(status), _e(count)) for status, count in record["by_status"].items()]

    def listed(rows: list[Sequence[Any]], extra: str) -> list[tuple[str, ...]]:
        return [
            (
                _e(row[_AT["deposit_id"]]),
                _e(iso(row[_AT["received_at"]])),
                _signature_link(row[_AT["signature"]]),
                _e(row[_AT["asset"]] or row[_AT["mint"]]),
                _e(row[_AT["amount"]]),
                _e(row[_AT["credits"]] if extra == "credits" else row[_AT["reason"]]),
                _e(row[_AT["sender"]]),
                _e(" ".join(filter(None, (row[_AT["program"]], row[_AT["program_instruction"]])))),
            )
            for row in rows
        ]

    more_suspense = data.suspense_count - len(data.suspense)
    more_pending = data.pending_count - len(data.pending)
    program_rows = [
        (_e(program), _e(instruction), _e(count)) for (program, instruction), count in sorted(data.programs.items())
    ]
    window = f"{iso(data.since)} .. {iso(data.until)}"
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Treasury deposits {_e(window)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>System R treasury: deposits report</h1>",
        f'<p id="window">Deposits received (block time, UTC) in <b>{_e(window)}</b>; '
        f"generated {_e(iso(data.generated_at))}. Money in USD; amounts in each asset's units. The numbers "
        "are those of <code>treasury export deposits</code> for the same window.</p>",
        f'<p id="summary">{_e(totals.rows)} inflows; credited to customers <b id="total-credited">'
        f'{_e(record["credited"])}</b> USD; held in suspense <b id="total-suspense">{_e(record["held_in_suspense"])}'
        "</b> USD.</p>",
        "<h2>Daily deposits per asset (USD value credited or held)</h2>",
        chart(totals, data.since, data.until),
        "<h2>Totals per asset</h2>",
        '<p class="note">Inflows and amount received count every inflow, ignored and pending ones too; the '
        "other columns count the inflows credited or held in suspense.</p>",
        _table(
            "totals-by-asset",
            (
                "asset",
                "inflows",
                "amount received",
                "amount credited or held",
                "USD value",
                "bonus",
                "credited",
                "held in suspense",
                "OSR burn",
                "OSR retained",
            ),
            asset_rows,
            frozenset(range(1, 10)),
        ),
        "<h2>Credited per attribution method</h2>",
        _table("totals-by-attribution", ("method", "credited (USD)"), attribution_rows, frozenset({1})),
        "<h2>Inflows per status</h2>",
        _table("totals-by-status", ("status", "inflows"), status_rows, frozenset({1})),
        f"<h2>Held in suspense ({_e(data.suspense_count)})</h2>",
        _table(
            "suspense",
            ("id", "received at", "signature", "asset", "amount", "credits", "sender", "via program"),
            listed(data.suspense, "credits"),
            frozenset({0, 4, 5}),
        ),
        f'<p class="note">{_e(more_suspense)} more not shown (see the export).</p>' if more_suspense > 0 else "",
        f"<h2>Pending ({_e(data.pending_count)})</h2>",
        _table(
            "pending",
            ("id", "received at", "signature", "asset", "amount", "reason", "sender", "via program"),
            listed(data.pending, "reason"),
            frozenset({0, 4}),
        ),
        f'<p class="note">{_e(more_pending)} more not shown (see the export).</p>' if more_pending > 0 else "",
        "<h2>Deposits through programs</h2>",
        _table("programs", ("program", "instruction", "inflows"), program_rows, frozenset({2})),
        "<h2>Last reconciliations</h2>",
        _reconciliation(data.reconciliation),
        "</body></html>",
    ]
    return "\n".join(body) + "\n"
