"""The pure matcher: Stripe's sessions, refunds and disputes of a window against the ledger's card entries.

No I/O, no clock (`now` comes in, for the evidence of what --fix would post). Rules (DESIGN.md §6,
INTERFACE.md):

- A top-up is a Checkout Session in `payment` mode. It credits `amount_total` less tax
  (`total_details.amount_tax`), in USD, to the customer named by `client_reference_id`, else
  `metadata.account_id`. Another currency is `currency_mismatch` and a credit outside $5–$10,000
  `out_of_range`: both always reported, never credited by --fix, whatever the ledger holds.
- A paid, in-range USD session needs exactly one credit: none is `missing_credit` (--fix posts
  `stripe:<session>`), two or more `duplicate_credit` (a webhook handler keyed by event id does this;
  someone reverses the extra ones), one of another amount or to another customer `amount_mismatch`.
- A session not paid (`unpaid`: its async payment never succeeded, is still processing, or the
  session expired) that holds a credit is `unpaid_credited`; a credit naming a session Stripe does not
  know, or one that needed no payment, is `credit_without_payment`. Unpaid sessions without credits
  are counted, not reported.
- Each succeeded refund is debited once by its own amount (`stripe-refund:<refund>`); a refund that
  failed or was canceled after it was debited is re-credited once (`stripe-refund-undo:<refund>`,
  reversing the debit). A lost dispute is debited once (`stripe-dispute:<dispute>`); a dispute won
  after a debit is re-credited once (`stripe-dispute-won:<dispute>`, reversing the debit). Missing
  ones are `refund_not_reversed` / `dispute_not_reversed`. Debits never take back more than the
  session credited: a refund of a session with tax gives back the tax too, which was never credited.
  Open disputes need nothing yet (a debit posted while funds are withdrawn is fine either way).
- A session whose credit and reversals all agree is `matched`; a session with any other finding is
  reported by those findings only.

Ledger entries are found by key (`stripe:<session>`, …) or by the Stripe ids their evidence names:
the fields `checkout_session`, `payment_intent`, `refund`, `dispute` (or `…_id`), or any Stripe object
embedded in the evidence (`{"object": "checkout.session", "id": …}`, e.g. a webhook's whole event). A
transaction that was reversed counts for nothing (`Transaction.reversed_by`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from ledger_client import (
    Draft,
    InvalidAccountError,
    InvalidEntryError,
    Transaction,
    card_dispute_key,
    card_dispute_lost_entry,
    card_dispute_won_entry,
    card_dispute_won_key,
    card_refund_entry,
    card_refund_key,
    card_refund_undo_entry,
    card_refund_undo_key,
    card_topup_entry,
    card_topup_key,
    parse_account,
)
from ledger_client.accounts import customer_account
from ledger_client.entries import CARD_DISPUTE_LOST, CARD_DISPUTE_WON, CARD_REFUND, CARD_REFUND_UNDO, CARD_TOPUP
from ledger_client.money import USD as LEDGER_USD
from reconcile.currency import USD, cents_to_micros, format_micros, format_minor
from reconcile.records import (
    DISPUTE_LOST,
    DISPUTE_WON,
    NO_PAYMENT_REQUIRED,
    PAID,
    REFUND_SUCCEEDED,
    REFUND_UNDONE,
    Dispute,
    Refund,
    Session,
)

MATCHED: Final = "matched"
MISSING_CREDIT: Final = "missing_credit"
CREDIT_WITHOUT_PAYMENT: Final = "credit_without_payment"
DUPLICATE_CREDIT: Final = "duplicate_credit"
AMOUNT_MISMATCH: Final = "amount_mismatch"
CURRENCY_MISMATCH: Final = "currency_mismatch"
REFUND_NOT_REVERSED: Final = "refund_not_reversed"
DISPUTE_NOT_REVERSED: Final = "dispute_not_reversed"
OUT_OF_RANGE: Final = "out_of_range"
UNPAID_CREDITED: Final = "unpaid_credited"
CLASSES: Final = (
    MATCHED,
    MISSING_CREDIT,
    CREDIT_WITHOUT_PAYMENT,
    DUPLICATE_CREDIT,
    AMOUNT_MISMATCH,
    CURRENCY_MISMATCH,
    REFUND_NOT_REVERSED,
    DISPUTE_NOT_REVERSED,
    OUT_OF_RANGE,
    UNPAID_CREDITED,
)

MIN_TOPUP_CENTS: Final = 500  # $5
MAX_TOPUP_CENTS: Final = 1_000_000  # $10,000
TOPUP_MODE: Final = "payment"
SCANNED_KINDS: Final = (CARD_TOPUP, CARD_REFUND, CARD_REFUND_UNDO, CARD_DISPUTE_LOST, CARD_DISPUTE_WON)
EVIDENCE_SOURCE: Final = "reconcile.stripe"

_SESSION_FIELDS: Final = ("checkout_session", "checkout_session_id", "session", "session_id")
_INTENT_FIELDS: Final = ("payment_intent", "payment_intent_id")
_REFUND_FIELDS: Final = ("refund", "refund_id")
_DISPUTE_FIELDS: Final = ("dispute", "dispute_id")
_MAX_EVIDENCE_NODES: Final = 10_000  # a bound on the walk through one transaction's evidence
_MAX_EVIDENCE_DEPTH: Final = 12


# --- what the matcher reads from the ledger ---


@dataclasses.dataclass(frozen=True, slots=True)
class References:
    """The Stripe ids a ledger transaction names, by its key or its evidence."""

    sessions: frozenset[str] = frozenset()
    payment_intents: frozenset[str] = frozenset()
    refunds: frozenset[str] = frozenset()
    disputes: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class CardEntry:
    """A card transaction of the ledger as the matcher sees it.

    `credit_micros` is what the transaction added to the customer's credits (negative for a debit).
    `reversed_by` set: a later transaction undid it, so it counts for nothing.
    """

    transaction_id: int
    key: str
    kind: str
    customer: str | None
    credit_micros: int
    created_at: dt.datetime
    references: References
    reverses: int | None = None
    reversed_by: int | None = None

    @property
    def effective(self) -> bool:
        return self.reversed_by is None


def card_entry(transaction: Transaction) -> CardEntry:
    """The matcher's view of a ledger transaction: its customer leg and the Stripe ids it names."""
    legs = [p for p in transaction.postings if p.currency == LEDGER_USD and _is_customer(p.account)]
    customer = legs[0].account if len(legs) == 1 else None
    return CardEntry(
        transaction_id=transaction.id,
        key=transaction.key,
        kind=transaction.kind,
        customer=customer,
        credit_micros=-sum(p.amount for p in legs),
        created_at=transaction.created_at,
        references=references(transaction.key, transaction.evidence),
        reverses=transaction.reverses,
        reversed_by=transaction.reversed_by,
    )


def _is_customer(account: str) -> bool:
    try:
        return parse_account(account).is_customer
    except InvalidAccountError:
        return False


def references(key: str, evidence: Mapping[str, Any]) -> References:
    """Stripe ids named by a transaction's key (`stripe:…`, `stripe-refund:…`, …) and its evidence."""
    sessions: set[str] = set()
    intents: set[str] = set()
    refunds: set[str] = set()
    disputes: set[str] = set()
    prefix, _, rest = key.partition(":")
    if rest:
        {
            "stripe": sessions,
            "stripe-refund": refunds,
            "stripe-refund-undo": refunds,
            "stripe-dispute": disputes,
            "stripe-dispute-won": disputes,
        }.get(prefix, set()).add(rest)
    for fields, found in (
        (_SESSION_FIELDS, sessions),
        (_INTENT_FIELDS, intents),
        (_REFUND_FIELDS, refunds),
        (_DISPUTE_FIELDS, disputes),
    ):
        for field in fields:
            value = _id_of(evidence.get(field))
            if value is not None:
                found.add(value)
    # Stripe objects embedded anywhere (a webhook handler may keep the whole event as evidence).
    by_object = {"checkout.session": sessions, "payment_intent": intents, "refund": refunds, "dispute": disputes}
    stack: list[tuple[Any, int]] = [(evidence, 0)]
    visited = 0
    while stack and visited < _MAX_EVIDENCE_NODES:
        node, depth = stack.pop()
        visited += 1
        if isinstance(node, Mapping):
            kind = node.get("object")
            target = by_object.get(kind) if isinstance(kind, str) else None
            if target is not None and isinstance(node.get("id"), str):
                target.add(node["id"])
                if kind == "checkout.session" and _id_of(node.get("payment_intent")) is not None:
                    intents.add(str(_id_of(node.get("payment_intent"))))
            if depth < _MAX_EVIDENCE_DEPTH:
                stack.extend((value, depth + 1) for value in node.values() if isinstance(value, Mapping | list))
        elif isinstance(node, list) and depth < _MAX_EVIDENCE_DEPTH:
            stack.extend((value, depth + 1) for value in node if isinstance(value, Mapping | list))
    return References(frozenset(sessions), frozenset(intents), frozenset(refunds), frozenset(disputes))


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


# --- what the matcher says ---


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report. `amount` is major units of `currency` ("25.00", ¥ "800"); `currency` is
    Stripe's lower-case code. `fix` is what --fix posts for it (None: nothing automatic)."""

    cls: str
    session: str
    amount: str
    currency: str
    detail: str
    customer: str | None = None
    refund: str | None = None
    dispute: str | None = None
    transactions: tuple[int, ...] = ()
    fix: Draft | None = None
    fixed_by: int | None = None  # the transaction --fix posted (set by the job)

    @property
    def description(self) -> str:
        if self.fixed_by is not None and self.fix is not None:
            return f"{self.detail}; fixed: posted {self.fix.key} (transaction {self.fixed_by})"
        if self.fix is not None:
            return f"{self.detail}; --fix posts {self.fix.key}"
        return self.detail


@dataclasses.dataclass(frozen=True, slots=True)
class Totals:
    """Sums over the window. Stripe money in USD cents (balance transactions in USD only), ledger money
    in micro-USD."""

    sessions: int = 0  # every session created in the window
    paid: int = 0  # paid top-up sessions (any currency)
    gross_cents: int = 0  # balance transactions of the paid sessions' charges
    fees_cents: int = 0
    net_cents: int = 0
    expected_micros: int = 0  # what the creditable sessions should credit
    credited_micros: int = 0  # top-up credits in the ledger for the window's sessions (and orphan credits)
    refunded_cents: int = 0  # succeeded refunds of USD top-ups
    disputed_cents: int = 0  # lost disputes of USD top-ups
    reversed_micros: int = 0  # refund and dispute debits in the ledger, net of re-credits


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    findings: tuple[Finding, ...]
    totals: Totals

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CLASSES, 0)
        for finding in self.findings:
            counts[finding.cls] += 1
        return counts

    @property
    def fixes(self) -> list[tuple[Finding, Draft]]:
        return [(finding, finding.fix) for finding in self.findings if finding.fix is not None]

    @property
    def all_matched(self) -> bool:
        return all(finding.cls == MATCHED for finding in self.findings)


# --- what the job must look up before matching ---


def keys_to_look_up(sessions: Iterable[Session]) -> set[str]:
    """The ledger keys --fix would post for these sessions: looked up so that none is posted twice."""
    keys: set[str] = set()
    for session in sessions:
        keys |= _keys(session.id, card_topup_key)
        for refund in session.refunds:
            keys |= _keys(refund.id, card_refund_key, card_refund_undo_key)
        for dispute in session.disputes:
            keys |= _keys(dispute.id, card_dispute_key, card_dispute_won_key)
    return keys


def _keys(object_id: str, *builders: Callable[[str], str]) -> set[str]:
    try:
        return {build(object_id) for build in builders}
    except InvalidEntryError:
        return set()  # an id the ledger cannot key: nothing can have been posted under it


def sessions_to_look_up(
    sessions: Iterable[Session], entries: Iterable[CardEntry], *, since: dt.datetime, until: dt.datetime
) -> set[str]:
    """Sessions named by credits posted in the window that the window's sessions do not include.

    The job asks Stripe for each: unknown to Stripe is `credit_without_payment`; created in another
    window, the credit belongs to that window's reconciliation.
    """
    known = {session.id for session in sessions}
    intents = {session.payment_intent for session in sessions if session.payment_intent}
    wanted: set[str] = set()
    for entry in entries:
        if entry.kind != CARD_TOPUP or not entry.effective or not since <= entry.created_at < until:
            continue
        if entry.references.sessions & known or entry.references.payment_intents & intents:
            continue
        wanted |= entry.references.sessions
    return wanted


# --- matching ---


def match(
    sessions: Sequence[Session],
    entries: Sequence[CardEntry],
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    looked_up: Mapping[str, Session | None] | None = None,
) -> Outcome:
    """Findings and totals for the window [since, until). `looked_up`: the answers to sessions_to_look_up
    (None for a session Stripe does not know)."""
    looked_up = looked_up or {}
    window_sessions = {s.id: s for s in sessions}
    for session_id, found in looked_up.items():
        if found is not None and since <= found.created < until:
            window_sessions.setdefault(session_id, found)
    ordered = sorted(window_sessions.values(), key=lambda s: (s.created, s.id))
    index = _Index(ordered, entries)
    context = _Context(since=since, until=until, now=now, index=index)
    findings: list[Finding] = []
    totals = _Sums(sessions=len(ordered))
    for session in ordered:
        findings.extend(_session_findings(session, context, totals))
    findings.extend(_orphan_findings(entries, looked_up, context, totals))
    return Outcome(tuple(findings), totals.frozen())


@dataclasses.dataclass
class _Sums:
    sessions: int = 0
    paid: int = 0
    gross_cents: int = 0
    fees_cents: int = 0
    net_cents: int = 0
    expected_micros: int = 0
    credited_micros: int = 0
    refunded_cents: int = 0
    disputed_cents: int = 0
    reversed_micros: int = 0

    def frozen(self) -> Totals:
        return Totals(**dataclasses.asdict(self))


class _Index:
    """The ledger entries grouped by the session, refund or dispute they concern."""

    def __init__(self, sessions: Sequence[Session], entries: Sequence[CardEntry]) -> None:
        session_of_intent = {s.payment_intent: s.id for s in sessions if s.payment_intent}
        self.credits: dict[str, list[CardEntry]] = {}
        self.refund_debits: dict[str, list[CardEntry]] = {}
        self.refund_undos: dict[str, list[CardEntry]] = {}
        self.dispute_debits: dict[str, list[CardEntry]] = {}
        self.dispute_recredits: dict[str, list[CardEntry]] = {}
        self.keys: set[str] = set()
        seen: set[int] = set()
        for entry in entries:
            if entry.transaction_id in seen:
                continue
            seen.add(entry.transaction_id)
            self.keys.add(entry.key)
            refs = entry.references
            if entry.kind == CARD_TOPUP:
                named = set(refs.sessions) | {
                    session_of_intent[i] for i in refs.payment_intents if i in session_of_intent
                }
                for session_id in named:
                    self.credits.setdefault(session_id, []).append(entry)
            groups = {
                CARD_REFUND: (refs.refunds, self.refund_debits),
                CARD_REFUND_UNDO: (refs.refunds, self.refund_undos),
                CARD_DISPUTE_LOST: (refs.disputes, self.dispute_debits),
                CARD_DISPUTE_WON: (refs.disputes, self.dispute_recredits),
            }
            if entry.kind in groups:
                ids, target = groups[entry.kind]
                for object_id in ids:
                    target.setdefault(object_id, []).append(entry)

    def effective_credits(self, session_id: str) -> list[CardEntry]:
        return [e for e in self.credits.get(session_id, []) if e.effective]

    def debit_state(self, object_id: str, *, refund: bool) -> tuple[list[CardEntry], int]:
        """(effective debits, net micros taken back) for a refund or a dispute.

        A re-credit that reverses its debit makes the debit ineffective (reversed_by); one posted
        without `reverses` (another writer's) offsets it by its amount.
        """
        debits = (self.refund_debits if refund else self.dispute_debits).get(object_id, [])
        recredits = (self.refund_undos if refund else self.dispute_recredits).get(object_id, [])
        effective = [d for d in debits if d.effective]
        taken = -sum(d.credit_micros for d in effective)
        given_back = sum(r.credit_micros for r in recredits if r.effective and r.reverses is None)
        return effective, taken - given_back


@dataclasses.dataclass(frozen=True, slots=True)
class _Context:
    since: dt.datetime
    until: dt.datetime
    now: dt.datetime
    index: _Index

    def evidence(self, session: Session, **fields: Any) -> dict[str, Any]:
        return {
            "source": EVIDENCE_SOURCE,
            "checkout_session": session.id,
            "payment_intent": session.payment_intent,
            "charge": session.charge.id if session.charge else None,
            **fields,
            "window": {"since": self.since.isoformat(), "until": self.until.isoformat()},
            "posted_at": self.now.isoformat(),
        }


def _valid_customer(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return customer_account(name)
    except InvalidAccountError:
        return None


def _usd(cents: int) -> str:
    return format_minor(cents, USD)


def _describe_credits(credits: Sequence[CardEntry]) -> str:
    return ", ".join(
        f"transaction {c.transaction_id} ({c.key}) {format_micros(c.credit_micros)} USD to {c.customer or '?'}"
        for c in credits
    )


def _session_findings(session: Session, context: _Context, sums: _Sums) -> list[Finding]:
    index = context.index
    credits = index.effective_credits(session.id)
    sums.credited_micros += sum(c.credit_micros for c in credits)
    currency = (session.currency or "").lower()
    total = session.amount_total or 0
    credit_cents = total - session.amount_tax

    def finding(cls: str, amount: str, detail: str, **extra: Any) -> Finding:
        return Finding(cls, session.id, amount, currency or "?", detail, customer=session.customer, **extra)

    credit_ids = tuple(c.transaction_id for c in credits)
    if session.mode != TOPUP_MODE or session.payment_status == NO_PAYMENT_REQUIRED:
        if not credits:
            return []
        return [
            Finding(
                CREDIT_WITHOUT_PAYMENT,
                session.id,
                format_micros(sum(c.credit_micros for c in credits)),
                USD,
                f"session in {session.mode} mode with payment_status {session.payment_status} is not a paid "
                f"top-up, but the ledger credits it: {_describe_credits(credits)}",
                customer=session.customer,
                transactions=credit_ids,
            )
        ]
    if session.payment_status != PAID:
        if not credits:
            return []
        state = _unpaid_state(session)
        return [
            finding(
                UNPAID_CREDITED,
                format_minor(total, currency or USD),
                f"payment_status {session.payment_status} ({state}): nothing was paid, but the ledger credits "
                f"it: {_describe_credits(credits)}",
                transactions=credit_ids,
            )
        ]

    sums.paid += 1
    transaction = session.charge.balance_transaction if session.charge else None
    if transaction is not None and transaction.currency == USD:
        sums.gross_cents += transaction.amount
        sums.fees_cents += transaction.fee
        sums.net_cents += transaction.net
    found_text = f"; the ledger credits it: {_describe_credits(credits)}" if credits else ""
    if currency != USD:
        refunds_text = _refunds_note(session)
        return [
            finding(
                CURRENCY_MISMATCH,
                format_minor(total, currency or USD),
                f"paid {format_minor(total, currency or USD)} {currency.upper() or '?'}: only USD top-ups are "
                f"credited automatically{refunds_text}{found_text}",
                transactions=credit_ids,
            )
        ]
    if not MIN_TOPUP_CENTS <= credit_cents <= MAX_TOPUP_CENTS:
        out = [
            finding(
                OUT_OF_RANGE,
                _usd(credit_cents),
                f"a top-up of {_usd(credit_cents)} USD is outside {_usd(MIN_TOPUP_CENTS)}–{_usd(MAX_TOPUP_CENTS)} "
                f"USD: not credited automatically{found_text}",
                transactions=credit_ids,
            )
        ]
        basis = sum(c.credit_micros for c in credits)
        return out + _reversal_findings(session, context, sums, basis_micros=basis, credits=credits, customer=None)

    expected = cents_to_micros(credit_cents)
    sums.expected_micros += expected
    customer = _valid_customer(session.customer)
    tax_text = f" (total {_usd(total)} less tax {_usd(session.amount_tax)})" if session.amount_tax else ""
    out = []
    if not credits:
        fix = None
        if customer is None:
            why = (
                f"names no valid customer ({session.customer!r})"
                if session.customer
                else "names no customer (client_reference_id or metadata.account_id)"
            )
            detail = f"paid {_usd(credit_cents)} USD{tax_text}, no credit in the ledger; the session {why}"
        else:
            detail = f"paid {_usd(credit_cents)} USD{tax_text} for {customer}, no credit in the ledger"
            key = card_topup_key(session.id)
            if key in index.keys:
                detail += f"; {key} exists but was reversed: credit it by hand if it is owed"
            else:
                fix = card_topup_entry(
                    session.id,
                    customer,
                    expected,
                    context.evidence(
                        session,
                        customer=customer,
                        customer_from="client_reference_id" if session.customer_reference else "metadata.account_id",
                        amount_total=total,
                        amount_tax=session.amount_tax,
                        currency=USD,
                    ),
                )
        out.append(finding(MISSING_CREDIT, _usd(credit_cents), detail, fix=fix))
    elif len(credits) > 1:
        out.append(
            finding(
                DUPLICATE_CREDIT,
                _usd(credit_cents),
                f"{len(credits)} credits for one payment of {_usd(credit_cents)} USD{tax_text}: "
                f"{_describe_credits(credits)}; reverse all but one",
                transactions=credit_ids,
            )
        )
    else:
        [credit] = credits
        problems = []
        if credit.credit_micros != expected:
            problems.append(f"credited {format_micros(credit.credit_micros)} USD, expected {_usd(credit_cents)} USD")
        if customer is not None and credit.customer != customer:
            problems.append(f"credited to {credit.customer or '?'}, the session names {customer}")
        if problems:
            out.append(
                finding(
                    AMOUNT_MISMATCH,
                    _usd(credit_cents),
                    f"{'; '.join(problems)}{tax_text} (transaction {credit.transaction_id}, {credit.key})",
                    transactions=credit_ids,
                )
            )
    debit_customer = credits[0].customer if len(credits) == 1 and credits[0].customer else customer
    out += _reversal_findings(session, context, sums, basis_micros=expected, credits=credits, customer=debit_customer)
    if out:
        return out
    reversed_text = ""
    if session.refunds or session.disputes:
        reversed_text = "; refunds and disputes agree"
    [credit] = credits
    return [
        finding(
            MATCHED,
            _usd(credit_cents),
            f"credited {format_micros(credit.credit_micros)} USD to {credit.customer} by transaction "
            f"{credit.transaction_id} ({credit.key}){tax_text}{reversed_text}",
            transactions=credit_ids,
        )
    ]


def _unpaid_state(session: Session) -> str:
    if session.status == "expired":
        return "the session expired"
    if session.payment_intent_status == "processing":
        return "its async payment is still processing"
    if session.payment_intent_status in ("requires_payment_method", "canceled"):
        return "its async payment failed"
    return f"session {session.status or 'open'}"


def _refunds_note(session: Session) -> str:
    succeeded = [r for r in session.refunds if r.status == REFUND_SUCCEEDED]
    lost = [d for d in session.disputes if d.status == DISPUTE_LOST]
    parts = []
    if succeeded:
        parts.append(f"{len(succeeded)} refund(s)")
    if lost:
        parts.append(f"{len(lost)} lost dispute(s)")
    return f" ({' and '.join(parts)} at Stripe)" if parts else ""


def _reversal_findings(
    session: Session,
    context: _Context,
    sums: _Sums,
    *,
    basis_micros: int,
    credits: Sequence[CardEntry],
    customer: str | None,
) -> list[Finding]:
    """Refunds and disputes of a USD session against the ledger's debits and re-credits.

    `basis_micros`: what the session credits (expected, or what the ledger credited when it is not
    creditable); debits never take back more than that in total.
    """
    index = context.index
    out: list[Finding] = []
    states: dict[str, tuple[list[CardEntry], int]] = {}
    for refund in session.refunds:
        states[refund.id] = index.debit_state(refund.id, refund=True)
    for dispute in session.disputes:
        states[dispute.id] = index.debit_state(dispute.id, refund=False)
    taken = sum(net for _debits, net in states.values())
    sums.reversed_micros += taken
    remaining = basis_micros - taken
    for refund in sorted(session.refunds, key=lambda r: (r.created, r.id)):
        if refund.status == REFUND_SUCCEEDED and refund.currency == USD:
            sums.refunded_cents += refund.amount
        finding, remaining = _refund_finding(
            session, refund, states[refund.id], remaining=remaining, customer=customer, context=context
        )
        if finding is not None:
            out.append(finding)
    for dispute in sorted(session.disputes, key=lambda d: (d.created, d.id)):
        if dispute.status == DISPUTE_LOST and dispute.currency == USD:
            sums.disputed_cents += dispute.amount
        finding, remaining = _dispute_finding(
            session, dispute, states[dispute.id], remaining=remaining, customer=customer, context=context
        )
        if finding is not None:
            out.append(finding)
    return out


def _refund_finding(
    session: Session,
    refund: Refund,
    state: tuple[list[CardEntry], int],
    *,
    remaining: int,
    customer: str | None,
    context: _Context,
) -> tuple[Finding | None, int]:
    debits, taken = state
    amount_text = format_minor(refund.amount, refund.currency)

    def finding(detail: str, fix: Draft | None = None, transactions: tuple[int, ...] = ()) -> Finding:
        return Finding(
            REFUND_NOT_REVERSED,
            session.id,
            amount_text,
            refund.currency,
            detail,
            customer=customer,
            refund=refund.id,
            transactions=transactions,
            fix=fix,
        )

    if refund.status == REFUND_SUCCEEDED:
        if taken > 0:
            if len(debits) > 1:
                ids = tuple(d.transaction_id for d in debits)
                return Finding(
                    AMOUNT_MISMATCH,
                    session.id,
                    amount_text,
                    refund.currency,
                    f"refund {refund.id} of {amount_text} USD is debited {len(debits)} times: "
                    f"{_describe_credits(debits)}; reverse all but one",
                    customer=customer,
                    refund=refund.id,
                    transactions=ids,
                ), remaining
            return None, remaining
        amount = min(cents_to_micros(refund.amount), remaining)
        if amount <= 0:
            return None, remaining  # the session's credit is taken back already (or was never given)
        what = f"refund {refund.id} of {amount_text} USD succeeded, no debit in the ledger"
        key = card_refund_key(refund.id)
        if key in context.index.keys:
            return finding(f"{what}; {key} exists but was reversed: look at it by hand"), remaining
        if customer is None:
            return finding(f"{what}; no customer to debit"), remaining
        part = (
            ""
            if amount == cents_to_micros(refund.amount)
            else f" (debit {format_micros(amount)} USD: the rest was never credited)"
        )
        fix = card_refund_entry(
            refund.id,
            customer,
            amount,
            context.evidence(session, refund=refund.id, refund_amount=refund.amount, refund_status=refund.status),
        )
        return finding(f"{what}{part}", fix), remaining - amount
    if refund.status in REFUND_UNDONE and taken > 0:
        debit = debits[0]
        what = (
            f"refund {refund.id} of {amount_text} USD {refund.status} after transaction {debit.transaction_id} "
            f"({debit.key}) debited it: the debit must be re-credited"
        )
        if card_refund_undo_key(refund.id) in context.index.keys or debit.customer is None:
            return finding(f"{what} (by hand)", transactions=(debit.transaction_id,)), remaining
        fix = card_refund_undo_entry(
            refund.id,
            debit.customer,
            -debit.credit_micros,
            context.evidence(session, refund=refund.id, refund_status=refund.status, debit_key=debit.key),
            refund_transaction_id=debit.transaction_id,
        )
        return finding(what, fix, (debit.transaction_id,)), remaining - debit.credit_micros
    return None, remaining


def _dispute_finding(
    session: Session,
    dispute: Dispute,
    state: tuple[list[CardEntry], int],
    *,
    remaining: int,
    customer: str | None,
    context: _Context,
) -> tuple[Finding | None, int]:
    debits, taken = state
    amount_text = format_minor(dispute.amount, dispute.currency)

    def finding(detail: str, fix: Draft | None = None, transactions: tuple[int, ...] = ()) -> Finding:
        return Finding(
            DISPUTE_NOT_REVERSED,
            session.id,
            amount_text,
            dispute.currency,
            detail,
            customer=customer,
            dispute=dispute.id,
            transactions=transactions,
            fix=fix,
        )

    if dispute.status == DISPUTE_LOST and taken <= 0:
        amount = min(cents_to_micros(dispute.amount), remaining)
        if amount <= 0:
            return None, remaining
        what = f"dispute {dispute.id} of {amount_text} USD was lost, no debit in the ledger"
        key = card_dispute_key(dispute.id)
        if key in context.index.keys:
            return finding(f"{what}; {key} exists but was reversed: look at it by hand"), remaining
        if customer is None:
            return finding(f"{what}; no customer to debit"), remaining
        fix = card_dispute_lost_entry(
            dispute.id,
            customer,
            amount,
            context.evidence(session, dispute=dispute.id, dispute_amount=dispute.amount, dispute_status=dispute.status),
        )
        return finding(what, fix), remaining - amount
    if dispute.status == DISPUTE_WON and taken > 0:
        debit = debits[0] if debits else None
        reinstated = f", {format_minor(dispute.reinstated, dispute.currency)} reinstated" if dispute.reinstated else ""
        what = (
            f"dispute {dispute.id} of {amount_text} USD was won{reinstated} after the ledger debited it: "
            "the debit must be re-credited"
        )
        if debit is None or debit.customer is None or card_dispute_won_key(dispute.id) in context.index.keys:
            return finding(f"{what} (by hand)"), remaining
        fix = card_dispute_won_entry(
            dispute.id,
            debit.customer,
            -debit.credit_micros,
            context.evidence(session, dispute=dispute.id, dispute_status=dispute.status, debit_key=debit.key),
            dispute_transaction_id=debit.transaction_id,
        )
        return finding(what, fix, (debit.transaction_id,)), remaining - debit.credit_micros
    return None, remaining


def _orphan_findings(
    entries: Sequence[CardEntry],
    looked_up: Mapping[str, Session | None],
    context: _Context,
    sums: _Sums,
) -> list[Finding]:
    """Credits posted in the window naming a session Stripe does not know."""
    out = []
    seen: set[int] = set()
    for entry in entries:
        if entry.kind != CARD_TOPUP or not entry.effective or entry.transaction_id in seen:
            continue
        if not context.since <= entry.created_at < context.until:
            continue
        unknown = sorted(s for s in entry.references.sessions if s in looked_up and looked_up[s] is None)
        if not unknown:
            continue
        seen.add(entry.transaction_id)
        sums.credited_micros += entry.credit_micros
        out.append(
            Finding(
                CREDIT_WITHOUT_PAYMENT,
                unknown[0],
                format_micros(entry.credit_micros),
                USD,
                f"transaction {entry.transaction_id} ({entry.key}) credits {format_micros(entry.credit_micros)} USD "
                f"to {entry.customer or '?'} for a checkout session Stripe does not know",
                customer=entry.customer,
                transactions=(entry.transaction_id,),
            )
        )
    return out
