"""JSON-RPC methods of the replay node: a request body in, a reply body out (no sockets here).

Replies follow a Solana node's shapes and error codes. getTransaction returns the recorded bytes
whatever encoding was asked for (never transcoded); a v0 transaction asked for without
`maxSupportedTransactionVersion` gets -32015 as from a real node. Results are assembled from bytes
prepared once per transaction, so a batch of getTransaction costs little more than copying them.
"""

from __future__ import annotations

import base64
import collections
from collections.abc import Callable
from typing import Any, Final

import based58
import msgspec
import orjson

from indexer.replay.chain import (
    CONFIRMED,
    FINALIZED,
    AccountState,
    ChainTransaction,
    ReplayChain,
    token_account_parsed,
    ui_token_amount,
)
from indexer.replay.faults import Faults
from indexer.rpc.accounts import encode_token_account
from pricing.assets import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

API_VERSION: Final = "2.2.7"  # reported in reply contexts, as a recent mainnet node would
MAX_PAGE: Final = 1000
MAX_STATUS_SIGNATURES: Final = 256
MAX_BATCH: Final = 1000  # items in one batch request
_ENCODINGS: Final = frozenset({"json", "jsonParsed", "base64", "base58"})
_VERSION_UNSUPPORTED: Final = (
    "Transaction version (0) is not supported by the requesting client. Please try the request again with "
    'the following configuration parameter: "maxSupportedTransactionVersion": 0'
)


class RpcFault(Exception):
    """A JSON-RPC error to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Request(msgspec.Struct):
    method: str
    params: Any = None
    id: Any = None
    jsonrpc: str | None = None


_REQUESTS: Final = msgspec.json.Decoder(_Request | list[_Request])


def _invalid(message: str = "Invalid params") -> RpcFault:
    return RpcFault(-32602, message)


class Methods:
    """Dispatch of JSON-RPC requests against a chain, with the server's faults and counters."""

    def __init__(self, chain: ReplayChain, faults: Faults, counts: collections.Counter[str]) -> None:
        self.chain = chain
        self.faults = faults
        self.counts = counts
        self._table: dict[str, Callable[[list[Any]], bytes]] = {
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getTransaction": self.get_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getSlot": self.get_slot,
            "getBlockHeight": self.get_block_height,
            "getAccountInfo": self.get_account_info,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getBalance": self.get_balance,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getHealth": lambda _params: b'"ok"',
            "getVersion": lambda _params: orjson.dumps({"solana-core": API_VERSION, "feature-set": 0}),
        }

    @staticmethod
    def parse(body: bytes) -> _Request | list[_Request] | RpcFault:
        try:
            return _REQUESTS.decode(body)
        except msgspec.ValidationError:
            return RpcFault(-32600, "Invalid request")
        except msgspec.DecodeError:
            return RpcFault(-32700, "Parse error")

    def answer(self, request: _Request | list[_Request]) -> bytes:
        """The reply body for a parsed single or batch request."""
        if isinstance(request, list):
            if not request:
                return error_reply(None, RpcFault(-32600, "Invalid request"))
            if len(request) > MAX_BATCH:
                return error_reply(None, RpcFault(-32600, f"Batch larger than {MAX_BATCH}"))
            return b"[" + b",".join(self._one(item) for item in request) + b"]"
        return self._one(request)

    def _one(self, request: _Request) -> bytes:
        request_id = orjson.dumps(request.id)
        handler = self._table.get(request.method)
        try:
            if handler is None:
                raise RpcFault(-32601, "Method not found")
            scripted = self.faults.item_error(request.method)
            if scripted is not None:
                raise RpcFault(*scripted)
            params = request.params if request.params is not None else []
            if not isinstance(params, list):
                raise _invalid("Invalid params: expected an array")
            result = handler(params)
        except RpcFault as fault:
            return error_reply(request_id, fault)
        return b'{"jsonrpc":"2.0","result":' + result + b',"id":' + request_id + b"}"

    # --- helpers ---

    def _config(self, params: list[Any], index: int) -> dict[str, Any]:
        if len(params) <= index or params[index] is None:
            return {}
        config = params[index]
        if not isinstance(config, dict):
            raise _invalid("Invalid params: configuration must be an object")
        slot = config.get("minContextSlot")
        if slot is not None:
            if not isinstance(slot, int):
                raise _invalid("Invalid params: minContextSlot")
            current = self.chain.slot(_commitment(config), max_slot=self.faults.lag_slot)
            if slot > current:
                raise RpcFault(-32016, "Minimum context slot has not been reached")
        return config

    def _context(self, value: bytes, commitment: str = FINALIZED) -> bytes:
        slot = self.chain.slot(commitment, max_slot=self.faults.lag_slot)
        return b'{"context":{"apiVersion":"' + API_VERSION.encode() + b'","slot":%d},"value":' % slot + value + b"}"

    # --- methods ---

    def get_signatures_for_address(self, params: list[Any]) -> bytes:
        address = _address(params)
        config = self._config(params, 1)
        commitment = _commitment(config)
        if commitment == "processed":
            raise _invalid("Method does not support commitment below `confirmed`")
        limit = config.get("limit", MAX_PAGE)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise _invalid(f"Invalid limit; max {MAX_PAGE}")
        before = _optional_signature(config, "before")
        until = _optional_signature(config, "until")
        if until is not None and self.faults.until_forgotten():
            until = None
        skipped: list[str] = []
        page = self.chain.signatures_for_address(
            address,
            before=before,
            until=until,
            limit=limit,
            commitment=commitment,
            max_slot=self.faults.lag_slot,
            hidden=self.faults.hiding,
            skipped=skipped,
        )
        if skipped:
            self.faults.consume_hidden(skipped)
        return b"[" + b",".join(_signature_entry(item) for item in page) + b"]"

    def get_transaction(self, params: list[Any]) -> bytes:
        signature = _signature(params)
        config = self._config(params, 1)
        commitment = _commitment(config)
        if commitment == "processed":
            raise _invalid("Method does not support commitment below `confirmed`")
        encoding = config.get("encoding", "json")
        if encoding not in _ENCODINGS:
            raise _invalid(f"Invalid params: unknown encoding {encoding!r}")
        transaction = self.chain.transaction(signature, commitment=commitment, max_slot=self.faults.lag_slot)
        if transaction is None:
            return b"null"
        supported = config.get("maxSupportedTransactionVersion")
        if transaction.version is not None and (not isinstance(supported, int) or supported < transaction.version):
            raise RpcFault(-32015, _VERSION_UNSUPPORTED)
        return transaction.reply

    def get_signature_statuses(self, params: list[Any]) -> bytes:
        if not params or not isinstance(params[0], list):
            raise _invalid("Invalid params: expected an array of signatures")
        signatures = params[0]
        if len(signatures) > MAX_STATUS_SIGNATURES:
            raise _invalid(f"Too many inputs provided; max {MAX_STATUS_SIGNATURES}")
        self._config(params, 1)
        tip = self.chain.slot(CONFIRMED, max_slot=self.faults.lag_slot)
        values: list[dict[str, Any] | None] = []
        for signature in signatures:
            if not isinstance(signature, str):
                raise _invalid("Invalid params: signature is not a string")
            transaction = self.chain.transaction(signature, commitment=CONFIRMED, max_slot=self.faults.lag_slot)
            if transaction is None:
                values.append(None)
                continue
            final = transaction.status == FINALIZED
            values.append(
                {
                    "slot": transaction.slot,
                    "confirmations": None if final else max(0, tip - transaction.slot),
                    "err": transaction.err,
                    "status": {"Ok": None} if transaction.err is None else {"Err": transaction.err},
                    "confirmationStatus": transaction.status,
                }
            )
        return self._context(orjson.dumps(values), CONFIRMED)

    def get_slot(self, params: list[Any]) -> bytes:
        config = self._config(params, 0)
        return b"%d" % self.chain.slot(_commitment(config), max_slot=self.faults.lag_slot)

    def get_block_height(self, params: list[Any]) -> bytes:
        # The model has no skipped slots: the block height is the slot.
        config = self._config(params, 0)
        return b"%d" % self.chain.slot(_commitment(config), max_slot=self.faults.lag_slot)

    def get_balance(self, params: list[Any]) -> bytes:
        address = _address(params)
        config = self._config(params, 1)
        lamports = self.chain.lamports(address, max_slot=self.faults.lag_slot)
        return self._context(b"%d" % lamports, _commitment(config))

    def get_token_account_balance(self, params: list[Any]) -> bytes:
        address = _address(params)
        config = self._config(params, 1)
        balance = self.chain.token_balance(address, max_slot=self.faults.lag_slot)
        if balance is None:
            raise _invalid("Invalid param: could not find account")
        return self._context(orjson.dumps(ui_token_amount(balance.amount_raw, balance.decimals)), _commitment(config))

    def get_account_info(self, params: list[Any]) -> bytes:
        address = _address(params)
        config = self._config(params, 1)
        encoding = config.get("encoding", "base58")
        if encoding not in ("base58", "base64", "jsonParsed", "base64+zstd"):
            raise _invalid(f"Invalid params: unknown encoding {encoding!r}")
        if encoding == "base64+zstd":
            raise _invalid("Invalid params: base64+zstd is not served by the replay node")
        account = self.chain.account(address, max_slot=self.faults.lag_slot)
        value = None if account is None else account_json(account, encoding)
        return self._context(orjson.dumps(value), _commitment(config))

    def get_token_accounts_by_owner(self, params: list[Any]) -> bytes:
        owner = _address(params)
        if len(params) < 2 or not isinstance(params[1], dict):
            raise _invalid("Invalid params: expected a mint or programId filter")
        selector = params[1]
        program_id = selector.get("programId")
        mint = selector.get("mint")
        if (program_id is None) == (mint is None):
            raise _invalid("Invalid params: give exactly one of mint and programId")
        if program_id is not None and program_id not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            raise _invalid(f"Invalid param: unrecognized Token program id {program_id}")
        config = self._config(params, 2)
        encoding = config.get("encoding", "base58")
        if encoding not in ("base58", "base64", "jsonParsed"):
            raise _invalid(f"Invalid params: unknown encoding {encoding!r}")
        balances = self.chain.token_accounts_by_owner(
            owner, program_id=program_id, mint=mint, max_slot=self.faults.lag_slot
        )
        accounts = []
        for balance in balances:
            state = self.chain.account(balance.account, max_slot=self.faults.lag_slot)
            if state is None:
                continue
            accounts.append({"pubkey": balance.account, "account": account_json(state, encoding)})
        return self._context(orjson.dumps(accounts), _commitment(config))


def account_json(account: AccountState, encoding: str) -> dict[str, Any]:
    """An account in a node's shape, data in `encoding` (jsonParsed falls back to base64 when the
    account has no parsed form, as nodes do)."""
    data: Any
    if encoding == "jsonParsed" and account.parsed is not None:
        data = account.parsed
    elif encoding == "base58":
        data = [based58.b58encode(account.data).decode("ascii"), "base58"]
    else:
        data = [base64.b64encode(account.data).decode("ascii"), "base64"]
    return {
        "data": data,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": account.owner,
        "rentEpoch": 18446744073709551615,
        "space": account.space if account.space is not None else len(account.data),
    }


def token_account_json(transaction: ChainTransaction, account: str, encoding: str) -> dict[str, Any] | None:
    """A token account as it stood after `transaction` (for websocket account notifications)."""
    balance = transaction.token_balances.get(account)
    if balance is None or balance.owner is None:
        return None
    data = encode_token_account(mint=balance.mint, owner=balance.owner, amount_raw=balance.amount_raw)
    state = AccountState(
        account,
        balance.program_id,
        transaction.lamports.get(account, 0),
        data,
        False,
        token_account_parsed(balance),
        len(data),
    )
    return account_json(state, encoding)


def _signature_entry(transaction: ChainTransaction) -> bytes:
    return orjson.dumps(
        {
            "signature": transaction.signature,
            "slot": transaction.slot,
            "err": transaction.err,
            "memo": transaction.memo,
            "blockTime": transaction.block_time,
            "confirmationStatus": transaction.status,
        }
    )


def error_reply(request_id: bytes | None, fault: RpcFault) -> bytes:
    error = orjson.dumps({"code": fault.code, "message": fault.message})
    return b'{"jsonrpc":"2.0","error":' + error + b',"id":' + (request_id or b"null") + b"}"


def _commitment(config: dict[str, Any]) -> str:
    commitment = config.get("commitment", FINALIZED)
    if commitment in ("recent", "single", "singleGossip"):  # deprecated aliases still accepted by nodes
        commitment = CONFIRMED
    elif commitment in ("max", "root"):
        commitment = FINALIZED
    if commitment not in ("processed", CONFIRMED, FINALIZED):
        raise _invalid(f"Invalid params: unknown commitment {commitment!r}")
    return str(commitment)


def _address(params: list[Any]) -> str:
    if not params or not isinstance(params[0], str):
        raise _invalid("Invalid params: expected an address")
    address = params[0]
    if not 32 <= len(address) <= 44:
        raise _invalid("Invalid param: WrongSize")
    return address


def _signature(params: list[Any]) -> str:
    if not params or not isinstance(params[0], str):
        raise _invalid("Invalid params: expected a signature")
    return params[0]


def _optional_signature(config: dict[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"Invalid params: {key}")
    return value
