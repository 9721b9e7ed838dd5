"""Walking an address's signature history in bounded pages, resumably. Pure: no I/O, no clock.

`getSignaturesForAddress` returns signatures newest first, at most 1,000 a page, between `before`
(exclusive) and `until` (exclusive). The scanner keeps, per watched address:

- a **head**: the newest signature processed, where the next forward poll stops (`until`);
- open **segments**: stretches of history still to walk, each from `upper` (exclusive, where the walk
  resumes with `before`; None = from the newest) down to `lower` (exclusive, `until`; None = down to
  the first signature, or to `stop_before_time`).

Every signature of the history is either processed or inside an open segment; a segment shrinks one
page at a time, in the same database transaction as what that page recorded, so a crash at any point
resumes exactly where it stopped and memory stays one page deep however long the history is.

Nodes misbehave: one that does not know `until` silently returns the newest page (its entries reach
down to, or below, the lower bound); one that does not know `before` returns a page starting at or
above the resume point. Such a page is discarded, never taken as new history. A walk that stops
making progress (the same resume point twice) is reported instead of looping.

Errors:
    ScanError
      ├── UntilIgnoredError      the node answered as if it did not know `until`; page discarded
      ├── BeforeIgnoredError     the node answered as if it did not know `before`; page discarded
      └── NoProgressError        the walk would not move; stopped instead of looping
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Final, Protocol

PAGE_LIMIT: Final = 1000  # the RPC's maximum page size


class ScanError(Exception):
    """Base of the scanner's errors; `address` names the history concerned."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(f"{address}: {message}")
        self.address = address


class UntilIgnoredError(ScanError):
    """The node returned signatures at or below the lower bound: it did not know `until`."""


class BeforeIgnoredError(ScanError):
    """The node returned signatures at or above the resume point: it did not know `before`."""


class NoProgressError(ScanError):
    """The walk did not move: the same resume point came back."""


class SignatureEntry(Protocol):
    """What the scanner reads of one getSignaturesForAddress entry."""

    @property
    def signature(self) -> str: ...

    @property
    def slot(self) -> int: ...

    @property
    def block_time(self) -> int | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of one address's history still to walk (bounds exclusive)."""

    address: str
    upper_signature: str | None = None  # resume with before=upper_signature; None: from the newest
    upper_slot: int | None = None
    lower_signature: str | None = None  # until=lower_signature; None: down to the first signature
    lower_slot: int | None = None
    stop_before_time: int | None = None  # Unix seconds; older signatures are not wanted


@dataclasses.dataclass(frozen=True, slots=True)
class PageOutcome:
    """What one page means for its segment."""

    wanted: tuple[SignatureEntry, ...]  # entries to process, newest first
    remaining: Segment | None  # the segment left to walk after this page; None: it is finished
    newest: SignatureEntry | None  # the page's newest entry (the new head, for a walk from the newest)


def request(segment: Segment, limit: int = PAGE_LIMIT) -> dict[str, object]:
    """The getSignaturesForAddress arguments for the segment's next page."""
    return {
        "address": segment.address,
        "before": segment.upper_signature,
        "until": segment.lower_signature,
        "limit": min(max(limit, 1), PAGE_LIMIT),
    }


def judge_page(segment: Segment, page: Sequence[SignatureEntry], limit: int = PAGE_LIMIT) -> PageOutcome:
    """Check a page against its segment and say what to process and what is left to walk.

    Raises UntilIgnoredError / BeforeIgnoredError for a page a confused node produced (nothing in it
    is processed) and NoProgressError when the page would not move the walk.
    """
    address = segment.address
    if not page:
        return PageOutcome((), None, None)
    for entry in page:
        if segment.lower_signature is not None and (
            entry.signature == segment.lower_signature
            or (segment.lower_slot is not None and entry.slot < segment.lower_slot)
        ):
            raise UntilIgnoredError(
                address,
                f"page reaches {entry.signature} at slot {entry.slot}, at or below until {segment.lower_signature}",
            )
        if segment.upper_signature is not None and (
            entry.signature == segment.upper_signature
            or (segment.upper_slot is not None and entry.slot > segment.upper_slot)
        ):
            raise BeforeIgnoredError(
                address,
                f"page holds {entry.signature} at slot {entry.slot}, at or above before {segment.upper_signature}",
            )
    for newer, older in itertools.pairwise(page):
        if older.slot > newer.slot:
            raise ScanError(address, f"page is not newest first ({newer.signature} then {older.signature})")
    oldest = page[-1]
    if oldest.signature == segment.upper_signature:
        raise NoProgressError(address, f"the walk stays at {oldest.signature}")

    wanted = tuple(page)
    finished = len(page) < limit
    if segment.stop_before_time is not None:
        for position, entry in enumerate(page):
            # Newest first: from the first entry older than the start, everything after is older too.
            if entry.block_time is not None and entry.block_time < segment.stop_before_time:
                wanted = tuple(page[:position])
                finished = True
                break
    remaining = None
    if not finished:
        remaining = dataclasses.replace(segment, upper_signature=oldest.signature, upper_slot=oldest.slot)
    return PageOutcome(wanted, remaining, page[0])
