"""Fetch-only throughput: how fast a client can page through addresses' signatures and fetch their
transactions (getSignaturesForAddress pages + getTransaction batches), with no parsing and no
database. The issue-5 benchmark puts the end-to-end backfill rate beside this figure, measured in
the same run against the same server.

The next page is requested while the current page's transactions are fetched, as a backfill that
overlaps its requests would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Final

from indexer.rpc import SignatureInfo, SolanaRpc

MAX_PAGES: Final = 100_000  # bound on pages per address (100 M signatures)


@dataclasses.dataclass(frozen=True, slots=True)
class FetchStats:
    transactions: int  # replies fetched (None replies not counted)
    missing: int  # signatures the node had no transaction for
    pages: int
    reply_bytes: int
    seconds: float

    @property
    def transactions_per_s(self) -> float:
        return self.transactions / self.seconds if self.seconds > 0 else 0.0

    @property
    def megabytes_per_s(self) -> float:
        return self.reply_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


async def measure_fetch_throughput(
    rpc_url: str,
    addresses: Sequence[str],
    *,
    batch_size: int = 100,
    page_limit: int = 1000,
    max_concurrent_requests: int = 4,
    commitment: str = "finalized",
    timeout_s: float = 30.0,
) -> FetchStats:
    """Page through every address's whole history and fetch every transaction once; time it all."""
    transactions = missing = pages = reply_bytes = 0
    seen: set[str] = set()
    async with SolanaRpc(
        rpc_url,
        timeout_s=timeout_s,
        batch_size=batch_size,
        max_concurrent_requests=max_concurrent_requests,
    ) as rpc:
        started = time.perf_counter()
        for address in addresses:

            def next_page(before: str | None, address: str = address) -> asyncio.Task[list[SignatureInfo]]:
                return asyncio.ensure_future(
                    rpc.get_signatures_for_address(address, before=before, limit=page_limit, commitment=commitment)
                )

            pending = next_page(None)
            for _ in range(MAX_PAGES):
                page = await pending
                if not page:
                    break
                pages += 1
                pending = next_page(page[-1].signature)
                fresh = [item.signature for item in page if item.signature not in seen]
                seen.update(fresh)
                for reply in await rpc.get_transactions(fresh, commitment=commitment):
                    if reply is None:
                        missing += 1
                    else:
                        transactions += 1
                        reply_bytes += len(reply)
            else:
                pending.cancel()
        seconds = time.perf_counter() - started
    return FetchStats(transactions, missing, pages, reply_bytes, seconds)
