"""The pure parts of chain reconciliation (reconcile.chain): comparing one account's chain history with
what was recorded, and listing a window of history from signature pages. Balances and amounts below
are made up to make the arithmetic plain; the end-to-end tests (test_chain_reconcile.py) use the
recorded mainnet data."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.chain import (
    CHANGE_NOT_RECORDED,
    NOT_RECORDED,
    RECORDED_NOT_ON_CHAIN,
    Balances,
    Candidate,
    ChainTransaction,
    HistoryGap,
    RecordedFlow,
    RecordedTransaction,
    TreasuryAccount,
    check_window,
    compare_account,
    list_window,
)
from reconcile.errors import ChainHistoryError, InvalidWindowError

WALLET = TreasuryAccount("W", "W", "SOL", "SOL", 9, "wallet")
TOKEN = TreasuryAccount("T", "W", "MINT", "USDC", 6, "token_account")


def chain_tx(signature: str, slot: int, pre: int | None, post: int | None, *, failed: bool = False) -> ChainTransaction:
    balances = Balances(pre, post) if pre is not None and post is not None else None
    return ChainTransaction(signature, slot, 1_700_000_000 + slot, failed, balances)


def stored(
    signature: str, slot: int, *, reply: bool = True, failed: bool = False, fee: int = 5_000, payer: str = "W"
) -> RecordedTransaction:
    """A stored transaction; `reply`: its reply was kept (the balances in ChainTransaction stand for it)."""
    return RecordedTransaction(signature, slot, 1_700_000_000 + slot, failed, fee, payer, reply)


def flow(signature: str, slot: int, change: int) -> RecordedFlow:
    return RecordedFlow(signature, slot, 1_700_000_000 + slot, change, f"key:{signature}:{change}")


def test_a_history_recorded_in_full_reconciles_to_zero() -> None:
    # +1,000,000 (0 -> 1,000,000), −205,000 (an outflow of 200,000 plus its 5,000 fee), +50,000.
    chain = [chain_tx("a", 1, 0, 1_000_000), chain_tx("b", 2, 1_000_000, 795_000), chain_tx("c", 3, 795_000, 845_000)]
    recorded = {item.signature: stored(item.signature, item.slot) for item in chain}
    flows = [flow("a", 1, 1_000_000), flow("b", 2, -205_000), flow("c", 3, 50_000)]
    result = compare_account(WALLET, chain, recorded, flows)
    assert result.clean
    assert (result.opening_raw, result.closing_raw, result.chain_change_raw) == (0, 845_000, 845_000)
    # 1,050,000 in − 205,000 out = 845,000
    assert (result.inflows_raw, result.outflows_raw, result.fees_raw, result.recorded_change_raw) == (
        1_050_000,
        205_000,
        0,
        845_000,
    )
    assert (result.chain_transactions, result.recorded_transactions, result.candidates, result.gaps) == (3, 3, (), ())


def test_a_transaction_never_recorded_is_named_with_its_change() -> None:
    chain = [chain_tx("a", 1, 0, 1_000_000), chain_tx("hidden", 2, 1_000_000, 3_500_000)]
    result = compare_account(WALLET, chain, {"a": stored("a", 1)}, [flow("a", 1, 1_000_000)])
    assert result.difference_raw == 2_500_000  # 3,500,000 − 1,000,000 on chain, nothing recorded
    assert result.candidates == (Candidate("hidden", 2, 1_700_000_002, NOT_RECORDED, 2_500_000, 0),)
    assert not result.clean


def test_a_recorded_transaction_whose_change_was_not_recorded_is_named() -> None:
    # The reply says −300,000; the outflow row is gone, so the tables say 0.
    chain = [chain_tx("a", 1, 500_000, 200_000)]
    result = compare_account(WALLET, chain, {"a": stored("a", 1)}, [])
    assert result.difference_raw == -300_000
    assert result.candidates == (Candidate("a", 1, 1_700_000_001, CHANGE_NOT_RECORDED, -300_000, 0),)


def test_a_recorded_change_the_chain_does_not_list_is_named() -> None:
    chain = [chain_tx("a", 1, 0, 10)]
    flows = [flow("a", 1, 10), flow("ghost", 5, 7), flow("ghost", 5, -2)]
    result = compare_account(WALLET, chain, {"a": stored("a", 1)}, flows)
    assert result.difference_raw == -5  # 10 on chain; 10 + 7 − 2 recorded
    assert result.candidates == (Candidate("ghost", 5, 1_700_000_005, RECORDED_NOT_ON_CHAIN, 0, 5),)


def test_the_fee_of_a_failed_transaction_the_wallet_paid_is_counted() -> None:
    # The failed transaction changes the wallet's lamports by its fee, 15,000, and nothing else.
    chain = [chain_tx("ok", 1, 100_000, 600_000), chain_tx("failed", 2, 600_000, 585_000, failed=True)]
    recorded = {"ok": stored("ok", 1), "failed": stored("failed", 2, reply=False, failed=True, fee=15_000)}
    result = compare_account(WALLET, chain, recorded, [flow("ok", 1, 500_000)])
    assert result.clean
    assert (result.fees_raw, result.recorded_change_raw, result.chain_change_raw) == (15_000, 485_000, 485_000)
    # Paid by someone else, the fee is not the wallet's: then the chain's −15,000 is a difference.
    other = {**recorded, "failed": stored("failed", 2, reply=False, failed=True, fee=15_000, payer="X")}
    result = compare_account(WALLET, chain, other, [flow("ok", 1, 500_000)])
    assert result.fees_raw == 0
    assert result.difference_raw == -15_000
    assert result.candidates == (Candidate("failed", 2, 1_700_000_002, CHANGE_NOT_RECORDED, -15_000, 0),)


def test_fees_are_lamports_of_the_wallet_only() -> None:
    chain = [chain_tx("failed", 2, 7, 7, failed=True)]
    result = compare_account(TOKEN, chain, {"failed": stored("failed", 2, reply=False, failed=True, payer="T")}, [])
    assert (result.fees_raw, result.clean) == (0, True)


def test_a_transaction_stored_without_its_reply_carries_what_was_recorded() -> None:
    # "mid" moved no treasury balance when it was parsed: no reply kept, its change is taken as 0.
    chain = [chain_tx("a", 1, 0, 40), chain_tx("mid", 2, None, None), chain_tx("c", 3, 40, 100)]
    recorded = {"a": stored("a", 1), "mid": stored("mid", 2, reply=False), "c": stored("c", 3)}
    result = compare_account(WALLET, chain, recorded, [flow("a", 1, 40), flow("c", 3, 60)])
    assert result.clean
    assert (result.opening_raw, result.closing_raw, result.gaps) == (0, 100, ())


def test_an_unknown_change_leaves_the_account_unreconciled() -> None:
    # Not recorded and not fetched (beyond max_fetch): its change is unknown.
    chain = [chain_tx("a", 1, 0, 40), chain_tx("unread", 2, None, None)]
    result = compare_account(WALLET, chain, {"a": stored("a", 1)}, [flow("a", 1, 40)])
    assert (result.unknown_changes, result.difference_raw, result.clean) == (1, 0, False)
    assert result.candidates == (Candidate("unread", 2, 1_700_000_002, NOT_RECORDED, None, 0),)


def test_balances_that_do_not_chain_are_a_warning_not_a_difference() -> None:
    # After "a" the wallet holds 40; before "b" it holds 65: 25 arrived in a transaction the node does
    # not list. After "b" it holds 75; the live balance is 70: −5 after it.
    chain = [chain_tx("a", 1, 0, 40), chain_tx("b", 2, 65, 75)]
    recorded = {"a": stored("a", 1), "b": stored("b", 2)}
    result = compare_account(WALLET, chain, recorded, [flow("a", 1, 40), flow("b", 2, 10)], live_balance_raw=70)
    assert result.clean
    assert result.gaps == (HistoryGap("a", "b", 25), HistoryGap("b", None, -5))
    assert (result.opening_raw, result.closing_raw, result.live) == (0, 70, True)


def test_an_account_without_history_in_a_live_window_keeps_its_live_balance() -> None:
    result = compare_account(WALLET, [], {}, [], live_balance_raw=123)
    assert (result.opening_raw, result.closing_raw, result.clean) == (123, 123, True)


def test_window_times_need_an_offset_and_an_order() -> None:
    since = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    with pytest.raises(InvalidWindowError, match="not after"):
        check_window(since, since)
    with pytest.raises(InvalidWindowError, match="UTC offset"):
        check_window(since.replace(tzinfo=None), since + dt.timedelta(days=1))
    assert check_window(since, since + dt.timedelta(hours=1))[1] == dt.datetime(2026, 1, 2, 1, tzinfo=dt.UTC)


# --- listing a window of history ---


@dataclasses.dataclass(frozen=True)
class Entry:
    signature: str
    slot: int
    block_time: int | None
    err: Any = None


class PagedHistory:
    """A history served page by page as getSignaturesForAddress serves it (newest first, `before`
    exclusive). `ignore_before` makes it answer every page from the top, as a confused node would."""

    def __init__(self, entries: Sequence[Entry], *, ignore_before: bool = False) -> None:
        self.entries = sorted(entries, key=lambda entry: -entry.slot)
        self.ignore_before = ignore_before
        self.calls: list[str | None] = []

    async def signatures(self, address: str, *, before: str | None, limit: int) -> Sequence[Entry]:
        self.calls.append(before)
        start = 0
        if before is not None and not self.ignore_before:
            known = [entry.signature for entry in self.entries]
            if before not in known:
                return []  # as agave's blockstore answers an unknown `before`
            start = known.index(before) + 1
        return self.entries[start : start + limit]

    async def transactions(self, signatures: Sequence[str]) -> list[bytes | None]:
        return [None for _ in signatures]

    async def balance(self, account: TreasuryAccount) -> tuple[int, int]:
        return 0, 0


def history(count: int) -> list[Entry]:
    # Slot n at time 1,000 + 10 n.
    return [Entry(f"s{n}", n, 1_000 + 10 * n) for n in range(count)]


def test_a_window_is_listed_from_pages_down_to_its_start() -> None:
    source = PagedHistory(history(50))
    # Window [1,100, 1,300): slots 10..29, found on pages of 7 (newest first: 49..43, 42..36, …).
    found = asyncio.run(list_window(source, "A", 1_100, 1_300, before=None, page_limit=7))
    assert [entry.slot for entry in found] == list(range(10, 30))
    # Pages until the one holding slot 9 (below the window): 49-43, 42-36, 35-29, 28-22, 21-15, 14-8.
    assert source.calls == [None, "s43", "s36", "s29", "s22", "s15"]


def test_a_listing_starts_below_an_anchor_and_ends_at_the_first_signature() -> None:
    source = PagedHistory(history(12))
    found = asyncio.run(list_window(source, "A", 0, 10_000, before="s10", page_limit=5))
    assert [entry.slot for entry in found] == list(range(10))
    assert source.calls == ["s10", "s5", "s0"]


def test_an_anchor_the_node_does_not_know_restarts_the_listing_from_the_newest() -> None:
    source = PagedHistory(history(6))
    found = asyncio.run(list_window(source, "A", 1_020, 10_000, before="dropped-fork", page_limit=4))
    assert [entry.slot for entry in found] == [2, 3, 4, 5]  # times 1,020..1,050
    assert source.calls == ["dropped-fork", None, "s2"]


def test_entries_without_a_block_time_take_the_time_of_the_newer_one() -> None:
    entries = [Entry("new", 3, 2_000), Entry("old-no-time", 2, None), Entry("older", 1, 900)]
    found = asyncio.run(list_window(PagedHistory(entries), "A", 1_000, 3_000, before=None))
    assert [entry.signature for entry in found] == ["old-no-time", "new"]


def test_entries_after_a_live_balance_are_left_out() -> None:
    found = asyncio.run(list_window(PagedHistory(history(10)), "A", 0, 10_000, before=None, max_slot=6))
    assert [entry.slot for entry in found] == list(range(7))


def test_a_node_that_ignores_before_is_refused_and_pages_are_bounded() -> None:
    with pytest.raises(ChainHistoryError, match="ignored before"):
        asyncio.run(
            list_window(PagedHistory(history(20), ignore_before=True), "A", 0, 10_000, before=None, page_limit=5)
        )
    with pytest.raises(ChainHistoryError, match="more than 3 pages"):
        asyncio.run(list_window(PagedHistory(history(20)), "A", 0, 10_000, before=None, page_limit=5, max_pages=3))


# --- properties ---


@settings(max_examples=200, deadline=None)
@given(
    changes=st.lists(st.integers(min_value=-(10**12), max_value=10**12), min_size=1, max_size=30),
    opening=st.integers(min_value=0, max_value=10**15),
    lost=st.data(),
)
def test_a_complete_record_is_clean_and_each_lost_record_is_named_with_its_change(
    changes: list[int], opening: int, lost: st.DataObject
) -> None:
    # A chained history: each transaction starts where the previous one ended.
    chain, balance = [], opening
    for slot, change in enumerate(changes):
        chain.append(chain_tx(f"t{slot}", slot, balance, balance + change))
        balance += change
    recorded = {item.signature: stored(item.signature, item.slot) for item in chain}
    flows = [flow(f"t{slot}", slot, change) for slot, change in enumerate(changes) if change]
    complete = compare_account(WALLET, chain, recorded, flows)
    assert complete.clean
    assert (complete.opening_raw, complete.closing_raw, complete.chain_change_raw) == (opening, balance, sum(changes))
    # Lose one transaction from the records: the difference is its change, and it alone is named.
    index = lost.draw(st.integers(min_value=0, max_value=len(changes) - 1))
    signature = f"t{index}"
    partial = compare_account(
        WALLET,
        chain,
        {key: value for key, value in recorded.items() if key != signature},
        [item for item in flows if item.signature != signature],
    )
    assert partial.difference_raw == changes[index]
    assert [(c.signature, c.reason, c.chain_change_raw) for c in partial.candidates] == [
        (signature, NOT_RECORDED, changes[index])
    ]
