"""`treasury reconcile stripe --since ISO8601 --until ISO8601 [--fix] [--format table|json|csv]` (issue 7).

Reconciles the Stripe Checkout Sessions created in [since, until) with the ledger's card credits,
refund and dispute debits (reconcile.job) and prints the report: findings and totals, in the JSON
shape of INTERFACE.md (`reconcile.report`). Exit 0 when every finding is `matched`, 1 otherwise (the
report is printed either way; one line on stderr says what needs attention), 2 on bad usage — a bad or
missing time, until not after since, no TREASURY_STRIPE_API_KEY — with one line and nothing written
(arguments are checked before the ledger is opened). `--fix` posts the missing credits of in-range USD
sessions and the missing reversals, idempotently, and the run is recorded (report-only runs too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Sequence

import orjson

from indexer import logs
from indexer.cli import EXIT_OK, CommandError, UsageError
from indexer.commands.ledger import open_ledger
from indexer.config import Settings, parse_time, redact_url
from reconcile.errors import LedgerChangedError, ReconcileInputError, StripeApiError
from reconcile.matcher import CLASSES


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    group = subparsers.add_parser(
        "reconcile",
        parents=parents,
        help="reconcile the ledger against Stripe",
        description="Reconcile the ledger against its sources.",
    )
    inner = group.add_subparsers(dest="reconcile_command", metavar="COMMAND")
    inner.required = True
    stripe_command = inner.add_parser(
        "stripe",
        parents=parents,
        help="card top-ups, refunds and disputes at Stripe against the ledger",
        description="Match the Checkout Sessions created in [--since, --until) with the ledger's credits and "
        "reversals; print findings (matched, missing_credit, credit_without_payment, duplicate_credit, "
        "amount_mismatch, currency_mismatch, refund_not_reversed, dispute_not_reversed, out_of_range, "
        "unpaid_credited) and totals. Exit 0 when every finding is matched, 1 otherwise. --fix posts the "
        "missing credits of in-range USD sessions and the missing reversals, once.",
    )
    stripe_command.add_argument("--since", required=True, metavar="ISO8601", help="window start (inclusive)")
    stripe_command.add_argument("--until", required=True, metavar="ISO8601", help="window end (exclusive)")
    stripe_command.add_argument(
        "--fix", action="store_true", help="post missing credits and reversals (idempotent: a second run posts nothing)"
    )
    stripe_command.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="report format (default table)"
    )
    stripe_command.add_argument("--verbose", action="store_true", help="log retries and the run's summary on stderr")
    stripe_command.set_defaults(handler=run_stripe)


def _window(args: argparse.Namespace) -> tuple[dt.datetime, dt.datetime]:
    try:
        since = parse_time(args.since)
    except ValueError as exc:
        raise UsageError(f"reconcile stripe: --since: {exc}") from None
    try:
        until = parse_time(args.until)
    except ValueError as exc:
        raise UsageError(f"reconcile stripe: --until: {exc}") from None
    if until <= since:
        raise UsageError(f"reconcile stripe: --until {args.until.strip()} is not after --since {args.since.strip()}")
    return since, until


def run_stripe(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure(level=logging.INFO if args.verbose else logging.ERROR)
    since, until = _window(args)
    if settings.stripe_api_key is None or not settings.stripe_api_key.reveal():
        raise UsageError(
            "reconcile stripe: no Stripe API key: set TREASURY_STRIPE_API_KEY (or stripe_api_key in the config file)"
        )
    from reconcile.job import reconcile_window  # noqa: PLC0415 - the stripe library loads only for this command
    from reconcile.report import report_csv, report_record, report_table  # noqa: PLC0415
    from reconcile.stripe_source import StripeApiSource  # noqa: PLC0415

    try:
        with (
            StripeApiSource(api_key=settings.stripe_api_key.reveal(), api_base=settings.stripe_api_base) as source,
            open_ledger(settings) as ledger,
        ):
            result = reconcile_window(ledger, source, since, until, fix=args.fix, now=dt.datetime.now(dt.UTC))
    except ReconcileInputError as exc:
        raise UsageError(f"reconcile stripe: {exc}") from None
    except StripeApiError as exc:
        raise CommandError(f"reconcile stripe: Stripe at {redact_url(settings.stripe_api_base)}: {exc}") from None
    except LedgerChangedError as exc:
        raise CommandError(f"reconcile stripe: {exc}") from None
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(report_record(result)) + b"\n")
        sys.stdout.buffer.flush()
    elif args.format == "csv":
        sys.stdout.write(report_csv(result))
    else:
        sys.stdout.write(report_table(result))
    sys.stdout.flush()
    if not result.all_matched:
        counts = result.counts
        attention = ", ".join(f"{name} {counts[name]}" for name in CLASSES if name != "matched" and counts[name])
        fixed = f"; --fix posted {result.fixed} transaction(s)" if args.fix else ""
        raise CommandError(f"reconcile stripe: findings need attention: {attention}{fixed}")
    return EXIT_OK
