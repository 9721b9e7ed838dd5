"""The Stripe source through the real `stripe` library against the loopback fake (reconcile.testing).

Pagination, the window's `created` filter, expansion, decoding into records, the library's own retries
(5xx, Stripe-Should-Retry, dropped connections) with no second layer over them, the bounded retry of
plain 429s, and the one translation of the library's errors. Requests are counted on the fake.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from collections.abc import Iterator

import orjson
import pytest
import stripe
import structlog

from reconcile.errors import (
    ReconcileInputError,
    StripeApiError,
    StripeAuthenticationError,
    StripeRateLimited,
    StripeRejected,
    StripeReplyError,
    StripeUnavailable,
)
from reconcile.stripe_source import StripeApiSource, classify_stripe_error, translate_stripe_errors
from reconcile.testing import DEFAULT_API_KEY, FakeStripe, Fault
from tests.stripe_support import SINCE, UNTIL, at, source

SESSIONS = "/v1/checkout/sessions"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


def test_25_sessions_come_over_3_pages_newest_first(fake: FakeStripe) -> None:
    fake.max_page_size = 10  # the server pages by 10 whatever the client asks: 10 + 10 + 5
    made = [fake.add_session(created=at(i / 10), amount_total=1000 + i).session for i in range(25)]
    with source(fake) as src:
        seen = [s.id for s in src.sessions(SINCE, UNTIL)]
    assert seen == list(reversed(made))
    pages = [r for r in fake.requests if r.path == SESSIONS]
    assert len(pages) == 3
    assert [r.param("starting_after") for r in pages] == [None, made[15], made[5]]
    first = pages[0]
    assert first.param("limit") == "100"
    # [2025-03-01, 2025-03-02) as Stripe's whole seconds: 1740787200 .. 1740873600 (exclusive).
    assert (first.param("created[gte]"), first.param("created[lt]")) == ("1740787200", "1740873600")
    assert first.params("expand") == [
        "data.payment_intent.latest_charge.balance_transaction",
        "data.payment_intent.latest_charge.refunds",
    ]
    assert first.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"


def test_the_window_is_half_open_on_whole_seconds(fake: FakeStripe) -> None:
    on_start = fake.add_session(created=SINCE, amount_total=1000).session
    fake.add_session(created=SINCE - dt.timedelta(seconds=1), amount_total=1000)
    last = fake.add_session(created=UNTIL - dt.timedelta(seconds=1), amount_total=1000).session
    fake.add_session(created=UNTIL, amount_total=1000)
    with source(fake) as src:
        assert [s.id for s in src.sessions(SINCE, UNTIL)] == [last, on_start]
        # A window starting half a second into a second leaves that second out: ⌈since⌉.
        later = SINCE + dt.timedelta(microseconds=500_000)
        assert [s.id for s in src.sessions(later, UNTIL)] == [last]
    assert fake.requests[-1].param("created[gte]") == "1740787201"


def test_a_paid_session_is_decoded_with_its_charge_refunds_and_disputes(fake: FakeStripe) -> None:
    topup = fake.add_session(
        created=at(1), amount_total=11000, tax=1000, customer="agt_meta", customer_in="metadata", fee=349
    )
    fake.add_refund(topup.session, 3000, created=at(2))
    fake.add_refund(topup.session, 2000, status="canceled", created=at(3))
    fake.add_dispute(topup.session, status="won", funds_withdrawn=True, funds_reinstated=True, created=at(4))
    with source(fake) as src:
        [s] = list(src.sessions(SINCE, UNTIL))
    assert (s.id, s.created, s.mode, s.status, s.payment_status) == (
        topup.session,
        at(1),
        "payment",
        "complete",
        "paid",
    )
    assert (s.currency, s.amount_total, s.amount_tax) == ("usd", 11000, 1000)
    assert (s.customer_reference, s.metadata_account_id, s.customer) == (None, "agt_meta", "agt_meta")
    assert (s.payment_intent, s.payment_intent_status) == (topup.payment_intent, "succeeded")
    assert s.charge is not None and s.charge.balance_transaction is not None
    assert (s.charge.id, s.charge.amount, s.charge.disputed) == (topup.charge, 11000, True)
    txn = s.charge.balance_transaction
    assert (txn.id, txn.amount, txn.fee, txn.net, txn.currency) == (topup.balance_transaction, 11000, 349, 10651, "usd")
    assert [(r.amount, r.status, r.created) for r in s.refunds] == [
        (2000, "canceled", at(3)),
        (3000, "succeeded", at(2)),
    ]
    [d] = s.disputes
    assert (d.status, d.amount, d.withdrawn, d.reinstated) == ("won", 11000, 11000, 11000)
    # Disputes are listed only for the disputed charge: one extra request.
    assert [r.path for r in fake.requests] == [SESSIONS, "/v1/disputes"]
    assert fake.requests[1].param("payment_intent") == topup.payment_intent


def test_more_refunds_than_stripe_embeds_are_listed_page_by_page(fake: FakeStripe) -> None:
    topup = fake.add_session(created=at(1), amount_total=100000)
    made = [fake.add_refund(topup.session, 100, created=at(1 + i / 100)) for i in range(12)]
    with source(fake) as src:
        [s] = list(src.sessions(SINCE, UNTIL))
    assert sorted(r.id for r in s.refunds) == sorted(made)
    assert fake.count("/v1/refunds") == 1  # 12 > the 10 embedded: one list of up to 100
    assert fake.requests[-1].param("charge") == topup.charge


def test_an_unpaid_async_session_has_a_processing_intent_and_no_balance_transaction(fake: FakeStripe) -> None:
    pending = fake.add_session(created=at(1), amount_total=3000, payment_status="unpaid")
    expired = fake.add_session(created=at(2), amount_total=3000, payment_status="unpaid", status="expired")
    with source(fake) as src:
        by_id = {s.id: s for s in src.sessions(SINCE, UNTIL)}
        assert by_id[pending.session].payment_intent_status == "processing"
        charge = by_id[pending.session].charge
        assert charge is not None and charge.balance_transaction is None
        assert by_id[expired.session].payment_intent is None
        fake.async_payment_succeeded(pending.session, fee=117)
        after = {s.id: s for s in src.sessions(SINCE, UNTIL)}[pending.session]
    assert (after.payment_status, after.payment_intent_status) == ("paid", "succeeded")
    assert after.charge is not None and after.charge.balance_transaction is not None
    assert after.charge.balance_transaction.fee == 117


def test_one_session_by_id_or_none_when_stripe_does_not_know_it(fake: FakeStripe) -> None:
    topup = fake.add_session(created=at(1), amount_total=2500)
    with source(fake) as src:
        found = src.session(topup.session)
        assert found is not None and found.charge is not None and found.amount_total == 2500
        assert src.session("cs_test_unknown") is None
    assert fake.requests[-1].status == 404


# --- retries: the library's own, never a second layer; plain 429 ours, bounded ---


def test_a_500_is_retried_by_the_library(fake: FakeStripe) -> None:
    fake.add_session(created=at(1), amount_total=2500)
    fake.add_fault(Fault.server_error(500))
    with source(fake) as src:
        assert len(list(src.sessions(SINCE, UNTIL))) == 1
        assert src.requests_made == 1  # one call of ours ...
    assert [r.status for r in fake.requests] == [500, 200]  # ... two requests: the library retried


def test_5xx_beyond_the_librarys_retries_is_stripe_unavailable_with_no_retry_of_ours(fake: FakeStripe) -> None:
    fake.add_fault(Fault.server_error(503), times=10)
    with source(fake, max_network_retries=1) as src, pytest.raises(StripeUnavailable, match="503") as raised:
        list(src.sessions(SINCE, UNTIL))
    assert raised.value.status == 503
    assert fake.count(status=503) == 2  # the first try + max_network_retries=1, nothing more


def test_a_429_with_stripe_should_retry_is_the_librarys_to_retry_not_ours(fake: FakeStripe) -> None:
    fake.add_fault(Fault.rate_limited(should_retry=True), times=10)
    with source(fake, max_network_retries=1) as src, pytest.raises(StripeRateLimited) as raised:
        list(src.sessions(SINCE, UNTIL))
    assert raised.value.library_retried is True
    assert fake.count(status=429) == 2  # 1 + 1 library retry; our 5 attempts did not multiply it


def test_a_429_with_stripe_should_retry_false_is_not_retried(fake: FakeStripe) -> None:
    fake.add_fault(Fault.rate_limited(should_retry=False), times=10)
    with source(fake) as src, pytest.raises(StripeRateLimited):
        list(src.sessions(SINCE, UNTIL))
    assert fake.count(status=429) == 1


def test_plain_429s_are_retried_here_with_bounds(fake: FakeStripe) -> None:
    fake.add_session(created=at(1), amount_total=2500)
    fake.add_fault(Fault.rate_limited(), times=2)
    waits: list[float] = []
    with source(fake, sleep=waits.append, rate_limit_wait_s=0.25, rate_limit_max_wait_s=10) as src:
        assert len(list(src.sessions(SINCE, UNTIL))) == 1
    assert [r.status for r in fake.requests] == [429, 429, 200]  # the library did not retry them
    assert waits == [0.25, 0.5]  # 0.25 × 2^(attempt − 1)


def test_plain_429s_stop_after_the_attempts_and_honour_retry_after(fake: FakeStripe) -> None:
    fake.add_fault(Fault.rate_limited(retry_after="3"), times=10)
    waits: list[float] = []
    with (
        source(fake, sleep=waits.append, rate_limit_attempts=3, rate_limit_max_wait_s=10) as src,
        pytest.raises(StripeRateLimited) as raised,
    ):
        list(src.sessions(SINCE, UNTIL))
    assert fake.count(status=429) == 3
    assert waits == [3.0, 3.0]
    assert (raised.value.retry_after_s, raised.value.library_retried) == (3.0, False)


def test_a_dropped_connection_is_retried_by_the_library(fake: FakeStripe) -> None:
    fake.add_session(created=at(1), amount_total=2500)
    fake.add_fault(Fault.dropped())
    with source(fake) as src:
        assert len(list(src.sessions(SINCE, UNTIL))) == 1
    assert fake.count(SESSIONS) == 2


def test_nothing_listening_is_stripe_unavailable() -> None:
    with FakeStripe() as fake:
        url = fake.url
    with (
        StripeApiSource(api_key="sk_test_x", api_base=url, max_network_retries=0) as src,
        pytest.raises(StripeUnavailable, match="cannot reach Stripe"),
    ):
        list(src.sessions(SINCE, UNTIL))


# --- replies that cannot be used ---


def test_a_list_that_says_has_more_with_an_empty_page_is_refused(fake: FakeStripe) -> None:
    body = b'{"object": "list", "url": "/v1/checkout/sessions", "has_more": true, "data": []}'
    fake.add_fault(Fault.reply(200, body))
    with source(fake) as src, pytest.raises(StripeReplyError, match="empty page"):
        list(src.sessions(SINCE, UNTIL))


def test_a_page_count_beyond_the_bound_is_refused(fake: FakeStripe) -> None:
    fake.max_page_size = 1
    for i in range(3):
        fake.add_session(created=at(i), amount_total=1000)
    with source(fake, max_pages=2) as src, pytest.raises(StripeReplyError, match="more than 2 pages"):
        list(src.sessions(SINCE, UNTIL))


def test_a_reply_that_is_not_json_or_has_a_float_amount_is_refused(fake: FakeStripe) -> None:
    fake.add_fault(Fault.reply(200, b"<html>bad gateway</html>"))
    with source(fake) as src, pytest.raises(StripeReplyError):
        list(src.sessions(SINCE, UNTIL))
    topup = fake.add_session(created=at(1), amount_total=2500)
    page = fake.get(topup.session)
    page["amount_total"] = 25.0
    page["payment_intent"] = None
    fake.add_fault(Fault.reply(200, orjson.dumps({"object": "list", "has_more": False, "data": [page]})))
    with source(fake) as src, pytest.raises(StripeReplyError, match="amount_total is not an integer"):
        list(src.sessions(SINCE, UNTIL))


def test_bad_settings_are_refused_before_any_request() -> None:
    with pytest.raises(ReconcileInputError, match="API key"):
        StripeApiSource(api_key="", api_base="http://127.0.0.1:9")
    with pytest.raises(ReconcileInputError, match="page_size"):
        StripeApiSource(api_key="sk_test_x", api_base="http://127.0.0.1:9", page_size=101)


# --- errors: one translation, complete; the key never shows ---


def _stripe_error_classes() -> list[type[stripe.StripeError]]:
    found: list[type[stripe.StripeError]] = []
    pending: list[type[stripe.StripeError]] = [stripe.StripeError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: c.__name__)


@pytest.mark.parametrize("status", [None, 404, 429, 500])
@pytest.mark.parametrize("error_class", _stripe_error_classes(), ids=lambda c: c.__name__)
def test_every_error_of_the_library_becomes_one_of_ours(
    error_class: type[stripe.StripeError], status: int | None
) -> None:
    arguments: dict[str, object] = {}
    for name, parameter in inspect.signature(error_class).parameters.items():
        if parameter.default is inspect.Parameter.empty and parameter.kind is not parameter.VAR_KEYWORD:
            arguments[name] = "boom"
    if "http_status" in inspect.signature(error_class).parameters:
        arguments["http_status"] = status
    error = error_class(**arguments)  # type: ignore[arg-type]
    with pytest.raises(StripeApiError) as raised, translate_stripe_errors():
        raise error
    assert raised.value.__cause__ is error
    assert raised.value.status == error.http_status


@pytest.mark.parametrize(
    ("error", "ours"),
    [
        (stripe.APIConnectionError("down"), StripeUnavailable),
        (stripe.APIError("oops", http_status=500), StripeUnavailable),
        (stripe.APIError("Invalid response body from API", http_status=200), StripeReplyError),
        (stripe.RateLimitError("slow down", http_status=429), StripeRateLimited),
        (stripe.AuthenticationError("no key", http_status=401), StripeAuthenticationError),
        (stripe.PermissionError("restricted", http_status=403), StripeAuthenticationError),
        (stripe.InvalidRequestError("no such", "id", "resource_missing", http_status=404), StripeRejected),
        (stripe.IdempotencyError("reused", http_status=400), StripeRejected),
        (stripe.CardError("declined", "card", "card_declined", http_status=402), StripeRejected),
        (stripe.SignatureVerificationError("bad signature", "t=1"), StripeApiError),
    ],
)
def test_the_mapping_of_the_librarys_errors(error: stripe.StripeError, ours: type[StripeApiError]) -> None:
    assert type(classify_stripe_error(error)) is ours


def test_a_wrong_key_is_refused_and_never_shown(fake: FakeStripe, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk_test_wrong_51Hh3ZKc9HdY2mN0pQ"
    caplog.set_level(logging.DEBUG)
    with (
        structlog.testing.capture_logs() as logs,
        StripeApiSource(api_key=secret, api_base=fake.url) as src,
        pytest.raises(StripeAuthenticationError) as raised,
    ):
        list(src.sessions(SINCE, UNTIL))
    assert raised.value.status == 401
    assert fake.count(status=401) == 1  # a refused key is not retried
    everything = f"{raised.value} {raised.value.args} {logs} {caplog.text}"
    assert secret not in everything
    # The library's own message with the key in it is scrubbed too.
    leaked = stripe.AuthenticationError(f"Invalid API Key provided: {secret}", http_status=401)
    assert secret not in str(classify_stripe_error(leaked, secret))


def test_rate_limit_retries_are_logged_without_the_key(fake: FakeStripe) -> None:
    fake.add_session(created=at(1), amount_total=2500)
    fake.add_fault(Fault.rate_limited())
    with structlog.testing.capture_logs() as logs, source(fake) as src:
        list(src.sessions(SINCE, UNTIL))
    assert [entry["event"] for entry in logs] == ["stripe_rate_limited"]
    assert logs[0]["attempt"] == 1
    assert DEFAULT_API_KEY not in str(logs)
