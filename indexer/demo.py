"""`treasury demo`: the whole pipeline offline, on real recorded mainnet transactions.

A loopback replay node serves the bundled replies (indexer/demo_data) as if they were the chain, and a
loopback CoinGecko serves the bundled real SOL price series (pricing/data). The demo watches the real
recipients of those transactions as treasury wallets, links one real sender to a demo customer,
gives another demo customer the deposit reference a real memo carries, lets a third claim a deposit
(a claim alone never credits), runs the backfill into a fresh SQLite ledger, and prints what was
credited and why, the ledger's balances and `ledger verify`.

The bundled 2020-2024 series is CoinGecko's daily export (one point at 00:00 UTC), so the demo accepts
price points up to two days old (TREASURY_PRICE_MAX_AGE_S=172800) instead of the production two hours;
deposits later than the bundled series wait as pending_price, as they would with no price.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Final

from indexer import store
from indexer.app import open_pipeline
from indexer.config import Settings, load_settings
from indexer.parser import format_amount
from indexer.pipeline import RunSummary
from indexer.replay import ReplayChain, ReplayServer
from indexer.replay.mints import add_asset_mints
from ledger_client import Ledger
from ledger_client.ledger import UnitOfWork
from pricing.credit import format_micros
from pricing.replay import ReplayServer as CoinGeckoReplay
from pricing.series import bundled_solana

DEMO_MAX_AGE_S: Final = 172_800  # the bundled series is daily: two days of age, said in the output
PRICE_SOURCE_NOW: Final = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)  # after every bundled transaction

# The real recipients of the bundled deposits, watched as treasury wallets.
WALLETS: Final = (
    "2b7iQq3PbWwWTotRSDFNXT9DauU418aCHK4jcAzETUem",  # 0.001 SOL, 2023-03-30, memo "transfer", fee paid by a relayer
    "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG",  # 0.01 SOL, 2021-04-06; MAPS tokens (not accepted)
    "B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M",  # 3.8 USDC, 2026-05-14, durable nonce
    "3i476kTBBTy7pBGx4CXwJpJ6phuwLQgcwLTdHhU3c7ui",  # 0.001 USDC, 2023-03-27: below the dust threshold
    "AjWkS35VV8eptekzw59fAyXXQRXjcwanPezL4EDQfSd8",  # 0.042 SOL, 2025-10-28, memo "CFP #4115716"
    "3eF3iBQqi2DmDLS7o9y8gG7necF5VBbwYy5gqF7sh899",  # 0.024922118 SOL, 2026-02-12
    "D7XYERWodEGaoN2X855T2qLvse28BSjfkvfCyW2EDBWy",  # its own Serum swap: signed by the treasury itself
)
LINKED: Final = {"DT1mBDFsNBc1UXa25RdxNvnjL5Lro7su7gX1zpLyCmWe": "agt_demo_alice"}
REFERENCES: Final = {"CFP #4115716": "agt_demo_bob"}
CLAIMS: Final = {
    "4LXpF3MCdp69iFmD27Sn812UNpqFPHM4qXH7Y12E964p9GHXvwMe1XEmyasogVT2N4XEctdQQLf1sHY6Gvsa5sFX": "agt_demo_carol",
}
MEMO_PATTERN: Final = r"CFP #\d+"


def demo_chain() -> ReplayChain:
    """The bundled mainnet replies as a chain, with the asset table's mint accounts."""
    folder = resources.files("indexer").joinpath("demo_data")
    replies = [
        entry.read_bytes() for entry in sorted(folder.iterdir(), key=lambda e: e.name) if entry.name.endswith(".json")
    ]
    chain = ReplayChain.from_replies(replies)
    add_asset_mints(chain)
    return chain


@dataclasses.dataclass(frozen=True)
class DemoResult:
    summary: RunSummary
    deposits: list[store.DepositRow]
    balances: dict[str, str]
    problems: list[str]
    transactions: int
    database: Path
    proofs: list[str]  # the chain reconciliation and the audit, one line each
    proofs_clean: bool


@contextmanager
def _folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="treasury-demo-") as folder:
        yield Path(folder)


def run(keep: Path | None = None, *, say: Callable[[str], None] = print) -> DemoResult:
    """Run the demo; `keep` keeps the ledger (a SQLite file in that folder)."""
    chain = demo_chain()
    with (
        _folder(keep) as folder,
        ReplayServer(chain) as rpc,
        CoinGeckoReplay({"solana": bundled_solana()}, now=PRICE_SOURCE_NOW) as coingecko,
    ):
        database = folder / "treasury-demo.db"
        if database.exists():
            database.unlink()
        settings = load_settings(
            environ={
                "TREASURY_DATABASE_URL": f"sqlite:///{database}",
                "TREASURY_RPC_URL": rpc.rpc_url,
                "TREASURY_COINGECKO_URL": coingecko.url,
                "TREASURY_WALLETS": ",".join(WALLETS),
                "TREASURY_PRICE_MAX_AGE_S": str(DEMO_MAX_AGE_S),
                "TREASURY_MEMO_PATTERN": MEMO_PATTERN,
            }
        )
        say(
            f"Serving {len(chain.transactions())} recorded mainnet transactions on {rpc.rpc_url} and the bundled "
            f"SOL/USD series on {coingecko.url}."
        )
        say(
            "Prices: CoinGecko's daily export (2020-2024) and Binance hourly closes (Dec 2025 - Jan 2026); the demo "
            f"accepts points up to {DEMO_MAX_AGE_S // 3600} h old (production: 2 h)."
        )
        with Ledger.open(settings.database_url, quiet=True) as ledger:
            ledger.ensure_schema()
            _prepare(ledger)
            summary = asyncio.run(_backfill(settings, ledger))
            deposits = ledger.read(lambda uow: store.list_deposits(uow.connection, limit=10_000))
            balances = ledger.read(_balances)
            problems = [f"{problem.code}: {problem.message}" for problem in ledger.verify()]
            transactions = ledger.read(_transaction_count)
            proofs, proofs_clean = asyncio.run(_proofs(settings, ledger))
        result = DemoResult(summary, deposits, balances, problems, transactions, database, proofs, proofs_clean)
        _report(result, say)
        if keep is not None:
            say(f"The ledger is kept in {database} (TREASURY_DATABASE_URL=sqlite:///{database}).")
        return result


def _prepare(ledger: Ledger) -> None:
    """The billing service's state before the scan: a linked wallet, a reference, a claim."""
    now = dt.datetime.now(dt.UTC)

    def prepare(uow: UnitOfWork) -> None:
        for address, customer in LINKED.items():
            uow.link_wallet(address, customer, actor="demo")
        for reference, customer in REFERENCES.items():
            store.add_reference(uow.connection, reference, customer, now)
        for signature, customer in CLAIMS.items():
            uow.claim(signature, customer)

    ledger.run(prepare)


async def _backfill(settings: Settings, ledger: Ledger) -> RunSummary:
    async with open_pipeline(settings, ledger) as pipeline:
        return await pipeline.backfill()


async def _proofs(settings: Settings, ledger: Ledger) -> tuple[list[str], bool]:
    """Issue 9's checks over the whole demo history: the ledger against the chain, and every credit
    re-derived from its evidence."""
    from indexer.proof import audit, reconcile_chain  # noqa: PLC0415
    from indexer.rpc import SolanaRpc  # noqa: PLC0415

    since = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    now = dt.datetime.now(dt.UTC)
    async with SolanaRpc(settings.rpc_url) as rpc:
        chain = await reconcile_chain(ledger, rpc, since, now, now=now, settings=settings)
    audited = await asyncio.to_thread(audit, ledger, since, now, settings=settings, now=now)
    lines = [
        f"reconcile chain: {len(chain.accounts)} treasury accounts, {chain.differences} differences"
        + (
            f", {chain.warnings} warning{'s' if chain.warnings != 1 else ''} (a gap in the recorded sample of "
            "mainnet history)"
            if chain.warnings
            else ""
        ),
        f"audit: {audited.credits} credits re-derived from their evidence, {audited.differences_total} differences",
    ]
    return lines, chain.clean and audited.clean


def _balances(uow: UnitOfWork) -> dict[str, str]:
    customers = sorted({*LINKED.values(), *REFERENCES.values(), *CLAIMS.values()})
    return {name: format_micros(uow.balance(name)) for name in (*customers, "suspense")}


def _transaction_count(uow: UnitOfWork) -> int:
    from sqlalchemy import func, select  # noqa: PLC0415

    from ledger_client.schema import transactions_table  # noqa: PLC0415

    return int(uow.connection.execute(select(func.count()).select_from(transactions_table)).scalar_one())


def _why(row: store.DepositRow) -> str:
    if row.status == store.CREDITED:
        how = {"memo": f"memo reference {row.reference}", "linked_wallet": "linked sender wallet"}.get(
            row.attribution or "", row.attribution or ""
        )
        return f"credited: {how}"
    if row.status == store.SUSPENSE:
        return "suspense: no memo reference, sender not linked (claims do not credit)"
    if row.status == store.PENDING_PRICE:
        who = f" (for {row.customer}, {row.attribution})" if row.customer else ""
        return f"waits for a price: {row.reason}{who}"
    if row.status == store.IGNORED:
        return f"ignored: {row.reason}"
    return f"{row.status}: {row.reason or ''}"


def _report(result: DemoResult, say: Callable[[str], None]) -> None:
    rows: list[tuple[str, ...]] = [("id", "block time (UTC)", "asset", "amount", "price USD", "credits", "to", "why")]
    for row in result.deposits:
        when = (
            dt.datetime.fromtimestamp(row.block_time, dt.UTC).strftime("%Y-%m-%d %H:%M")
            if row.block_time is not None
            else "-"
        )
        asset = row.symbol or f"{row.asset[:6]}…"
        to = "suspense" if row.status == store.SUSPENSE else "-"
        if row.status == store.CREDITED and row.customer is not None:
            to = row.customer
        credits = format_micros(row.credits_micros) if row.credits_micros is not None else "-"
        rows.append(
            (
                str(row.id),
                when,
                asset,
                format_amount(row.amount_raw, row.decimals),
                row.price_usd or "-",
                credits,
                to,
                _why(row),
            )
        )
    widths = [max(len(line[column]) for line in rows) for column in range(len(rows[0]) - 1)]
    say("")
    for line in rows:
        say("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1])
    summary = result.summary
    say("")
    say(
        f"Scanned {summary.signatures} signatures, fetched {summary.transactions_fetched} transactions, found "
        f"{summary.deposits_found} deposits: {summary.credited} credited to customers, {summary.held_in_suspense} "
        f"held in suspense, {sum(summary.ignored_by_reason.values())} ignored, {len(summary.pending_price)} waiting "
        "for a price."
    )
    say("Balances (USD credits): " + ", ".join(f"{name} {value}" for name, value in result.balances.items()))
    if result.problems:
        say(f"ledger verify: {len(result.problems)} problem(s)")
        for problem in result.problems:
            say(f"  {problem}")
    else:
        say(f"ledger verify: ok ({result.transactions} transactions, every invariant holds)")
    for proof in result.proofs:
        say(proof)


def summary_for_tests(result: DemoResult) -> dict[str, Any]:
    return {row.signature: (row.status, row.customer, row.credits_micros) for row in result.deposits}
