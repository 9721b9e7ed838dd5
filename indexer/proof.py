"""The indexer's side of the proof (issue 9): chain reconciliation and the audit over the indexer's
records, and the entry points the CLI and the daemon call.

    result = await reconcile_chain(ledger, rpc, since, until, now=now, settings=settings)
    result = audit(ledger, since, until, settings=settings, now=now)
    last_chain_run(ledger), last_audit(ledger)          # for `treasury status`

The jobs and their pure comparisons live in `reconcile` (`reconcile.chain`, `reconcile.audit`), which
never imports `indexer`; this module implements their ports:

- `RpcChainSource`: the chain through `indexer.rpc.SolanaRpc` (signature pages, replies, balances);
- `IndexerChainRecords`: the accounts, inflows, outflows and stored replies of `indexer.store`'s tables,
  and `account_balances`, which reads an account's balance before and after a transaction straight
  from a reply's balance arrays (not through the parser: the chain side is derived independently of
  the code that wrote the records);
- `IndexerAuditEvidence`: the current parser (`parse_transaction`) with the current treasury wallets,
  known token accounts, asset table and dust thresholds, and the deposits table.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import based58
import msgspec
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from indexer import store, wire
from indexer.config import Settings
from indexer.parser import IN, ParseError, Watch, decode_reply, parse_transaction
from indexer.rpc import InvalidParams, SignatureInfo, SolanaRpc
from ledger_client import Ledger
from ledger_client.database import block_time_bounds, first_block_second
from pricing.assets import SOL_DECIMALS, SOL_SYMBOL, Asset, AssetTable
from reconcile.audit import AuditResult, Derivation, DerivedInflow, StoredDeposit, run_audit
from reconcile.chain import (
    TOKEN_ACCOUNT,
    WALLET,
    Balances,
    ChainResult,
    RecordedFlow,
    RecordedTransaction,
    TreasuryAccount,
    run_chain_reconciliation,
)
from reconcile.proof_runs import AuditRunRecord, ChainRunRecord, last_audit, last_chain_run

__all__ = [
    "AuditRunRecord",
    "ChainRunRecord",
    "IndexerAuditEvidence",
    "IndexerChainRecords",
    "RpcChainSource",
    "account_balances",
    "audit",
    "last_audit",
    "last_chain_run",
    "proof_status",
    "reconcile_chain",
]

_DROPPED: Final = "dropped"


# --- reading balances out of a reply ---


def _account_keys(result: Any) -> list[str] | None:
    """The full key list of a decoded reply (static keys, then loaded writable and readonly), or None."""
    transaction = result.transaction
    meta = result.meta
    loaded = [*meta.loadedAddresses.writable, *meta.loadedAddresses.readonly] if meta.loadedAddresses else []
    if isinstance(transaction, list):
        if len(transaction) != 2 or transaction[1] != "base64":
            return None
        try:
            decoded = wire.decode_transaction(base64.b64decode(transaction[0], validate=True))
        except (binascii.Error, wire.WireFormatError):
            return None
        return [based58.b58encode(key).decode("ascii") for key in decoded.keys] + loaded
    keys = [key if isinstance(key, str) else key.pubkey for key in transaction.message.accountKeys]
    if transaction.message.accountKeys and not isinstance(transaction.message.accountKeys[0], str):
        return keys  # jsonParsed: the list already holds the loaded addresses
    return keys + loaded


def account_balances(reply: str | bytes, account: TreasuryAccount) -> Balances | None:
    """The account's balance before and after the reply's transaction: lamports of a wallet's own address
    (meta.pre/postBalances), base units of a token account (pre/postTokenBalances; a missing entry is
    0). None when the reply does not name the account or cannot be read. Pure."""
    try:
        result = decode_reply(reply)
    except ParseError:
        return None
    meta = result.meta
    if result.transaction is msgspec.UNSET or meta is msgspec.UNSET or meta is None:
        return None
    keys = _account_keys(result)
    if (
        keys is None
        or account.address not in keys
        or len(meta.preBalances) != len(keys)
        or len(meta.postBalances) != len(keys)
    ):
        return None
    index = keys.index(account.address)
    if account.kind == WALLET:
        return Balances(meta.preBalances[index], meta.postBalances[index])
    amounts = []
    for entries in (meta.preTokenBalances, meta.postTokenBalances):
        amount = 0
        for entry in entries or ():
            if entry.accountIndex == index:
                if entry.mint != account.asset:
                    return None
                text = entry.uiTokenAmount.amount
                if not (text.isascii() and text.isdigit()):
                    return None
                amount = int(text)
        amounts.append(amount)
    return Balances(amounts[0], amounts[1])


# --- chain reconciliation's ports ---


class RpcChainSource:
    """`reconcile.chain.ChainSource` over a SolanaRpc, at one commitment (finalized by default)."""

    def __init__(self, rpc: SolanaRpc, *, commitment: str = "finalized") -> None:
        self.rpc = rpc
        self.commitment = commitment

    async def signatures(self, address: str, *, before: str | None, limit: int) -> Sequence[SignatureInfo]:
        return await self.rpc.get_signatures_for_address(
            address, before=before, limit=limit, commitment=self.commitment
        )

    async def transactions(self, signatures: Sequence[str]) -> list[bytes | None]:
        return await self.rpc.get_transactions(signatures, commitment=self.commitment)

    async def balance(self, account: TreasuryAccount) -> tuple[int, int]:
        if account.kind == WALLET:
            return await self.rpc.get_balance_with_slot(account.address, self.commitment)
        # getTokenAccountBalance carries no slot the client returns: the slot is read first, so a
        # transaction landing in between is seen as a gap (a warning), never hidden.
        slot = await self.rpc.get_slot(self.commitment)
        try:
            amount_raw, _decimals = await self.rpc.get_token_account_balance(account.address, self.commitment)
        except InvalidParams as exc:
            if "could not find account" not in exc.message.lower():
                raise
            return 0, slot  # closed: it holds nothing
        return amount_raw, slot


class IndexerChainRecords:
    """`reconcile.chain.ChainRecords` over the indexer's tables."""

    def __init__(self, *, wallets: Sequence[str] = (), assets: AssetTable | None = None) -> None:
        self.wallets = tuple(wallets)
        self.assets = assets if assets is not None else AssetTable()

    def accounts(self, connection: Connection, since: dt.datetime, until: dt.datetime) -> list[TreasuryAccount]:
        watched = store.watched(connection)
        wallets = dict.fromkeys([*self.wallets, *(a.address for a in watched if a.kind == store.WALLET)])
        found = {
            (wallet, SOL_SYMBOL): TreasuryAccount(wallet, wallet, SOL_SYMBOL, SOL_SYMBOL, SOL_DECIMALS, WALLET)
            for wallet in wallets
        }
        token_accounts: list[Any] = [(a.address, a.owner, a.mint) for a in watched if a.kind == store.TOKEN_ACCOUNT]
        # Token accounts the parser attributed to the treasury without discovery naming them (replies that
        # carry no owner: found where the account was initialised), with changes in the window.
        since_s, until_s = block_time_bounds(since, until)
        for table in (store.deposits, store.outflows):
            c = table.c
            token_accounts += connection.execute(
                select(c.account, c.owner, c.asset)
                .where(and_(c.block_time >= since_s, c.block_time < until_s, c.asset != SOL_SYMBOL))
                .distinct()
            ).all()
        for address, owner, mint in token_accounts:
            asset = self.assets.by_key(mint) if mint is not None else None
            if asset is None or asset.mint is None or (address, asset.mint) in found:
                continue  # a mint the table does not accept is not scanned: its history is not the indexer's
            found[(address, asset.mint)] = TreasuryAccount(
                address, owner, asset.mint, asset.symbol, asset.decimals, TOKEN_ACCOUNT
            )
        return list(found.values())

    def flows(
        self, connection: Connection, account: TreasuryAccount, since: dt.datetime, until: dt.datetime
    ) -> list[RecordedFlow]:
        since_s, until_s = block_time_bounds(since, until)
        d = store.deposits.c
        o = store.outflows.c
        inflows = connection.execute(
            select(d.signature, d.slot, d.block_time, d.amount_raw, d.key).where(
                and_(
                    d.account == account.address,
                    d.asset == account.asset,
                    d.block_time >= since_s,
                    d.block_time < until_s,
                    d.status != store.DROPPED,
                )
            )
        )
        outflows = connection.execute(
            select(o.signature, o.slot, o.block_time, o.amount_raw, o.key).where(
                and_(
                    o.account == account.address,
                    o.asset == account.asset,
                    o.block_time >= since_s,
                    o.block_time < until_s,
                    o.commitment != _DROPPED,
                )
            )
        )
        found = [RecordedFlow(row[0], row[1], row[2], int(row[3]), row[4]) for row in inflows]
        found += [RecordedFlow(row[0], row[1], row[2], -int(row[3]), row[4]) for row in outflows]
        return sorted(found, key=lambda flow: (flow.slot, flow.signature, flow.key))

    def recorded(
        self, connection: Connection, signatures: Sequence[str], account: TreasuryAccount
    ) -> dict[str, RecordedTransaction]:
        t = store.transactions.c
        rows = connection.execute(
            select(t.signature, t.slot, t.block_time, t.failed, t.fee_lamports, t.fee_payer, t.raw).where(
                and_(t.signature.in_(list(signatures)), t.commitment != _DROPPED)
            )
        )
        return {
            row[0]: RecordedTransaction(
                row[0],
                row[1],
                row[2],
                bool(row[3]),
                row[4],
                row[5],
                row[6] is not None,
                account_balances(row[6], account) if row[6] is not None else None,
            )
            for row in rows
        }

    def anchor_after(self, connection: Connection, account: TreasuryAccount, until: dt.datetime) -> str | None:
        until_s = first_block_second(until)
        found: list[tuple[int, int, str]] = []
        for table, kept in (
            (store.deposits, store.deposits.c.status != store.DROPPED),
            (store.outflows, store.outflows.c.commitment != _DROPPED),
        ):
            c = table.c
            row = connection.execute(
                select(c.block_time, c.slot, c.signature)
                .where(and_(c.account == account.address, c.asset == account.asset, c.block_time >= until_s, kept))
                .order_by(c.block_time, c.slot)
                .limit(1)
            ).first()
            if row is not None:
                found.append((row[0], row[1], row[2]))
        return min(found)[2] if found else None

    def balances(self, reply: str | bytes, account: TreasuryAccount) -> Balances | None:
        return account_balances(reply, account)


async def reconcile_chain(
    ledger: Ledger,
    rpc: SolanaRpc,
    since: dt.datetime,
    until: dt.datetime,
    *,
    now: dt.datetime,
    settings: Settings | None = None,
    record: bool = True,
    commitment: str = "finalized",
    clock: Callable[[], dt.datetime] | None = None,
) -> ChainResult:
    """Reconcile every treasury account over [since, until) against the chain and record the run
    (`reconcile.chain`). Without `settings`, the wallets are those the indexer has recorded and the asset
    table is the default one. `clock` gives the run's finish time (default: `now`). RPC errors
    (`indexer.rpc.RpcError`) pass through."""
    records = IndexerChainRecords(
        wallets=settings.wallets if settings is not None else (),
        assets=settings.asset_table if settings is not None else None,
    )
    return await run_chain_reconciliation(
        ledger, RpcChainSource(rpc, commitment=commitment), records, since, until, now=now, record=record, clock=clock
    )


# --- the audit's port ---


class IndexerAuditEvidence:
    """`reconcile.audit.AuditEvidence`: the current parser, asset table and dust rules, and the deposits
    table. `watch` is what the parser looks for (build it with `IndexerAuditEvidence.load`)."""

    def __init__(self, watch: Watch, assets: AssetTable) -> None:
        self.watch = watch
        self.assets = assets

    @classmethod
    def load(cls, ledger: Ledger, settings: Settings) -> IndexerAuditEvidence:
        """The watch of today: the configured wallets and every token account the indexer knows."""
        watched = ledger.read(lambda uow: store.watched(uow.connection))
        wallets = {*settings.wallets, *(a.address for a in watched if a.kind == store.WALLET)}
        watch = Watch(
            frozenset(wallets),
            assets=settings.asset_table,
            dust_raw=settings.dust_raw,
            token_accounts={a.address: a.owner for a in watched if a.kind == store.TOKEN_ACCOUNT},
        )
        return cls(watch, settings.asset_table)

    def keys_in_window(self, connection: Connection, since: dt.datetime, until: dt.datetime) -> list[str]:
        since_s, until_s = block_time_bounds(since, until)
        d = store.deposits.c
        rows = connection.execute(
            select(d.key).where(
                and_(
                    d.block_time >= since_s,
                    d.block_time < until_s,
                    d.status != store.DROPPED,
                )
            )
        )
        return [row[0] for row in rows]

    def deposits(self, connection: Connection, keys: Sequence[str]) -> dict[str, StoredDeposit]:
        d = store.deposits.c
        columns = (
            d.id,
            d.key,
            d.signature,
            d.status,
            d.amount_raw,
            d.usd_value_micros,
            d.bonus_micros,
            d.credits_micros,
            d.burn_raw,
            d.retained_raw,
            d.ledger_transaction_id,
            d.customer,
        )
        rows = connection.execute(select(*columns).where(d.key.in_(list(keys))))
        return {
            row[1]: StoredDeposit(
                id=row[0],
                key=row[1],
                signature=row[2],
                status=row[3],
                amount_raw=int(row[4]),
                usd_value_micros=row[5],
                bonus_micros=row[6],
                credits_micros=row[7],
                burn_raw=None if row[8] is None else int(row[8]),
                retained_raw=None if row[9] is None else int(row[9]),
                ledger_transaction_id=row[10],
                customer=row[11],
            )
            for row in rows
        }

    def derive(self, reply: str, account: str, asset: str) -> Derivation:
        try:
            parsed = parse_transaction(reply, self.watch)
        except ParseError as exc:
            return Derivation(None, None, str(exc))
        for change in parsed.changes:
            if change.direction == IN and change.account == account and change.asset == asset:
                inflow = DerivedInflow(change.amount_raw, change.decimals, change.status or "", change.reason)
                return Derivation(parsed.signature, inflow)
        return Derivation(parsed.signature, None)

    def asset(self, asset_key: str) -> Asset | None:
        return self.assets.by_key(asset_key)


def audit(
    ledger: Ledger,
    since: dt.datetime,
    until: dt.datetime,
    *,
    settings: Settings,
    now: dt.datetime,
    record: bool = True,
    clock: Callable[[], dt.datetime] | None = None,
) -> AuditResult:
    """Re-derive every credit of [since, until) from its evidence and compare it with the ledger
    (`reconcile.audit`); records the run. Synchronous (no network): the daemon calls it in a thread."""
    evidence = IndexerAuditEvidence.load(ledger, settings)
    return run_audit(ledger, evidence, since, until, now=now, record=record, clock=clock)


def proof_status(ledger: Ledger) -> Mapping[str, object]:
    """The last chain reconciliation and audit, for `treasury status` (None where none ran yet)."""
    chain = last_chain_run(ledger)
    audited = last_audit(ledger)
    return {
        "chain": None
        if chain is None
        else {
            "since": chain.since.isoformat(),
            "until": chain.until.isoformat(),
            "finished_at": chain.finished_at.isoformat(),
            "accounts": chain.accounts,
            "differences": chain.differences,
            "warnings": chain.warnings,
            "clean": chain.clean,
        },
        "audit": None
        if audited is None
        else {
            "since": audited.since.isoformat(),
            "until": audited.until.isoformat(),
            "finished_at": audited.finished_at.isoformat(),
            "credits": audited.credits,
            "differences": audited.differences,
            "clean": audited.clean,
        },
    }
