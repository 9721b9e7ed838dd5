"""Ledger commands (issue 3): `treasury db upgrade`, `treasury ledger balance|adjust|verify|suspense|show|reverse`,
`treasury wallets link` (the deposits commands are in indexer/commands/deposits.py).

Every command but `db upgrade` migrates an empty database by itself (`open_ledger`). Arguments are
checked before the database is opened, so bad input writes nothing. Ledger errors are mapped to exit
status in one place (`ledger_errors`): bad input (unknown account, too many decimals, a reused key,
a wallet linked elsewhere…) exits 2, a database failure exits 1; messages never show a password.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson

from indexer.cli import EXIT_OK, CommandError, UsageError
from indexer.config import Settings, parse_pubkey, redact_url
from ledger_client import (
    USD,
    adjustment_entry,
    format_units,
    parse_account,
    parse_units,
)
from ledger_client.entries import MAX_KEY_LENGTH, adjustment_key, encode_json
from ledger_client.errors import DatabaseError, IdempotencyConflictError, InvalidInputError, LedgerError
from ledger_client.money import DEFAULT_DECIMALS
from ledger_client.records import FLAG, SuspenseHold, Transaction

if TYPE_CHECKING:
    from ledger_client.ledger import Ledger

_OPERATOR_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH - len('adjust:')}}}")


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    _register_db(subparsers, parents)
    _register_ledger(subparsers, parents)
    _register_wallets(subparsers, parents)


def _group(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser],
    name: str,
    help_text: str,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    group = subparsers.add_parser(name, parents=parents, help=help_text, description=help_text)
    inner = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    inner.required = True
    return inner


def _format_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")


def _register_db(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    inner = _group(subparsers, parents, "db", "the ledger database")
    upgrade = inner.add_parser(
        "upgrade",
        parents=parents,
        help="create or migrate the ledger database to the latest revision",
        description="Create or migrate the ledger database (TREASURY_DATABASE_URL) to the latest revision; "
        "nothing else.",
    )
    upgrade.set_defaults(handler=run_db_upgrade)


def _register_ledger(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    inner = _group(subparsers, parents, "ledger", "balances, adjustments and checks of the ledger")

    balance = inner.add_parser(
        "balance",
        parents=parents,
        help="an account's balance (a customer's credits, positive)",
        description="Print an account's balance in a currency's major unit: a customer's credits in USD, "
        "or a system account's balance (docs/LEDGER.md).",
    )
    balance.add_argument("account", metavar="ACCOUNT", help="a customer id (agt_…) or a system account")
    balance.add_argument("--currency", metavar="CUR", help="USD (default; a token account: its token)")
    _format_option(balance)
    balance.set_defaults(handler=run_balance)

    adjust = inner.add_parser(
        "adjust",
        parents=parents,
        help="a manual, audited, idempotent adjustment",
        description="Add AMOUNT (a decimal in the currency, USD credits by default; may be negative) to "
        "ACCOUNT's balance. Idempotent on KEY: the same KEY again changes nothing; the same KEY with a "
        "different amount is refused.",
    )
    adjust.add_argument("account", metavar="ACCOUNT")
    adjust.add_argument("amount", metavar="AMOUNT", help="e.g. 12.5 or -0.000001")
    adjust.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the audit record)")
    adjust.add_argument("--key", required=True, metavar="KEY", help="idempotency key of this adjustment")
    adjust.add_argument("--currency", metavar="CUR", help="USD (default) or a token symbol")
    _format_option(adjust)
    adjust.set_defaults(handler=run_adjust)

    verify = inner.add_parser(
        "verify",
        parents=parents,
        help="check every invariant of the ledger",
        description="Check every invariant (each transaction balances, no posting without a transaction, "
        "no key posted twice, postings match what was posted, suspense not over-assigned) and flag negative "
        "customer balances. Exit 0 when all hold, 1 naming each finding.",
    )
    _format_option(verify)
    verify.set_defaults(handler=run_verify)

    suspense = inner.add_parser(
        "suspense",
        parents=parents,
        help="deposits held in suspense, with their claims",
        description="List deposits whose credits wait in the suspense account (unassigned ones; --all: "
        "every one), with the claims naming their signature.",
    )
    suspense.add_argument("--all", action="store_true", help="include holds already assigned")
    _format_option(suspense)
    suspense.set_defaults(handler=run_suspense)

    show = inner.add_parser(
        "show",
        parents=parents,
        help="one transaction with its postings and evidence",
        description="Print one ledger transaction (by id or idempotency key) with its postings and evidence.",
    )
    show.add_argument("transaction", metavar="ID_OR_KEY")
    _format_option(show)
    show.set_defaults(handler=run_show)

    reverse = inner.add_parser(
        "reverse",
        parents=parents,
        help="reverse a transaction (once)",
        description="Post the reversal of a transaction: a new transaction undoing it leg for leg, linked to "
        "it. Reversing it again changes nothing.",
    )
    reverse.add_argument("transaction_id", metavar="TRANSACTION_ID", type=_transaction_id)
    reverse.add_argument("--reason", required=True, metavar="TEXT")
    _format_option(reverse)
    reverse.set_defaults(handler=run_reverse)


def _register_wallets(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    inner = _group(subparsers, parents, "wallets", "wallets linked to customers")
    link = inner.add_parser(
        "link",
        parents=parents,
        help="link a wallet to a customer (after the customer proved ownership)",
        description="Link ADDRESS to customer ACCOUNT; the wallet's deposits waiting in suspense move to the "
        "customer, once. A wallet belongs to one customer: linking it to another needs --move --reason.",
    )
    link.add_argument("address", metavar="ADDRESS")
    link.add_argument("account", metavar="ACCOUNT")
    link.add_argument("--move", action="store_true", help="move the wallet from the customer it is linked to")
    link.add_argument("--reason", metavar="TEXT", help="why (required with --move; audited)")
    _format_option(link)
    link.set_defaults(handler=run_link)


# --- shared helpers ---


@contextmanager
def ledger_errors(settings: Settings) -> Iterator[None]:
    """Ledger errors as CLI errors: bad input exits 2, a database failure exits 1."""
    try:
        yield
    except InvalidInputError as exc:
        raise UsageError(str(exc)) from None
    except DatabaseError as exc:
        raise CommandError(f"ledger database {redact_url(settings.database_url)}: {exc}") from None
    except LedgerError as exc:
        raise CommandError(str(exc)) from None


@contextmanager
def open_ledger(settings: Settings, *, migrate_empty: bool = True) -> Iterator[Ledger]:
    """The ledger of the settings, migrated when the database is empty; closed afterwards.

    Other commands that need the ledger use this too. LedgerErrors raised inside are mapped.
    """
    from ledger_client.ledger import Ledger  # noqa: PLC0415 - SQLAlchemy loads only for ledger commands

    with ledger_errors(settings):
        # quiet: the command reports what happened itself, and a failure is one line on stderr.
        ledger = Ledger.open(settings.database_url, quiet=True)
        try:
            if migrate_empty:
                ledger.ensure_schema()
            yield ledger
        finally:
            ledger.close()


def operator() -> str:
    """Who runs the command, for audit records."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def decimals_of(currency: str, settings: Settings) -> int:
    if currency == USD:
        return DEFAULT_DECIMALS[USD]
    asset = settings.asset_table.by_symbol(currency)
    if asset is None:
        known = ", ".join([USD, *(a.symbol for a in settings.assets)])
        raise UsageError(f"unknown currency {currency!r} (known: {known})")
    return asset.decimals


def _currency(args: argparse.Namespace, account: str, settings: Settings) -> tuple[str, int]:
    with ledger_errors(settings):
        parsed = parse_account(account)
    currency = args.currency.strip().upper() if args.currency else (parsed.sole_currency or USD)
    decimals = decimals_of(currency, settings)
    if not parsed.holds(currency):
        raise UsageError(f"account {account!r} cannot hold {currency}")
    return currency, decimals


def _emit(args: argparse.Namespace, record: dict[str, Any], text: str) -> None:
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
        sys.stdout.buffer.flush()
    else:
        print(text, flush=True)


def _transaction_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"not a transaction id: {text!r}")
    return int(text)


def _customer(account: str, settings: Settings) -> str:
    with ledger_errors(settings):
        parsed = parse_account(account)
    if not parsed.is_customer:
        raise UsageError(f"{account!r} is a system account, not a customer")
    return account


def _usd(micros: int) -> str:
    return format_units(micros, DEFAULT_DECIMALS[USD])


# --- handlers ---


def run_db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    with open_ledger(settings, migrate_empty=False) as ledger:
        before, after = ledger.upgrade()
    where = redact_url(settings.database_url)
    if before == after:
        print(f"ledger database {where}: already at revision {after}")
    else:
        print(f"ledger database {where}: migrated from {before or 'an empty database'} to revision {after}")
    return EXIT_OK


def run_balance(args: argparse.Namespace, settings: Settings) -> int:
    currency, decimals = _currency(args, args.account, settings)
    with open_ledger(settings) as ledger:
        amount = ledger.balance(args.account, currency)
    balance = format_units(amount, decimals)
    _emit(
        args,
        {"account": args.account, "currency": currency, "balance": balance},
        f"{args.account} {balance} {currency}",
    )
    return EXIT_OK


def run_adjust(args: argparse.Namespace, settings: Settings) -> int:
    currency, decimals = _currency(args, args.account, settings)
    try:
        amount = parse_units(args.amount, decimals)
    except ValueError as exc:
        raise UsageError(f"ledger adjust: AMOUNT: {exc}") from None
    if amount == 0:
        raise UsageError("ledger adjust: AMOUNT must not be zero")
    if not args.reason.strip():
        raise UsageError("ledger adjust: --reason must say why")
    if not _OPERATOR_KEY.fullmatch(args.key):
        raise UsageError("ledger adjust: --key is printable ASCII without spaces")
    with ledger_errors(settings):
        draft = adjustment_entry(
            args.key,
            args.account,
            currency,
            amount,
            reason=args.reason.strip(),
            actor=operator(),
            at=dt.datetime.now(dt.UTC),
        )
    with open_ledger(settings) as ledger:
        try:
            result = ledger.post(draft)
        except IdempotencyConflictError as exc:
            raise UsageError(
                f"ledger adjust: key {args.key!r} was already used for a different adjustment "
                f"(transaction {exc.transaction_id}); choose another key"
            ) from None
        balance = ledger.balance(args.account, currency)
    shown_amount = format_units(amount, decimals)
    shown_balance = format_units(balance, decimals)
    state = "posted" if result.created else "already posted, nothing changed"
    _emit(
        args,
        {
            "transaction_id": result.transaction_id,
            "created": result.created,
            "key": adjustment_key(args.key),
            "account": args.account,
            "currency": currency,
            "amount": shown_amount,
            "balance": shown_balance,
        },
        f"adjustment {adjustment_key(args.key)}: {shown_amount} {currency} to {args.account}, "
        f"transaction {result.transaction_id} ({state}); balance {shown_balance} {currency}",
    )
    return EXIT_OK


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    with open_ledger(settings) as ledger:
        problems = ledger.verify()
    if args.format == "json":
        record = {
            "ok": not problems,
            "problems": [{"code": p.code, "severity": p.severity, "message": p.message} for p in problems],
        }
        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
    else:
        for problem in problems:
            print(f"{problem.severity}: {problem.code}: {problem.message}")
        if not problems:
            print("ledger verify: every invariant holds")
    sys.stdout.flush()
    if problems:
        errors = sum(1 for p in problems if p.severity != FLAG)
        flags = len(problems) - errors
        codes = ", ".join(sorted({p.code for p in problems}))
        raise CommandError(f"ledger verify: {errors} broken invariant(s), {flags} flag(s): {codes}")
    return EXIT_OK


def _hold_record(hold: SuspenseHold) -> dict[str, Any]:
    return {
        "deposit_key": hold.deposit_key,
        "transaction_id": hold.transaction_id,
        "signature": hold.signature,
        "sender": hold.sender,
        "credits": _usd(hold.credits_micros),
        "held_at": hold.held_at.isoformat(),
        "claims": [{"customer": c.customer, "claimed_at": c.claimed_at.isoformat()} for c in hold.claims],
        "assigned_to": hold.assigned_to,
        "assignment_transaction_id": hold.assignment_transaction_id,
    }


def run_suspense(args: argparse.Namespace, settings: Settings) -> int:
    with open_ledger(settings) as ledger:
        holds = ledger.suspense_holds(include_assigned=args.all)
    for hold in holds:
        claims = ", ".join(c.customer for c in hold.claims) or "none"
        assigned = f" assigned to {hold.assigned_to}" if hold.assigned_to else ""
        _emit(
            args,
            _hold_record(hold),
            f"{hold.deposit_key} {_usd(hold.credits_micros)} USD sender {hold.sender or '?'} "
            f"claims: {claims}{assigned}",
        )
    if not holds and args.format == "text":
        print("no deposits held in suspense")
    return EXIT_OK


def _transaction_record(transaction: Transaction, settings: Settings) -> dict[str, Any]:
    def amount(currency: str, units: int) -> str:
        asset = settings.asset_table.by_symbol(currency)
        decimals = DEFAULT_DECIMALS[USD] if currency == USD else (asset.decimals if asset else 0)
        return format_units(units, decimals)

    return {
        "id": transaction.id,
        "key": transaction.key,
        "kind": transaction.kind,
        "created_at": transaction.created_at.isoformat(),
        "reverses": transaction.reverses,
        "reversed_by": transaction.reversed_by,
        "postings": [
            {
                "account": p.account,
                "currency": p.currency,
                "amount_raw": str(p.amount),
                "amount": amount(p.currency, p.amount),
            }
            for p in transaction.postings
        ],
        "evidence": transaction.evidence,
    }


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    wanted: str = args.transaction
    with open_ledger(settings) as ledger:
        if wanted.isascii() and wanted.isdigit():
            transaction = ledger.transaction(int(wanted))
        else:
            found = ledger.transaction_by_key(wanted)
            if found is None:
                raise UsageError(f"ledger show: no transaction with key {wanted!r}")
            transaction = found
    record = _transaction_record(transaction, settings)
    if args.format == "json":
        print(encode_json(record))  # evidence decimals stay exact JSON numbers
        return EXIT_OK
    print(f"transaction {transaction.id} {transaction.kind} {transaction.key} at {record['created_at']}")
    if transaction.reverses is not None:
        print(f"  reverses transaction {transaction.reverses}")
    if transaction.reversed_by is not None:
        print(f"  reversed by transaction {transaction.reversed_by}")
    for posting in record["postings"]:
        print(f"  {posting['account']:<48} {posting['amount']:>28} {posting['currency']}")
    return EXIT_OK


def run_reverse(args: argparse.Namespace, settings: Settings) -> int:
    if not args.reason.strip():
        raise UsageError("ledger reverse: --reason must say why")
    with open_ledger(settings) as ledger:
        result = ledger.reverse(args.transaction_id, reason=args.reason.strip(), actor=operator())
    state = "posted" if result.created else "already posted, nothing changed"
    _emit(
        args,
        {"transaction_id": result.transaction_id, "created": result.created, "reverses": args.transaction_id},
        f"reversal of transaction {args.transaction_id}: transaction {result.transaction_id} ({state})",
    )
    return EXIT_OK


def run_link(args: argparse.Namespace, settings: Settings) -> int:
    try:
        address = parse_pubkey(args.address)
    except ValueError as exc:
        raise UsageError(f"wallets link: {exc}") from None
    customer = _customer(args.account, settings)
    if args.move and not (args.reason and args.reason.strip()):
        raise UsageError("wallets link: --move needs --reason TEXT (moves are audited)")
    from indexer import store  # noqa: PLC0415 - SQLAlchemy tables load only for ledger commands

    def link_and_record(uow: Any) -> Any:
        link = uow.link_wallet(address, customer, move=args.move, reason=args.reason, actor=operator())
        moved = {key: customer for key, result in link.assigned}
        store.record_assignments(
            uow.connection, moved, attribution="linked_wallet", now=uow.now(), detail={"wallet": address}
        )
        return link

    with open_ledger(settings) as ledger, ledger_errors(settings):
        link = ledger.run(link_and_record)
    if not link.changed:
        text = f"wallet {address} is already linked to {customer}"
    elif link.previous_customer:
        text = f"wallet {address} moved from {link.previous_customer} to {customer}"
    else:
        text = f"wallet {address} linked to {customer}"
    assigned = [key for key, result in link.assigned if result.created]
    if assigned:
        text += f"; {len(assigned)} deposit(s) moved out of suspense: " + ", ".join(assigned)
    _emit(
        args,
        {
            "address": address,
            "customer": customer,
            "previous_customer": link.previous_customer,
            "changed": link.changed,
            "assigned": [
                {"deposit_key": key, "transaction_id": result.transaction_id, "created": result.created}
                for key, result in link.assigned
            ],
        },
        text,
    )
    return EXIT_OK
