"""Finance exports (issue 8):

- `treasury export deposits --since ISO8601 --until ISO8601 --format csv|jsonl|xlsx|parquet --out PATH`:
  one row per recorded inflow (credited or not) received in [since, until) (`indexer.exports.rows`).
- `treasury export ledger --since ISO8601 --until ISO8601 --format csv|jsonl|beancount --out PATH`: the
  journal of transactions and postings posted in [since, until) (`indexer.exports.journal`).

Both read one snapshot of the ledger and stream it into a temporary file that replaces PATH only when
complete. A bad window (unparseable, or --until not after --since) or an unusable PATH exits 2 before
anything is read or written. A one-line summary goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from indexer.cli import EXIT_OK, CommandError, UsageError
from indexer.commands.ledger import _group, decimals_of, ledger_errors, open_ledger
from indexer.commands.reconcile import window
from indexer.config import Settings


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    from indexer.exports.formats import FORMATS  # noqa: PLC0415
    from indexer.exports.journal import JOURNAL_FORMATS  # noqa: PLC0415

    inner = _group(subparsers, parents, "export", "finance exports: deposits and the ledger journal")
    deposits = inner.add_parser(
        "deposits",
        parents=parents,
        help="one row per recorded inflow received in a window",
        description="One row per recorded inflow (credited or not) whose block time is in [--since, --until), "
        "in chain order, with its price, credits, customer and ledger transaction. Decimal columns are exact.",
    )
    ledger = inner.add_parser(
        "ledger",
        parents=parents,
        help="the ledger journal (transactions and postings) of a window",
        description="The transactions posted in [--since, --until) with their postings. Beancount output opens "
        "with the balances before --since and asserts every balance at --until.",
    )
    for command, formats in ((deposits, FORMATS), (ledger, JOURNAL_FORMATS)):
        command.add_argument("--since", required=True, metavar="ISO8601", help="window start (inclusive)")
        command.add_argument("--until", required=True, metavar="ISO8601", help="window end (exclusive)")
        command.add_argument("--format", required=True, choices=formats, help="file format")
        command.add_argument("--out", required=True, metavar="PATH", help="the file to write (replaced when done)")
    deposits.set_defaults(handler=run_deposits)
    ledger.set_defaults(handler=run_ledger)


def output_path(text: str, command: str) -> Path:
    """--out as a path that is not a folder (exit 2 otherwise); AtomicOutput checks the rest."""
    path = Path(text).expanduser()
    if not text.strip():
        raise UsageError(f"{command}: --out is empty")
    if path.is_dir():
        raise UsageError(f"{command}: --out {text}: is a folder, expected a file path")
    return path


def open_output(target: Path, command: str) -> Any:
    """The target's temporary file, created now: an unwritable or unsuitable --out exits 2 before any
    reading. A SIGTERM from here on removes it (the earlier file stays as it was)."""
    from indexer.exports.formats import AtomicOutput, UnwritableOutput  # noqa: PLC0415

    try:
        output = AtomicOutput(target)
    except UnwritableOutput as exc:
        raise UsageError(f"{command}: --out {exc}") from None
    signal.signal(signal.SIGTERM, _terminated)
    return output


@contextlib.contextmanager
def ledger_snapshot(settings: Settings) -> Iterator[Any]:
    """One read snapshot of the settings' ledger (indexer.exports.snapshot), errors mapped for the CLI."""
    from indexer.exports import snapshot  # noqa: PLC0415

    with open_ledger(settings) as ledger, ledger_errors(settings), snapshot(ledger.engine) as connection:
        yield connection


def _terminated(_signal: int, _frame: object) -> None:
    raise CommandError("terminated (SIGTERM); nothing was written")


def run_deposits(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.exports import ExportError, deposit_rows  # noqa: PLC0415
    from indexer.exports.formats import write_deposits  # noqa: PLC0415

    since, until = window(args, "export deposits")
    target = output_path(args.out, "export deposits")
    output = open_output(target, "export deposits")
    try:
        with output as temporary, ledger_snapshot(settings) as connection:
            totals = write_deposits(deposit_rows(connection, since, until), temporary, args.format)
    except ExportError as exc:
        raise CommandError(f"export deposits: {target}: {exc}") from None
    record = totals.record()
    print(
        f"export deposits: {totals.rows} rows to {target} ({args.format}); credited {record['credited']} USD, "
        f"held in suspense {record['held_in_suspense']} USD",
        file=sys.stderr,
    )
    return EXIT_OK


def run_ledger(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select  # noqa: PLC0415

    from indexer.exports import ExportError  # noqa: PLC0415
    from indexer.exports.journal import (  # noqa: PLC0415
        balances_before,
        journal_postings,
        write_beancount,
        write_csv,
        write_jsonl,
    )
    from ledger_client.database import as_utc  # noqa: PLC0415
    from ledger_client.schema import accounts_table  # noqa: PLC0415

    since, until = window(args, "export ledger")
    target = output_path(args.out, "export ledger")
    cache: dict[str, int] = {}

    def decimals(currency: str) -> int:
        if currency not in cache:
            try:
                cache[currency] = decimals_of(currency, settings)
            except UsageError as exc:
                raise ExportError(str(exc)) from None
        return cache[currency]

    output = open_output(target, "export ledger")
    try:
        with output as temporary, ledger_snapshot(settings) as connection:
            postings = journal_postings(connection, since, until)
            if args.format == "csv":
                with temporary.open("w", encoding="utf-8", newline="") as out:
                    count = write_csv(postings, out, decimals)
                unit = "postings"
            elif args.format == "jsonl":
                with temporary.open("wb") as binary:
                    count = write_jsonl(postings, binary, decimals)
                unit = "transactions"
            else:
                opened = dict(connection.execute(select(accounts_table.c.name, accounts_table.c.opened_at)).all())
                with temporary.open("w", encoding="utf-8") as out:
                    count = write_beancount(
                        postings,
                        balances_before(connection, since),
                        out,
                        decimals,
                        since=since,
                        until=until,
                        opened_at=lambda name: as_utc(opened[name]) if name in opened else None,
                    )
                unit = "transactions"
    except ExportError as exc:
        raise CommandError(f"export ledger: {target}: {exc}") from None
    except OSError as exc:
        raise CommandError(f"export ledger: {target}: {exc.strerror or exc}") from None
    print(f"export ledger: {count} {unit} to {target} ({args.format})", file=sys.stderr)
    return EXIT_OK
