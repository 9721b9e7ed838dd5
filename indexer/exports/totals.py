"""Totals of a deposits export, accumulated row by row (pure): the XLSX totals sheet, the command's
summary and the report all use this one accumulator, so their numbers are the export's numbers.

Money is summed in integer micro-USD and amounts in base units (the integers each export row comes
with); text is produced only at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from indexer.exports.rows import COLUMN_NAMES
from ledger_client.money import format_units

_AT: Final = {name: index for index, name in enumerate(COLUMN_NAMES)}
CREDITED: Final = "credited"
SUSPENSE: Final = "suspense"


@dataclasses.dataclass(slots=True)
class AssetTotals:
    asset: str  # the symbol, or the mint for one outside the asset table
    decimals: int
    inflows: int = 0
    amount_raw: int = 0  # every inflow's, ignored and pending ones included
    issued_amount_raw: int = 0  # of the inflows credited or held in suspense
    priced: int = 0
    usd_value_micros: int = 0
    bonus_micros: int = 0
    credited_micros: int = 0  # credits of deposits credited to a customer
    suspense_micros: int = 0  # credits of priced deposits held in suspense
    osr_burn_raw: int = 0
    osr_retained_raw: int = 0

    def record(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "inflows": self.inflows,
            "amount_received": format_units(self.amount_raw, self.decimals),
            "amount_credited_or_held": format_units(self.issued_amount_raw, self.decimals),
            "usd_value": format_units(self.usd_value_micros, 6),
            "bonus": format_units(self.bonus_micros, 6),
            "credited": format_units(self.credited_micros, 6),
            "held_in_suspense": format_units(self.suspense_micros, 6),
            "osr_burn": format_units(self.osr_burn_raw, self.decimals),
            "osr_retained": format_units(self.osr_retained_raw, self.decimals),
        }


@dataclasses.dataclass(slots=True)
class DepositTotals:
    rows: int = 0
    by_asset: dict[str, AssetTotals] = dataclasses.field(default_factory=dict)
    by_status: dict[str, int] = dataclasses.field(default_factory=dict)
    # credits of deposits credited to customers, by how they were attributed (memo, linked_wallet, operator)
    credited_by_attribution_micros: dict[str, int] = dataclasses.field(default_factory=dict)
    # (UTC day, asset) -> [inflows, USD value in micro-USD]: the report's daily chart
    daily: dict[tuple[dt.date, str], list[int]] = dataclasses.field(default_factory=dict)

    def add(self, row: Sequence[Any], numbers: Sequence[Any]) -> None:
        """One export row and its integer amounts (rows.export_row's pair)."""
        amount_raw, usd_micros, bonus_micros, credits_micros, burn_raw, retained_raw = numbers
        self.rows += 1
        asset = row[_AT["asset"]] or row[_AT["mint"]]
        totals = self.by_asset.get(asset)
        if totals is None:
            totals = self.by_asset[asset] = AssetTotals(asset, row[_AT["decimals"]])
        status = row[_AT["status"]]
        self.by_status[status] = self.by_status.get(status, 0) + 1
        totals.inflows += 1
        totals.amount_raw += amount_raw
        if usd_micros is not None:
            totals.priced += 1
        issued = status in (CREDITED, SUSPENSE)  # credits issued: to a customer, or held
        if issued:
            totals.issued_amount_raw += amount_raw
            totals.usd_value_micros += usd_micros or 0
            totals.bonus_micros += bonus_micros or 0
            totals.osr_burn_raw += burn_raw or 0
            totals.osr_retained_raw += retained_raw or 0
        if status == CREDITED:
            totals.credited_micros += credits_micros or 0
            method = row[_AT["attribution"]] or "unknown"
            self.credited_by_attribution_micros[method] = self.credited_by_attribution_micros.get(method, 0) + (
                credits_micros or 0
            )
        elif status == SUSPENSE:
            totals.suspense_micros += credits_micros or 0
        day = (row[_AT["received_at"]].date(), asset)
        point = self.daily.get(day)
        if point is None:
            point = self.daily[day] = [0, 0]
        point[0] += 1
        point[1] += (usd_micros or 0) if issued else 0

    @property
    def credited_micros(self) -> int:
        return sum(item.credited_micros for item in self.by_asset.values())

    @property
    def suspense_micros(self) -> int:
        return sum(item.suspense_micros for item in self.by_asset.values())

    def record(self) -> dict[str, Any]:
        """Totals as JSON-ready text (money with 6 places)."""
        return {
            "rows": self.rows,
            "by_status": dict(sorted(self.by_status.items())),
            "by_asset": [self.by_asset[name].record() for name in sorted(self.by_asset)],
            "credited_by_attribution": {
                method: format_units(micros, 6)
                for method, micros in sorted(self.credited_by_attribution_micros.items())
            },
            "credited": format_units(self.credited_micros, 6),
            "held_in_suspense": format_units(self.suspense_micros, 6),
        }
