"""The reconcile package's one exception tree.

    ReconcileError
    ├── ReconcileInputError           the caller asked for something wrong (CLI: exit 2)
    │   └── InvalidWindowError        since is not before until, or a time without a UTC offset
    ├── StripeApiError                Stripe could not be read (CLI: exit 1); never shows the API key
    │   ├── StripeUnavailable         connection failure, timeout or 5xx, after the library's own retries
    │   ├── StripeRateLimited         429 after our bounded retries (.retry_after_s, .library_retried)
    │   ├── StripeRejected            a 4xx refusal (.status, .code)
    │   │   └── StripeAuthenticationError  401/403: the key was refused or may not read this
    │   └── StripeReplyError          a reply we cannot use: wrong shape, a page loop, too many pages
    ├── LedgerChangedError            --fix met a key posted meanwhile with other content (.key, .detail)
    └── ChainHistoryError             chain reconciliation could not list an address's history (.address)

Errors of the Solana RPC are not translated here: `reconcile` never imports `indexer`, so the chain
source the indexer hands to `reconcile.chain` raises its own (`indexer.rpc.RpcError`), which pass
through unchanged to the caller (the CLI maps them to exit 1).

Errors of the `stripe` library are translated into the StripeApiError branch in one place,
`reconcile.stripe_source.translate_stripe_errors` (`classify_stripe_error` is the mapping, closed by
default). Ledger errors (`ledger_client.errors`) pass through unchanged: the ledger has its own tree.
"""

from __future__ import annotations


class ReconcileError(Exception):
    """Base of every error raised by `reconcile`."""


class ReconcileInputError(ReconcileError, ValueError):
    """The caller asked for something wrong: a bad window, a missing API key, a bad page size."""


class InvalidWindowError(ReconcileInputError):
    """The window is not a window: since is not before until, or a time carries no UTC offset."""


class StripeApiError(ReconcileError):
    """Stripe could not be read. `status` is the HTTP status when there was a reply."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


class StripeUnavailable(StripeApiError):
    """A connection failure, a timeout or a 5xx that the stripe library's own retries did not get past."""


class StripeRateLimited(StripeApiError):
    """HTTP 429 after the bounded retries.

    `retry_after_s`: the server's Retry-After in seconds (None when it sent none). `library_retried`:
    the reply carried `Stripe-Should-Retry` (true: the library already retried it; false: Stripe asked
    not to retry), so we did not retry it again.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None,
        library_retried: bool,
        status: int | None = 429,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.retry_after_s = retry_after_s
        self.library_retried = library_retried


class StripeRejected(StripeApiError):
    """Stripe refused the request (4xx): a bad parameter, an unknown object, an idempotency conflict."""

    def __init__(
        self, message: str, *, status: int | None, code: str | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.code = code


class StripeAuthenticationError(StripeRejected):
    """401 or 403: the API key was refused, or it may not read these objects."""


class StripeReplyError(StripeApiError):
    """A reply we cannot use: an object of the wrong shape, a list that never ends, a non-JSON body."""


class LedgerChangedError(ReconcileError):
    """While --fix posted, another writer changed what it was about to post (a key posted with other
    content, a debit reversed meanwhile). The batch in hand was not posted; run the reconciliation
    again and it will see the other writer's transactions. `key` names what clashed."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"the ledger changed during reconciliation: {detail}; that batch was not posted, run it again")
        self.key = key
        self.detail = detail


class ChainHistoryError(ReconcileError):
    """An address's signature history could not be listed over the window: more pages than the bound,
    or a node whose pages do not move down the history (it ignored `before`). `address` names it."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(f"{address}: {message}")
        self.address = address
