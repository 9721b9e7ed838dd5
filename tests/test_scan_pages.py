"""The pure page logic of the signature walk (indexer.scan): bounds, confused nodes, progress."""

from __future__ import annotations

import dataclasses

import pytest

from indexer.scan import (
    BeforeIgnoredError,
    NoProgressError,
    ScanError,
    Segment,
    UntilIgnoredError,
    judge_page,
    request,
)


@dataclasses.dataclass(frozen=True)
class Entry:
    signature: str
    slot: int
    block_time: int | None = None


def page(*items: tuple[str, int]) -> list[Entry]:
    return [Entry(signature, slot, 1_700_000_000 + slot) for signature, slot in items]


def test_first_page_of_a_fresh_history_sets_the_resume_point() -> None:
    segment = Segment("A")
    outcome = judge_page(segment, page(("s9", 90), ("s8", 80), ("s7", 70)), limit=3)
    assert [e.signature for e in outcome.wanted] == ["s9", "s8", "s7"]
    assert outcome.newest is not None and outcome.newest.signature == "s9"
    assert outcome.remaining == Segment("A", upper_signature="s7", upper_slot=70)
    assert request(outcome.remaining, 3) == {"address": "A", "before": "s7", "until": None, "limit": 3}


def test_short_or_empty_page_finishes_the_segment() -> None:
    segment = Segment("A", upper_signature="s7", upper_slot=70)
    assert judge_page(segment, page(("s6", 60)), limit=3).remaining is None
    assert judge_page(segment, [], limit=3) == judge_page(segment, [], limit=3)
    assert judge_page(segment, [], limit=3).remaining is None


def test_busy_slot_entries_at_the_bounds_are_kept() -> None:
    # Three transactions in slot 70: the resume point s7a and two more after it in the same slot.
    segment = Segment("A", upper_signature="s7a", upper_slot=70, lower_signature="s5", lower_slot=50)
    outcome = judge_page(segment, page(("s7b", 70), ("s7c", 70), ("s6", 60)), limit=3)
    assert [e.signature for e in outcome.wanted] == ["s7b", "s7c", "s6"]
    assert outcome.remaining == dataclasses.replace(segment, upper_signature="s6", upper_slot=60)


def test_node_that_ignores_until_is_detected() -> None:
    segment = Segment("A", lower_signature="s5", lower_slot=50)
    # It returns its newest page, which runs down past the cursor: the cursor itself is in it.
    with pytest.raises(UntilIgnoredError):
        judge_page(segment, page(("s9", 90), ("s5", 50), ("s4", 40)), limit=3)
    # Or everything it returns is older than the cursor's slot.
    with pytest.raises(UntilIgnoredError):
        judge_page(segment, page(("s4", 40), ("s3", 30)), limit=3)


def test_node_that_ignores_before_is_detected() -> None:
    segment = Segment("A", upper_signature="s7", upper_slot=70)
    with pytest.raises(BeforeIgnoredError):
        judge_page(segment, page(("s9", 90), ("s8", 80)), limit=3)
    with pytest.raises(BeforeIgnoredError):
        judge_page(segment, page(("s7", 70), ("s6", 60)), limit=3)


def test_page_out_of_order_is_refused() -> None:
    with pytest.raises(ScanError, match="not newest first"):
        judge_page(Segment("A"), page(("s1", 10), ("s2", 20)), limit=3)


def test_no_progress_is_reported() -> None:
    # A resume point without a slot cannot be checked by slot; the repeat is still caught.
    segment = Segment("A", upper_signature="s7", upper_slot=None)
    with pytest.raises((NoProgressError, BeforeIgnoredError)):
        judge_page(segment, page(("s8", 80), ("s7", 70)), limit=2)


def test_start_time_cuts_the_history() -> None:
    # Block times are 1,700,000,000 + slot; the start is slot 65's time: s6 and older are not wanted.
    segment = Segment("A", stop_before_time=1_700_000_065)
    outcome = judge_page(segment, page(("s9", 90), ("s7", 70), ("s6", 60), ("s5", 50)), limit=4)
    assert [e.signature for e in outcome.wanted] == ["s9", "s7"]
    assert outcome.remaining is None
