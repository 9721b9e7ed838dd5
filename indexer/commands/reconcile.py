"""`treasury reconcile stripe --since ISO8601 --until ISO8601 [--fix] [--format table|json|csv]` (issue 7)
and `treasury reconcile chain --since ISO8601 --until ISO8601 [--format table|json]` (issue 9).

Reconciles the Stripe Checkout Sessions created in [since, until) with the ledger's card credits,
refund and dispute debits (reconcile.job) and prints the report: findings and totals, in the JSON
shape of INTERFACE.md (`reconcile.report`). Exit 0 when every finding is `matched`, 1 otherwise (the
report is printed either way; one line on stderr says what needs attention), 2 on bad usage — a bad or
missing time, until not after since, no TREASURY_STRIPE_API_KEY — with one line and nothing written
(arguments are checked before the ledger is opened). `--fix` posts the missing credits of in-range USD
sessions and the missing reversals, idempotently, and the run is recorded (report-only runs too).

`reconcile chain` compares, for each treasury account and asset, what the indexer recorded in
[since, until) with what the chain did to the account (`reconcile.chain`, through `indexer.proof`),
prints each account's chain change, recorded change and difference, and names the transactions that
explain a difference. Exit 0 when every account reconciles, 1 when one does not (or the chain could not
be read), 2 on bad usage with nothing written. The run is recorded for `treasury status`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from indexer import logs
from indexer.cli import EXIT_OK, CommandError, UsageError
from indexer.commands.ledger import ledger_errors, open_ledger
from indexer.config import Settings, parse_time, redact_url
from reconcile.errors import LedgerChangedError, ReconcileInputError, StripeApiError
from reconcile.matcher import CLASSES

if TYPE_CHECKING:
    from reconcile.chain import ChainResult


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    group = subparsers.add_parser(
        "reconcile",
        parents=parents,
        help="reconcile the ledger against Stripe and the chain",
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
    chain_command = inner.add_parser(
        "chain",
        parents=parents,
        help="each treasury account's recorded inflows and outflows against its balance changes on chain",
        description="For each treasury wallet (SOL) and token account (per mint), compare the inflows minus "
        "outflows (and failed transactions' fees) the indexer recorded in [--since, --until) with the account's "
        "balance changes on chain over the same window, re-scanning its signatures; name the transactions that "
        "explain a difference (not_recorded, change_not_recorded, recorded_not_on_chain). Exit 0 when every "
        "account reconciles, 1 otherwise.",
    )
    chain_command.add_argument("--since", required=True, metavar="ISO8601", help="window start (inclusive)")
    chain_command.add_argument("--until", required=True, metavar="ISO8601", help="window end (exclusive)")
    chain_command.add_argument("--format", choices=("table", "json"), default="table", help="report format")
    chain_command.add_argument("--verbose", action="store_true", help="log each account's outcome on stderr")
    chain_command.set_defaults(handler=run_chain)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def window(args: argparse.Namespace, command: str) -> tuple[dt.datetime, dt.datetime]:
    """--since and --until as UTC times; UsageError (exit 2) when one is bad or until is not after since."""
    try:
        since = parse_time(args.since)
    except ValueError as exc:
        raise UsageError(f"{command}: --since: {exc}") from None
    try:
        until = parse_time(args.until)
    except ValueError as exc:
        raise UsageError(f"{command}: --until: {exc}") from None
    if until <= since:
        raise UsageError(f"{command}: --until {args.until.strip()} is not after --since {args.since.strip()}")
    return since, until


def _window(args: argparse.Namespace) -> tuple[dt.datetime, dt.datetime]:
    return window(args, "reconcile stripe")


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


def run_chain(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure(level=logging.INFO if args.verbose else logging.ERROR)
    since, until = window(args, "reconcile chain")
    from indexer.proof import reconcile_chain  # noqa: PLC0415 - the RPC client loads only for this command
    from indexer.rpc import RpcError, SolanaRpc  # noqa: PLC0415
    from reconcile.errors import ChainHistoryError  # noqa: PLC0415
    from reconcile.proof_report import chain_record, chain_table  # noqa: PLC0415

    with open_ledger(settings) as ledger, ledger_errors(settings):

        async def main() -> ChainResult:
            async with SolanaRpc(settings.rpc_url) as rpc:
                return await reconcile_chain(ledger, rpc, since, until, now=utc_now(), settings=settings, clock=utc_now)

        try:
            result = asyncio.run(main())
        except ReconcileInputError as exc:
            raise UsageError(f"reconcile chain: {exc}") from None
        except (RpcError, ChainHistoryError) as exc:
            raise CommandError(f"reconcile chain: the chain at {redact_url(settings.rpc_url)}: {exc}") from None
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(chain_record(result)) + b"\n")
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(chain_table(result))
    sys.stdout.flush()
    if not result.clean:
        named = ", ".join(
            f"{item.account.address} {item.account.symbol or item.account.asset} {item.difference_raw:+d}"
            for item in result.accounts
            if not item.clean
        )
        raise CommandError(f"reconcile chain: {result.differences} account(s) do not reconcile: {named}"[:900])
    return EXIT_OK
