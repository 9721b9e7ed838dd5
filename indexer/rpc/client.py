"""`SolanaRpc`: an async Solana JSON-RPC client over one `httpx.AsyncClient`. I/O only.

Our own thin client rather than solana-py's `AsyncClient`: the indexer needs the raw bytes of each
`getTransaction` result (handed untouched to `indexer.parser.parse_transaction`, whatever encoding the
node answered in), JSON-RPC batches with per-item retry, and one error tree with the JSON-RPC code
and HTTP status on every error; solana-py parses every reply into solders objects (slower, and it
rejects replies in an encoding other than the one asked for) and raises its own exceptions. Replies
are decoded with msgspec into small structs; a transaction's `result` stays `msgspec.Raw`.

Every call is retried with tenacity: transient errors only, at most `max_retries` retries and
`max_retry_time_s` in all (a wait that would overrun that budget is not started), exponential backoff
with jitter, and never less than the server's Retry-After. Errors are translated in
`indexer.rpc.errors` (the tree is drawn there).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import httpx
import msgspec
import structlog
import tenacity

from indexer.rpc.accounts import AccountLayoutError, MintInfo, decode_mint, decode_token_account
from indexer.rpc.errors import (
    InvalidResponse,
    NotAMint,
    PermanentRpcError,
    RateLimited,
    RpcError,
    TransientRpcError,
    error_for_code,
    error_for_http_status,
    translate_httpx_errors,
)
from pricing.assets import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

_log = structlog.get_logger("indexer.rpc")

MAX_SIGNATURES_PAGE: Final = 1000  # getSignaturesForAddress limit
MAX_STATUS_SIGNATURES: Final = 256  # getSignatureStatuses limit
COMMITMENTS: Final = frozenset({"processed", "confirmed", "finalized"})

T = TypeVar("T")


# --- what the adapter returns ---


class SignatureInfo(msgspec.Struct, frozen=True, rename="camel"):
    """One entry of getSignaturesForAddress. `memo` is the node's text, e.g. "[8] transfer"
    (`indexer.parser.split_memo` strips the prefixes); `err` is the node's error object or None."""

    signature: str
    slot: int
    block_time: int | None = None
    err: Any = None
    memo: str | None = None
    confirmation_status: str | None = None


class SignatureStatus(msgspec.Struct, frozen=True, rename="camel"):
    """One entry of getSignatureStatuses. `confirmations` is None once the slot is rooted (finalized)."""

    slot: int
    confirmations: int | None = None
    err: Any = None
    confirmation_status: str | None = None


class TokenAccount(msgspec.Struct, frozen=True):
    """A token account from getTokenAccountsByOwner. `decimals` is None only when the node answered
    in binary instead of jsonParsed (the account itself does not hold the mint's decimals)."""

    address: str
    mint: str
    owner: str
    program_id: str
    amount_raw: int
    decimals: int | None


class AccountInfo(msgspec.Struct, frozen=True):
    """An account from getAccountInfo: owning program, lamports, raw data, and the context slot."""

    address: str
    owner: str
    lamports: int
    data: bytes
    executable: bool
    context_slot: int


# --- reply shapes (field names are the RPC's) ---


class _ErrorObject(msgspec.Struct):
    code: int | None = None
    message: str | None = None


class _Reply(msgspec.Struct):
    """One JSON-RPC reply. `result` stays raw: each method decodes its own shape."""

    jsonrpc: str | None = None
    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: _ErrorObject | None = None


class _Context(msgspec.Struct):
    slot: int


class _IntWithContext(msgspec.Struct):
    context: _Context
    value: int


class _UiAmount(msgspec.Struct):
    amount: str
    decimals: int


class _UiAmountWithContext(msgspec.Struct):
    context: _Context
    value: _UiAmount


class _StatusesWithContext(msgspec.Struct):
    context: _Context
    value: list[SignatureStatus | None]


class _Account(msgspec.Struct):
    owner: str
    lamports: int
    data: Any
    executable: bool = False


class _AccountWithContext(msgspec.Struct):
    context: _Context
    value: _Account | None


class _KeyedAccount(msgspec.Struct):
    pubkey: str
    account: _Account


class _KeyedAccountsWithContext(msgspec.Struct):
    context: _Context
    value: list[_KeyedAccount]


_REPLY: Final = msgspec.json.Decoder(_Reply)
_BATCH: Final = msgspec.json.Decoder(list[_Reply])
_SIGNATURES: Final = msgspec.json.Decoder(list[SignatureInfo])
_INT: Final = msgspec.json.Decoder(int)
_INT_CONTEXT: Final = msgspec.json.Decoder(_IntWithContext)
_UI_AMOUNT_CONTEXT: Final = msgspec.json.Decoder(_UiAmountWithContext)
_STATUSES: Final = msgspec.json.Decoder(_StatusesWithContext)
_ACCOUNT: Final = msgspec.json.Decoder(_AccountWithContext)
_KEYED_ACCOUNTS: Final = msgspec.json.Decoder(_KeyedAccountsWithContext)
_ENCODER: Final = msgspec.json.Encoder()


class _BatchItemFailed(Exception):
    """Raised inside one batch attempt: some items failed; `error` is the one to retry or raise."""


class SolanaRpc:
    """An async Solana JSON-RPC client; use as `async with SolanaRpc(url, ...) as rpc:`.

    `batch_size` bounds the items in one JSON-RPC batch; `max_concurrent_requests` bounds the
    requests in flight (and the connection pool). `backoff_initial_s`/`backoff_max_s` shape the
    exponential backoff; a Retry-After longer than the backoff wins.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        max_retry_time_s: float = 120.0,
        batch_size: int = 100,
        max_concurrent_requests: int = 4,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 20.0,
        headers: dict[str, str] | None = None,
        on_error: Callable[[RpcError], None] | None = None,
    ) -> None:
        if timeout_s <= 0 or max_retry_time_s <= 0:
            raise ValueError("timeout_s and max_retry_time_s must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must be zero or more")
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        if not 1 <= max_concurrent_requests <= 64:
            raise ValueError("max_concurrent_requests must be between 1 and 64")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the RPC URL must be http(s)://host…")
        self.url = url
        # For logs: scheme, host and port only; a path or query may hold an API key.
        self.endpoint = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_retry_time_s = max_retry_time_s
        self.batch_size = batch_size
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._on_error = on_error  # every failure, retried or final (the daemon counts them by kind)
        self._concurrency = asyncio.Semaphore(max_concurrent_requests)
        self._ids = itertools.count(1)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_concurrent_requests, max_keepalive_connections=max_concurrent_requests
            ),
            headers={"Content-Type": "application/json", **(headers or {})},
            follow_redirects=False,
            trust_env=False,  # a loopback replay server must not be sent through a proxy from the env
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- methods ---

    async def get_signatures_for_address(
        self,
        address: str,
        *,
        before: str | None = None,
        until: str | None = None,
        limit: int = MAX_SIGNATURES_PAGE,
        commitment: str = "finalized",
        min_context_slot: int | None = None,
    ) -> list[SignatureInfo]:
        """One page, newest first; `before` and `until` are exclusive. At most 1,000 entries."""
        if not 1 <= limit <= MAX_SIGNATURES_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_SIGNATURES_PAGE}")
        config: dict[str, Any] = {"limit": limit, "commitment": _commitment(commitment)}
        if before is not None:
            config["before"] = before
        if until is not None:
            config["until"] = until
        if min_context_slot is not None:
            config["minContextSlot"] = min_context_slot
        raw = await self._call("getSignaturesForAddress", [address, config])
        return _decode(_SIGNATURES, raw, "getSignaturesForAddress")

    async def get_transaction(self, signature: str, *, commitment: str = "finalized") -> bytes | None:
        """The raw JSON bytes of the node's `result` (any encoding), or None when it has no such transaction."""
        raw = await self._call("getTransaction", [signature, _transaction_config(commitment)])
        return _raw_or_none(raw)

    async def get_transactions(self, signatures: Sequence[str], *, commitment: str = "finalized") -> list[bytes | None]:
        """`get_transaction` for many signatures, in JSON-RPC batches of at most `batch_size`; results
        in request order. A batch whose items partly fail retries only the failed items."""
        config = _transaction_config(commitment)
        chunks = [signatures[i : i + self.batch_size] for i in range(0, len(signatures), self.batch_size)]
        parts = await self._gather(
            [self._batch("getTransaction", [[signature, config] for signature in chunk]) for chunk in chunks]
        )
        return [_raw_or_none(raw) for part in parts for raw in part]

    async def get_signature_statuses(
        self, signatures: Sequence[str], *, search_transaction_history: bool = True
    ) -> list[SignatureStatus | None]:
        """Statuses in request order (None: unknown to the node), in requests of at most 256 signatures."""
        config = {"searchTransactionHistory": search_transaction_history}
        chunks = [
            list(signatures[i : i + MAX_STATUS_SIGNATURES]) for i in range(0, len(signatures), MAX_STATUS_SIGNATURES)
        ]

        async def one(chunk: list[str]) -> list[SignatureStatus | None]:
            raw = await self._call("getSignatureStatuses", [chunk, config])
            reply = _decode(_STATUSES, raw, "getSignatureStatuses")
            if len(reply.value) != len(chunk):
                raise InvalidResponse(
                    f"{len(reply.value)} statuses for {len(chunk)} signatures", method="getSignatureStatuses"
                )
            return reply.value

        parts = await self._gather([one(chunk) for chunk in chunks])
        return [status for part in parts for status in part]

    async def get_slot(self, commitment: str = "finalized") -> int:
        raw = await self._call("getSlot", [{"commitment": _commitment(commitment)}])
        return _decode(_INT, raw, "getSlot")

    async def get_block_height(self, commitment: str = "finalized") -> int:
        raw = await self._call("getBlockHeight", [{"commitment": _commitment(commitment)}])
        return _decode(_INT, raw, "getBlockHeight")

    async def get_balance(self, address: str, commitment: str = "finalized") -> int:
        """Lamports of an address."""
        lamports, _slot = await self.get_balance_with_slot(address, commitment)
        return lamports

    async def get_balance_with_slot(self, address: str, commitment: str = "finalized") -> tuple[int, int]:
        """(lamports, the context slot the node answered at)."""
        raw = await self._call("getBalance", [address, {"commitment": _commitment(commitment)}])
        reply = _decode(_INT_CONTEXT, raw, "getBalance")
        return reply.value, reply.context.slot

    async def get_token_account_balance(self, address: str, commitment: str = "finalized") -> tuple[int, int]:
        """(amount_raw, decimals) of a token account."""
        raw = await self._call("getTokenAccountBalance", [address, {"commitment": _commitment(commitment)}])
        reply = _decode(_UI_AMOUNT_CONTEXT, raw, "getTokenAccountBalance")
        return _whole_number(reply.value.amount, "getTokenAccountBalance"), reply.value.decimals

    async def get_account_info(self, address: str, commitment: str = "finalized") -> AccountInfo | None:
        """The account (data as bytes), or None when it does not exist."""
        raw = await self._call(
            "getAccountInfo", [address, {"encoding": "base64", "commitment": _commitment(commitment)}]
        )
        reply = _decode(_ACCOUNT, raw, "getAccountInfo")
        if reply.value is None:
            return None
        account = reply.value
        return AccountInfo(
            address,
            account.owner,
            account.lamports,
            _binary_data(account.data, "getAccountInfo"),
            account.executable,
            reply.context.slot,
        )

    async def check_mint(self, mint: str, commitment: str = "finalized") -> MintInfo:
        """Decimals, owning program (Token or Token-2022), supply and authorities of a mint, read from
        its account. NotAMint when the account is missing or is not an initialised mint."""
        account = await self.get_account_info(mint, commitment)
        if account is None:
            raise NotAMint(f"mint {mint}: no such account", method="getAccountInfo")
        try:
            return decode_mint(account.data, account.owner)
        except AccountLayoutError as exc:
            raise NotAMint(f"mint {mint}: {exc}", method="getAccountInfo") from exc

    async def get_token_accounts_by_owner(
        self, owner: str, program_id: str = TOKEN_PROGRAM_ID, commitment: str = "finalized"
    ) -> list[TokenAccount]:
        """The owner's token accounts of one program (call once per program: Token and Token-2022)."""
        if program_id not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            raise ValueError(f"not a token program: {program_id}")
        raw = await self._call(
            "getTokenAccountsByOwner",
            [owner, {"programId": program_id}, {"encoding": "jsonParsed", "commitment": _commitment(commitment)}],
        )
        reply = _decode(_KEYED_ACCOUNTS, raw, "getTokenAccountsByOwner")
        return [_token_account(item, owner) for item in reply.value]

    async def get_all_token_accounts(self, owner: str, commitment: str = "finalized") -> list[TokenAccount]:
        """The owner's token accounts of both programs: Token, then Token-2022."""
        classic, token_2022 = await self._gather(
            [
                self.get_token_accounts_by_owner(owner, TOKEN_PROGRAM_ID, commitment),
                self.get_token_accounts_by_owner(owner, TOKEN_2022_PROGRAM_ID, commitment),
            ]
        )
        return classic + token_2022

    # --- transport ---

    async def _call(self, method: str, params: list[Any]) -> msgspec.Raw:
        """One request, retried; the raw `result`."""

        async def attempt() -> msgspec.Raw:
            request_id = next(self._ids)
            body = _ENCODER.encode({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            content = await self._post(method, body)
            reply = _decode(_REPLY, content, method)
            if reply.error is not None:
                raise error_for_code(reply.error.code, reply.error.message or "", method=method)
            return reply.result

        return await self._retrying(method, attempt)

    async def _batch(self, method: str, params_list: list[list[Any]]) -> list[msgspec.Raw]:
        """One JSON-RPC batch of `method` calls, retried; on a partial failure only the failed items
        are sent again. Raw results in the order of `params_list`."""
        results: list[msgspec.Raw | None] = [None] * len(params_list)
        pending = list(range(len(params_list)))

        async def attempt() -> None:
            nonlocal pending
            ids = {next(self._ids): position for position in pending}
            body = _ENCODER.encode(
                [
                    {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params_list[position]}
                    for request_id, position in ids.items()
                ]
            )
            content = await self._post(method, body)
            try:
                replies = _BATCH.decode(content)
            except msgspec.DecodeError:
                # A node may answer a whole batch with one error object (e.g. a 429 code in HTTP 200).
                single = _decode(_REPLY, content, method)
                if single.error is not None:
                    raise error_for_code(single.error.code, single.error.message or "", method=method) from None
                raise InvalidResponse("a batch request got a single, non-error reply", method=method) from None
            failed: list[int] = []
            first_error: RpcError | None = None
            seen: set[int] = set()
            for reply in replies:
                position = ids.get(reply.id) if isinstance(reply.id, int) else None
                if position is None or position in seen:
                    raise InvalidResponse(f"batch reply with unknown or repeated id {reply.id!r}", method=method)
                seen.add(position)
                if reply.error is None:
                    results[position] = reply.result
                    continue
                error = error_for_code(reply.error.code, reply.error.message or "", method=method)
                if isinstance(error, PermanentRpcError):
                    raise error
                failed.append(position)
                first_error = first_error or error
            if len(seen) != len(ids):
                raise InvalidResponse(f"{len(seen)} replies to a batch of {len(ids)}", method=method)
            pending = failed
            if first_error is not None:
                _log.info("rpc_batch_partial", method=method, failed=len(failed), size=len(ids), kind=first_error.kind)
                raise first_error

        await self._retrying(method, attempt)
        return [raw if raw is not None else msgspec.Raw(b"null") for raw in results]

    async def _post(self, method: str, body: bytes) -> bytes:
        """POST one request; the body of a 200 reply, or our error for anything else."""
        async with self._concurrency:
            with translate_httpx_errors(method):
                response = await self._client.post(self.url, content=body)
        if response.status_code == 200:
            return response.content
        code, message = _error_in_body(response.content)
        raise error_for_http_status(
            response.status_code,
            code=code,
            message=message,
            retry_after=response.headers.get("Retry-After"),
            method=method,
        )

    async def _retrying(self, method: str, attempt: Callable[[], Awaitable[T]]) -> T:
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(TransientRpcError),
            stop=tenacity.stop_after_attempt(self.max_retries + 1) | tenacity.stop_before_delay(self.max_retry_time_s),
            wait=_RetryAfterWait(
                tenacity.wait_exponential_jitter(
                    multiplier=self.backoff_initial_s, max=self.backoff_max_s, jitter=self.backoff_initial_s
                )
            ),
            before_sleep=lambda state: self._retried(method, state),
            reraise=True,
        )
        try:
            return await retrying(attempt)
        except RpcError as exc:
            if self._on_error is not None:
                self._on_error(exc)
            raise

    def _retried(self, method: str, state: tenacity.RetryCallState) -> None:
        _log_retry(method, state)
        error = state.outcome.exception() if state.outcome is not None else None
        if self._on_error is not None and isinstance(error, RpcError):
            self._on_error(error)

    async def _gather(self, calls: Iterable[Awaitable[T]]) -> list[T]:
        """Run calls concurrently (bounded by the request semaphore); results in order. The first
        failure cancels the others and is raised."""
        tasks = [asyncio.ensure_future(call) for call in calls]
        if not tasks:
            return []
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                if task in done and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]  # checked not None
            return [task.result() for task in tasks]
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class _RetryAfterWait(tenacity.wait.wait_base):
    """The backoff, but never less than the Retry-After of a RateLimited error."""

    def __init__(self, backoff: tenacity.wait.wait_base) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        wait_s = self.backoff(retry_state)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimited) and error.retry_after_s is not None:
            wait_s = max(wait_s, error.retry_after_s)
        return wait_s


def _log_retry(method: str, state: tenacity.RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    _log.warning(
        "rpc_retry",
        method=method,
        attempt=state.attempt_number,
        wait_s=round(state.upcoming_sleep, 3),
        kind=type(error).__name__ if error is not None else None,
        code=getattr(error, "code", None),
        http_status=getattr(error, "http_status", None),
    )


# --- helpers ---


def _commitment(commitment: str) -> str:
    if commitment not in COMMITMENTS:
        raise ValueError(f"commitment must be one of {', '.join(sorted(COMMITMENTS))}")
    return commitment


def _transaction_config(commitment: str) -> dict[str, Any]:
    if commitment not in ("confirmed", "finalized"):
        raise ValueError("getTransaction supports the confirmed and finalized commitments only")
    return {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0, "commitment": commitment}


def _decode(decoder: msgspec.json.Decoder[T], data: bytes | msgspec.Raw, method: str) -> T:
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError too
        raise InvalidResponse(f"unexpected reply: {exc}", method=method) from exc


def _raw_or_none(raw: msgspec.Raw) -> bytes | None:
    data = bytes(raw)
    return None if data == b"null" else data


def _error_in_body(content: bytes) -> tuple[int | None, str | None]:
    """The code and message of a JSON-RPC error in a non-200 body, when there is one."""
    try:
        reply = _REPLY.decode(content)
    except msgspec.DecodeError:
        return None, None
    if reply.error is None:
        return None, None
    return reply.error.code, reply.error.message


def _whole_number(text: str, method: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InvalidResponse(f"amount is not a whole number: {text[:40]!r}", method=method)
    return int(text)


def _binary_data(data: Any, method: str) -> bytes:
    """Account data from `["<base64>", "base64"]` (the encoding asked for)."""
    if isinstance(data, list) and len(data) == 2 and data[1] == "base64" and isinstance(data[0], str):
        try:
            return base64.b64decode(data[0], validate=True)
        except binascii.Error as exc:
            raise InvalidResponse(f"account data is not base64: {exc}", method=method) from exc
    raise InvalidResponse("account data is not [data, 'base64']", method=method)


def _token_account(item: _KeyedAccount, owner: str) -> TokenAccount:
    method = "getTokenAccountsByOwner"
    account = item.account
    data = account.data
    if isinstance(data, dict):
        try:
            info = data["parsed"]["info"]
            amount = info["tokenAmount"]
            return TokenAccount(
                item.pubkey,
                str(info["mint"]),
                str(info["owner"]),
                account.owner,
                _whole_number(str(amount["amount"]), method),
                int(amount["decimals"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidResponse(f"token account {item.pubkey}: unexpected parsed data: {exc}", method=method) from exc
    # The node could not parse the account and fell back to binary: read the layout ourselves.
    try:
        mint, account_owner, amount_raw = decode_token_account(_binary_data(data, method))
    except AccountLayoutError as exc:
        raise InvalidResponse(f"token account {item.pubkey}: {exc}", method=method) from exc
    if account_owner != owner:
        raise InvalidResponse(f"token account {item.pubkey} belongs to {account_owner}, not {owner}", method=method)
    return TokenAccount(item.pubkey, mint, account_owner, account.owner, amount_raw, None)
