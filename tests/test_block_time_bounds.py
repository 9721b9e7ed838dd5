"""Windows [since, until) as whole-second block times (ledger_client.database.block_time_bounds), used by
the exports, the audit and the chain reconciliation alike.

The recorded USDC transfer of the demo landed at block time 1778761079 = 2026-05-14 12:17:59 UTC.
"""

from __future__ import annotations

import datetime as dt

from ledger_client.database import block_time_bounds, first_block_second

LANDED_S = 1_778_761_079


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_whole_seconds_are_kept() -> None:
    assert first_block_second(at("2026-05-14T12:17:59+00:00")) == LANDED_S
    assert block_time_bounds(at("2026-05-14T00:00:00+00:00"), at("2026-05-15T00:00:00+00:00")) == (
        1_778_716_800,  # 2026-05-14 00:00 UTC = 20,587 days × 86,400 s
        1_778_803_200,
    )


def test_fractions_round_up_at_both_ends() -> None:
    # A block at 12:17:59 is after 12:17:58.5 and before 12:17:59.5: in the window.
    start_s, end_s = block_time_bounds(at("2026-05-14T12:17:58.500+00:00"), at("2026-05-14T12:17:59.500+00:00"))
    assert (start_s, end_s) == (LANDED_S, LANDED_S + 1)
    assert start_s <= LANDED_S < end_s
    # ... but not after 12:17:59.000001 (truncating would have taken it in).
    assert first_block_second(at("2026-05-14T12:17:59.000001+00:00")) == LANDED_S + 1


def test_offsets_are_converted() -> None:
    assert first_block_second(at("2026-05-14T17:47:59+05:30")) == LANDED_S
