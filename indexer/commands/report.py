"""`treasury report --since ISO8601 --until ISO8601 --out DIR` (issue 8).

Writes DIR/index.html, a self-contained page (no script, no network) of the deposits received in
[since, until): daily deposits per asset (a chart), totals per asset and per attribution method, the
suspense and pending lists, deposits through programs, and the last reconciliation, chain
reconciliation, audit and ledger verify. Beside it DIR/totals.json holds the same totals as data. The
numbers are the deposits export's for the same window (one accumulator, one snapshot). DIR is created
when missing (its parent must exist). Exit 2 on a bad window or DIR, with nothing written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from indexer.cli import EXIT_OK, CommandError, UsageError
from indexer.commands.reconcile import window
from indexer.config import Settings

REPORT_FILE = "index.html"
TOTALS_FILE = "totals.json"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    command = subparsers.add_parser(
        "report",
        parents=parents,
        help="a self-contained HTML report of the deposits of a window",
        description="Write DIR/index.html (and DIR/totals.json): daily deposits per asset, totals per asset and "
        "per attribution method, suspense and pending lists, and the last reconciliations, for the deposits "
        "received in [--since, --until). Its numbers are those of `treasury export deposits` for the window.",
    )
    command.add_argument("--since", required=True, metavar="ISO8601", help="window start (inclusive)")
    command.add_argument("--until", required=True, metavar="ISO8601", help="window end (exclusive)")
    command.add_argument("--out", required=True, metavar="DIR", help="folder to write the report into")
    command.set_defaults(handler=run)


def report_folder(text: str) -> Path:
    folder = Path(text).expanduser()
    if not text.strip():
        raise UsageError("report: --out is empty")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"report: --out {text}: not a folder")
    if not folder.exists() and not folder.parent.is_dir():
        raise UsageError(f"report: --out {text}: folder {folder.parent} does not exist")
    return folder


def run(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.commands.daemon import status_record  # noqa: PLC0415
    from indexer.commands.export import ledger_snapshot, open_output  # noqa: PLC0415
    from indexer.exports import ExportError, deposit_rows  # noqa: PLC0415
    from indexer.exports.report import ReportData, collect, render  # noqa: PLC0415
    from pricing.quote import iso  # noqa: PLC0415

    since, until = window(args, "report")
    folder = report_folder(args.out)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise UsageError(f"report: --out {args.out}: {exc.strerror}") from None
    # Both files' temporary copies exist before anything is read: an unwritable folder exits 2 now.
    totals_output = open_output(folder / TOTALS_FILE, "report")
    page_output = open_output(folder / REPORT_FILE, "report")
    data = ReportData(since=since, until=until, generated_at=dt.datetime.now(dt.UTC))
    try:
        with totals_output as totals_path, page_output as page_path:
            with ledger_snapshot(settings) as connection:
                collect(deposit_rows(connection, since, until), data)
            data.reconciliation = status_record(settings)
            totals = {"since": iso(since), "until": iso(until), **data.totals.record()}
            totals_path.write_bytes(orjson.dumps(totals, option=orjson.OPT_INDENT_2) + b"\n")
            page_path.write_text(render(data), encoding="utf-8")
    except ExportError as exc:
        raise CommandError(f"report: {exc}") from None
    except OSError as exc:
        raise CommandError(f"report: {folder}: {exc.strerror or exc}") from None
    print(
        f"report: {data.totals.rows} inflows, {data.suspense_count} in suspense, {data.pending_count} pending: "
        f"{folder / REPORT_FILE}",
        file=sys.stderr,
    )
    return EXIT_OK
