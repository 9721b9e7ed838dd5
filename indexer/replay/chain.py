"""A model of a Solana chain built from recorded `getTransaction` replies, for the loopback replay server.

Each transaction keeps the reply exactly as recorded (any encoding: jsonParsed, json, base64) and
what the server needs to answer other methods: its account keys (static + loaded), slot, block time,
position in its slot, error, memo text as the node formats it (`[len] text; …`, top-level memo
instructions only, as agave does), log messages, lamports and token balances after it, and its
commitment (`confirmed`, `finalized`, or `dropped`).

History of an address = every transaction whose keys contain it, newest first by slot, then by
position in the slot (later first). Balances of an account are the ones after the newest visible
transaction that touches it. The model has no skipped slots.

Thread safety: every method takes the chain's lock; listeners (the websocket server) are called
after the lock is released, in the caller's thread, with events describing what changed.

Errors:
    ReplayError
      └── ReplayDataError   a reply is unusable (the message names the file or says why)
"""

from __future__ import annotations

import base64
import binascii
import bisect
import dataclasses
import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import based58
import msgspec
import orjson

from indexer import wire
from indexer.instructions import MEMO_PROGRAM_IDS, SYSTEM_PROGRAM_ID
from indexer.rpc.accounts import encode_mint, encode_token_account
from pricing.assets import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

CONFIRMED: Final = "confirmed"
FINALIZED: Final = "finalized"
DROPPED: Final = "dropped"
Commitment = Literal["processed", "confirmed", "finalized"]
TOKEN_ACCOUNT_RENT_LAMPORTS: Final = 2_039_280  # rent-exempt minimum of a 165-byte account
MINT_RENT_LAMPORTS: Final = 1_461_600  # rent-exempt minimum of an 82-byte account
_MAX_FOLDER_FILES: Final = 100_000


class ReplayError(Exception):
    """Base of the replay chain's errors."""


class ReplayDataError(ReplayError):
    """A recorded reply cannot be used (not a transaction, no slot, a duplicate signature, …)."""


@dataclasses.dataclass(frozen=True, slots=True)
class TokenBalance:
    """A token account's state after a transaction."""

    account: str
    mint: str
    owner: str | None  # None in replies recorded before owners were reported
    program_id: str
    amount_raw: int
    decimals: int
    closed: bool  # in the pre balances only: closed by this transaction


@dataclasses.dataclass(slots=True)
class ChainTransaction:
    """One transaction on the model chain. `reply` is the bare `result` served by getTransaction."""

    signature: str
    slot: int
    block_time: int | None
    position: int  # order in its slot: 0 first
    reply: bytes
    keys: tuple[str, ...]
    err: Any  # the node's error value, None when it succeeded
    memo: str | None
    logs: tuple[str, ...] | None
    version: int | None  # 0 for v0, None for legacy
    lamports: dict[str, int]  # post balances by account
    token_balances: dict[str, TokenBalance]  # by token account
    status: str  # CONFIRMED, FINALIZED or DROPPED
    encoding: str  # "jsonParsed", "json" or "base64", as recorded

    @property
    def order(self) -> tuple[int, int]:
        return (self.slot, self.position)


@dataclasses.dataclass(frozen=True, slots=True)
class AccountState:
    """An account as getAccountInfo reports it."""

    address: str
    owner: str
    lamports: int
    data: bytes
    executable: bool = False
    # Parsed form for jsonParsed replies (mints and token accounts); None: served as base64.
    parsed: Mapping[str, Any] | None = None
    space: int | None = None


# --- events for listeners (the websocket server) ---


@dataclasses.dataclass(frozen=True, slots=True)
class TransactionEvent:
    """A transaction reached `commitment` (CONFIRMED or FINALIZED)."""

    transaction: ChainTransaction
    commitment: str


@dataclasses.dataclass(frozen=True, slots=True)
class SlotEvent:
    slot: int
    parent: int
    root: int


Event = TransactionEvent | SlotEvent
Listener = Callable[[Event], None]


# --- decoding recorded replies ---


class _UiTokenAmount(msgspec.Struct):
    amount: str
    decimals: int


class _TokenBalanceIn(msgspec.Struct):
    accountIndex: int
    mint: str
    uiTokenAmount: _UiTokenAmount
    owner: str | None = None
    programId: str | None = None


class _LoadedAddresses(msgspec.Struct):
    writable: list[str] = []
    readonly: list[str] = []


class _MetaIn(msgspec.Struct):
    preBalances: list[int]
    postBalances: list[int]
    err: Any = None
    preTokenBalances: list[_TokenBalanceIn] | None = None
    postTokenBalances: list[_TokenBalanceIn] | None = None
    loadedAddresses: _LoadedAddresses | None = None
    logMessages: list[str] | None = None


class _ParsedKey(msgspec.Struct):
    pubkey: str


class _InstructionIn(msgspec.Struct):
    programIdIndex: int = -1
    programId: str | None = None
    data: str | None = None
    parsed: Any = None


class _MessageIn(msgspec.Struct):
    accountKeys: list[str | _ParsedKey]
    instructions: list[_InstructionIn] = []


class _TransactionIn(msgspec.Struct):
    signatures: list[str]
    message: _MessageIn


class _ResultIn(msgspec.Struct):
    meta: _MetaIn | None
    transaction: _TransactionIn | list[str]
    slot: int | None = None
    blockTime: int | None = None
    version: int | str | None = None


class _Envelope(msgspec.Struct):
    result: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    error: Any = None


_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_RESULT: Final = msgspec.json.Decoder(_ResultIn)


def bare_result(reply: bytes | str | Mapping[str, Any]) -> bytes:
    """The bare `result` bytes of a recorded reply (a whole JSON-RPC reply or already bare), unchanged."""
    data = orjson.dumps(reply) if isinstance(reply, Mapping) else reply.encode() if isinstance(reply, str) else reply
    try:
        envelope = _ENVELOPE.decode(data)
    except msgspec.DecodeError as exc:
        raise ReplayDataError(f"not a JSON object: {exc}") from None
    if envelope.error is not None:
        raise ReplayDataError("the reply is a JSON-RPC error")
    if isinstance(envelope.result, msgspec.Raw):
        result = bytes(envelope.result)
        if result == b"null":
            raise ReplayDataError("the reply's result is null")
        return result
    return data.strip()


def _decode(result: bytes) -> _ResultIn:
    try:
        return _RESULT.decode(result)
    except msgspec.DecodeError as exc:
        raise ReplayDataError(f"not a getTransaction result: {exc}") from None


def _describe(result: bytes, decoded: _ResultIn) -> tuple[str, list[str], list[tuple[str, bytes]], int | None, str]:
    """(signature, all account keys, top-level (program, data) pairs, version, encoding)."""
    meta = decoded.meta
    loaded = meta.loadedAddresses if meta is not None else None
    loaded_keys = [*loaded.writable, *loaded.readonly] if loaded is not None else []
    transaction = decoded.transaction
    if isinstance(transaction, list):
        if len(transaction) != 2 or transaction[1] != "base64":
            raise ReplayDataError('transaction is a list but not ["<data>", "base64"]')
        try:
            raw = base64.b64decode(transaction[0], validate=True)
            parsed_wire = wire.decode_transaction(raw)
        except (binascii.Error, wire.WireFormatError) as exc:
            raise ReplayDataError(f"base64 transaction does not decode: {exc}") from None
        if not parsed_wire.signatures:
            raise ReplayDataError("transaction has no signature")
        keys = [based58.b58encode(key).decode("ascii") for key in parsed_wire.keys] + loaded_keys
        instructions = [
            (keys[item.program_id_index] if item.program_id_index < len(keys) else "", item.data)
            for item in parsed_wire.instructions
        ]
        version = 0 if _wire_version(raw) == 0 else None
        signature = based58.b58encode(parsed_wire.signatures[0]).decode("ascii")
        return signature, keys, instructions, version, "base64"
    if not transaction.signatures:
        raise ReplayDataError("transaction has no signature")
    account_keys = transaction.message.accountKeys
    parsed = bool(account_keys) and isinstance(account_keys[0], _ParsedKey)
    if parsed:
        keys = [key.pubkey if isinstance(key, _ParsedKey) else key for key in account_keys]
    else:
        keys = [key for key in account_keys if isinstance(key, str)] + loaded_keys
    instructions = []
    for item in transaction.message.instructions:
        program = item.programId
        if program is None:
            program = keys[item.programIdIndex] if 0 <= item.programIdIndex < len(keys) else ""
        if program not in MEMO_PROGRAM_IDS:
            continue
        if isinstance(item.parsed, str):
            instructions.append((program, item.parsed.encode("utf-8")))
        elif item.data is not None:
            try:
                instructions.append((program, bytes(based58.b58decode(item.data.encode("ascii")))))
            except ValueError:
                instructions.append((program, b""))
    version = decoded.version if isinstance(decoded.version, int) else None
    return transaction.signatures[0], keys, instructions, version, "jsonParsed" if parsed else "json"


def _wire_version(raw: bytes) -> int | None:
    count = raw[0]  # compact-u16; a transaction has far fewer than 128 signatures
    offset = 1 + 64 * count
    if offset < len(raw) and raw[offset] & 0x80:
        return raw[offset] & 0x7F
    return None


def format_memos(instructions: Iterable[tuple[str, bytes]]) -> str | None:
    """The node's memo field: `[<bytes>] <text>` per top-level memo instruction, joined by "; "."""
    memos = [
        f"[{len(data)}] {data.decode('utf-8', errors='replace')}"
        for program, data in instructions
        if program in MEMO_PROGRAM_IDS
    ]
    return "; ".join(memos) if memos else None


def _token_balances(meta: _MetaIn, keys: list[str], mint_programs: Mapping[str, str]) -> dict[str, TokenBalance]:
    balances: dict[str, TokenBalance] = {}
    post_accounts: set[int] = set()
    for entry in meta.postTokenBalances or ():
        post_accounts.add(entry.accountIndex)
    for entries, closed_if_absent in ((meta.preTokenBalances or (), True), (meta.postTokenBalances or (), False)):
        for entry in entries:
            if not 0 <= entry.accountIndex < len(keys):
                raise ReplayDataError(f"token balance names account index {entry.accountIndex}")
            if closed_if_absent and entry.accountIndex in post_accounts:
                continue  # the post entry (below) wins
            amount = entry.uiTokenAmount.amount
            if not (amount.isascii() and amount.isdigit()):
                raise ReplayDataError(f"token amount is not a whole number: {amount[:40]!r}")
            account = keys[entry.accountIndex]
            program = entry.programId or mint_programs.get(entry.mint) or TOKEN_PROGRAM_ID
            balances[account] = TokenBalance(
                account,
                entry.mint,
                entry.owner,
                program,
                0 if closed_if_absent else int(amount),
                entry.uiTokenAmount.decimals,
                closed_if_absent,
            )
    return balances


def _patched_times(result: bytes, slot: int | None, block_time: int | None) -> bytes:
    """The result with slot / blockTime set (re-encoded: only for replies recorded without them)."""
    document = orjson.loads(result)
    if slot is not None:
        document["slot"] = slot
    if block_time is not None:
        document["blockTime"] = block_time
    return orjson.dumps(document)


def fresh_signature(seed: str, number: int) -> str:
    """A valid-looking, unique signature: base58 of 64 bytes derived from (seed, number)."""
    return based58.b58encode(hashlib.sha512(f"{seed}:{number}".encode()).digest()).decode("ascii")


def _with_signature(template: ChainTransaction, signature: str, slot: int, block_time: int | None) -> bytes:
    """The template's reply with a new signature, slot and block time (base64 bytes patched in place)."""
    document = orjson.loads(template.reply)
    transaction = document["transaction"]
    if template.encoding == "base64":
        raw = bytearray(base64.b64decode(transaction[0]))
        raw[1:65] = based58.b58decode(signature.encode("ascii"))  # after the 1-byte signature count
        transaction[0] = base64.b64encode(bytes(raw)).decode("ascii")
    else:
        transaction["signatures"][0] = signature
    document["slot"] = slot
    document["blockTime"] = block_time
    return orjson.dumps(document)


class ReplayChain:
    """The model chain. Build it from recorded replies, then serve it with `ReplayServer`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._transactions: dict[str, ChainTransaction] = {}
        self._by_address: dict[str, tuple[list[tuple[int, int]], list[ChainTransaction]]] = {}
        self._slot_counts: dict[int, int] = {}
        self._accounts: dict[str, AccountState] = {}
        self._mint_programs: dict[str, str] = {}
        self._mint_decimals: dict[str, int] = {}
        self._tip_slot = 0
        self._finalized_slot = 0
        self._listeners: list[Listener] = []

    # --- building ---

    @classmethod
    def from_folder(
        cls, folder: str | Path, *, commitment: str = FINALIZED, skip_unusable: bool = False
    ) -> ReplayChain:
        """A chain of every `*.json` getTransaction reply in a folder (a reply without slot and block
        time is unusable: add it with `add(..., slot=, block_time=)`). With `skip_unusable`, files that
        are not usable transactions are skipped; otherwise the first raises ReplayDataError naming it."""
        chain = cls()
        paths = sorted(Path(folder).glob("*.json"))[:_MAX_FOLDER_FILES]
        loaded: list[tuple[int, str, bytes]] = []
        for path in paths:
            try:
                result = bare_result(path.read_bytes())
                decoded = _decode(result)
                if decoded.slot is None or decoded.blockTime is None:
                    raise ReplayDataError("no slot or blockTime: add it with explicit slot= and block_time=")
            except (ReplayDataError, OSError) as exc:
                if skip_unusable:
                    continue
                raise ReplayDataError(f"{path.name}: {exc}") from None
            loaded.append((decoded.slot, path.name, result))
        for _slot, name, result in sorted(loaded):
            try:
                chain.add(result, commitment=commitment)
            except ReplayDataError as exc:
                if not skip_unusable:
                    raise ReplayDataError(f"{name}: {exc}") from None
        return chain

    @classmethod
    def from_replies(
        cls, replies: Iterable[bytes | str | Mapping[str, Any]], *, commitment: str = FINALIZED
    ) -> ReplayChain:
        chain = cls()
        for reply in replies:
            chain.add(reply, commitment=commitment)
        return chain

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def add(
        self,
        reply: bytes | str | Mapping[str, Any],
        *,
        commitment: str = FINALIZED,
        slot: int | None = None,
        block_time: int | None = None,
    ) -> ChainTransaction:
        """Add a recorded reply (whole or bare, any encoding) at `commitment` ("confirmed": live and
        not yet final; "finalized"). `slot` / `block_time` override or supply the recorded ones (the
        reply is then re-encoded with them; otherwise it is served byte for byte as recorded)."""
        if commitment not in (CONFIRMED, FINALIZED):
            raise ReplayError(f"commitment must be {CONFIRMED} or {FINALIZED}")
        result = bare_result(reply)
        decoded = _decode(result)
        if slot is not None or block_time is not None:
            result = _patched_times(result, slot, block_time)
            decoded = _decode(result)
        if decoded.slot is None or decoded.blockTime is None:
            raise ReplayDataError("the reply has no slot or blockTime: pass slot= and block_time=")
        if decoded.meta is None:
            raise ReplayDataError("meta is null")
        signature, keys, instructions, version, encoding = _describe(result, decoded)
        meta = decoded.meta
        if len(meta.postBalances) != len(keys):
            raise ReplayDataError(f"{len(keys)} account keys but {len(meta.postBalances)} post balances")
        with self._lock:
            token_balances = _token_balances(meta, keys, self._mint_programs)
            transaction = ChainTransaction(
                signature=signature,
                slot=decoded.slot,
                block_time=decoded.blockTime,
                position=0,
                reply=result,
                keys=tuple(keys),
                err=meta.err,
                memo=format_memos(instructions),
                logs=tuple(meta.logMessages) if meta.logMessages is not None else None,
                version=version,
                lamports=dict(zip(keys, meta.postBalances, strict=True)),
                token_balances=token_balances,
                status=commitment,
                encoding=encoding,
            )
            events = self._insert(transaction)
        self._emit(events)
        return transaction

    def _insert(self, transaction: ChainTransaction) -> list[Event]:
        """Index a transaction (lock held); the events to emit."""
        if transaction.signature in self._transactions:
            raise ReplayDataError(f"signature {transaction.signature} is already on the chain")
        transaction.position = self._slot_counts.get(transaction.slot, 0)
        self._slot_counts[transaction.slot] = transaction.position + 1
        self._transactions[transaction.signature] = transaction
        order = transaction.order
        for address in {*transaction.keys, *transaction.token_balances}:
            orders, items = self._by_address.setdefault(address, ([], []))
            if not orders or order > orders[-1]:
                orders.append(order)
                items.append(transaction)
            else:
                index = bisect.bisect(orders, order)
                orders.insert(index, order)
                items.insert(index, transaction)
        for balance in transaction.token_balances.values():
            self._mint_decimals.setdefault(balance.mint, balance.decimals)
        events: list[Event] = []
        if transaction.slot > self._tip_slot:
            parent = self._tip_slot
            self._tip_slot = transaction.slot
            events.append(SlotEvent(transaction.slot, parent, self._finalized_slot))
        events.append(TransactionEvent(transaction, CONFIRMED))
        if transaction.status == FINALIZED:
            self._finalized_slot = max(self._finalized_slot, transaction.slot)
            events.append(TransactionEvent(transaction, FINALIZED))
        return events

    def finalize(self, signature: str) -> ChainTransaction:
        """Promote a confirmed transaction to finalized."""
        with self._lock:
            transaction = self._get(signature)
            if transaction.status != CONFIRMED:
                raise ReplayError(f"{signature} is {transaction.status}, not {CONFIRMED}")
            transaction.status = FINALIZED
            self._finalized_slot = max(self._finalized_slot, transaction.slot)
            events: list[Event] = [TransactionEvent(transaction, FINALIZED)]
        self._emit(events)
        return transaction

    def drop(self, signature: str) -> ChainTransaction:
        """A confirmed transaction that never finalizes (its fork was abandoned): it disappears."""
        with self._lock:
            transaction = self._get(signature)
            if transaction.status != CONFIRMED:
                raise ReplayError(f"{signature} is {transaction.status}, not {CONFIRMED}")
            transaction.status = DROPPED
        return transaction

    def advance_slot(self, count: int = 1, *, finalize: bool = False) -> int:
        """Move the tip `count` slots on (empty slots); with `finalize`, the finalized slot follows it."""
        if not 1 <= count <= 1_000_000:
            raise ReplayError("count must be between 1 and 1,000,000")
        with self._lock:
            events: list[Event] = []  # one slot event per call, however many slots: subscribers need the tip
            parent = self._tip_slot
            self._tip_slot += count
            if finalize:
                self._finalized_slot = self._tip_slot
            events.append(SlotEvent(self._tip_slot, parent, self._finalized_slot))
            tip = self._tip_slot
        self._emit(events)
        return tip

    def add_account(
        self,
        address: str,
        *,
        owner: str,
        lamports: int,
        data: bytes = b"",
        executable: bool = False,
        parsed: Mapping[str, Any] | None = None,
    ) -> None:
        """An account served by getAccountInfo as given (e.g. a recorded mint)."""
        with self._lock:
            self._accounts[address] = AccountState(address, owner, lamports, data, executable, parsed, len(data))

    def add_mint(
        self,
        mint: str,
        *,
        decimals: int,
        token_program: str = TOKEN_PROGRAM_ID,
        data: bytes | None = None,
        supply_raw: int = 0,
        mint_authority: str | None = None,
        freeze_authority: str | None = None,
        lamports: int = MINT_RENT_LAMPORTS,
    ) -> None:
        """A mint account: the recorded `data` when given, else a synthesised 82-byte mint with these
        decimals; owned by `token_program` (which also becomes the program of its token balances
        that name none)."""
        if token_program not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            raise ReplayError(f"not a token program: {token_program}")
        if data is None:
            data = encode_mint(
                decimals=decimals,
                supply_raw=supply_raw,
                mint_authority=mint_authority,
                freeze_authority=freeze_authority,
            )
        parsed = {
            "program": "spl-token-2022" if token_program == TOKEN_2022_PROGRAM_ID else "spl-token",
            "parsed": {
                "type": "mint",
                "info": {
                    "decimals": data[44] if len(data) > 44 else decimals,
                    "freezeAuthority": freeze_authority,
                    "isInitialized": True,
                    "mintAuthority": mint_authority,
                    "supply": str(int.from_bytes(data[36:44], "little")) if len(data) >= 44 else str(supply_raw),
                },
            },
            "space": len(data),
        }
        with self._lock:
            self._accounts[mint] = AccountState(mint, token_program, lamports, data, False, parsed, len(data))
            self._mint_programs[mint] = token_program
            self._mint_decimals[mint] = decimals

    # --- queries (the server's view; `max_slot` hides newer history: a lagging node) ---

    def transactions(self) -> list[ChainTransaction]:
        """Every transaction (dropped ones too), oldest first."""
        with self._lock:
            return sorted(self._transactions.values(), key=lambda item: item.order)

    def get(self, signature: str) -> ChainTransaction | None:
        with self._lock:
            return self._transactions.get(signature)

    def _get(self, signature: str) -> ChainTransaction:
        transaction = self._transactions.get(signature)
        if transaction is None:
            raise ReplayError(f"no transaction {signature}")
        return transaction

    @staticmethod
    def _visible(transaction: ChainTransaction, commitment: str, max_slot: int | None) -> bool:
        if transaction.status == DROPPED:
            return False
        if max_slot is not None and transaction.slot > max_slot:
            return False
        return commitment != FINALIZED or transaction.status == FINALIZED

    def signatures_for_address(
        self,
        address: str,
        *,
        before: str | None = None,
        until: str | None = None,
        limit: int = 1000,
        commitment: str = FINALIZED,
        max_slot: int | None = None,
        hidden: frozenset[str] = frozenset(),
        skipped: list[str] | None = None,
    ) -> list[ChainTransaction]:
        """A getSignaturesForAddress page: newest first, `before`/`until` exclusive. An unknown `before`
        gives an empty page and an unknown `until` is ignored, as agave's blockstore does. Signatures
        in `hidden` are left out (a faulty node); those left out are appended to `skipped`."""
        with self._lock:
            orders, items = self._by_address.get(address, ([], []))
            end = len(items)
            if before is not None:
                anchor = self._transactions.get(before)
                if anchor is None or anchor.status == DROPPED:
                    return []
                end = bisect.bisect_left(orders, anchor.order)
            stop_order: tuple[int, int] | None = None
            if until is not None:
                anchor = self._transactions.get(until)
                if anchor is not None and anchor.status != DROPPED:
                    stop_order = anchor.order
            page: list[ChainTransaction] = []
            for index in range(end - 1, -1, -1):
                transaction = items[index]
                if stop_order is not None and transaction.order <= stop_order:
                    break
                if not self._visible(transaction, commitment, max_slot):
                    continue
                if transaction.signature in hidden:
                    if skipped is not None:
                        skipped.append(transaction.signature)
                    continue
                page.append(transaction)
                if len(page) >= limit:
                    break
            return page

    def transaction(
        self, signature: str, *, commitment: str = FINALIZED, max_slot: int | None = None
    ) -> ChainTransaction | None:
        with self._lock:
            transaction = self._transactions.get(signature)
            if transaction is None or not self._visible(transaction, commitment, max_slot):
                return None
            return transaction

    def slot(self, commitment: str = FINALIZED, *, max_slot: int | None = None) -> int:
        with self._lock:
            slot = self._finalized_slot if commitment == FINALIZED else self._tip_slot
        return slot if max_slot is None else min(slot, max_slot)

    def _latest(self, address: str, max_slot: int | None) -> ChainTransaction | None:
        _orders, items = self._by_address.get(address, ([], []))
        for index in range(len(items) - 1, -1, -1):
            transaction = items[index]
            if self._visible(transaction, CONFIRMED, max_slot):
                return transaction
        return None

    def lamports(self, address: str, *, max_slot: int | None = None) -> int:
        """Lamports after the newest visible transaction touching the address (0 if none)."""
        with self._lock:
            latest = self._latest(address, max_slot)
            if latest is not None and address in latest.lamports:
                return latest.lamports[address]
            account = self._accounts.get(address)
            return account.lamports if account is not None else 0

    def token_balance(self, account: str, *, max_slot: int | None = None) -> TokenBalance | None:
        """A token account's balance after the newest visible transaction that changed or listed it."""
        with self._lock:
            _orders, items = self._by_address.get(account, ([], []))
            for index in range(len(items) - 1, -1, -1):
                transaction = items[index]
                if self._visible(transaction, CONFIRMED, max_slot) and account in transaction.token_balances:
                    balance = transaction.token_balances[account]
                    return None if balance.closed else balance
            return None

    def token_accounts_by_owner(
        self, owner: str, *, program_id: str | None = None, mint: str | None = None, max_slot: int | None = None
    ) -> list[TokenBalance]:
        """Open token accounts whose latest balance names `owner`, filtered by program or mint."""
        with self._lock:
            found: dict[str, TokenBalance] = {}
            for transaction in sorted(self._transactions.values(), key=lambda item: item.order):
                if not self._visible(transaction, CONFIRMED, max_slot):
                    continue
                for account, balance in transaction.token_balances.items():
                    found[account] = balance
            return sorted(
                (
                    balance
                    for balance in found.values()
                    if balance.owner == owner
                    and not balance.closed
                    and (program_id is None or balance.program_id == program_id)
                    and (mint is None or balance.mint == mint)
                ),
                key=lambda balance: balance.account,
            )

    def account(self, address: str, *, max_slot: int | None = None) -> AccountState | None:
        """getAccountInfo's view: a registered account, else a token account or a wallet seen in history."""
        with self._lock:
            registered = self._accounts.get(address)
            if registered is not None:
                return registered
            balance = self.token_balance(address, max_slot=max_slot)
            if balance is not None and balance.owner is not None:
                data = encode_token_account(mint=balance.mint, owner=balance.owner, amount_raw=balance.amount_raw)
                return AccountState(
                    address,
                    balance.program_id,
                    self.lamports(address, max_slot=max_slot) or TOKEN_ACCOUNT_RENT_LAMPORTS,
                    data,
                    False,
                    token_account_parsed(balance),
                    len(data),
                )
            latest = self._latest(address, max_slot)
            if latest is None or latest.lamports.get(address, 0) == 0:
                return None
            return AccountState(address, SYSTEM_PROGRAM_ID, latest.lamports[address], b"", False, None, 0)

    # --- synthesis ---

    def synthesise(
        self,
        count: int,
        *,
        templates: Iterable[ChainTransaction] | None = None,
        per_slot: int = 4,
        first_slot: int | None = None,
        first_block_time: int | None = None,
        seed: str = "replay",
        commitment: str = FINALIZED,
        notify: bool = False,
    ) -> list[str]:
        """Add `count` clones of recorded transactions (cycling through `templates`, default every
        transaction already on the chain) with fresh unique signatures, `per_slot` to a slot, in
        slots and times after the chain's newest. json/jsonParsed replies get the new signature in
        `transaction.signatures`; base64 replies get it patched into the transaction bytes. Returns
        the new signatures, oldest first. Websocket subscribers hear only the new tip, unless
        `notify` (then every clone is announced like a live `add`)."""
        if count < 0 or per_slot < 1:
            raise ReplayError("count must be >= 0 and per_slot >= 1")
        with self._lock:
            pool = list(templates) if templates is not None else self.transactions()
            pool = [item for item in pool if item.status != DROPPED]
            if not pool and count:
                raise ReplayError("no template transactions to clone")
            slot = first_slot if first_slot is not None else self._tip_slot + 1
            newest_time = max((item.block_time or 0 for item in self._transactions.values()), default=0)
            block_time = first_block_time if first_block_time is not None else newest_time + 1
            added: list[str] = []
            events: list[Event] = []
            number = len(self._transactions)
            for index in range(count):
                template = pool[index % len(pool)]
                signature = fresh_signature(seed, number)
                while signature in self._transactions:
                    number += 1
                    signature = fresh_signature(seed, number)
                number += 1
                this_slot = slot + index // per_slot
                this_time = block_time + (index // per_slot) * 4 // 10  # ~400 ms slots
                clone = dataclasses.replace(
                    template,
                    signature=signature,
                    slot=this_slot,
                    block_time=this_time,
                    reply=_with_signature(template, signature, this_slot, this_time),
                    status=commitment,
                )
                events.extend(self._insert(clone))
                added.append(signature)
        if notify:
            self._emit(events)
        else:  # a bulk load: subscribers hear only the new tip
            self._emit([event for event in events if isinstance(event, SlotEvent)][-1:])
        return added

    def _emit(self, events: Sequence[Event]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for event in events:
            for listener in listeners:
                listener(event)

    @property
    def mint_decimals(self) -> Mapping[str, int]:
        with self._lock:
            return dict(self._mint_decimals)


def token_account_parsed(balance: TokenBalance) -> dict[str, Any]:
    """The jsonParsed `data` of a token account, as nodes report it."""
    return {
        "program": "spl-token-2022" if balance.program_id == TOKEN_2022_PROGRAM_ID else "spl-token",
        "parsed": {
            "info": {
                "isNative": False,
                "mint": balance.mint,
                "owner": balance.owner,
                "state": "initialized",
                "tokenAmount": ui_token_amount(balance.amount_raw, balance.decimals),
            },
            "type": "account",
        },
        "space": 165,
    }


def ui_token_amount(amount_raw: int, decimals: int) -> dict[str, Any]:
    """`{amount, decimals, uiAmount, uiAmountString}` as nodes write it (uiAmount is a float there;
    it is informative only, the indexer reads `amount`)."""
    whole, fraction = divmod(amount_raw, 10**decimals)
    text = f"{whole}.{str(fraction).zfill(decimals).rstrip('0')}" if fraction else str(whole)
    return {"amount": str(amount_raw), "decimals": decimals, "uiAmount": float(text), "uiAmountString": text}
