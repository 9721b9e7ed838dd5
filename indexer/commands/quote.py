"""`treasury quote --asset SYMBOL_OR_MINT --amount-raw N [--at ISO8601]`: what a deposit would be credited.

Prints one JSON object (INTERFACE.md): `asset, amount_raw, decimals, price_usd, price_source, price_at,
usd_value, bonus, credits, burn_raw, retained_raw`. Money is a decimal string with exactly 6 places
(`price_usd` has at least 6 and more when the price has more: it is never rounded, it is the price the
credits were computed with); raw amounts are integer strings; `burn_raw`/`retained_raw` are null for
assets other than OSR. Without `--at` it prices now, by the live rule.

Exit 2 for an unknown asset, a bad amount (negative, not an integer, above u64) or a bad time; exit 1
when no acceptable price can be had (CoinGecko failing, a stale point): one line, never a number.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from indexer import logs
from indexer.app import build_oracle
from indexer.cli import EXIT_OK, CommandError, UsageError
from indexer.config import Settings, parse_time
from pricing.assets import Asset
from pricing.credit import U64_MAX, Credit, compute_credit, format_micros, format_price
from pricing.errors import PricingError
from pricing.quote import Quote, iso
from pricing.rules import LIVE_AHEAD_S


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    command = subparsers.add_parser(
        "quote",
        parents=parents,
        help="price an amount of an asset and print the credits it would give",
        description="Price AMOUNT_RAW base units of an asset at a time (default: now) by the pricing rules "
        "and print the credits, bonus and OSR burn split as one JSON object.",
    )
    command.add_argument("--asset", required=True, metavar="SYMBOL_OR_MINT", help="e.g. SOL, USDC or a mint")
    command.add_argument("--amount-raw", required=True, metavar="N", help="amount in base units (lamports, …)")
    command.add_argument("--at", metavar="ISO8601", help="the deposit's time (default: now, by the live rule)")
    command.add_argument(
        "--verbose", action="store_true", help="also log CoinGecko retries and fallbacks on stderr (default: errors)"
    )
    command.set_defaults(handler=run)


def parse_amount_raw(text: str) -> int:
    """A whole number of base units, 0 ≤ N ≤ 2**64 − 1 (a token amount is a u64)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"--amount-raw must be a whole number of base units, got {text!r}")
    amount = int(text)
    if amount > U64_MAX:
        raise ValueError(f"--amount-raw {text} is above the largest token amount (2**64 - 1)")
    return amount


def quote_record(asset: Asset, quote: Quote, credit: Credit) -> dict[str, Any]:
    """The JSON object INTERFACE.md specifies for `treasury quote`."""
    return {
        "asset": asset.symbol,
        "amount_raw": str(credit.amount_raw),
        "decimals": credit.decimals,
        "price_usd": format_price(quote.price_usd),
        "price_source": quote.source,
        "price_at": iso(quote.point_time),
        "usd_value": format_micros(credit.usd_value_micros),
        "bonus": format_micros(credit.bonus_micros),
        "credits": format_micros(credit.credits_micros),
        "burn_raw": None if credit.burn_raw is None else str(credit.burn_raw),
        "retained_raw": None if credit.retained_raw is None else str(credit.retained_raw),
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    # A one-shot command: its result or its one-line error is the output; retries are noise unless asked.
    logs.configure(level=logging.INFO if args.verbose else logging.ERROR)
    asset = settings.asset_table.resolve(args.asset.strip())
    if asset is None:
        known = ", ".join(a.symbol for a in settings.assets)
        raise UsageError(f"quote: unknown asset {args.asset.strip()!r} (known: {known}, or their mints)")
    try:
        amount_raw = parse_amount_raw(args.amount_raw)
        at = parse_time(args.at) if args.at is not None else None
    except ValueError as exc:
        raise UsageError(f"quote: {exc}") from None
    now = dt.datetime.now(dt.UTC)
    if at is not None and at > now + dt.timedelta(seconds=LIVE_AHEAD_S):
        raise UsageError(f"quote: --at {args.at.strip()} is in the future")
    try:
        quote = asyncio.run(_quote(settings, asset, at if at is not None else now, now=now, live=at is None))
    except PricingError as exc:
        raise CommandError(f"quote: no price for {asset.symbol}: {exc}") from None
    credit = compute_credit(
        asset, amount_raw, quote.price_usd, osr_bonus=settings.osr_bonus, osr_burn_share=settings.osr_burn_share
    )
    sys.stdout.buffer.write(orjson.dumps(quote_record(asset, quote, credit)) + b"\n")
    sys.stdout.buffer.flush()
    return EXIT_OK


async def _quote(settings: Settings, asset: Asset, at: dt.datetime, *, now: dt.datetime, live: bool) -> Quote:
    async with build_oracle(settings) as oracle:
        return await oracle.quote(asset, at, now=now, live=live)
