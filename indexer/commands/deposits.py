"""Deposit commands: `treasury deposits list|claim|assign|price` and `treasury references add|list`.

- `deposits list [--status STATUS] [--format table|jsonl]`: one row per recorded inflow (INTERFACE.md),
  streamed in id order.
- `deposits claim SIGNATURE ACCOUNT`: a customer names a signature (a claim alone never credits).
- `deposits assign DEPOSIT_ID ACCOUNT`: an operator moves a deposit held in suspense to a customer,
  exactly once; DEPOSIT_ID is the deposit's id (or its key `sol:<signature>:<account>:<asset>`).
- `deposits price DEPOSIT_ID --usd PRICE --reason TEXT`: an operator's price for a deposit waiting for
  one (`pending_price`); audited, then credited.
- `references add ACCOUNT REFERENCE` / `references list [ACCOUNT]`: the per-customer deposit
  references that memos carry (attribution by memo, DESIGN.md §3).
"""

from __future__ import annotations

import argparse
import asyncio
import decimal
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import orjson

from indexer import store
from indexer.app import open_pipeline
from indexer.cli import EXIT_OK, CommandError, UsageError
from indexer.commands.ledger import (
    _customer,
    _emit,
    _format_option,
    _group,
    _hold_record,
    _usd,
    ledger_errors,
    open_ledger,
    operator,
)
from indexer.config import Settings
from indexer.parser import format_amount
from indexer.pipeline import DepositStateError, PipelineError, RunSummary
from ledger_client import parse_deposit_key
from ledger_client.entries import check_signature
from ledger_client.errors import LedgerError
from ledger_client.ledger import UnitOfWork
from pricing.credit import decimal_text, format_micros

LIST_BATCH = 1000


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    inner = _group(subparsers, parents, "deposits", "deposits: list, claims, assignment out of suspense, prices")

    listing = inner.add_parser(
        "list",
        parents=parents,
        help="one row per recorded inflow",
        description="One row per recorded inflow, oldest first; jsonl: the fields of `treasury parse` plus id, "
        "customer, attribution, price_usd, usd_value, bonus, credits and ledger_transaction, with the deposit's "
        "current status.",
    )
    listing.add_argument("--status", choices=store.STATUSES, help="only deposits in this status")
    listing.add_argument("--format", choices=("table", "jsonl"), default="table", help="output format")
    listing.set_defaults(handler=run_list)

    claim = inner.add_parser(
        "claim",
        parents=parents,
        help="record a customer's claim on a transaction signature (never credits by itself)",
        description="Record that customer ACCOUNT names SIGNATURE as their deposit. A claim alone never "
        "credits: it is shown beside the deposit in suspense for an operator to decide.",
    )
    claim.add_argument("signature", metavar="SIGNATURE")
    claim.add_argument("account", metavar="ACCOUNT")
    _format_option(claim)
    claim.set_defaults(handler=run_claim)

    assign = inner.add_parser(
        "assign",
        parents=parents,
        help="assign a deposit held in suspense to a customer (once)",
        description="Move the credits of a deposit held in suspense to customer ACCOUNT, exactly once. "
        "DEPOSIT_ID is the deposit's id (`deposits list`) or its key (sol:<signature>:<account>:<asset>).",
    )
    assign.add_argument("deposit", metavar="DEPOSIT_ID")
    assign.add_argument("account", metavar="ACCOUNT")
    assign.add_argument("--reason", metavar="TEXT", help="why (audited)")
    _format_option(assign)
    assign.set_defaults(handler=run_assign)

    price = inner.add_parser(
        "price",
        parents=parents,
        help="set by hand the price of a deposit waiting for one (audited), and credit it",
        description="Set the USD price per whole token of a final deposit waiting for a price "
        "(pending_price), with a reason; the quote records it as manual with who set it and why, and the "
        "deposit is credited.",
    )
    price.add_argument("deposit", metavar="DEPOSIT_ID")
    price.add_argument("--usd", required=True, metavar="PRICE", help="USD per whole token, e.g. 142.17")
    price.add_argument("--reason", required=True, metavar="TEXT", help="why (audited)")
    _format_option(price)
    price.set_defaults(handler=run_price)

    references = _group(subparsers, parents, "references", "customers' deposit references (memo attribution)")
    add = references.add_parser(
        "add",
        parents=parents,
        help="record a customer's deposit reference",
        description="Record REFERENCE as customer ACCOUNT's deposit reference: a deposit whose memo carries it "
        "(found by TREASURY_MEMO_PATTERN) is credited to the customer. A reference belongs to one customer.",
    )
    add.add_argument("account", metavar="ACCOUNT")
    add.add_argument("reference", metavar="REFERENCE")
    _format_option(add)
    add.set_defaults(handler=run_reference_add)
    show = references.add_parser("list", parents=parents, help="a customer's references (or every one)")
    show.add_argument("account", metavar="ACCOUNT", nargs="?")
    _format_option(show)
    show.set_defaults(handler=run_reference_list)


# --- deposits list ---


def deposit_record(row: store.DepositRow) -> dict[str, Any]:
    """INTERFACE.md `deposits list --format jsonl`: the fields of `parse`, then the deposit's own."""
    return {
        "signature": row.signature,
        "slot": row.slot,
        "block_time": row.block_time,
        "asset": row.asset,
        "token_program": row.token_program,
        "account": row.account,
        "owner": row.owner,
        "amount_raw": str(row.amount_raw),
        "decimals": row.decimals,
        "amount": format_amount(row.amount_raw, row.decimals),
        "sender": row.sender,
        "memo": row.memo,
        "status": row.status,
        "reason": row.reason,
        "id": row.id,
        "customer": row.customer,
        "attribution": row.attribution,
        "price_usd": row.price_usd,
        "usd_value": None if row.usd_value_micros is None else format_micros(row.usd_value_micros),
        "bonus": None if row.bonus_micros is None else format_micros(row.bonus_micros),
        "credits": None if row.credits_micros is None else format_micros(row.credits_micros),
        "ledger_transaction": row.ledger_transaction_id,
        "symbol": row.symbol,
    }


def _rows(settings: Settings, status: str | None) -> Iterator[store.DepositRow]:
    with open_ledger(settings) as ledger, ledger_errors(settings):
        after = 0

        def page(uow: UnitOfWork) -> list[store.DepositRow]:
            return store.list_deposits(uow.connection, status=status, after_id=after, limit=LIST_BATCH)

        for _ in range(10**9):
            batch = ledger.read(page)
            if not batch:
                return
            yield from batch
            after = batch[-1].id


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    out = sys.stdout
    if args.format == "jsonl":
        for row in _rows(settings, args.status):
            out.buffer.write(orjson.dumps(deposit_record(row)) + b"\n")
        out.flush()
        return EXIT_OK
    header = ("id", "block time (UTC)", "asset", "amount", "status", "customer", "credits", "reason")
    print("  ".join(header))
    for row in _rows(settings, args.status):
        record = deposit_record(row)
        when = _time(row.block_time)
        customer = row.customer or ("suspense" if row.status == store.SUSPENSE else "-")
        print(
            "  ".join(
                (
                    str(row.id),
                    when,
                    row.symbol or row.asset,
                    record["amount"],
                    row.status,
                    customer,
                    record["credits"] or "-",
                    row.reason or "",
                )
            )
        )
    return EXIT_OK


def _time(block_time: int | None) -> str:
    import datetime as dt  # noqa: PLC0415

    if block_time is None:
        return "-"
    return dt.datetime.fromtimestamp(block_time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- claims and assignment ---


def run_claim(args: argparse.Namespace, settings: Settings) -> int:
    with ledger_errors(settings):
        signature = check_signature(args.signature.strip())
    customer = _customer(args.account, settings)
    with open_ledger(settings) as ledger, ledger_errors(settings):
        claim = ledger.claim(signature, customer)
        holds = [h for h in ledger.suspense_holds(include_assigned=True) if h.signature == signature]
    text = f"claim recorded: {customer} names {signature} (a claim alone never credits)"
    for hold in holds:
        if hold.assigned_to:
            text += f"; deposit {hold.deposit_key} was already assigned to {hold.assigned_to}"
        else:
            text += (
                f"; deposit {hold.deposit_key} ({_usd(hold.credits_micros)} USD) waits in suspense: "
                "an operator may assign it with `treasury deposits assign`"
            )
    _emit(
        args,
        {
            "signature": signature,
            "customer": customer,
            "claimed_at": claim.claimed_at.isoformat(),
            "suspense": [_hold_record(hold) for hold in holds],
        },
        text,
    )
    return EXIT_OK


def _deposit_key(uow: UnitOfWork, text: str) -> tuple[str, int | None]:
    """A deposit named by its id or its key -> (key, id); UsageError when neither."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        row = store.deposit_by_id(uow.connection, int(text))
        if row is None:
            raise UsageError(f"deposits: no deposit with id {text}")
        return row.key, row.id
    try:
        parse_deposit_key(text)
    except LedgerError:
        raise UsageError(
            f"deposits: DEPOSIT_ID {text!r} is neither a deposit id nor a deposit key "
            "(sol:<signature>:<receiving account>:<asset>)"
        ) from None
    row = store.deposit_by_key(uow.connection, text)
    return text, row.id if row else None


def run_assign(args: argparse.Namespace, settings: Settings) -> int:
    customer = _customer(args.account, settings)
    actor = operator()

    def assign(uow: UnitOfWork) -> tuple[str, int | None, Any]:
        key, deposit_id = _deposit_key(uow, args.deposit)
        result = uow.assign_suspense(key, customer, actor=actor, reason=args.reason)
        store.record_assignments(
            uow.connection,
            {key: customer},
            attribution="operator",
            now=uow.now(),
            detail={"actor": actor, "reason": args.reason, "ledger_transaction": result.transaction_id},
        )
        return key, deposit_id, result

    with open_ledger(settings) as ledger, ledger_errors(settings):
        key, deposit_id, result = ledger.run(assign)
    state = "assigned" if result.created else "was already assigned, nothing changed"
    _emit(
        args,
        {
            "deposit_id": deposit_id,
            "deposit_key": key,
            "customer": customer,
            "transaction_id": result.transaction_id,
            "created": result.created,
        },
        f"deposit {deposit_id or key} {state} to {customer}: transaction {result.transaction_id}",
    )
    return EXIT_OK


# --- manual price ---


def run_price(args: argparse.Namespace, settings: Settings) -> int:
    text = args.deposit.strip()
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise UsageError(f"deposits price: DEPOSIT_ID must be a deposit id, got {args.deposit!r}")
    try:
        price = Decimal(args.usd.strip())
    except decimal.InvalidOperation:
        raise UsageError(f"deposits price: --usd is not a decimal number: {args.usd!r}") from None
    if not price.is_finite() or price <= 0:
        raise UsageError(f"deposits price: --usd must be a positive price, got {args.usd!r}")
    if not args.reason.strip():
        raise UsageError("deposits price: --reason must say why")
    with open_ledger(settings) as ledger, ledger_errors(settings):

        async def main() -> store.DepositRow:
            async with open_pipeline(settings, ledger) as pipeline:
                return await pipeline.price_manually(
                    int(text), price, reason=args.reason.strip(), actor=operator(), summary=RunSummary()
                )

        try:
            row = asyncio.run(main())
        except DepositStateError as exc:
            raise UsageError(f"deposits price: {exc}") from None
        except PipelineError as exc:
            raise CommandError(f"deposits price: {exc}") from None
    record = deposit_record(row)
    _emit(
        args,
        record,
        f"deposit {row.id} priced by hand at {decimal_text(price)} USD: {record['credits']} credits, now {row.status}"
        + (f" ({row.customer})" if row.customer else ""),
    )
    return EXIT_OK


# --- references ---


def run_reference_add(args: argparse.Namespace, settings: Settings) -> int:
    customer = _customer(args.account, settings)
    reference = args.reference.strip()
    if not reference or len(reference) > 200 or not reference.isprintable():
        raise UsageError("references add: REFERENCE is 1 to 200 printable characters")
    from indexer.attribution import references_in  # noqa: PLC0415

    if references_in([reference], settings.memo_pattern) != [reference]:
        raise UsageError(
            f"references add: {reference!r} would never be found: it does not match TREASURY_MEMO_PATTERN "
            f"({settings.memo_pattern.pattern})"
        )

    def add(uow: UnitOfWork) -> str:
        store.add_reference(uow.connection, reference, customer, uow.now())
        owners = store.customers_for_references(uow.connection, [reference])
        return owners[reference]

    with open_ledger(settings) as ledger, ledger_errors(settings):
        owner = ledger.run(add)
    if owner != customer:
        raise UsageError(f"references add: {reference!r} already belongs to {owner}")
    _emit(args, {"reference": reference, "customer": customer}, f"reference {reference} belongs to {customer}")
    return EXIT_OK


def run_reference_list(args: argparse.Namespace, settings: Settings) -> int:
    customer = _customer(args.account, settings) if args.account else None

    def read(uow: UnitOfWork) -> list[tuple[str, str]]:
        table = store.deposit_references.c
        from sqlalchemy import select  # noqa: PLC0415

        query = select(table.reference, table.customer).order_by(table.customer, table.reference)
        if customer is not None:
            query = query.where(table.customer == customer)
        return [(row[0], row[1]) for row in uow.connection.execute(query)]

    with open_ledger(settings) as ledger, ledger_errors(settings):
        rows = ledger.read(read)
    if args.format == "json":
        for reference, owner in rows:
            sys.stdout.buffer.write(orjson.dumps({"reference": reference, "customer": owner}) + b"\n")
    else:
        for reference, owner in rows:
            print(f"{owner}  {reference}")
    return EXIT_OK
