"""`treasury backfill [--since ISO8601] [--until-signature SIG] [--limit N]`: the scan as a one-off job.

Scans every treasury wallet and its token accounts of the table's mints from the persisted cursors
(with none: from --since, else TREASURY_START, else each address's first signature), records, prices
and credits what it finds, and prints a summary. Resumable: a run stopped anywhere continues where it
stopped. Exit 0 when the scan completed, whatever is left pending (the summary counts it); 1 when the
scan itself failed; 2 on bad arguments or a mint table the chain contradicts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import orjson

from indexer.app import open_pipeline
from indexer.cli import EXIT_FAILED, EXIT_OK, CommandError, UsageError
from indexer.commands.ledger import ledger_errors, open_ledger
from indexer.config import Settings, parse_time
from indexer.pipeline import MintMismatchError, PipelineError, RunSummary, summary_record
from indexer.progress import Progress
from indexer.rpc import RpcError
from ledger_client.entries import check_signature
from ledger_client.errors import LedgerError


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    command = subparsers.add_parser(
        "backfill",
        parents=parents,
        help="scan the treasury's history from the persisted cursors and credit what is found",
        description="Scan every treasury wallet and its token accounts of the table's mints from the persisted "
        "cursors (with none: from --since, else TREASURY_START, else each address's first signature); record, "
        "price and credit what is found; print a summary. Resumable.",
    )
    command.add_argument("--since", metavar="ISO8601", help="where a scan with no cursor begins")
    command.add_argument(
        "--until-signature", metavar="SIG", help="where a scan with no cursor stops going back (exclusive)"
    )
    command.add_argument("--limit", metavar="N", help="process at most N signatures in this run")
    command.add_argument(
        "--page-limit", metavar="N", help="signatures per getSignaturesForAddress page (1-1000, default 1000)"
    )
    command.add_argument("--format", choices=("text", "json"), default="text", help="summary format")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        since = parse_time(args.since) if args.since else None
    except ValueError as exc:
        raise UsageError(f"backfill: --since: {exc}") from None
    until_signature = None
    if args.until_signature:
        try:
            until_signature = check_signature(args.until_signature.strip())
        except LedgerError:
            raise UsageError(f"backfill: --until-signature: not a signature: {args.until_signature!r}") from None
    limit = None
    if args.limit is not None:
        if not (args.limit.isascii() and args.limit.isdigit()) or int(args.limit) <= 0:
            raise UsageError(f"backfill: --limit must be a positive whole number, got {args.limit!r}")
        limit = int(args.limit)

    page_limit = 1000
    if args.page_limit is not None:
        if not (args.page_limit.isascii() and args.page_limit.isdigit()) or not 1 <= int(args.page_limit) <= 1000:
            raise UsageError(f"backfill: --page-limit must be 1 to 1000, got {args.page_limit!r}")
        page_limit = int(args.page_limit)
    progress = Progress("backfill")

    def show(summary: RunSummary, address: str) -> None:
        progress.update(
            f"{address[:8]}… {summary.signatures:,} signatures, {summary.transactions_fetched:,} transactions, "
            f"{summary.deposits_found:,} deposits, {summary.credited + summary.held_in_suspense:,} credited"
        )

    with open_ledger(settings) as ledger, ledger_errors(settings):

        async def main() -> RunSummary:
            async with open_pipeline(settings, ledger, on_progress=show, page_limit=page_limit) as pipeline:
                return await pipeline.backfill(since=since, until_signature=until_signature, limit=limit)

        try:
            summary = asyncio.run(main())
        except MintMismatchError as exc:
            raise UsageError(f"backfill: the asset table does not match the chain: {exc}") from None
        except (PipelineError, RpcError) as exc:
            raise CommandError(f"backfill: {exc}") from None
        finally:
            progress.close()
    record = summary_record(summary, settings.asset_table)
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
    else:
        print(summary_text(record))
    return EXIT_OK if summary.complete else EXIT_FAILED


def summary_text(record: dict[str, object]) -> str:
    def counts(mapping: object) -> str:
        assert isinstance(mapping, dict)
        return ", ".join(f"{key} {value}" for key, value in mapping.items()) or "none"

    state = "complete" if record["complete"] else "FAILED (see errors)"
    lines = [
        f"backfill {state}: {record['signatures']} signatures, {record['transactions_fetched']} transactions "
        f"fetched, {record['deposits_found']} deposits found",
        f"  credited: {record['credited']} to customers, {record['held_in_suspense']} held in suspense",
        f"  ignored: {counts(record['ignored'])}",
        f"  waiting for a price: {counts(record['pending_price'])}",
        f"  USD credited by asset: {counts(record['credited_usd_by_asset'])}",
        f"  deposits now: {counts(record['totals'])}",
    ]
    errors = record["errors"]
    assert isinstance(errors, list)
    lines += [f"  error: {error}" for error in errors]
    return "\n".join(lines)
