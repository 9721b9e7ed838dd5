"""A loopback Stripe API: a real HTTP server on 127.0.0.1 that answers the calls reconciliation makes.

The tests and the benchmark point the real `stripe` library at it (`TREASURY_STRIPE_API_BASE`). It
serves objects in Stripe's real shapes: every object is a deep copy of a recorded Stripe object
(`reconcile/data/stripe`, see SOURCES.md) with only the scenario's fields set (ids, amounts, statuses,
times, the links between objects). What it answers, the way Stripe does:

- `GET /v1/checkout/sessions` with `created[gt|gte|lt|lte]` (or `created=N`), `payment_intent`,
  `status`, `limit` (1–100, default 10; the server may cap a page lower, `max_page_size`),
  `starting_after` / `ending_before`, and `expand[]` — newest first, with `has_more`.
- `GET /v1/refunds` and `GET /v1/disputes` filtered by `charge` / `payment_intent` / `created`, paged
  the same way; `GET /v1/<kind>/<id>` for sessions, payment intents, charges, balance transactions,
  refunds and disputes.
- `expand[]` of any id field (`data.payment_intent.latest_charge.balance_transaction`) and of a
  charge's `refunds` list (first 10, `has_more`), at most 4 levels deep; anything else is refused
  with Stripe's 400. Unknown ids: 404 `resource_missing`. A wrong API key: 401 with the key masked
  as Stripe masks it.

Scenarios are built with `add_session` (a paid card top-up with its PaymentIntent, charge and
balance transaction; or unpaid), `async_payment_succeeded` / `async_payment_failed`, `add_refund`,
`set_refund_status`, `add_dispute`, `set_dispute`. Faults are scripted with `add_fault` (taken in
order by the requests they match): 500 / 503 with Stripe's error body, 429 with or without
`Stripe-Should-Retry` (and optionally `Retry-After`), a dropped connection, or any reply. Every
request is recorded (`requests`, `count`).
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import datetime as dt
import hashlib
import http.server
import itertools
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Final

import orjson

DATA: Final = Path(__file__).resolve().parent / "data" / "stripe"
DEFAULT_API_KEY: Final = "sk_test_loopback_4eC39HqLyjWDarjtT1zdp7dc"  # the fake's key: never a real one
MAX_EXPAND_DEPTH: Final = 4  # Stripe's limit on nested expansions
EMBEDDED_LIST_SIZE: Final = 10  # an expanded sub-list (a charge's refunds) carries its first 10 items
MAX_RECORDED_REQUESTS: Final = 200_000
DAY_S: Final = 86_400

_KEY_PART: Final = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PREFIXES: Final = {
    "checkout.session": "cs_test_",
    "payment_intent": "pi_",
    "charge": "ch_",
    "balance_transaction": "txn_",
    "refund": "re_",
    "dispute": "dp_",
}
_RESOURCES: Final = {
    "checkout/sessions": "checkout.session",
    "payment_intents": "payment_intent",
    "charges": "charge",
    "balance_transactions": "balance_transaction",
    "refunds": "refund",
    "disputes": "dispute",
}
_LISTABLE: Final = {"checkout/sessions", "refunds", "disputes"}


def _load(name: str) -> dict[str, Any]:
    value = orjson.loads((DATA / name).read_bytes())
    assert isinstance(value, dict)
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Templates:
    """The recorded objects every served object is copied from."""

    session: dict[str, Any]
    payment_intent: dict[str, Any]
    charge: dict[str, Any]
    balance_transaction: dict[str, Any]
    refund: dict[str, Any]
    refund_destination: dict[str, Any]
    dispute: dict[str, Any]
    dispute_withdrawal: dict[str, Any]
    dispute_reinstatement: dict[str, Any]
    paid_session_total_details: dict[str, Any]
    list_envelope: dict[str, Any]

    @classmethod
    def load(cls) -> Templates:
        reinstated = _load("stripe_dispute_funds_reinstated_full_djstripe.json")
        completed = _load("stripe_event_checkout_session_completed_2020-08-27_stripemock.json")["data"]["object"]
        refund_event = _load("stripe_event_charge_refund_updated_basil_lago.json")["data"]["object"]
        envelope = _load("stripe_checkout_session_list_zulip_recorded_normalized.json")
        envelope.pop("data")
        return cls(
            session=_load("stripe_checkout_session_fixture.json"),
            payment_intent=_load("stripe_payment_intent_fixture.json"),
            charge=_load("stripe_charge_fixture.json"),
            balance_transaction=_load("stripe_balance_transaction_fixture.json"),
            refund=_load("stripe_refund_fixture.json"),
            refund_destination=refund_event["destination_details"],
            dispute=_load("stripe_dispute_fixture.json"),
            dispute_withdrawal=reinstated["balance_transactions"][0],
            dispute_reinstatement=reinstated["balance_transactions"][1],
            paid_session_total_details=completed["total_details"],
            list_envelope=envelope,
        )


def _clone(template: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object (an order of magnitude faster than copy.deepcopy for these)."""
    value = orjson.loads(orjson.dumps(template))
    assert isinstance(value, dict)
    return value


def card_fee(amount: int) -> int:
    """Stripe's US card price, 2.9% + 30 ¢, rounded half up: the fake's default fee (tests may set their own)."""
    return (amount * 29 + 500) // 1000 + 30


def unix(moment: dt.datetime | int) -> int:
    if isinstance(moment, int):
        return moment
    if moment.tzinfo is None:
        raise ValueError("times given to the fake Stripe must be timezone-aware")
    return int(moment.timestamp())


@dataclasses.dataclass(frozen=True, slots=True)
class TopUp:
    """The ids of what `add_session` created (None where the scenario has no such object yet)."""

    session: str
    payment_intent: str | None
    charge: str | None
    balance_transaction: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour for requests whose path starts with `path` (None: any request).

    status 0 with drop=True closes the connection without answering (a connection error).
    """

    status: int = 500
    body: bytes | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    path: str | None = None
    drop: bool = False

    @classmethod
    def server_error(cls, status: int = 500, *, path: str | None = None, should_retry: bool | None = None) -> Fault:
        body = orjson.dumps({"error": {"type": "api_error", "message": "Sorry, something went wrong on Stripe's end."}})
        return cls(status, body, _should_retry_header(should_retry), path)

    @classmethod
    def rate_limited(
        cls, *, should_retry: bool | None = None, retry_after: str | None = None, path: str | None = None
    ) -> Fault:
        """429 as Stripe sends it; `should_retry` None sends no Stripe-Should-Retry header (a plain 429)."""
        body = orjson.dumps(
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "rate_limit",
                    "message": "Request rate limit exceeded. Learn more about rate limits here "
                    "https://stripe.com/docs/rate-limits.",
                }
            }
        )
        headers = _should_retry_header(should_retry)
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return cls(429, body, headers, path)

    @classmethod
    def dropped(cls, *, path: str | None = None) -> Fault:
        return cls(0, None, {}, path, drop=True)

    @classmethod
    def reply(cls, status: int, body: bytes, *, path: str | None = None) -> Fault:
        return cls(status, body, {}, path)


def _should_retry_header(should_retry: bool | None) -> dict[str, str]:
    return {} if should_retry is None else {"Stripe-Should-Retry": "true" if should_retry else "false"}


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]  # names in lower case
    status: int
    received_at: float  # time.monotonic()

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def params(self, name: str) -> list[str]:
        """Every value of an array parameter, e.g. params("expand") for expand[0], expand[1]…"""
        return [value for key, value in self.query if key == name or re.fullmatch(rf"{re.escape(name)}\[\d*\]", key)]


class _ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param

    def body(self) -> bytes:
        error: dict[str, Any] = {"type": "invalid_request_error", "message": str(self)}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return orjson.dumps({"error": error})


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    fake: FakeStripe

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that went away mid-reply is part of the scenarios


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        try:
            self.server.fake._handle(self)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    do_POST = do_DELETE = do_GET

    def send_body(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Ordered:
    """Objects of one kind, newest first (Stripe's list order), with bisectable sort keys."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []  # (-created, -sequence), ascending
        self.ids: list[str] = []
        self.key_of: dict[str, tuple[int, int]] = {}

    def add(self, object_id: str, created: int, sequence: int) -> None:
        key = (-created, -sequence)
        position = bisect.bisect_left(self.keys, key)
        self.keys.insert(position, key)
        self.ids.insert(position, object_id)
        self.key_of[object_id] = key


class FakeStripe:
    """The loopback Stripe API. `with FakeStripe() as stripe_api: ... stripe_api.url ...`"""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        max_page_size: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
        record_requests: bool = True,
    ) -> None:
        if not 1 <= max_page_size <= 100:
            raise ValueError("max_page_size is 1..100")
        self.api_key = api_key
        self.max_page_size = max_page_size
        self.record_requests = record_requests
        self.templates = Templates.load()
        self._lock = threading.RLock()
        self._objects: dict[str, dict[str, Any]] = {}
        self._ordered: dict[str, _Ordered] = {kind: _Ordered() for kind in _LISTABLE}
        self._refunds_of_charge: dict[str, list[str]] = {}
        self._disputes_of_charge: dict[str, list[str]] = {}
        self._sequence = itertools.count(1)
        self._faults: list[list[Any]] = []  # [Fault, remaining]
        self._requests: list[RecordedRequest] = []
        self._http = _HTTPServer((host, port), _Handler)
        self._http.fake = self
        self._thread: threading.Thread | None = None

    # --- life cycle ---

    @property
    def url(self) -> str:
        """The base address to give as TREASURY_STRIPE_API_BASE."""
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> FakeStripe:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-stripe", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._http.server_close()

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # --- scenario building ---

    def _new_id(self, kind: str, hint: str | None = None) -> str:
        if hint is not None:
            if hint in self._objects:
                raise ValueError(f"{hint} exists already")
            return hint
        number = next(self._sequence)
        digest = hashlib.sha256(f"{kind}:{number}".encode()).hexdigest()
        body = digest[:58] if kind == "checkout.session" else digest[:24]
        return f"{_PREFIXES[kind]}{body}"

    def _store(self, obj: dict[str, Any]) -> None:
        self._objects[obj["id"]] = obj
        kind = next((path for path, name in _RESOURCES.items() if name == obj["object"]), None)
        if kind in self._ordered:
            assert kind is not None
            self._ordered[kind].add(obj["id"], obj["created"], next(self._sequence))

    def get(self, object_id: str) -> dict[str, Any]:
        """A stored object as it is served unexpanded (a copy)."""
        with self._lock:
            return copy.deepcopy(self._objects[object_id])

    def add_session(
        self,
        *,
        created: dt.datetime | int,
        amount_total: int,
        currency: str = "usd",
        customer: str | None = "agt_a1b2c3d4",
        customer_in: str = "client_reference_id",
        tax: int = 0,
        payment_status: str = "paid",
        status: str | None = None,
        mode: str = "payment",
        fee: int | None = None,
        balance_currency: str | None = None,
        balance_amount: int | None = None,
        session_id: str | None = None,
    ) -> TopUp:
        """A Checkout Session. paid: with a succeeded PaymentIntent, charge and balance transaction.

        unpaid + status "complete": an async payment (bank debit) still processing — PaymentIntent
        `processing`, charge `pending`, no balance transaction yet (see async_payment_succeeded).
        unpaid + "open" or "expired": no payment attempt, no PaymentIntent. `customer_in` says where the
        customer id goes: "client_reference_id" or "metadata" (metadata.account_id).
        """
        if customer_in not in ("client_reference_id", "metadata"):
            raise ValueError("customer_in is client_reference_id or metadata")
        at = unix(created)
        status = "complete" if status is None else status
        with self._lock:
            sid = self._new_id("checkout.session", session_id)
            session = _clone(self.templates.session)
            details = _clone(self.templates.paid_session_total_details)
            details["amount_tax"] = tax
            session.update(
                id=sid,
                created=at,
                expires_at=at + DAY_S,
                amount_subtotal=amount_total - tax,
                amount_total=amount_total,
                currency=currency,
                mode=mode,
                payment_status=payment_status,
                status=status,
                client_reference_id=customer if customer_in == "client_reference_id" else None,
                metadata={"account_id": customer} if customer_in == "metadata" and customer is not None else {},
                total_details=details,
                shipping_cost=None,
                shipping_address_collection=None,
                currency_conversion=None,
                url=None if status != "open" else f"https://checkout.stripe.com/c/pay/{sid}",
                payment_intent=None,
            )
            session["automatic_tax"]["enabled"] = tax > 0
            session["automatic_tax"]["status"] = "complete" if tax > 0 else None
            payment_intent = charge = transaction = None
            if payment_status == "paid" or (payment_status == "unpaid" and status == "complete"):
                payment_intent = self._new_id("payment_intent")
                charge = self._new_id("charge")
                session["payment_intent"] = payment_intent
                pi = _clone(self.templates.payment_intent)
                pi.update(
                    id=payment_intent,
                    amount=amount_total,
                    amount_received=amount_total if payment_status == "paid" else 0,
                    canceled_at=None,
                    client_secret=f"{payment_intent}_secret_{hashlib.sha256(sid.encode()).hexdigest()[:25]}",
                    created=at,
                    currency=currency,
                    last_payment_error=None,
                    latest_charge=charge,
                    next_action=None,
                    processing=None if payment_status == "paid" else {"type": "us_bank_account"},
                    payment_method_types=["card"] if payment_status == "paid" else ["us_bank_account"],
                    status="succeeded" if payment_status == "paid" else "processing",
                    transfer_data=None,
                )
                ch = _clone(self.templates.charge)
                ch.pop("refunds", None)  # a list Stripe includes only when expanded
                ch.update(
                    id=charge,
                    amount=amount_total,
                    amount_captured=amount_total if payment_status == "paid" else 0,
                    amount_refunded=0,
                    balance_transaction=None,
                    captured=payment_status == "paid",
                    created=at,
                    currency=currency,
                    disputed=False,
                    paid=payment_status == "paid",
                    payment_intent=payment_intent,
                    refunded=False,
                    source=None,
                    status="succeeded" if payment_status == "paid" else "pending",
                    transfer_data=None,
                )
                self._store(pi)
                self._store(ch)
                if payment_status == "paid":
                    transaction = self._charge_transaction(ch, fee, balance_currency, balance_amount)
            self._store(session)
            return TopUp(sid, payment_intent, charge, transaction)

    def _charge_transaction(
        self, charge: dict[str, Any], fee: int | None, currency: str | None, amount: int | None
    ) -> str:
        gross = charge["amount"] if amount is None else amount
        fee = card_fee(gross) if fee is None else fee
        txn = _clone(self.templates.balance_transaction)
        txn.update(
            id=self._new_id("balance_transaction"),
            amount=gross,
            fee=fee,
            fee_details=[
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency or charge["currency"],
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ],
            net=gross - fee,
            created=charge["created"],
            available_on=charge["created"] + 2 * DAY_S,
            currency=currency or charge["currency"],
            description=None,
            source=charge["id"],
            status="available",
            type="charge",
            reporting_category="charge",
        )
        self._store(txn)
        charge["balance_transaction"] = txn["id"]
        return str(txn["id"])

    def _session(self, session_id: str) -> dict[str, Any]:
        session = self._objects.get(session_id)
        if session is None or session["object"] != "checkout.session":
            raise KeyError(f"no checkout session {session_id}")
        return session

    def _charge_of(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session["payment_intent"] is None:
            raise ValueError(f"{session_id} has no payment")
        charge_id = self._objects[session["payment_intent"]]["latest_charge"]
        return self._objects[charge_id]

    def async_payment_succeeded(self, session_id: str, *, fee: int | None = None) -> None:
        """checkout.session.async_payment_succeeded: the session becomes paid, the charge succeeds."""
        with self._lock:
            session = self._session(session_id)
            charge = self._charge_of(session_id)
            pi = self._objects[session["payment_intent"]]
            session["payment_status"] = "paid"
            pi.update(status="succeeded", amount_received=pi["amount"], processing=None)
            charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"])
            self._charge_transaction(charge, fee, None, None)

    def async_payment_failed(self, session_id: str) -> None:
        """checkout.session.async_payment_failed: the session stays unpaid, the charge fails."""
        with self._lock:
            session = self._session(session_id)
            charge = self._charge_of(session_id)
            pi = self._objects[session["payment_intent"]]
            pi.update(status="requires_payment_method", processing=None)
            charge.update(status="failed", failure_code="debit_not_authorized", failure_message="Debit not authorized")

    def add_refund(
        self,
        session_id: str,
        amount: int,
        *,
        status: str = "succeeded",
        created: dt.datetime | int | None = None,
        refund_id: str | None = None,
    ) -> str:
        with self._lock:
            charge = self._charge_of(session_id)
            at = unix(created) if created is not None else charge["created"] + 3600
            refund = _clone(self.templates.refund)
            rid = self._new_id("refund", refund_id)
            refund.update(
                id=rid,
                amount=amount,
                charge=charge["id"],
                payment_intent=charge["payment_intent"],
                created=at,
                currency=charge["currency"],
                status=status,
                balance_transaction=None,
                destination_details=_clone(self.templates.refund_destination),
            )
            if status in ("succeeded", "pending"):
                refund["balance_transaction"] = self._refund_transaction(refund)
            self._store(refund)
            self._refunds_of_charge.setdefault(charge["id"], []).append(rid)
            self._update_refunded(charge)
            return rid

    def _refund_transaction(self, refund: dict[str, Any]) -> str:
        txn = _clone(self.templates.balance_transaction)
        txn.update(
            id=self._new_id("balance_transaction"),
            amount=-refund["amount"],
            fee=0,
            fee_details=[],
            net=-refund["amount"],
            created=refund["created"],
            available_on=refund["created"],
            currency=refund["currency"],
            description="REFUND FOR CHARGE",
            source=refund["id"],
            type="refund",
            reporting_category="refund",
        )
        self._store(txn)
        return str(txn["id"])

    def set_refund_status(self, refund_id: str, status: str) -> None:
        with self._lock:
            refund = self._objects[refund_id]
            refund["status"] = status
            if status in ("failed", "canceled") and refund.get("failure_reason") is None:
                refund["failure_reason"] = "unknown" if status == "failed" else None
            self._update_refunded(self._objects[refund["charge"]])

    def _update_refunded(self, charge: dict[str, Any]) -> None:
        refunded = sum(
            self._objects[rid]["amount"]
            for rid in self._refunds_of_charge.get(charge["id"], [])
            if self._objects[rid]["status"] in ("succeeded", "pending")
        )
        charge["amount_refunded"] = refunded
        charge["refunded"] = refunded >= charge["amount"]

    def add_dispute(
        self,
        session_id: str,
        *,
        amount: int | None = None,
        status: str = "needs_response",
        funds_withdrawn: bool = True,
        funds_reinstated: bool = False,
        created: dt.datetime | int | None = None,
        dispute_id: str | None = None,
    ) -> str:
        """A dispute on the session's charge; funds_withdrawn adds the `dispute` balance transaction
        (amount and Stripe's dispute fee out), funds_reinstated the `dispute_reversal` one (back in)."""
        with self._lock:
            charge = self._charge_of(session_id)
            at = unix(created) if created is not None else charge["created"] + 7 * DAY_S
            dispute = _clone(self.templates.dispute)
            did = self._new_id("dispute", dispute_id)
            dispute.update(
                id=did,
                amount=charge["amount"] if amount is None else amount,
                charge=charge["id"],
                payment_intent=charge["payment_intent"],
                created=at,
                currency=charge["currency"],
                status=status,
                balance_transactions=[],
                is_charge_refundable=False,
                reason="fraudulent",
            )
            self._objects[did] = dispute  # stored before its money moves, listed after
            self._move_dispute_funds(dispute, withdrawn=funds_withdrawn, reinstated=funds_reinstated)
            self._store(dispute)
            self._disputes_of_charge.setdefault(charge["id"], []).append(did)
            charge["disputed"] = True
            return did

    def set_dispute(self, dispute_id: str, *, status: str, funds_reinstated: bool = False) -> None:
        with self._lock:
            dispute = self._objects[dispute_id]
            dispute["status"] = status
            self._move_dispute_funds(dispute, withdrawn=False, reinstated=funds_reinstated)

    def _move_dispute_funds(self, dispute: dict[str, Any], *, withdrawn: bool, reinstated: bool) -> None:
        categories = {t["reporting_category"] for t in dispute["balance_transactions"]}
        moves = []
        if withdrawn and "dispute" not in categories:
            moves.append((self.templates.dispute_withdrawal, -1))
        if reinstated and "dispute_reversal" not in categories:
            moves.append((self.templates.dispute_reinstatement, 1))
        for template, sign in moves:
            txn = _clone(template)
            fee = abs(template["fee"]) * -sign  # Stripe's dispute fee, refunded when the dispute is won
            txn.update(
                id=self._new_id("balance_transaction"),
                amount=sign * dispute["amount"],
                fee=fee,
                net=sign * dispute["amount"] - fee,
                created=dispute["created"] + (0 if sign < 0 else 30 * DAY_S),
                currency=dispute["currency"],
                description=f"Chargeback {'withdrawal' if sign < 0 else 'reversal'} for {dispute['charge']}",
                source=dispute["id"],
            )
            txn["fee_details"][0]["amount"] = fee
            txn["fee_details"][0]["currency"] = dispute["currency"]
            self._objects[txn["id"]] = txn
            dispute["balance_transactions"].append(txn)

    # --- faults and recorded requests ---

    def add_fault(self, fault: Fault, *, times: int = 1) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append([fault, times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, path: str | None = None, *, status: int | None = None) -> int:
        """Requests whose path starts with `path` (and answered with `status`, when given)."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (path is None or r.path.startswith(path)) and (status is None or r.status == status)
            )

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for entry in self._faults:
                fault: Fault = entry[0]
                if fault.path is None or path.startswith(fault.path):
                    entry[1] -= 1
                    if entry[1] == 0:
                        self._faults.remove(entry)
                    return fault
        return None

    def _record(self, handler: _Handler, path: str, query: list[tuple[str, str]], status: int) -> None:
        if not self.record_requests:
            return
        with self._lock:
            if len(self._requests) < MAX_RECORDED_REQUESTS:
                self._requests.append(
                    RecordedRequest(
                        handler.command,
                        path,
                        tuple(query),
                        MappingProxyType({k.lower(): v for k, v in handler.headers.items()}),
                        status,
                        time.monotonic(),
                    )
                )

    # --- serving ---

    def _handle(self, handler: _Handler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            query += urllib.parse.parse_qsl(handler.rfile.read(length).decode(), keep_blank_values=True)
        path = parts.path
        request_id = f"req_{hashlib.sha256(f'{time.monotonic_ns()}'.encode()).hexdigest()[:14]}"
        headers = {"Request-Id": request_id, "Stripe-Version": handler.headers.get("Stripe-Version", "")}
        fault = self._take_fault(path)
        if fault is not None:
            self._record(handler, path, query, fault.status)
            if fault.drop:
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            handler.send_body(fault.status, fault.body or b"", {**headers, **fault.headers})
            return
        try:
            self._authenticate(handler.headers.get("Authorization"))
            if handler.command != "GET":
                raise _ApiError(405, f"Unrecognized request URL ({handler.command}: {path}).")
            status, body = 200, self._route(path, _nest(query))
        except _ApiError as exc:
            status, body = exc.status, exc.body()
        self._record(handler, path, query, status)
        handler.send_body(status, body, headers)

    def _authenticate(self, header: str | None) -> None:
        scheme, _, key = (header or "").partition(" ")
        if scheme != "Bearer" or not key:
            raise _ApiError(401, "You did not provide an API key.")
        if key != self.api_key:
            # Stripe's own wording, with the key masked as Stripe masks it.
            raise _ApiError(401, f"Invalid API Key provided: {key[:8]}{'*' * 12}{key[-4:]}")

    def _route(self, path: str, params: dict[str, Any]) -> bytes:
        match = re.fullmatch(
            r"/v1/(checkout/sessions|payment_intents|charges|balance_transactions|refunds|disputes)"
            r"(?:/([A-Za-z0-9_]+))?",
            path,
        )
        if match is None:
            raise _ApiError(404, f"Unrecognized request URL (GET: {path}).")
        resource, object_id = match.groups()
        expand = _expand_paths(params)
        with self._lock:
            if object_id is not None:
                obj = self._objects.get(object_id)
                if obj is None or obj["object"] != _RESOURCES[resource]:
                    raise _ApiError(
                        404, f"No such {_RESOURCES[resource]}: '{object_id}'", code="resource_missing", param="id"
                    )
                return orjson.dumps(self._expanded(obj, expand))
            if resource not in _LISTABLE:
                raise _ApiError(404, f"Unrecognized request URL (GET: {path}).")
            return orjson.dumps(self._list(resource, params, expand))

    def _list(self, resource: str, params: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        limit_text = params.get("limit", "10")
        if not isinstance(limit_text, str) or not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
            raise _ApiError(400, "Invalid integer: limit must be between 1 and 100", param="limit")
        page_size = min(int(limit_text), self.max_page_size)
        for path in expand:
            if not path.startswith("data."):
                raise _ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
        item_expand = [path.removeprefix("data.") for path in expand]
        low, high = _created_bounds(params.get("created"))
        filters = _filters(resource, params)
        ordered = self._ordered[resource]
        candidates: Iterable[str] = ()
        if resource == "refunds" and "charge" in filters:
            candidates = sorted(self._refunds_of_charge.get(filters["charge"], []), key=ordered.key_of.__getitem__)
        elif resource == "disputes" and "charge" in filters:
            candidates = sorted(self._disputes_of_charge.get(filters["charge"], []), key=ordered.key_of.__getitem__)
        cursor = params.get("starting_after")
        before = params.get("ending_before")
        for name, value in (("starting_after", cursor), ("ending_before", before)):
            if value is not None and value not in ordered.key_of:
                kind = _RESOURCES[resource]
                raise _ApiError(400, f"No such {kind}: '{value}'", code="resource_missing", param=name)
        if not (resource == "refunds" and "charge" in filters) and not (resource == "disputes" and "charge" in filters):
            # Newest first: created <= high comes first in the order, created >= low last; a cursor
            # starts the page just after itself (bisected, so a page costs its size, not the list's).
            start = bisect.bisect_left(ordered.keys, (-high, -(2**62)))
            if cursor is not None:
                start = max(start, bisect.bisect_right(ordered.keys, ordered.key_of[cursor]))
            end = bisect.bisect_right(ordered.keys, (-low, 0))
            candidates = (ordered.ids[i] for i in range(start, end))
        selected: list[str] = []
        has_more = False
        if before is not None:
            # The page just before `ending_before`, in the same newest-first order.
            earlier = [
                i
                for i in candidates
                if ordered.key_of[i] < ordered.key_of[before] and _keep(self, i, low, high, filters)
            ]
            has_more = len(earlier) > page_size
            selected = earlier[-page_size:]
        else:
            for object_id in candidates:
                if cursor is not None and ordered.key_of[object_id] <= ordered.key_of[cursor]:
                    continue
                if not _keep(self, object_id, low, high, filters):
                    continue
                if len(selected) == page_size:
                    has_more = True
                    break
                selected.append(object_id)
        envelope = dict(self.templates.list_envelope)
        envelope.update(
            data=[self._expanded(self._objects[i], item_expand, in_list=True) for i in selected],
            has_more=has_more,
            url=f"/v1/{resource}",
        )
        return envelope

    def _expanded(self, obj: dict[str, Any], paths: list[str], *, in_list: bool = False) -> dict[str, Any]:
        """`obj` with `paths` expanded; in a list the paths came without their `data.` (one more level)."""
        result = obj
        for path in paths:
            parts = path.split(".")
            if len(parts) + in_list > MAX_EXPAND_DEPTH:
                shown = f"data.{path}" if in_list else path
                raise _ApiError(
                    400, f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. Property: {shown}"
                )
            result = self._expand(result, parts, path)
        return result

    def _expand(self, obj: dict[str, Any], parts: list[str], path: str) -> dict[str, Any]:
        head, rest = parts[0], parts[1:]
        if obj.get("object") == "charge" and head == "refunds":
            value: Any = obj.get("refunds") or self._embedded_refunds(obj["id"])
        elif head in obj:
            value = obj[head]
            if isinstance(value, str):
                target = self._objects.get(value)
                if target is None:
                    raise _ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
                value = target
            elif value is not None and not isinstance(value, dict):
                raise _ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
        else:
            raise _ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
        if rest and isinstance(value, dict):
            if value.get("object") == "list":
                if rest[0] != "data" or len(rest) < 2:
                    raise _ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
                value = {**value, "data": [self._expand(item, rest[1:], path) for item in value["data"]]}
            else:
                value = self._expand(value, rest, path)
        return {**obj, head: value}

    def _embedded_refunds(self, charge_id: str) -> dict[str, Any]:
        ordered = self._ordered["refunds"]
        ids = sorted(self._refunds_of_charge.get(charge_id, []), key=ordered.key_of.__getitem__)
        return {
            "object": "list",
            "data": [self._objects[i] for i in ids[:EMBEDDED_LIST_SIZE]],
            "has_more": len(ids) > EMBEDDED_LIST_SIZE,
            "total_count": len(ids),
            "url": f"/v1/charges/{charge_id}/refunds",
        }


def _nest(query: list[tuple[str, str]]) -> dict[str, Any]:
    """`created[gte]=1&expand[0]=a&expand[1]=b` -> {"created": {"gte": "1"}, "expand": ["a", "b"]}."""
    params: dict[str, Any] = {}
    for key, value in query:
        match = _KEY_PART.fullmatch(key)
        if match is None:
            continue
        name, brackets = match.groups()
        subkeys = re.findall(r"\[([^\[\]]*)\]", brackets)
        if not subkeys:
            params[name] = value
        elif name == "expand" or subkeys[0] == "" or subkeys[0].isdigit():
            existing = params.setdefault(name, [])
            if isinstance(existing, list):
                existing.append(value)
        else:
            nested = params.setdefault(name, {})
            if isinstance(nested, dict):
                nested[subkeys[0]] = value
    return params


def _expand_paths(params: Mapping[str, Any]) -> list[str]:
    value = params.get("expand", [])
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _created_bounds(created: Any) -> tuple[int, int]:
    """Inclusive [low, high] of `created`; Stripe accepts created=N or created[gt|gte|lt|lte]=N."""
    low, high = 0, 2**62
    if created is None:
        return low, high
    try:
        if isinstance(created, str):
            return int(created), int(created)
        for op, text in created.items():
            value = int(text)
            if op == "gte":
                low = max(low, value)
            elif op == "gt":
                low = max(low, value + 1)
            elif op == "lte":
                high = min(high, value)
            elif op == "lt":
                high = min(high, value - 1)
            else:
                raise _ApiError(400, f"Received unknown parameter: created[{op}]", param=f"created[{op}]")
    except ValueError:
        raise _ApiError(400, "Invalid integer: created", param="created") from None
    return low, high


def _filters(resource: str, params: Mapping[str, Any]) -> dict[str, str]:
    allowed = {
        "checkout/sessions": ("payment_intent", "status", "customer"),
        "refunds": ("charge", "payment_intent"),
        "disputes": ("charge", "payment_intent"),
    }[resource]
    return {name: str(params[name]) for name in allowed if isinstance(params.get(name), str)}


def _keep(fake: FakeStripe, object_id: str, low: int, high: int, filters: Mapping[str, str]) -> bool:
    obj = fake._objects[object_id]
    if not low <= obj["created"] <= high:
        return False
    return all(obj.get(name) == value for name, value in filters.items())
