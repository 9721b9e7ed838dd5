"""Turn one `getTransaction` reply into the balance changes of watched wallets. Pure: no I/O, no clock.

Rules (DESIGN.md §3): amounts are balance deltas, never instruction amounts; SOL counts only the
lamports of a wallet's own address; tokens count the base units of token accounts the wallet owns
(a missing pre entry is 0); a failed transaction changes nothing. Instructions only annotate a change:
the memo, the sender and the instruction that moved it.

Accepted input: a whole JSON-RPC reply or its bare `result`, in the `jsonParsed`, `json` or `base64`
encoding, legacy or v0 (for `json`/`base64`, loaded addresses follow the static keys).

The reply is decoded once, by msgspec, into typed structs holding only the fields read here (logs,
rewards and the like are skipped without building objects); base64 keys are turned into text only
when one is needed. That keeps decode + extract close to the cost of a bare `orjson.loads`
(docs/BENCHMARKS.md).

Errors:
    ParseError
      └── TransactionFormatError   the input is not a usable getTransaction reply (the message says why)
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, NamedTuple

import based58
import msgspec
from solders.pubkey import Pubkey

from indexer import instructions as ix
from indexer import wire
from pricing.assets import SOL_DECIMALS, SOL_SYMBOL, AssetTable

IN: Final = "in"
OUT: Final = "out"
CREDITABLE: Final = "creditable"
IGNORED: Final = "ignored"
REASON_TREASURY_SIGNED: Final = "treasury_signed"
REASON_UNSUPPORTED_MINT: Final = "unsupported_mint"
REASON_DUST: Final = "dust"

_MEMO_PREFIX: Final = re.compile(r"\[(\d+)\] ")


class ParseError(Exception):
    """Base of the parser's errors."""


class TransactionFormatError(ParseError):
    """The input is not a usable getTransaction reply."""


# --- the parts of a reply the parser reads (field names are the RPC's) ---


class _UiTokenAmount(msgspec.Struct):
    amount: str
    decimals: Annotated[int, msgspec.Meta(ge=0, le=255)]  # a mint's decimals are a u8


class _TokenBalance(msgspec.Struct):
    accountIndex: int
    mint: str
    uiTokenAmount: _UiTokenAmount
    owner: str | None = None
    programId: str | None = None


class _LoadedAddresses(msgspec.Struct):
    writable: list[str] = []
    readonly: list[str] = []


class _ParsedInstruction(msgspec.Struct):
    type: str | None = None
    info: dict[str, Any] = {}


class _Instruction(msgspec.Struct):
    programIdIndex: int = -1  # json and base64 encodings
    programId: str | None = None  # jsonParsed
    # Left undecoded until the instruction is looked at: most never are.
    accounts: msgspec.Raw = msgspec.Raw(b"[]")
    data: str | None = None
    parsed: msgspec.Raw = msgspec.Raw(b"null")


class _InnerInstructions(msgspec.Struct):
    index: int
    instructions: list[_Instruction]


class _Meta(msgspec.Struct):
    preBalances: list[int]
    postBalances: list[int]
    err: Any = None
    fee: int = 0
    preTokenBalances: list[_TokenBalance] | None = None
    postTokenBalances: list[_TokenBalance] | None = None
    innerInstructions: msgspec.Raw = msgspec.Raw(b"null")
    loadedAddresses: _LoadedAddresses | None = None


class _ParsedKey(msgspec.Struct):
    pubkey: str
    signer: bool = False


class _Header(msgspec.Struct):
    numRequiredSignatures: int


class _Message(msgspec.Struct):
    accountKeys: list[str | _ParsedKey]
    header: _Header | None = None
    instructions: msgspec.Raw = msgspec.Raw(b"[]")  # decoded when a change needs it


class _Transaction(msgspec.Struct):
    signatures: list[str]
    message: _Message


class _Result(msgspec.Struct):
    slot: int | None = None
    blockTime: int | None = None
    meta: _Meta | msgspec.UnsetType | None = msgspec.UNSET
    transaction: _Transaction | list[str] | msgspec.UnsetType = msgspec.UNSET


class _Envelope(_Result):
    """A JSON-RPC reply (`result`, `error`) or, when those are absent, a bare result."""

    jsonrpc: str | None = None
    result: _Result | msgspec.UnsetType | None = msgspec.UNSET
    error: Any = None


_DECODER: Final = msgspec.json.Decoder(_Envelope)
_INSTRUCTIONS_DECODER: Final = msgspec.json.Decoder(list[_Instruction])
_ACCOUNTS_DECODER: Final = msgspec.json.Decoder(list[int | str])
_PARSED_DECODER: Final = msgspec.json.Decoder(_ParsedInstruction | str | None)
_INNER_DECODER: Final = msgspec.json.Decoder(list[_InnerInstructions] | None)


class Watch:
    """What the parser looks for: treasury wallets, their known token accounts, accepted assets."""

    __slots__ = ("assets", "dust_raw", "key_text", "token_accounts", "wallet_bytes", "wallets")

    def __init__(
        self,
        wallets: frozenset[str] | set[str] | Sequence[str],
        *,
        assets: AssetTable | None = None,
        dust_raw: Mapping[str, int] | None = None,
        token_accounts: Mapping[str, str] | None = None,
    ) -> None:
        self.wallets = frozenset(wallets)
        self.assets = assets if assets is not None else AssetTable()
        self.dust_raw: Mapping[str, int] = dust_raw or {}  # by asset symbol
        self.token_accounts: Mapping[str, str] = token_accounts or {}  # known account -> owner
        # Raw bytes of watched keys, for base64 transactions whose keys are compared as bytes.
        self.key_text = {
            bytes(Pubkey.from_string(text)): text for text in (*self.wallets, *self.token_accounts, *self.assets.mints)
        }
        self.wallet_bytes = frozenset(bytes(Pubkey.from_string(wallet)) for wallet in self.wallets)


class BalanceChange(msgspec.Struct, frozen=True):
    """A net balance change of one watched account in one transaction, in base units."""

    signature: str
    slot: int | None
    block_time: int | None
    direction: str  # IN or OUT
    asset: str  # "SOL" or the mint address
    token_program: str | None
    account: str  # the account whose balance changed (the wallet itself for SOL)
    owner: str  # the treasury wallet
    amount_raw: int  # positive
    decimals: int
    counterparty: str | None  # inflow: the sender; outflow: the recipient
    memo: str | None
    instruction_path: str | None  # "3" top-level instruction 3, "3.1" its inner instruction 1
    instruction_kind: str | None  # e.g. "transferChecked", "burn"
    top_level_program: str | None
    status: str | None  # inflows: CREDITABLE or IGNORED; outflows: None
    reason: str | None  # inflows: why ignored

    @property
    def amount(self) -> str:
        return format_amount(self.amount_raw, self.decimals)

    @property
    def mint(self) -> str | None:
        return None if self.asset == SOL_SYMBOL else self.asset


class ParsedTransaction(msgspec.Struct, frozen=True):
    signature: str
    slot: int | None
    block_time: int | None
    failed: bool
    fee_lamports: int
    fee_payer: str
    treasury_signed: bool
    memos: tuple[str, ...]
    changes: tuple[BalanceChange, ...]

    @property
    def inflows(self) -> tuple[BalanceChange, ...]:
        return tuple(change for change in self.changes if change.direction == IN)

    @property
    def outflows(self) -> tuple[BalanceChange, ...]:
        return tuple(change for change in self.changes if change.direction == OUT)


def format_amount(amount_raw: int, decimals: int) -> str:
    """Base units as a plain decimal string without trailing zeros (like the RPC's uiAmountString)."""
    sign = "-" if amount_raw < 0 else ""
    whole, fraction = divmod(abs(amount_raw), 10**decimals)
    if fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(fraction).zfill(decimals).rstrip('0')}"


def split_memo(text: str) -> list[str]:
    """Memos from the RPC's memo field (`[8] transfer; [3] abc`), with the `[length] ` prefixes removed.

    The bracketed number is the memo's length in bytes; it cuts memos that themselves contain "; ".
    Text without the prefix is returned whole.
    """
    memos: list[str] = []
    rest = text
    for _ in range(64):  # a transaction holds far fewer memos; the bound stops a malformed loop
        match = _MEMO_PREFIX.match(rest)
        if not match:
            if rest:
                memos.append(rest)
            break
        body = rest[match.end() :].encode("utf-8")
        length = int(match.group(1))
        memos.append(body[:length].decode("utf-8", errors="replace"))
        rest = body[length:].decode("utf-8", errors="replace")
        if rest.startswith("; "):
            rest = rest[2:]
        elif not rest:
            break
    return memos


def parse_transaction(data: bytes | str | Mapping[str, Any], watch: Watch) -> ParsedTransaction:
    """Decode a getTransaction reply (bytes, text or an already-decoded object) and extract changes."""
    return extract(decode_reply(data), watch)


def decode_reply(data: bytes | str | Mapping[str, Any]) -> _Result:
    """The getTransaction result in a reply or bare result; TransactionFormatError when there is none."""
    if isinstance(data, Mapping):
        try:
            data = msgspec.json.encode(data)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TransactionFormatError(f"cannot encode the given object: {exc}") from None
    try:
        envelope = _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise TransactionFormatError(f"not a getTransaction reply: {exc}") from None
    except msgspec.DecodeError as exc:
        raise TransactionFormatError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise TransactionFormatError("JSON nested too deeply") from None
    if envelope.jsonrpc is not None or envelope.result is not msgspec.UNSET or envelope.error is not None:
        if envelope.error is not None:
            error = envelope.error
            detail = f"{error.get('code')} {error.get('message')}" if isinstance(error, dict) else str(error)
            raise TransactionFormatError(f"the reply is a JSON-RPC error: {detail}"[:300])
        if envelope.result is msgspec.UNSET:
            raise TransactionFormatError("not a getTransaction reply: no result")
        if envelope.result is None:
            raise TransactionFormatError("no transaction: result is null (unknown or not yet confirmed)")
        return envelope.result
    return envelope


# Base58 text of keys met in nearly every transaction, so that they are not re-encoded each time.
_KNOWN_KEY_TEXT: Final = {
    bytes(Pubkey.from_string(text)): text
    for text in (
        *ix.DECODED_PROGRAM_IDS,
        "ComputeBudget111111111111111111111111111111",
        "SysvarRent111111111111111111111111111111111",
        "SysvarC1ock11111111111111111111111111111111",
        "Vote111111111111111111111111111111111111111",
    )
}


class _WireKeys:
    """Account keys of a base64 transaction: compared as bytes, turned into text only when read."""

    __slots__ = ("_known", "_raw", "_text")

    def __init__(self, raw: list[bytes], loaded: list[str], known: Mapping[bytes, str]) -> None:
        self._raw = raw
        self._known = known
        self._text: list[str | None] = [None] * len(raw) + loaded

    def __len__(self) -> int:
        return len(self._text)

    def __getitem__(self, index: int) -> str:
        text = self._text[index]
        if text is None:
            raw = self._raw[index]
            text = self._known.get(raw) or _KNOWN_KEY_TEXT.get(raw) or based58.b58encode(raw).decode("ascii")
            self._text[index] = text
        return text

    def watched(self, watch: Watch) -> list[int]:
        wallets = watch.wallet_bytes
        found = [index for index, key in enumerate(self._raw) if key in wallets]
        static = len(self._raw)
        found += [static + i for i, key in enumerate(self._text[static:]) if key in watch.wallets]
        return found


class _Ref(NamedTuple):
    """An instruction of a decoded program, not yet decoded itself."""

    path: str
    top_level_program: str
    program_id: str
    source: _Instruction | wire.WireInstruction


def extract(result: _Result, watch: Watch) -> ParsedTransaction:
    """The balance changes of watched wallets in one decoded getTransaction result."""
    try:
        return _Extraction(result, watch).run()
    except ix.InstructionDataError as exc:
        raise TransactionFormatError(f"bad instruction data: {exc}") from None


class _Extraction:
    """The work on one transaction. Instructions are listed by program and decoded one by one, only
    when a memo, an owner or the instruction that moved a change is looked for."""

    __slots__ = (
        "_decoded",
        "_init_owners",
        "_lamport_deltas",
        "_post_tokens",
        "_pre_tokens",
        "_refs",
        "_top_level",
        "keys",
        "meta",
        "result",
        "signature",
        "signers_watched",
        "watch",
    )

    def __init__(self, result: _Result, watch: Watch) -> None:
        if result.transaction is msgspec.UNSET or result.meta is msgspec.UNSET:
            raise TransactionFormatError("not a getTransaction reply: no transaction or meta")
        if result.meta is None:
            raise TransactionFormatError("meta is null: the node kept no status for this transaction")
        self.result = result
        self.meta: _Meta = result.meta
        self.watch = watch
        self._refs: list[_Ref] | None = None
        self._decoded: dict[str, ix.Instruction] = {}
        self._init_owners: dict[str, str] | None = None
        self._lamport_deltas: list[int] | None = None
        self._top_level: msgspec.Raw | list[wire.WireInstruction]
        self.keys: Sequence[str] | _WireKeys
        transaction = result.transaction
        if isinstance(transaction, list):
            self._decode_wire(transaction)
        else:
            self._decode_json(transaction)
        count = len(self.meta.preBalances)
        if count != len(self.meta.postBalances) or count != len(self.keys):
            raise TransactionFormatError(
                f"{len(self.keys)} account keys but {count} pre and {len(self.meta.postBalances)} post balances"
            )

    def _decode_wire(self, transaction: list[str]) -> None:
        if len(transaction) != 2 or transaction[1] != "base64":
            raise TransactionFormatError('transaction is a list but not ["<data>", "base64"]')
        try:
            decoded = wire.decode_transaction(base64.b64decode(transaction[0], validate=True))
        except (binascii.Error, wire.WireFormatError) as exc:
            raise TransactionFormatError(f"base64 transaction does not decode: {exc}") from None
        if not decoded.signatures:
            raise TransactionFormatError("transaction has no signature")
        self.keys = _WireKeys(decoded.keys, self._loaded_addresses(), self.watch.key_text)
        signers = decoded.keys[: decoded.num_required_signatures]
        self.signers_watched = not self.watch.wallet_bytes.isdisjoint(signers)
        self.signature = based58.b58encode(decoded.signatures[0]).decode("ascii")
        self._top_level = decoded.instructions

    def _decode_json(self, transaction: _Transaction) -> None:
        if not transaction.signatures:
            raise TransactionFormatError("transaction has no signature")
        self.signature = transaction.signatures[0]
        message = transaction.message
        account_keys = message.accountKeys
        self._top_level = message.instructions
        wallets = self.watch.wallets
        if account_keys and isinstance(account_keys[0], _ParsedKey):
            # jsonParsed: the list already holds the loaded addresses, each marked signer or not.
            if set(map(type, account_keys)) - {_ParsedKey}:
                raise TransactionFormatError("accountKeys mixes strings and objects")
            parsed_keys: list[_ParsedKey] = account_keys  # type: ignore[assignment]  # checked above
            self.keys = [key.pubkey for key in parsed_keys]
            self.signers_watched = any(key.signer and key.pubkey in wallets for key in parsed_keys)
            return
        if set(map(type, account_keys)) - {str}:
            raise TransactionFormatError("accountKeys mixes strings and objects")
        if message.header is None:
            raise TransactionFormatError("json-encoded message has no header")
        static: list[str] = account_keys  # type: ignore[assignment]  # all str, checked above
        self.keys = static + self._loaded_addresses()
        self.signers_watched = not wallets.isdisjoint(static[: message.header.numRequiredSignatures])

    def _loaded_addresses(self) -> list[str]:
        loaded = self.meta.loadedAddresses
        return [*loaded.writable, *loaded.readonly] if loaded is not None else []

    # --- extraction ---

    def run(self) -> ParsedTransaction:
        meta = self.meta
        result = self.result
        fee_payer = self.keys[0] if len(self.keys) else ""
        changes: tuple[BalanceChange, ...] = ()
        memos: tuple[str, ...] = ()
        if meta.err is None:
            found = self._sol_changes()
            found += self._token_changes()
            if found:
                memos = self._memos()
                memo = "; ".join(memos) if memos else None
                changes = tuple(self._annotate(item, memo) for item in found)
        return ParsedTransaction(
            self.signature,
            result.slot,
            result.blockTime,
            meta.err is not None,
            meta.fee,
            fee_payer,
            self.signers_watched,
            memos,
            changes,
        )

    def _sol_changes(self) -> list[_Found]:
        keys = self.keys
        if isinstance(keys, _WireKeys):
            indexes = keys.watched(self.watch)
        else:
            wallets = self.watch.wallets
            indexes = [index for index, key in enumerate(keys) if key in wallets]
        pre = self.meta.preBalances
        post = self.meta.postBalances
        found = []
        for index in indexes:
            delta = post[index] - pre[index]
            if delta:
                found.append(_Found(SOL_SYMBOL, None, index, keys[index], delta, SOL_DECIMALS))
        return found

    def _token_changes(self) -> list[_Found]:
        count = len(self.keys)
        self._pre_tokens = pre = _by_index(self.meta.preTokenBalances, count)
        self._post_tokens = post = _by_index(self.meta.postTokenBalances, count)
        if not pre and not post:
            return []
        wallets = self.watch.wallets
        found = []
        for index in sorted(pre.keys() | post.keys()):
            before = pre.get(index)
            after = post.get(index)
            entry = after or before
            assert entry is not None
            if before is not None and after is not None and before.mint != after.mint:
                raise TransactionFormatError(f"account index {index} changes mint")
            owner = self._owner(index, before, after)
            if owner is None or owner not in wallets:
                continue
            delta = _token_amount(after) - _token_amount(before)
            if delta:
                program = entry.programId or self._table_program(entry.mint)
                found.append(_Found(entry.mint, program, index, owner, delta, entry.uiTokenAmount.decimals))
        return found

    def _table_program(self, mint: str) -> str | None:
        asset = self.watch.assets.by_key(mint)
        return asset.token_program if asset is not None else None

    def _owner(self, index: int, before: _TokenBalance | None, after: _TokenBalance | None) -> str | None:
        """DESIGN.md §3: post entry, pre entry, initialisation in this transaction, known accounts."""
        if after is not None and after.owner:
            return after.owner
        if before is not None and before.owner:
            return before.owner
        account = self.keys[index]
        if self._init_owners is None:
            self._init_owners = self._find_init_owners()
        return self._init_owners.get(account) or self.watch.token_accounts.get(account)

    def _find_init_owners(self) -> dict[str, str]:
        owners: dict[str, str] = {}
        for ref in self.refs():
            if ref.program_id in ix.TOKEN_PROGRAM_IDS:
                instruction = self._decode(ref)
                if instruction.kind not in ix.TOKEN_INIT_KINDS:
                    continue
                owner = instruction.info.get("owner")
            elif ref.program_id == ix.ASSOCIATED_TOKEN_PROGRAM_ID:
                instruction = self._decode(ref)
                if instruction.kind not in ix.ATA_CREATE_KINDS:
                    continue
                owner = instruction.info.get("wallet")
            else:
                continue
            initialised = instruction.info.get("account")
            if isinstance(initialised, str) and isinstance(owner, str):
                owners.setdefault(initialised, owner)
        return owners

    # --- instructions: listed by program, decoded on demand ---

    def refs(self) -> list[_Ref]:
        """Top-level and inner instructions of the programs the parser reads, in execution order."""
        if self._refs is not None:
            return self._refs
        keys = self.keys
        key_count = len(keys)
        decoded_programs = ix.DECODED_PROGRAM_IDS
        refs: list[_Ref] = []
        top_programs: list[str] = []
        top_level = self._top_level
        if not isinstance(top_level, list):
            top_level = _decode_instructions(_INSTRUCTIONS_DECODER, top_level)
        for position, instruction in enumerate(top_level):
            program_id = self._program_id(instruction)
            top_programs.append(program_id)
            if program_id in decoded_programs:
                refs.append(_Ref(str(position), program_id, program_id, instruction))
        groups = _decode_instructions(_INNER_DECODER, self.meta.innerInstructions)
        for group in groups or ():
            parent = group.index
            top_program = top_programs[parent] if 0 <= parent < len(top_programs) else ""
            for position, inner in enumerate(group.instructions):
                program_id = inner.programId
                if program_id is None:
                    index = inner.programIdIndex
                    program_id = keys[index] if 0 <= index < key_count else ""
                if program_id in decoded_programs:
                    refs.append(_Ref(f"{parent}.{position}", top_program, program_id, inner))
        self._refs = refs
        return refs

    def _program_id(self, instruction: _Instruction | wire.WireInstruction) -> str:
        if isinstance(instruction, wire.WireInstruction):
            index = instruction.program_id_index
        elif instruction.programId is not None:
            return instruction.programId
        else:
            index = instruction.programIdIndex
        return self.keys[index] if 0 <= index < len(self.keys) else ""

    def _decode(self, ref: _Ref) -> ix.Instruction:
        decoded = self._decoded.get(ref.path)
        if decoded is not None:
            return decoded
        source = ref.source
        program_id = ref.program_id
        kind: str | None = None
        info: dict[str, Any] = {}
        if isinstance(source, wire.WireInstruction):
            kind, info = ix.decode_raw(program_id, self._addresses(source.accounts), source.data)
        else:
            parsed = _decode_instructions(_PARSED_DECODER, source.parsed)
            if isinstance(parsed, str):
                kind = ix.MEMO_KIND if program_id in ix.MEMO_PROGRAM_IDS else None
                info = {"memo": parsed}
            elif parsed is not None:
                kind, info = parsed.type, parsed.info
            elif source.data is not None:
                accounts = _decode_instructions(_ACCOUNTS_DECODER, source.accounts)
                kind, info = ix.decode_raw(program_id, self._addresses(accounts), ix.b58decode(source.data))
        decoded = ix.Instruction(ref.path, ref.top_level_program, program_id, kind, info)
        self._decoded[ref.path] = decoded
        return decoded

    def _addresses(self, accounts: Sequence[int | str] | bytes) -> list[str]:
        keys = self.keys
        count = len(keys)
        return [item if isinstance(item, str) else (keys[item] if 0 <= item < count else "") for item in accounts]

    @staticmethod
    def _touches(ref: _Ref, index: int, account: str) -> bool:
        """Whether an instruction can involve the account, judged without decoding it where possible."""
        source = ref.source
        if isinstance(source, wire.WireInstruction):
            return index < 256 and index in source.accounts
        if bytes(source.parsed) != b"null":
            return account.encode() in bytes(source.parsed)
        accounts = _decode_instructions(_ACCOUNTS_DECODER, source.accounts)
        return index in accounts or account in accounts

    def _memos(self) -> tuple[str, ...]:
        return tuple(
            memo
            for ref in self.refs()
            if ref.program_id in ix.MEMO_PROGRAM_IDS
            for memo in split_memo(str(self._decode(ref).info.get("memo", "")))
        )

    # --- annotation of one change ---

    def _annotate(self, found: _Found, memo: str | None) -> BalanceChange:
        direction = IN if found.delta > 0 else OUT
        amount_raw = abs(found.delta)
        index = found.position
        account = self.keys[index]
        moving = self._moving_instruction(found.asset, index, account, direction)
        if found.asset == SOL_SYMBOL:
            counterparty = self._sol_counterparty(index, direction)
        else:
            counterparty = self._token_counterparty(found.asset, index, direction, moving)
        status = reason = None
        if direction == IN:
            reason = self._ignore_reason(found.asset, amount_raw)
            status = IGNORED if reason else CREDITABLE
        return BalanceChange(
            self.signature,
            self.result.slot,
            self.result.blockTime,
            direction,
            found.asset,
            found.token_program,
            account,
            found.owner,
            amount_raw,
            found.decimals,
            counterparty,
            memo,
            moving.path if moving else None,
            moving.kind if moving else None,
            moving.top_level_program if moving else None,
            status,
            reason,
        )

    def _ignore_reason(self, asset_key: str, amount_raw: int) -> str | None:
        if self.signers_watched:
            return REASON_TREASURY_SIGNED
        asset = self.watch.assets.by_key(asset_key)
        if asset is None:
            return REASON_UNSUPPORTED_MINT
        if amount_raw < self.watch.dust_raw.get(asset.symbol, 0):
            return REASON_DUST
        return None

    def _moving_instruction(self, asset: str, index: int, account: str, direction: str) -> ix.Instruction | None:
        """The first instruction that moved this asset into (or out of) the account."""
        sol = asset == SOL_SYMBOL
        for ref in self.refs():
            if sol:
                if ref.program_id != ix.SYSTEM_PROGRAM_ID or not self._touches(ref, index, account):
                    continue
                instruction = self._decode(ref)
                kind = instruction.kind
                info = instruction.info
                if kind not in ix.SOL_TRANSFER_KINDS:
                    continue
                if direction == IN and account in (info.get("destination"), info.get("newAccount")):
                    return instruction
                if direction == OUT and info.get("source") == account:
                    return instruction
                continue
            if ref.program_id not in ix.TOKEN_PROGRAM_IDS or not self._touches(ref, index, account):
                continue
            instruction = self._decode(ref)
            kind = instruction.kind
            info = instruction.info
            if direction == IN:
                if (kind in ix.TOKEN_TRANSFER_KINDS and info.get("destination") == account) or (
                    kind in ix.TOKEN_MINT_KINDS and info.get("account") == account
                ):
                    return instruction
            elif (kind in ix.TOKEN_TRANSFER_KINDS and info.get("source") == account) or (
                kind in ix.TOKEN_BURN_KINDS and info.get("account") == account
            ):
                return instruction
        return None

    def _sol_counterparty(self, index: int, direction: str) -> str | None:
        """Inflow: the account whose lamports fell most, the fee payer's fee aside. Outflow: rose most."""
        deltas = self._lamport_deltas
        if deltas is None:
            deltas = [
                after - before for before, after in zip(self.meta.preBalances, self.meta.postBalances, strict=True)
            ]
            deltas[0] += self.meta.fee  # the fee is not a transfer to anyone
            self._lamport_deltas = deltas
        own = deltas[index]
        deltas[index] = 0  # never the account itself
        try:
            if direction == IN:
                best = min(range(len(deltas)), key=deltas.__getitem__)
                found = deltas[best] < 0
            else:
                best = max(range(len(deltas)), key=deltas.__getitem__)
                found = deltas[best] > 0
        finally:
            deltas[index] = own
        return self.keys[best] if found else None

    def _token_counterparty(self, mint: str, index: int, direction: str, moving: ix.Instruction | None) -> str | None:
        """The owner whose balance of the same mint fell most (inflow) or rose most (outflow)."""
        pre, post = self._pre_tokens, self._post_tokens
        best: int | None = None
        best_delta = 0
        for other in sorted(pre.keys() | post.keys()):
            if other == index:
                continue
            before = pre.get(other)
            after = post.get(other)
            entry = after or before
            if entry is None or entry.mint != mint:
                continue
            delta = _token_amount(after) - _token_amount(before)
            if (delta < best_delta) if direction == IN else (delta > best_delta):
                best, best_delta = other, delta
        if best is not None:
            owner = self._owner(best, pre.get(best), post.get(best))
            if owner is not None:
                return owner
        if direction == IN and moving is not None:
            # Old replies name no owners: the authority that signed the transfer is the best evidence.
            authority = moving.info.get("authority") or moving.info.get("multisigAuthority")
            if isinstance(authority, str):
                return authority
        return None


class _Found(NamedTuple):
    asset: str
    token_program: str | None
    position: int  # index of the account in the key list
    owner: str
    delta: int
    decimals: int


def _decode_instructions(decoder: msgspec.json.Decoder[Any], raw: msgspec.Raw) -> Any:
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise TransactionFormatError(f"instructions are malformed: {exc}") from None
    except RecursionError:
        raise TransactionFormatError("instructions nested too deeply") from None


def _by_index(entries: list[_TokenBalance] | None, count: int) -> dict[int, _TokenBalance]:
    by_index: dict[int, _TokenBalance] = {}
    for entry in entries or ():
        index = entry.accountIndex
        if not 0 <= index < count:
            raise TransactionFormatError(f"token balance names account index {index}")
        if index in by_index:
            raise TransactionFormatError(f"two token balances for account index {index}")
        by_index[index] = entry
    return by_index


def _token_amount(entry: _TokenBalance | None) -> int:
    if entry is None:
        return 0
    amount = entry.uiTokenAmount.amount
    if not (amount.isascii() and amount.isdigit()):
        raise TransactionFormatError(f"token amount is not a whole number: {amount[:40]!r}")
    return int(amount)
