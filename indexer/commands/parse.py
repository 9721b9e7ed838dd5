"""`treasury parse FILE... --wallet ADDRESS`: the inflows of recorded getTransaction replies.

Every file is parsed, even after a bad one; each bad file gets one line on stderr naming it, and the
exit status is then 2 (INTERFACE.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from indexer.cli import EXIT_OK, EXIT_USAGE, UsageError
from indexer.config import Settings, parse_pubkey
from indexer.parser import IN, BalanceChange, ParseError, Watch, parse_transaction


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    command = subparsers.add_parser(
        "parse",
        parents=parents,
        help="print the inflows of recorded getTransaction replies",
        description="Print one JSON object per inflow to a watched wallet in each recorded getTransaction "
        "reply (a whole JSON-RPC reply or its bare result; jsonParsed, json or base64).",
    )
    command.add_argument("files", nargs="+", metavar="FILE", help="a recorded reply; - reads stdin")
    command.add_argument(
        "--wallet",
        dest="wallets",
        action="append",
        metavar="ADDRESS",
        help="a wallet to watch (repeatable; default: the configured treasury wallets)",
    )
    command.add_argument(
        "--token-account",
        dest="token_accounts",
        action="append",
        default=[],
        metavar="ACCOUNT[=OWNER]",
        help="a token account known to belong to OWNER (default: the first wallet), for old replies "
        "whose token balances name no owner",
    )
    command.add_argument(
        "--details",
        action="store_true",
        help="also print outflows, and for each change its direction and the instruction that moved it",
    )
    command.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    watch = _watch(args, settings)
    status = EXIT_OK
    out = sys.stdout.buffer
    for name in args.files:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            print(f"treasury: {name}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        try:
            parsed = parse_transaction(data, watch)
        except ParseError as exc:
            print(f"treasury: {name}: {exc}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        for change in parsed.changes:
            if change.direction == IN or args.details:
                out.write(orjson.dumps(change_record(change, details=args.details)) + b"\n")
        out.flush()
    return status


def _watch(args: argparse.Namespace, settings: Settings) -> Watch:
    try:
        wallets = [parse_pubkey(wallet) for wallet in args.wallets] if args.wallets else list(settings.wallets)
        token_accounts: dict[str, str] = {}
        for item in args.token_accounts:
            account, _, owner = item.partition("=")
            token_accounts[parse_pubkey(account)] = parse_pubkey(owner) if owner else wallets[0]
    except ValueError as exc:
        raise UsageError(f"parse: {exc}") from None
    return Watch(
        frozenset(wallets), assets=settings.asset_table, dust_raw=settings.dust_raw, token_accounts=token_accounts
    )


def change_record(change: BalanceChange, *, details: bool = False) -> dict[str, Any]:
    """The JSON object INTERFACE.md specifies for `treasury parse` (more fields with `details`)."""
    inflow = change.direction == IN
    record: dict[str, Any] = {
        "signature": change.signature,
        "slot": change.slot,
        "block_time": change.block_time,
        "asset": change.asset,
        "token_program": change.token_program,
        "account": change.account,
        "owner": change.owner,
        "amount_raw": str(change.amount_raw),
        "decimals": change.decimals,
        "amount": change.amount,
        "sender": change.counterparty if inflow else None,
        "memo": change.memo,
        "status": change.status,
        "reason": change.reason,
    }
    if details:
        record["direction"] = change.direction
        record["recipient"] = None if inflow else change.counterparty
        record["instruction"] = change.instruction_path
        record["instruction_kind"] = change.instruction_kind
        record["program"] = change.top_level_program
    return record
