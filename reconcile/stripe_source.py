"""The Stripe source: Checkout Sessions of a window with their payments, refunds and disputes. I/O only.

`StripeSource` is the port the job reads through; `StripeApiSource` is its adapter on the official
`stripe` library (`stripe.StripeClient`, base address from TREASURY_STRIPE_API_BASE, its HTTP client
`stripe.RequestsClient` with explicit connect and read timeouts). Calls:

    GET /v1/checkout/sessions?created[gte]=…&created[lt]=…&limit=100
        &expand[]=data.payment_intent.latest_charge.balance_transaction
        &expand[]=data.payment_intent.latest_charge.refunds          every page, has_more/starting_after
    GET /v1/refunds?charge=ch_…&limit=100         only when a charge has more than the 10 embedded refunds
    GET /v1/disputes?payment_intent=pi_…&limit=100    only for a charge marked `disputed`
    GET /v1/checkout/sessions/cs_…                a session named by a ledger credit but not in the window

Requests go through `StripeClient.raw_request` and the JSON is decoded here, into `reconcile.records`:
building the library's StripeObjects for pages of deeply expanded sessions cost 8× the whole fetch
(367 against 2,788 sessions/s on the loopback fake), and the decoding below checks every field it
reads anyway. Authentication, retries and the mapping of HTTP errors stay the library's.

Retries. The library retries by itself, `max_network_retries` times (set explicitly, default 2), with
its own backoff: connection errors and timeouts, 409, 5xx, and any reply carrying
`Stripe-Should-Retry: true` (stripe/_http_client.py `HTTPClient._should_retry`, 16.1.0). It does not
retry a plain 429 (no Stripe-Should-Retry header): that alone is retried here, bounded by attempts and
by time (tenacity, every option explicit), waiting Retry-After when the reply has one. Nothing else is
retried a second time; a 429 carrying `Stripe-Should-Retry: false` is not retried (Stripe asked).

Errors of the library become the StripeApiError branch of `reconcile.errors` in one place,
`translate_stripe_errors` (`classify_stripe_error`, closed by default). The API key never appears in a
message: the library's messages are scrubbed of it, and ours never name it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol

import stripe
import structlog
import tenacity

from reconcile.errors import (
    ReconcileInputError,
    StripeApiError,
    StripeAuthenticationError,
    StripeRateLimited,
    StripeRejected,
    StripeReplyError,
    StripeUnavailable,
)
from reconcile.records import BalanceTransaction, Charge, Dispute, Refund, Session

SESSION_EXPAND: Final = (
    "data.payment_intent.latest_charge.balance_transaction",
    "data.payment_intent.latest_charge.refunds",
)
MAX_PAGE_SIZE: Final = 100  # Stripe's largest page
DEFAULT_MAX_PAGES: Final = 100_000  # 10 million sessions in one window: beyond that something is wrong
_MAX_MESSAGE_CHARS: Final = 300

log = structlog.get_logger("reconcile.stripe")


class StripeSource(Protocol):
    """What the reconciliation job reads from Stripe."""

    def sessions(self, since: dt.datetime, until: dt.datetime) -> Iterator[Session]:
        """Every Checkout Session created in [since, until), newest first, with payment, refunds, disputes."""
        ...

    def session(self, session_id: str) -> Session | None:
        """One session by id (with the same details), or None when Stripe does not know it."""
        ...


# --- the one place stripe's errors become ours ---


@contextlib.contextmanager
def translate_stripe_errors(secret: str | None = None) -> Iterator[None]:
    """Re-raise the stripe library's errors as StripeApiError subclasses (`from` the original)."""
    try:
        yield
    except stripe.StripeError as exc:
        raise classify_stripe_error(exc, secret) from exc


def classify_stripe_error(exc: stripe.StripeError, secret: str | None = None) -> StripeApiError:
    """Our error for one of the library's. Closed by default: an error it does not know is not retried."""
    status = exc.http_status
    request_id = exc.request_id
    message = _scrub(_first_line(exc.user_message or str(exc) or type(exc).__name__), secret)
    where = f" (HTTP {status})" if status else ""
    if isinstance(exc, stripe.RateLimitError) or status == 429:
        should_retry = _header(exc.headers, "stripe-should-retry")
        return StripeRateLimited(
            f"Stripe rate limit{where}: {message}",
            retry_after_s=_seconds(_header(exc.headers, "retry-after")),
            library_retried=should_retry is not None,
            status=status,
            request_id=request_id,
        )
    if isinstance(exc, stripe.APIConnectionError):
        return StripeUnavailable(f"cannot reach Stripe: {message}", status=status, request_id=request_id)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return StripeAuthenticationError(
            f"Stripe refused the API key{where}: {message}", status=status, code=exc.code, request_id=request_id
        )
    if status is not None and status >= 500:
        return StripeUnavailable(f"Stripe failed{where}: {message}", status=status, request_id=request_id)
    if isinstance(exc, stripe.APIError):
        # The library raises APIError for a reply it could not read (not JSON, no `error` object).
        return StripeReplyError(f"unreadable reply from Stripe{where}: {message}", status=status, request_id=request_id)
    if status is not None and 400 <= status < 500:
        return StripeRejected(
            f"Stripe refused the request{where}: {message}", status=status, code=exc.code, request_id=request_id
        )
    return StripeApiError(
        f"Stripe error ({type(exc).__name__}){where}: {message}", status=status, request_id=request_id
    )


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value < 86_400 else None


def _scrub(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return text[:_MAX_MESSAGE_CHARS]


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else text


# --- the adapter ---


class StripeApiSource:
    """StripeSource on the official stripe library. Thread-compatible, not thread-safe (one per job)."""

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = stripe.DEFAULT_API_BASE,
        page_size: int = MAX_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
        max_network_retries: int = 2,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        rate_limit_attempts: int = 5,
        rate_limit_deadline_s: float = 120.0,
        rate_limit_wait_s: float = 1.0,
        rate_limit_max_wait_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ReconcileInputError("a Stripe API key is needed (TREASURY_STRIPE_API_KEY)")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ReconcileInputError(f"page_size is 1..{MAX_PAGE_SIZE}, got {page_size}")
        if max_pages < 1 or max_network_retries < 0 or rate_limit_attempts < 1:
            raise ReconcileInputError("max_pages and rate_limit_attempts must be positive, retries not negative")
        if min(connect_timeout_s, read_timeout_s, rate_limit_deadline_s, rate_limit_wait_s) <= 0:
            raise ReconcileInputError("timeouts and waits must be positive")
        self._secret = api_key
        self._page_size = page_size
        self._max_pages = max_pages
        self._rate_limit_attempts = rate_limit_attempts
        self._rate_limit_deadline_s = rate_limit_deadline_s
        self._rate_limit_wait_s = rate_limit_wait_s
        self._rate_limit_max_wait_s = rate_limit_max_wait_s
        self._sleep = sleep
        self._http = stripe.RequestsClient(timeout=(connect_timeout_s, read_timeout_s))
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")},
            max_network_retries=max_network_retries,
            http_client=self._http,
        )
        self.requests_made = 0

    def close(self) -> None:
        self._http.close()  # type: ignore[no-untyped-call]  # the library leaves it unannotated

    def __enter__(self) -> StripeApiSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- requests ---

    def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """GET path: the decoded JSON object. Plain 429s retried here (bounded); the rest by the library."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_plain_rate_limit),
            stop=tenacity.stop_after_attempt(self._rate_limit_attempts)
            | tenacity.stop_after_delay(self._rate_limit_deadline_s),
            wait=self._rate_limit_wait,
            sleep=self._sleep,
            reraise=True,
            before_sleep=_log_rate_limit,
        )
        body: dict[str, Any] = retrying(self._get_once, path, params)
        return body

    def _get_once(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self.requests_made += 1
        with translate_stripe_errors(self._secret):
            response = self._client.raw_request("get", path, **params)
        data = response.data
        if not isinstance(data, dict):
            raise StripeReplyError(f"Stripe replied to {path} with JSON that is not an object")
        return data

    def _rate_limit_wait(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        retry_after = error.retry_after_s if isinstance(error, StripeRateLimited) else None
        backoff = self._rate_limit_wait_s * 2 ** (state.attempt_number - 1)
        return min(retry_after if retry_after is not None else backoff, self._rate_limit_max_wait_s)

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Every page of a list (has_more / starting_after), bounded by max_pages; a page loop is an error."""
        cursor: str | None = None
        for _page in range(self._max_pages):
            query = dict(params)
            if cursor is not None:
                query["starting_after"] = cursor
            body = self._get(path, query)
            if body.get("object") != "list" or not isinstance(body.get("data"), list):
                raise StripeReplyError(f"Stripe replied to {path} with something that is not a list")
            items: list[dict[str, Any]] = body["data"]
            yield items
            if body.get("has_more") is not True:
                return
            if not items:
                raise StripeReplyError(f"Stripe said {path} has more, with an empty page")
            last = _text(items[-1], "id", "list item")
            if last == cursor:
                raise StripeReplyError(f"Stripe returned the same page of {path} twice (cursor {cursor})")
            cursor = last
        raise StripeReplyError(f"{path} has more than {self._max_pages} pages of {self._page_size}")

    # --- the port ---

    def sessions(self, since: dt.datetime, until: dt.datetime) -> Iterator[Session]:
        params = {
            "limit": self._page_size,
            "created": {"gte": _ceil_seconds(since), "lt": _ceil_seconds(until)},
            "expand": list(SESSION_EXPAND),
        }
        for page in self._pages("/v1/checkout/sessions", params):
            for item in page:
                yield self._session(item)

    def session(self, session_id: str) -> Session | None:
        expand = [path.removeprefix("data.") for path in SESSION_EXPAND]
        try:
            item = self._get(f"/v1/checkout/sessions/{session_id}", {"expand": expand})
        except StripeRejected as exc:
            if exc.status == 404:
                return None
            raise
        return self._session(item)

    # --- decoding: Stripe JSON -> records (every field read is checked) ---

    def _session(self, item: Mapping[str, Any]) -> Session:
        if item.get("object") != "checkout.session":
            raise StripeReplyError(f"expected a checkout.session, got {item.get('object')!r}")
        session_id = _text(item, "id", "checkout.session")
        what = f"checkout.session {session_id}"
        details = item.get("total_details")
        amount_tax = 0
        if isinstance(details, Mapping):
            amount_tax = _opt_int(details, "amount_tax", what) or 0
        metadata = item.get("metadata")
        account = metadata.get("account_id") if isinstance(metadata, Mapping) else None
        intent = item.get("payment_intent")
        if isinstance(intent, str):
            raise StripeReplyError(f"{what}: payment_intent was not expanded")
        session = Session(
            id=session_id,
            created=_time(item, "created", what),
            mode=_text(item, "mode", what),
            status=_opt_text(item, "status", what),
            payment_status=_text(item, "payment_status", what),
            currency=_opt_text(item, "currency", what),
            amount_total=_opt_int(item, "amount_total", what),
            amount_tax=amount_tax,
            customer_reference=_opt_text(item, "client_reference_id", what),
            metadata_account_id=account if isinstance(account, str) else None,
        )
        if not isinstance(intent, Mapping):
            return session
        intent_id = _text(intent, "id", f"{what} payment_intent")
        charge_item = intent.get("latest_charge")
        if isinstance(charge_item, str):
            raise StripeReplyError(f"{what}: payment_intent.latest_charge was not expanded")
        charge: Charge | None = None
        refunds: tuple[Refund, ...] = ()
        disputes: tuple[Dispute, ...] = ()
        if isinstance(charge_item, Mapping):
            charge = _charge(charge_item)
            refunds = self._refunds(charge_item, charge)
            disputes = self._disputes(intent_id) if charge.disputed else ()
        return dataclasses.replace(
            session,
            payment_intent=intent_id,
            payment_intent_status=_opt_text(intent, "status", f"payment_intent {intent_id}"),
            charge=charge,
            refunds=refunds,
            disputes=disputes,
        )

    def _refunds(self, charge_item: Mapping[str, Any], charge: Charge) -> tuple[Refund, ...]:
        embedded = charge_item.get("refunds")
        if not isinstance(embedded, Mapping) or not isinstance(embedded.get("data"), list):
            raise StripeReplyError(f"charge {charge.id}: refunds were not expanded")
        if embedded.get("has_more") is not True:
            return tuple(_refund(item) for item in embedded["data"])
        pages = self._pages("/v1/refunds", {"charge": charge.id, "limit": MAX_PAGE_SIZE})
        return tuple(_refund(item) for page in pages for item in page)

    def _disputes(self, payment_intent: str) -> tuple[Dispute, ...]:
        pages = self._pages("/v1/disputes", {"payment_intent": payment_intent, "limit": MAX_PAGE_SIZE})
        return tuple(_dispute(item) for page in pages for item in page)


def _is_plain_rate_limit(error: BaseException) -> bool:
    """A 429 the library did not retry and Stripe did not forbid retrying: ours to retry."""
    return isinstance(error, StripeRateLimited) and not error.library_retried


def _log_rate_limit(state: tenacity.RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    log.warning(
        "stripe_rate_limited",
        attempt=state.attempt_number,
        sleep_s=round(state.upcoming_sleep, 3),
        request_id=getattr(error, "request_id", None),
    )


def _ceil_seconds(moment: dt.datetime) -> int:
    """UNIX seconds rounded up: Stripe's `created` is whole seconds, so [since, until) is [⌈since⌉, ⌈until⌉)."""
    if moment.tzinfo is None:
        raise ReconcileInputError("window times must carry a UTC offset")
    delta = moment.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    seconds = delta.days * 86_400 + delta.seconds
    return seconds + (1 if delta.microseconds else 0)


def _charge(item: Mapping[str, Any]) -> Charge:
    charge_id = _text(item, "id", "charge")
    what = f"charge {charge_id}"
    transaction = item.get("balance_transaction")
    if isinstance(transaction, str):
        raise StripeReplyError(f"{what}: balance_transaction was not expanded")
    return Charge(
        id=charge_id,
        amount=_int(item, "amount", what),
        currency=_text(item, "currency", what),
        status=_text(item, "status", what),
        amount_refunded=_opt_int(item, "amount_refunded", what) or 0,
        disputed=item.get("disputed") is True,
        balance_transaction=_balance_transaction(transaction) if isinstance(transaction, Mapping) else None,
    )


def _balance_transaction(item: Mapping[str, Any]) -> BalanceTransaction:
    transaction_id = _text(item, "id", "balance_transaction")
    what = f"balance_transaction {transaction_id}"
    return BalanceTransaction(
        id=transaction_id,
        amount=_int(item, "amount", what),
        fee=_int(item, "fee", what),
        net=_int(item, "net", what),
        currency=_text(item, "currency", what),
        reporting_category=_opt_text(item, "reporting_category", what) or "",
    )


def _refund(item: Mapping[str, Any]) -> Refund:
    if item.get("object") != "refund":
        raise StripeReplyError(f"expected a refund, got {item.get('object')!r}")
    refund_id = _text(item, "id", "refund")
    what = f"refund {refund_id}"
    return Refund(
        id=refund_id,
        amount=_int(item, "amount", what),
        currency=_text(item, "currency", what),
        status=_text(item, "status", what),
        created=_time(item, "created", what),
        charge=_id_of(item.get("charge")),
        payment_intent=_id_of(item.get("payment_intent")),
    )


def _dispute(item: Mapping[str, Any]) -> Dispute:
    if item.get("object") != "dispute":
        raise StripeReplyError(f"expected a dispute, got {item.get('object')!r}")
    dispute_id = _text(item, "id", "dispute")
    what = f"dispute {dispute_id}"
    transactions = item.get("balance_transactions") or []
    if not isinstance(transactions, list):
        raise StripeReplyError(f"{what}: balance_transactions is not a list")
    return Dispute(
        id=dispute_id,
        amount=_int(item, "amount", what),
        currency=_text(item, "currency", what),
        status=_text(item, "status", what),
        created=_time(item, "created", what),
        charge=_id_of(item.get("charge")),
        payment_intent=_id_of(item.get("payment_intent")),
        balance_transactions=tuple(_balance_transaction(t) for t in transactions if isinstance(t, Mapping)),
    )


def _id_of(value: Any) -> str | None:
    """An id field, expanded or not."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _text(item: Mapping[str, Any], key: str, what: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise StripeReplyError(f"{what}: {key} is not a string")
    return value


def _opt_text(item: Mapping[str, Any], key: str, what: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise StripeReplyError(f"{what}: {key} is not a string")
    return value


def _int(item: Mapping[str, Any], key: str, what: str) -> int:
    value = item.get(key)
    if type(value) is not int:  # bool is an int; a float amount would be a broken reply
        raise StripeReplyError(f"{what}: {key} is not an integer")
    return value


def _opt_int(item: Mapping[str, Any], key: str, what: str) -> int | None:
    return None if item.get(key) is None else _int(item, key, what)


def _time(item: Mapping[str, Any], key: str, what: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(_int(item, key, what), dt.UTC)
