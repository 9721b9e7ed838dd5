"""`treasury burns [--post] [--format table|json]` (issue 9): the OSR owed to burn and the burns made.

Prints the obligation (the burn share of every OSR deposit), what was burned (verified on chain: Token
burn/burnChecked from a treasury OSR account, or a transfer to TREASURY_OSR_BURN_ADDRESS), what is still
owed, each burn posted (`osr-burn:<signature>`) and each burn recognised on chain but not posted (not
final yet). `--post` first posts every recognised final burn not yet posted (idempotent). Exit 0, or 1
when more was burned than owed (an over-burn); an under-burn (OSR still owed) is the normal state
between burns and is reported, not an error.

JSON: {"osr_mint", "burn_address", "decimals", "status": "ok"|"under_burn"|"over_burn",
       "obligation_raw", "burned_raw", "owed_raw", "over_burn_raw", "under_burn_raw", "retained_raw"
       (integer strings in OSR base units), "owed" (whole OSR), "posted_now": n,
       "burns": [{"signature", "amount_raw", "slot", "block_time", "how", "ledger_transaction", "reversed"}],
       "unposted": [{"signature", "account", "amount_raw", "slot", "block_time", "how"}]}
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from indexer import logs
from indexer.cli import EXIT_OK, CommandError
from indexer.commands.ledger import ledger_errors, open_ledger
from indexer.config import Settings

if TYPE_CHECKING:
    from indexer.burns import BurnReport


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    command = subparsers.add_parser(
        "burns",
        parents=parents,
        help="OSR owed to burn, burns made and over- or under-burn",
        description="List the OSR owed to burn (the burn share of OSR received) and the burns verified on chain "
        "and posted against it; report an over-burn (exit 1) or what is still owed. --post posts recognised "
        "final burns not yet posted, once.",
    )
    command.add_argument("--post", action="store_true", help="post recognised final burns not yet posted")
    command.add_argument("--format", choices=("table", "json"), default="table", help="report format")
    command.add_argument("--verbose", action="store_true", help="log postings on stderr")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure(level=logging.INFO if args.verbose else logging.ERROR)
    from indexer.burns import BurnConflictError, burns_report, post_pending_burns  # noqa: PLC0415

    with open_ledger(settings) as ledger, ledger_errors(settings):
        posted_now = 0
        if args.post:
            try:
                posted_now = sum(result.created for result in post_pending_burns(ledger, settings))
            except BurnConflictError as exc:
                raise CommandError(f"burns: {exc}: the ledger and the chain disagree") from None
        report = burns_report(ledger, settings)
    record = burns_record(report, posted_now)
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
    else:
        sys.stdout.write(burns_table(record))
    sys.stdout.flush()
    if report.over_burn_raw:
        raise CommandError(
            f"burns: over-burn: {record['over_burn']} OSR burned beyond the {record['obligation']} OSR owed in all"
        )
    return EXIT_OK


def _osr(amount_raw: int, decimals: int) -> str:
    from reconcile.proof_report import amount_text  # noqa: PLC0415

    return amount_text(amount_raw, decimals)


def burns_record(report: BurnReport, posted_now: int) -> dict[str, Any]:
    decimals = report.decimals
    return {
        "osr_mint": report.osr_mint,
        "burn_address": report.burn_address,
        "decimals": decimals,
        "status": report.status,
        "obligation_raw": str(report.obligation_raw),
        "burned_raw": str(report.burned_raw),
        "owed_raw": str(report.owed_raw),
        "over_burn_raw": str(report.over_burn_raw),
        "under_burn_raw": str(report.under_burn_raw),
        "retained_raw": str(report.retained_raw),
        "obligation": _osr(report.obligation_raw, decimals),
        "burned": _osr(report.burned_raw, decimals),
        "owed": _osr(report.owed_raw, decimals),
        "over_burn": _osr(report.over_burn_raw, decimals),
        "posted_now": posted_now,
        "burns": [
            {
                "signature": burn.signature,
                "amount_raw": str(burn.amount_raw),
                "amount": _osr(burn.amount_raw, decimals),
                "slot": burn.slot,
                "block_time": burn.block_time,
                "how": list(burn.how),
                "ledger_transaction": burn.transaction_id,
                "reversed": burn.reversed,
            }
            for burn in report.posted
        ],
        "unposted": [
            {
                "signature": burn.outflow.signature,
                "account": burn.outflow.account,
                "amount_raw": str(burn.outflow.amount_raw),
                "amount": _osr(burn.outflow.amount_raw, decimals),
                "slot": burn.outflow.slot,
                "block_time": burn.outflow.block_time,
                "how": burn.how,
            }
            for burn in report.unposted
        ],
    }


def burns_table(record: dict[str, Any]) -> str:
    lines = [
        f"OSR {record['osr_mint']}: owed in all {record['obligation']}, burned {record['burned']}, "
        f"still owed {record['owed']} ({record['status']})\n"
    ]
    if record["burn_address"]:
        lines.append(f"  burn address: {record['burn_address']}\n")
    if record["posted_now"]:
        lines.append(f"  posted now: {record['posted_now']} burn(s)\n")
    for burn in record["burns"]:
        lines.append(
            f"  burned {burn['amount']} in {burn['signature']} ({', '.join(burn['how'])}), "
            f"ledger transaction {burn['ledger_transaction']}{' (reversed)' if burn['reversed'] else ''}\n"
        )
    for burn in record["unposted"]:
        lines.append(f"  recognised, not posted: {burn['amount']} in {burn['signature']} ({burn['how']})\n")
    if record["status"] == "over_burn":
        lines.append(f"  OVER-BURN: {record['over_burn']} OSR burned beyond the obligation\n")
    return "".join(lines)
