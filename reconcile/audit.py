"""The audit (issue 9): every crypto credit re-derived from its stored evidence, to the micro-dollar.

    result = run_audit(ledger, evidence, since, until, now=now)

A credit's evidence is what the pipeline stored with it (`indexer.pipeline.Pipeline._draft`): the
`getTransaction` reply exactly as fetched, the quote, and the rule's parameters (the OSR bonus and burn
shares in force). For each credit the audit, with the current code:

1. parses the reply again (`indexer.parser.parse_transaction`, through the `AuditEvidence` port) and
   takes the inflow of the credit's receiving account and asset: its amount, and whether the rules
   still make it creditable (not dust, not signed by the treasury, an accepted mint);
2. reads the quote back (`pricing.Quote.from_evidence`): a stablecoin must be priced at 1 USD;
3. applies the rule (`pricing.compute_credit`) with the bonus and burn share recorded in the evidence;
4. builds the postings those figures give (`ledger_client.crypto_deposit_entry`, to the customer or the
   suspense account the credit went to) and compares them, leg by leg, with the postings the ledger
   holds; likewise the figures the evidence states, the deposit's row in the indexer's table, and the
   assignment out of suspense (`assign:<deposit key>`), whose amount must be the derived credits.

Every disagreement is a `Difference`: the deposit, the field, what the evidence gives and what the
ledger holds. A deposit the indexer shows credited (or held in suspense) with no ledger credit is a
difference too (`missing credit`).

Which credits: those whose deposit landed in [since, until) (its block time, from the indexer's
table) and those posted in [since, until) (the ledger's `created_at`), so consecutive windows audit
every credit, including one priced days after it landed.

`reconcile` never imports `indexer`: the parser, the indexer's table and the asset table come through
the `AuditEvidence` port, which `indexer.proof.IndexerAuditEvidence` implements; `indexer.proof.audit(
ledger, since, until, settings=…, now=…)` runs this job with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
from sqlalchemy import and_, select

from ledger_client import (
    InvalidInputError,
    Posting,
    Transaction,
    assignment_key,
    crypto_deposit_entry,
    parse_account,
    parse_deposit_key,
)
from ledger_client.entries import CRYPTO_DEPOSIT, SUSPENSE_ASSIGNMENT, SUSPENSE_HOLD
from ledger_client.money import USD
from ledger_client.schema import transactions_table
from pricing import BadEvidence, Quote, compute_credit
from pricing.assets import Asset
from pricing.credit import format_micros
from reconcile.chain import check_window

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ledger_client.ledger import Ledger, UnitOfWork

CREDIT_KINDS: Final = (CRYPTO_DEPOSIT, SUSPENSE_HOLD)
CREDITED_STATUSES: Final = frozenset({"credited", "suspense"})  # INTERFACE.md deposit statuses with a credit
CREDITABLE: Final = "creditable"
STABLE_RULE: Final = "stable"
OSR_RULE: Final = "osr"
BATCH: Final = 500  # credits read and audited per unit of work (each carries its reply, a few KB)
MAX_KEYS: Final = 5_000_000  # credits in one window: a bound on the key list held in memory
MAX_DIFFERENCES: Final = 100_000  # differences kept in one result (the count goes on beyond)

_log = structlog.get_logger("reconcile.audit")


# --- what the port hands over ---


@dataclasses.dataclass(frozen=True, slots=True)
class DerivedInflow:
    """The inflow of one account and asset in a reply, as the current parser sees it."""

    amount_raw: int
    decimals: int
    status: str  # "creditable" or "ignored"
    reason: str | None  # why ignored


@dataclasses.dataclass(frozen=True, slots=True)
class Derivation:
    """What parsing a stored reply gave: its signature and the inflow (None: no inflow to that account
    of that asset), or why the reply could not be parsed (`error`)."""

    signature: str | None
    inflow: DerivedInflow | None
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StoredDeposit:
    """A deposit's row in the indexer's table, as far as the audit compares it."""

    id: int
    key: str
    signature: str
    status: str
    amount_raw: int
    usd_value_micros: int | None
    bonus_micros: int | None
    credits_micros: int | None
    burn_raw: int | None
    retained_raw: int | None
    ledger_transaction_id: int | None
    customer: str | None = None  # who the indexer says got the credits (None: suspense)


class AuditEvidence(Protocol):
    """The indexer's side of the audit (`indexer.proof.IndexerAuditEvidence`)."""

    def keys_in_window(self, connection: Connection, since: dt.datetime, until: dt.datetime) -> list[str]:
        """Keys of the deposits whose block time is in [since, until) (dropped ones left out)."""
        ...

    def deposits(self, connection: Connection, keys: Sequence[str]) -> dict[str, StoredDeposit]:
        """The deposits' rows by key (at most BATCH keys per call)."""
        ...

    def derive(self, reply: str, account: str, asset: str) -> Derivation:
        """Parse a stored reply with the current parser and take the inflow of (account, asset)."""
        ...

    def asset(self, asset_key: str) -> Asset | None:
        """The accepted asset whose key ("SOL" or the mint) this is, from the current asset table."""
        ...


# --- results ---


@dataclasses.dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement: `evidence` is what the stored evidence gives (re-derived), `ledger` what the
    ledger (or the indexer's table, for `deposit row …` fields) holds."""

    deposit: str  # the deposit key sol:<signature>:<account>:<asset>
    deposit_id: int | None
    signature: str
    field: str
    evidence: str
    ledger: str
    detail: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class AuditResult:
    since: dt.datetime
    until: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime
    credits: int  # ledger credits audited
    assignments: int  # assignments out of suspense audited
    differences: tuple[Difference, ...]
    differences_total: int  # beyond MAX_DIFFERENCES only the count is kept
    run_id: int | None = None

    @property
    def clean(self) -> bool:
        return self.differences_total == 0

    @property
    def deposits_with_differences(self) -> int:
        return len({difference.deposit for difference in self.differences})


# --- pure: one credit ---


def _units(amount: int, currency: str) -> str:
    return format_micros(amount) if currency == USD else str(amount)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _target(transaction: Transaction) -> str | None:
    """Where the credits went: a customer, or None for a suspense hold (the postings say which)."""
    if transaction.kind == SUSPENSE_HOLD:
        return None
    for posting in transaction.postings:
        if posting.currency == USD and posting.amount < 0:
            try:
                if parse_account(posting.account).is_customer:
                    return posting.account
            except InvalidInputError:
                continue
    return None


def compare_postings(
    expected: Sequence[Posting], held: Sequence[Posting], make: Callable[[str, str, str], Difference]
) -> list[Difference]:
    """A Difference for each (account, currency) whose amounts differ, via `make(field, evidence, ledger)`."""
    want: dict[tuple[str, str], int] = {}
    have: dict[tuple[str, str], int] = {}
    for posting in expected:
        want[(posting.account, posting.currency)] = want.get((posting.account, posting.currency), 0) + posting.amount
    for posting in held:
        have[(posting.account, posting.currency)] = have.get((posting.account, posting.currency), 0) + posting.amount
    found = []
    for account, currency in sorted(want.keys() | have.keys()):
        a, b = want.get((account, currency)), have.get((account, currency))
        if a != b:
            found.append(
                make(
                    f"posting {account} {currency}",
                    "none" if a is None else _units(a, currency),
                    "none" if b is None else _units(b, currency),
                )
            )
    return found


def audit_credit(
    transaction: Transaction,
    derivation: Derivation | None,
    asset: Asset | None,
    stored: StoredDeposit | None,
    assignment: Transaction | None,
) -> list[Difference]:
    """Re-derive one credit (a `crypto_deposit` or `suspense_hold` transaction) from its evidence and
    compare it with what the ledger and the indexer hold. `derivation` is the current parser's reading
    of the stored reply (None when the evidence holds none). Pure."""
    key = transaction.key
    signature, account, asset_key = parse_deposit_key(key)
    deposit_id = stored.id if stored is not None else None
    credits_held = -sum(p.amount for p in transaction.postings if p.currency == USD and p.amount < 0)

    def diff(field: str, evidence: str, ledger: str, detail: str = "") -> Difference:
        return Difference(key, deposit_id, signature, field, evidence, ledger, detail)

    evidence = transaction.evidence if isinstance(transaction.evidence, Mapping) else {}
    found: list[Difference] = []
    stated = _section(evidence, "deposit")
    for name, text in (("signature", signature), ("account", account), ("asset", asset_key)):
        if stated.get(name) != text:
            found.append(diff(f"evidence deposit.{name}", str(stated.get(name)), text, "the evidence names another"))
    if derivation is None:
        return [*found, diff("transaction", "no stored reply", _units(credits_held, USD), "nothing to re-derive from")]
    if derivation.error is not None:
        return [*found, diff("transaction", f"unreadable: {derivation.error}", _units(credits_held, USD))]
    if derivation.signature != signature:
        found.append(diff("transaction signature", str(derivation.signature), signature, "the reply is another one"))
    inflow = derivation.inflow
    if inflow is None:
        return [*found, diff("amount_raw", "no inflow to this account", _held_amount(transaction, asset))]
    if inflow.status != CREDITABLE:
        found.append(diff("status", f"ignored ({inflow.reason})", transaction.kind, "the rules give no credit"))
    if asset is None:
        return [*found, diff("asset", f"{asset_key} is not in the asset table", transaction.kind)]
    if inflow.decimals != asset.decimals:
        found.append(diff("decimals", str(inflow.decimals), str(asset.decimals), "the mint's decimals changed"))
    quote_evidence = evidence.get("quote")
    try:
        if not isinstance(quote_evidence, Mapping):
            raise BadEvidence("no quote")
        quote = Quote.from_evidence(dict(quote_evidence))
    except BadEvidence as exc:
        return [*found, diff("quote", f"unreadable: {exc}", _units(credits_held, USD))]
    if quote.asset != asset.symbol:
        found.append(diff("quote asset", quote.asset, asset.symbol, "the quote is for another asset"))
    if asset.price_rule == STABLE_RULE and quote.price_usd != 1:
        found.append(diff("price_usd", "1", str(quote.price_usd), "a stablecoin is credited 1:1"))
    rule = _section(evidence, "credit")
    bonus_share = _decimal(rule.get("osr_bonus"))
    burn_share = _decimal(rule.get("osr_burn_share"))
    if asset.price_rule == OSR_RULE and (bonus_share is None or burn_share is None):
        return [*found, diff("rule", "no OSR bonus or burn share in the evidence", _units(credits_held, USD))]
    try:
        credit = compute_credit(
            asset,
            inflow.amount_raw,
            quote.price_usd,
            osr_bonus=bonus_share if bonus_share is not None else Decimal(0),
            osr_burn_share=burn_share if burn_share is not None else Decimal(0),
        )
    except ValueError as exc:
        return [*found, diff("rule", f"cannot apply: {exc}", _units(credits_held, USD))]
    if credit.credits_micros <= 0:
        return [*found, diff("credits", "0.000000 (worth less than a micro-dollar)", _units(credits_held, USD))]
    target = _target(transaction)
    if transaction.kind == CRYPTO_DEPOSIT and target is None:
        found.append(diff("customer", "a customer account", "no customer posting", "the credit went nowhere"))
    try:
        expected = crypto_deposit_entry(
            key,
            target if transaction.kind == CRYPTO_DEPOSIT else None,
            asset.symbol,
            credit.amount_raw,
            credit.usd_value_micros,
            credit.bonus_micros,
            credit.credits_micros,
            credit.burn_raw or 0,
            credit.retained_raw or 0,
            {},
        )
    except InvalidInputError as exc:
        return [*found, diff("postings", f"cannot be built: {exc}", _units(credits_held, USD))]
    if target is not None or transaction.kind == SUSPENSE_HOLD:
        if expected.kind != transaction.kind:
            found.append(diff("kind", expected.kind, transaction.kind))
        found += compare_postings(expected.postings, transaction.postings, diff)
    for name, value in (
        ("usd_value_micros", credit.usd_value_micros),
        ("bonus_micros", credit.bonus_micros),
        ("credits_micros", credit.credits_micros),
    ):
        stated_micros = _int(rule.get(name))
        if stated_micros != value:
            shown = str(rule.get(name)) if stated_micros is None else _units(stated_micros, USD)
            found.append(diff(f"evidence credit.{name}", _units(value, USD), shown))
    if stored is not None:
        found += _compare_row(stored, transaction, credit.amount_raw, credit, diff)
    if assignment is not None:
        found += _compare_assignment(assignment, credit.credits_micros, diff)
    if stored is not None:
        holder = target if assignment is None else _assigned_customer(assignment)
        # A row still in suspense whose hold the ledger assigned waits for the indexer's sync (a wallet
        # linked through the shared database): not a difference. A row naming someone else is.
        if stored.customer != holder and not (stored.status == "suspense" and assignment is not None):
            found.append(
                diff(
                    "deposit row customer",
                    str(holder or "suspense"),
                    str(stored.customer or "suspense"),
                    "who holds it",
                )
            )
    return found


def _assigned_customer(assignment: Transaction) -> str | None:
    customers = [p.account for p in assignment.postings if p.currency == USD and p.amount < 0]
    return customers[0] if len(customers) == 1 else None


def _section(evidence: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = evidence.get(name)
    return section if isinstance(section, Mapping) else {}


def _held_amount(transaction: Transaction, asset: Asset | None) -> str:
    if asset is None:
        return "?"
    moved = sum(p.amount for p in transaction.postings if p.currency == asset.symbol and p.amount > 0)
    return str(moved)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return None


def _compare_row(
    stored: StoredDeposit,
    transaction: Transaction,
    amount_raw: int,
    credit: Any,
    diff: Callable[..., Difference],
) -> list[Difference]:
    found = []
    if stored.status not in CREDITED_STATUSES:
        found.append(diff("deposit row status", "credited or suspense", stored.status, "the ledger holds a credit"))
    if stored.ledger_transaction_id != transaction.id:
        found.append(diff("deposit row ledger_transaction", str(transaction.id), str(stored.ledger_transaction_id)))
    for name, value, held in (
        ("amount_raw", amount_raw, stored.amount_raw),
        ("usd_value_micros", credit.usd_value_micros, stored.usd_value_micros),
        ("bonus_micros", credit.bonus_micros, stored.bonus_micros),
        ("credits_micros", credit.credits_micros, stored.credits_micros),
        ("burn_raw", credit.burn_raw, stored.burn_raw),
        ("retained_raw", credit.retained_raw, stored.retained_raw),
    ):
        if value != held:
            money = name.endswith("_micros")
            found.append(
                diff(
                    f"deposit row {name}",
                    "none" if value is None else (_units(value, USD) if money else str(value)),
                    "none" if held is None else (_units(held, USD) if money else str(held)),
                )
            )
    return found


def _compare_assignment(
    assignment: Transaction, credits_micros: int, diff: Callable[..., Difference]
) -> list[Difference]:
    if assignment.kind != SUSPENSE_ASSIGNMENT:
        return [diff("assignment kind", SUSPENSE_ASSIGNMENT, assignment.kind)]
    customers = [p.account for p in assignment.postings if p.currency == USD and p.amount < 0]
    customer = customers[0] if len(customers) == 1 else None
    if customer is None:
        return [diff("assignment", "one customer", ", ".join(customers) or "none")]
    expected = (Posting("suspense", USD, credits_micros), Posting(customer, USD, -credits_micros))
    return [
        dataclasses.replace(found, field=f"assignment {found.field}")
        for found in compare_postings(expected, assignment.postings, diff)
    ]


def missing_credit(stored: StoredDeposit) -> Difference:
    """A deposit the indexer shows credited (or in suspense) whose key holds no ledger credit."""
    return Difference(
        stored.key,
        stored.id,
        stored.signature,
        "credit",
        f"{stored.status}: {_units(stored.credits_micros, USD) if stored.credits_micros is not None else '?'}",
        "none",
        "the deposit row says credited but the ledger has no transaction under its key",
    )


# --- the job ---


def ledger_keys(connection: Connection, since: dt.datetime, until: dt.datetime) -> list[str]:
    """Keys of the crypto credits posted in [since, until) (the (kind, created_at) index)."""
    from ledger_client.database import to_storage_time  # noqa: PLC0415

    t = transactions_table.c
    query = select(t.idempotency_key).where(
        and_(
            t.kind.in_(CREDIT_KINDS),
            t.created_at >= to_storage_time(since),
            t.created_at < to_storage_time(until),
        )
    )
    return [row[0] for row in connection.execute(query.limit(MAX_KEYS + 1))]


def run_audit(
    ledger: Ledger,
    evidence: AuditEvidence,
    since: dt.datetime,
    until: dt.datetime,
    *,
    now: dt.datetime,
    record: bool = True,
    batch: int = BATCH,
    clock: Callable[[], dt.datetime] | None = None,
) -> AuditResult:
    """Audit every credit of [since, until) and (by default) record the run. Read-only but for the run
    record; each batch of credits is read in its own short unit of work."""
    since, until = check_window(since, until)
    if not 1 <= batch <= 10_000:
        raise ValueError("batch must be between 1 and 10,000")

    def window_keys(uow: UnitOfWork) -> list[str]:
        keys = set(ledger_keys(uow.connection, since, until))
        keys.update(evidence.keys_in_window(uow.connection, since, until))
        if len(keys) > MAX_KEYS:
            raise ValueError(f"more than {MAX_KEYS} credits in the window: audit a shorter one")
        return sorted(keys)

    keys = ledger.read(window_keys)
    differences: list[Difference] = []
    total = 0
    credits = 0
    assignments = 0
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]

        def read(uow: UnitOfWork, chunk: list[str] = chunk) -> tuple[dict[str, Transaction], dict[str, StoredDeposit]]:
            wanted = [*chunk, *(assignment_key(key) for key in chunk)]
            return uow.transactions_by_keys(wanted), evidence.deposits(uow.connection, chunk)

        transactions, stored = ledger.read(read)
        for key in chunk:
            transaction = transactions.get(key)
            row = stored.get(key)
            if transaction is None or transaction.kind not in CREDIT_KINDS:
                if row is not None and row.status in CREDITED_STATUSES:
                    found = [missing_credit(row)]
                else:
                    continue
            else:
                credits += 1
                _signature, account, asset_key = parse_deposit_key(key)
                reply = transaction.evidence.get("transaction") if isinstance(transaction.evidence, Mapping) else None
                derivation = evidence.derive(reply, account, asset_key) if isinstance(reply, str) else None
                assignment = transactions.get(assignment_key(key))
                assignments += assignment is not None
                found = audit_credit(transaction, derivation, evidence.asset(asset_key), row, assignment)
            total += len(found)
            room = MAX_DIFFERENCES - len(differences)
            differences += found[: max(room, 0)]
    finished = clock() if clock is not None else now
    result = AuditResult(since, until, now, max(finished, now), credits, assignments, tuple(differences), total)
    if record:
        from reconcile.proof_runs import record_audit_run  # noqa: PLC0415

        run_id = ledger.run(lambda uow: record_audit_run(uow, result))
        result = dataclasses.replace(result, run_id=run_id)
    _log.info(
        "audit_done",
        since=since.isoformat(),
        until=until.isoformat(),
        credits=credits,
        assignments=assignments,
        differences=total,
    )
    return result
