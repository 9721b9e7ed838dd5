"""OSR burn tracking (issue 9): the OSR the treasury owes to burn, and the burns it made, verified on chain.

Of each OSR deposit, the burn share (TREASURY_OSR_BURN_SHARE, 70 %) is posted to `osr:to-burn` (the
obligation) and the rest to `osr:retained` (docs/LEDGER.md). A burn is recognised on chain, among the
treasury's recorded outflows of the OSR mint (final ones only):

- a Token `burn` / `burnChecked` instruction moved OSR out of a treasury OSR token account, or
- the OSR went to the configured burn address (TREASURY_OSR_BURN_ADDRESS: the owner of the receiving
  token account, such as an incinerator wallet),

and is posted against the obligation with `ledger_client.osr_burn_entry` under `osr-burn:<signature>`
(`osr:burned +A`, `osr:to-burn −A`; one transaction per signature, summing the treasury accounts it
burned from), idempotently: the same signature seen again posts nothing. The amount is the account's
balance delta, as for every other change.

The pipeline calls `record_burns` inside the unit of work that records a page (one call in
`Pipeline._commit_page`), so a burn is posted in the same database transaction as the outflow that
shows it. Outflows recorded at `confirmed` (the daemon's live path) are posted once final, by
`post_pending_burns` (the daemon calls it after promoting transactions to finalized; `treasury burns
--post` does the same by hand).

`burns_report` says what is owed and what was burned: the balance of `osr:to-burn` is what is still
owed (under-burn, while positive) or, when negative, what was burned beyond the obligation
(over-burn: reported, and `treasury burns` exits 1).

Errors:
    BurnError
      └── BurnConflictError     `osr-burn:<signature>` already holds another amount (.signature)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from indexer import store
from indexer.config import Settings
from indexer.instructions import TOKEN_BURN_KINDS
from indexer.parser import OUT
from ledger_client import (
    OSR_BURNED,
    OSR_TO_BURN,
    Draft,
    IdempotencyConflictError,
    Ledger,
    PostResult,
    Transaction,
    osr_burn_entry,
)
from ledger_client.accounts import OSR
from ledger_client.entries import OSR_BURN
from ledger_client.ledger import UnitOfWork

BURN_INSTRUCTION: Final = "burn_instruction"
BURN_ADDRESS: Final = "transfer_to_burn_address"
FINALIZED: Final = "finalized"
MAX_PENDING: Final = 100_000  # burn outflows examined per catch-up (burns are rare: a generous bound)

_log = structlog.get_logger("indexer.burns")


class BurnError(Exception):
    """Base of burn tracking's errors."""


class BurnConflictError(BurnError):
    """`osr-burn:<signature>` was posted before with another amount: the chain and the ledger disagree."""

    def __init__(self, signature: str) -> None:
        super().__init__(f"osr-burn:{signature} already holds another amount")
        self.signature = signature


@dataclasses.dataclass(frozen=True, slots=True)
class BurnRule:
    """What counts as a burn: outflows of `osr_mint` by a burn instruction, or to `burn_address`."""

    osr_mint: str | None
    burn_address: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BurnRule:
        osr = settings.asset_table.by_symbol(OSR)
        return cls(osr.mint if osr is not None else None, settings.osr_burn_address)


@dataclasses.dataclass(frozen=True, slots=True)
class Outflow:
    """The facts of one recorded outflow that decide whether it is a burn."""

    signature: str
    slot: int
    block_time: int | None
    account: str  # the treasury token account it left
    asset: str
    amount_raw: int
    instruction_kind: str | None
    instruction_path: str | None
    recipient: str | None  # the owner whose balance of the mint rose most (parser's counterparty)


@dataclasses.dataclass(frozen=True, slots=True)
class RecognisedBurn:
    outflow: Outflow
    how: str  # BURN_INSTRUCTION or BURN_ADDRESS


def recognise(outflow: Outflow, rule: BurnRule) -> RecognisedBurn | None:
    """The burn an outflow is, if it is one (pure)."""
    if rule.osr_mint is None or outflow.asset != rule.osr_mint or outflow.amount_raw <= 0:
        return None
    if outflow.instruction_kind in TOKEN_BURN_KINDS:
        return RecognisedBurn(outflow, BURN_INSTRUCTION)
    if rule.burn_address is not None and outflow.recipient == rule.burn_address:
        return RecognisedBurn(outflow, BURN_ADDRESS)
    return None


def burn_drafts(burns: Iterable[RecognisedBurn], rule: BurnRule) -> list[Draft]:
    """One `osr-burn:<signature>` draft per signature, summing the accounts it burned from (pure)."""
    by_signature: dict[str, list[RecognisedBurn]] = {}
    for burn in burns:
        by_signature.setdefault(burn.outflow.signature, []).append(burn)
    drafts = []
    for signature, group in sorted(by_signature.items()):
        group.sort(key=lambda burn: burn.outflow.account)
        first = group[0].outflow
        evidence = {
            "signature": signature,
            "slot": first.slot,
            "block_time": first.block_time,
            "osr_mint": rule.osr_mint,
            "burn_address": rule.burn_address,
            "burns": [
                {
                    "account": burn.outflow.account,
                    "amount_raw": str(burn.outflow.amount_raw),
                    "how": burn.how,
                    "instruction": burn.outflow.instruction_path,
                    "instruction_kind": burn.outflow.instruction_kind,
                    "recipient": burn.outflow.recipient,
                }
                for burn in group
            ],
        }
        drafts.append(osr_burn_entry(signature, sum(burn.outflow.amount_raw for burn in group), evidence))
    return drafts


def _post(uow: UnitOfWork, drafts: Sequence[Draft]) -> list[PostResult]:
    """Post the drafts; a key already holding another amount raises BurnConflictError (nothing posted)."""
    if not drafts:
        return []
    try:
        return uow.post_many(drafts)
    except IdempotencyConflictError as exc:
        raise BurnConflictError(exc.key.removeprefix("osr-burn:")) from exc


def record_burns(
    uow: UnitOfWork,
    fetched: Sequence[store.FetchedTransaction],
    *,
    commitment: str,
    settings: Settings,
) -> int:
    """The pipeline's hook, inside the unit of work that records a page: post the burns among the page's
    outflows, when the page is final. Returns how many burn transactions were new.

    A burn key holding another amount (the chain says otherwise than an earlier reading) does not stop
    the scan: it is logged, and `treasury burns` shows the burn as recognised but not posted."""
    if commitment != FINALIZED:
        return 0
    rule = BurnRule.from_settings(settings)
    if rule.osr_mint is None:
        return 0
    found = []
    for item in fetched:
        if item.parsed is None:
            continue
        for change in item.parsed.changes:
            if change.direction != OUT or change.asset != rule.osr_mint:
                continue
            outflow = Outflow(
                change.signature,
                item.slot,
                item.block_time,
                change.account,
                change.asset,
                change.amount_raw,
                change.instruction_kind,
                change.instruction_path,
                change.counterparty,
            )
            burn = recognise(outflow, rule)
            if burn is not None:
                found.append(burn)
    if not found:
        return 0
    drafts = burn_drafts(found, rule)
    try:
        results = _post(uow, drafts)
    except BurnConflictError as exc:
        _log.error("burn_conflict", signature=exc.signature, error=str(exc))
        return 0
    for result, draft in zip(results, drafts, strict=True):
        if result.created:
            _log.info("osr_burn_posted", key=draft.key, amount_raw=str(draft.postings[0].amount))
    return sum(result.created for result in results)


def recorded_burns(connection: Connection, rule: BurnRule, *, final_only: bool) -> list[RecognisedBurn]:
    """Burns among the recorded outflows of the OSR mint (final ones, or also those not yet final)."""
    if rule.osr_mint is None:
        return []
    o = store.outflows.c
    condition = and_(o.asset == rule.osr_mint, o.commitment != "dropped")
    kinds = or_(o.instruction_kind.in_(sorted(TOKEN_BURN_KINDS)), o.recipient == rule.burn_address)
    if rule.burn_address is None:
        kinds = o.instruction_kind.in_(sorted(TOKEN_BURN_KINDS))
    if final_only:
        condition = and_(condition, o.commitment == FINALIZED)
    rows = connection.execute(
        select(
            o.signature,
            o.slot,
            o.block_time,
            o.account,
            o.asset,
            o.amount_raw,
            o.instruction_kind,
            o.instruction_path,
            o.recipient,
            o.commitment,
        )
        .where(and_(condition, kinds))
        .order_by(o.slot, o.signature, o.account)
        .limit(MAX_PENDING)
    )
    found = []
    for row in rows:
        burn = recognise(Outflow(row[0], row[1], row[2], row[3], row[4], int(row[5]), row[6], row[7], row[8]), rule)
        if burn is not None:
            found.append(burn)
    return found


def post_pending_burns(ledger: Ledger, settings: Settings) -> list[PostResult]:
    """Post every recognised final burn not posted yet (idempotent: a second call posts nothing).

    For the daemon, after it promotes transactions to finalized, and for `treasury burns --post`."""
    rule = BurnRule.from_settings(settings)

    def write(uow: UnitOfWork) -> list[PostResult]:
        return _post(uow, burn_drafts(recorded_burns(uow.connection, rule, final_only=True), rule))

    results = ledger.run(write)
    created = sum(result.created for result in results)
    if created:
        _log.info("osr_burns_posted", created=created)
    return results


# --- the report ---


@dataclasses.dataclass(frozen=True, slots=True)
class PostedBurn:
    signature: str
    transaction_id: int
    amount_raw: int
    slot: int | None
    block_time: int | None
    how: tuple[str, ...]
    posted_at: dt.datetime
    reversed: bool


@dataclasses.dataclass(frozen=True, slots=True)
class BurnReport:
    """What is owed and what was burned, in OSR base units.

    `obligation_raw` is everything ever owed (the burn shares of OSR received, net of reversals);
    `burned_raw` what was burned (verified on chain); `owed_raw` the balance of osr:to-burn: what is still
    to burn, negative after an over-burn."""

    osr_mint: str | None
    decimals: int
    burn_address: str | None
    obligation_raw: int
    burned_raw: int
    owed_raw: int
    retained_raw: int
    posted: tuple[PostedBurn, ...]  # in chain order
    unposted: tuple[RecognisedBurn, ...]  # recognised on chain, not (yet) posted: not final, or a conflict

    @property
    def over_burn_raw(self) -> int:
        return max(-self.owed_raw, 0)

    @property
    def under_burn_raw(self) -> int:
        return max(self.owed_raw, 0)

    @property
    def status(self) -> str:
        if self.owed_raw < 0:
            return "over_burn"
        if self.owed_raw > 0:
            return "under_burn"
        return "ok"


def burns_report(ledger: Ledger, settings: Settings) -> BurnReport:
    """The OSR obligation, the burns posted against it and those recognised but not posted."""
    rule = BurnRule.from_settings(settings)
    osr = settings.asset_table.by_symbol(OSR)

    def read(uow: UnitOfWork) -> BurnReport:
        owed = uow.balance(OSR_TO_BURN, OSR)
        burned = uow.balance(OSR_BURNED, OSR)
        retained = uow.balance("osr:retained", OSR)
        transactions = uow.transactions_of_kinds([OSR_BURN])
        posted = tuple(
            sorted(
                (_posted(transaction) for transaction in transactions),
                key=lambda burn: (burn.slot if burn.slot is not None else -1, burn.signature),
            )
        )
        keys = {transaction.key for transaction in transactions}
        unposted = tuple(
            burn
            for burn in recorded_burns(uow.connection, rule, final_only=False)
            if f"osr-burn:{burn.outflow.signature}" not in keys
        )
        return BurnReport(
            osr_mint=rule.osr_mint,
            decimals=osr.decimals if osr is not None else 9,
            burn_address=rule.burn_address,
            obligation_raw=owed + burned,
            burned_raw=burned,
            owed_raw=owed,
            retained_raw=retained,
            posted=posted,
            unposted=unposted,
        )

    return ledger.read(read)


def _posted(transaction: Transaction) -> PostedBurn:
    evidence: Mapping[str, Any] = transaction.evidence if isinstance(transaction.evidence, Mapping) else {}
    amount = sum(p.amount for p in transaction.postings if p.account == OSR_BURNED)
    listed = evidence.get("burns")
    items: list[Any] = listed if isinstance(listed, list) else []
    how = tuple(sorted({str(item.get("how")) for item in items if isinstance(item, Mapping)}))
    slot = evidence.get("slot")
    block_time = evidence.get("block_time")
    return PostedBurn(
        signature=transaction.key.removeprefix("osr-burn:"),
        transaction_id=transaction.id,
        amount_raw=int(amount),
        slot=int(slot) if isinstance(slot, int) else None,
        block_time=int(block_time) if isinstance(block_time, int) else None,
        how=how,
        posted_at=transaction.created_at,
        reversed=transaction.reversed_by is not None,
    )
