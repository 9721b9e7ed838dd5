"""`treasury audit --since ISO8601 --until ISO8601 [--format table|json]` (issue 9).

Re-derives every crypto credit of [since, until) — deposits that landed in the window and credits posted
in it — from its stored evidence with the current code (the reply as fetched through the parser, the
stored quote, the rule with the bonus and burn share recorded in the evidence) and compares it with
the ledger's postings to the micro-dollar (`reconcile.audit`, through `indexer.proof`). Prints every
difference: the deposit, the field, what the evidence gives and what the ledger holds. Exit 0 when there
is none, 1 when there is one, 2 on bad usage (a bad or inverted window) with nothing written. The run is
recorded for `treasury status`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import orjson

from indexer import logs
from indexer.cli import EXIT_OK, CommandError, UsageError
from indexer.commands.ledger import ledger_errors, open_ledger
from indexer.commands.reconcile import utc_now, window
from indexer.config import Settings
from reconcile.errors import ReconcileInputError


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    command = subparsers.add_parser(
        "audit",
        parents=parents,
        help="re-derive every crypto credit of a window from its evidence and compare it with the ledger",
        description="Re-derive every crypto credit whose deposit landed or whose credit was posted in "
        "[--since, --until) from its stored evidence (the transaction as fetched, the quote, the rule) with the "
        "current code, and compare it with the ledger to the micro-dollar. Exit 0 when all agree, 1 listing "
        "every difference otherwise.",
    )
    command.add_argument("--since", required=True, metavar="ISO8601", help="window start (inclusive)")
    command.add_argument("--until", required=True, metavar="ISO8601", help="window end (exclusive)")
    command.add_argument("--format", choices=("table", "json"), default="table", help="report format")
    command.add_argument("--verbose", action="store_true", help="log the run's summary on stderr")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure(level=logging.INFO if args.verbose else logging.ERROR)
    since, until = window(args, "audit")
    from indexer.proof import audit  # noqa: PLC0415 - the parser and SQLAlchemy load only for this command
    from reconcile.proof_report import audit_record, audit_table  # noqa: PLC0415

    with open_ledger(settings) as ledger, ledger_errors(settings):
        try:
            result = audit(ledger, since, until, settings=settings, now=utc_now(), clock=utc_now)
        except ReconcileInputError as exc:
            raise UsageError(f"audit: {exc}") from None
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(audit_record(result)) + b"\n")
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(audit_table(result))
    sys.stdout.flush()
    if not result.clean:
        deposits = sorted({item.deposit for item in result.differences})
        raise CommandError(
            f"audit: {result.differences_total} difference(s) in {len(deposits)} deposit(s): {', '.join(deposits)}"[
                :900
            ]
        )
    return EXIT_OK
