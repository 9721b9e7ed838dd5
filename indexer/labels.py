"""Program labels: which program (and instruction) a deposit came through. Pure, but for reading the bundled IDLs.

A deposit that arrives through a program (a swap router, a multisig) is labelled with the program of the
top-level instruction that holds the moving instruction, e.g. "Jupiter Aggregator v6: sharedAccountsRoute".
Plain transfers (System, Token, Token-2022, associated-token, Memo, Compute Budget at the top) get no label.

Where an Anchor IDL is bundled (indexer/data/idls/, SOURCES.md there) the instruction is named from its 8-byte
discriminator with anchorpy's InstructionCoder; other known programs are named from KNOWN_PROGRAMS, with the
instruction `type` that a jsonParsed reply gives for the programs the RPC parses. docs/LABELS.md has the rules.

Nothing here raises on bad input: a reply that cannot be read gives None, or a label without instruction.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib.resources
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import based58
import msgspec
import structlog
from anchorpy.coder.instruction import InstructionCoder
from anchorpy_core.idl import Idl
from pyheck import snake

from indexer import instructions as ix
from indexer import wire

_log = structlog.get_logger("indexer.labels")

SOURCE_IDL: Final = "idl"  # instruction named from a bundled Anchor IDL with anchorpy
SOURCE_TABLE: Final = "table"  # program named from KNOWN_PROGRAMS only
SOURCE_PARSED: Final = "parsed"  # instruction named by the RPC's jsonParsed `type`

COMPUTE_BUDGET_PROGRAM_ID: Final = "ComputeBudget111111111111111111111111111111"
JUPITER_V6_PROGRAM_ID: Final = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"

# Top-level programs of a plain transfer: a deposit under one of these came through no program.
PLAIN_PROGRAM_IDS: Final = frozenset({*ix.DECODED_PROGRAM_IDS, COMPUTE_BUDGET_PROGRAM_ID})

_EXPLORER = "solana-foundation/explorer app/utils/programs.ts @0685f5be"

# Known program ids -> names. Each id was checked against a public source (named per group); the names are ours.
KNOWN_PROGRAMS: Final[Mapping[str, str]] = {
    # Jupiter: v6 in jup-ag/jupiter-cpi (declare_id, idl.json); v4, limit order and DCA in several public
    # indexers' tables that agree (e.g. Jupiter's DCA docs page "DCA Program (mainnet-beta): DCA265…").
    JUPITER_V6_PROGRAM_ID: "Jupiter Aggregator v6",
    "JUP4Fb2cqiRUcaTHdrPC8h2gNsA2ETXiPDD33WcGuJB": "Jupiter Aggregator v4",
    "jupoNjAxXgZ4rjzxzPMP4oxduvQsQtZzyknqvzYNrNu": "Jupiter Limit Order",
    "DCA265Vj8a9CEuX1eb1LWRnDT7uK6q1xMipnNyatn23M": "Jupiter DCA",
    # Orca: Whirlpool from orca-so/whirlpools declare_id!; Orca Swap v1/v2 from _EXPLORER. The failed Orca swap
    # fixture (failed_orca_swap_jsonparsed_result.json) runs through DjVE6J… (Orca Swap v1).
    "whirLbMiicVdio4qvUfM5KAg6Ct8VwpYzGff3uctyCc": "Orca Whirlpool",
    "DjVE6JNiYqPL2QXyCUUh8rNjHrbz9hXHNYt99MQ59qw1": "Orca Swap v1",
    "9W959DqEETiGZocYWCQPaJ6sBmUzgfxXfqGeTEdp3aQP": "Orca Swap v2",
    # Raydium: AMM v4 from _EXPLORER; CLMM and CPMM (CP-Swap) from raydium-io program constants in public code.
    "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8": "Raydium AMM v4",
    "CAMMCzo5YL8w4VFF8KVHrK22GGUsp5VTaW7grrKgrWqK": "Raydium CLMM",
    "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C": "Raydium CPMM",
    # Meteora: DLMM, dynamic pools (DAMM v1) and DAMM v2, from Meteora SDK constants in public code.
    "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo": "Meteora DLMM",
    "Eo7WjKq67rjJQSZxS6z3YkapzY3eMj6Xy8X5EQVn5UaB": "Meteora Pools",
    "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG": "Meteora DAMM v2",
    # Pump: PumpSwap from pump-fun/pump-public-docs idl/pump_amm.json `address` and the PumpSwap buy fixture;
    # the pump.fun bonding curve from the `declare_id!` of public pump programs.
    "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P": "Pump.fun",
    "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA": "PumpSwap AMM",
    # Order books: Serum v3, OpenBook and Serum Swap from _EXPLORER (the Serum swap fixture runs through 22Y43y…);
    # OpenBook v2 and Phoenix from their SDKs' constants in public code.
    "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin": "Serum DEX v3",
    "srmqPvymJeFKQ4zGQed1GFppgkRHL9kaELCbyksJtPX": "OpenBook DEX",
    "opnb2LAfJYbRMAHHvqjCwQxanZn7ReEHp1k81EohpZb": "OpenBook v2",
    "22Y43yTVxuUkoRKdm9thyRhQ3SdgQS7c7kB6UNCiaczD": "Serum Swap",
    "PhoeNiXZ8ByJGLkxNfZRnkUfjvmuYqLR89jjFHGqdXY": "Phoenix",
    # Multisigs: Squads v4 from Squads-Protocol/v4 declare_id!; Squads v3 (squads-mpl) from its verified-build
    # commands (solana-verify … --program-id SMPLec…).
    "SQDS4ep65T869zMMBKyuUq6aD6EgTu8psMjkvj52pCf": "Squads Multisig v4",
    "SMPLecH534NA9acpos4G6x7uf3LWbCAwZQE9e8ZekMu": "Squads Multisig v3",
    # Staking, lending, bridges: from _EXPLORER.
    "MarBmsSgKXdrN1egZf5sqe1TMai9K1rChYNDJgjq7aD": "Marinade Finance",
    "mv3ekLzLbnVPNxjSKvqBpU3ZeZXPQdEC3bp5MDEBG68": "Mango v3",
    "So1endDq2YkqhipRh3WViPa8hdiSpxWy6z3Z6tMCpAo": "Solend",
    "wormDTUJ6AWPNvk59vGQbDvGJmqbDTdgWgAqcLBCgUb": "Wormhole Token Bridge",
    "SPoo1Ku8WFXoNDMHPsrGSTSG1Y47rzgn41SLUNakuHy": "SPL Stake Pool",
    # Native programs that can move lamports to the treasury (stake or vote withdrawals), from _EXPLORER;
    # jsonParsed replies name their instructions.
    "Stake11111111111111111111111111111111111111": "Stake Program",
    "Vote111111111111111111111111111111111111111": "Vote Program",
    "BPFLoaderUpgradeab1e11111111111111111111111": "BPF Upgradeable Loader",
    "AddressLookupTab1e1111111111111111111111111": "Address Lookup Table Program",
}

# Bundled Anchor IDLs (legacy format, which anchorpy-core 0.2 reads), by program id; sources in SOURCES.md there.
IDL_FILES: Final[Mapping[str, str]] = {
    JUPITER_V6_PROGRAM_ID: "jupiter_aggregator_v6.json",
    "SQDS4ep65T869zMMBKyuUq6aD6EgTu8psMjkvj52pCf": "squads_multisig_v4.json",
    "whirLbMiicVdio4qvUfM5KAg6Ct8VwpYzGff3uctyCc": "orca_whirlpool.json",
    "CAMMCzo5YL8w4VFF8KVHrK22GGUsp5VTaW7grrKgrWqK": "raydium_clmm.json",
    "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C": "raydium_cpmm.json",
    "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo": "meteora_dlmm.json",
}

_DISCRIMINATOR_BYTES: Final = 8


@dataclass(frozen=True, slots=True)
class ProgramLabel:
    program_id: str
    program: str  # human name, e.g. "Jupiter Aggregator v6"
    instruction: str | None  # e.g. "sharedAccountsRoute"; None when it cannot be named
    source: str  # SOURCE_IDL, SOURCE_TABLE or SOURCE_PARSED

    def text(self) -> str:
        """ "Program: instruction", or the program name alone."""
        return f"{self.program}: {self.instruction}" if self.instruction else self.program


class _TopLevel(msgspec.Struct, frozen=True):
    """One top-level instruction: its program and raw data, or the jsonParsed `type`."""

    program_id: str
    data: bytes | None
    parsed_type: str | None


def label_deposit(
    raw: str | bytes | Mapping[str, Any], instruction_path: str | None, program_id: str | None
) -> ProgramLabel | None:
    """The label of a deposit, from its stored getTransaction result (any encoding), the indexer's
    instruction path ("2", or "2.1" for an inner instruction of top-level 2) and recorded top-level program.

    The instruction at the path's top-level index wins over `program_id`; without a usable path, the first
    top-level instruction of `program_id` is read. None for plain transfers and unknown programs.
    """
    instructions = _top_level_instructions(raw)
    index = _top_level_index(instruction_path)
    chosen: _TopLevel | None = None
    if instructions is not None:
        if index is not None and index < len(instructions):
            chosen = instructions[index]
        elif program_id:
            chosen = next((item for item in instructions if item.program_id == program_id), None)
    if chosen is None or not chosen.program_id:
        # Nothing readable at the path: the recorded program still names where the deposit came from.
        return _table_label(program_id) if program_id else None
    return _label(chosen)


def _label(instruction: _TopLevel) -> ProgramLabel | None:
    program_id = instruction.program_id
    if program_id in PLAIN_PROGRAM_IDS:
        return None
    name = KNOWN_PROGRAMS.get(program_id)
    if name is None:
        return None
    if program_id in IDL_FILES and instruction.data is not None:
        decoded = _idl_instruction_name(program_id, instruction.data)
        if decoded is not None:
            return ProgramLabel(program_id, name, decoded, SOURCE_IDL)
    if instruction.parsed_type is not None:
        return ProgramLabel(program_id, name, instruction.parsed_type, SOURCE_PARSED)
    return ProgramLabel(program_id, name, None, SOURCE_TABLE)


def _table_label(program_id: str) -> ProgramLabel | None:
    if program_id in PLAIN_PROGRAM_IDS or program_id not in KNOWN_PROGRAMS:
        return None
    return ProgramLabel(program_id, KNOWN_PROGRAMS[program_id], None, SOURCE_TABLE)


def _top_level_index(instruction_path: str | None) -> int | None:
    if not instruction_path:
        return None
    head = instruction_path.split(".", 1)[0]
    if not (head.isascii() and head.isdigit()):
        return None
    return int(head)


# --- anchorpy: the bundled IDLs, read once ---


class _IdlNames:
    """Instruction names of one IDL by discriminator, as anchorpy's InstructionCoder derives them."""

    __slots__ = ("_names",)

    def __init__(self, idl_text: str) -> None:
        idl = Idl.from_json(idl_text)
        with warnings.catch_warnings():
            # anchorpy 0.21 builds enum layouts with attrs' deprecated `repr_ns` argument.
            warnings.simplefilter("ignore", DeprecationWarning)
            coder = InstructionCoder(idl)
        # anchorpy names instructions in snake_case; the label keeps the IDL's own spelling.
        spelled = {snake(instruction.name): instruction.name for instruction in idl.instructions}
        self._names: dict[bytes, str] = {
            bytes(discriminator): spelled.get(snake_name, snake_name)
            for discriminator, snake_name in coder.sighash_to_name.items()
        }

    def name(self, data: bytes) -> str | None:
        # Only the discriminator is matched: a router's arguments grow with each venue it adds (Jupiter's
        # Swap enum), so an older IDL would fail on newer routes while the name is still right.
        if len(data) < _DISCRIMINATOR_BYTES:
            return None
        return self._names.get(data[:_DISCRIMINATOR_BYTES])


@functools.cache
def _idl_names(program_id: str) -> _IdlNames | None:
    file_name = IDL_FILES.get(program_id)
    if file_name is None:
        return None
    try:
        text = importlib.resources.files("indexer").joinpath("data", "idls", file_name).read_text("utf-8")
        return _IdlNames(text)
    except Exception as exc:  # a bundled file anchorpy cannot read must not stop labelling
        _log.warning("bundled IDL unreadable", file=file_name, error=str(exc))
        return None


def _idl_instruction_name(program_id: str, data: bytes) -> str | None:
    names = _idl_names(program_id)
    return names.name(data) if names is not None else None


# --- the top-level instructions of a stored reply, in any encoding ---


def _top_level_instructions(raw: str | bytes | Mapping[str, Any]) -> list[_TopLevel] | None:
    """The top-level instructions, or None when the reply cannot be read."""
    try:
        result: Any = raw if isinstance(raw, Mapping) else json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        return None
    if isinstance(result, Mapping) and isinstance(result.get("result"), Mapping):
        result = result["result"]  # a whole JSON-RPC reply
    if not isinstance(result, Mapping):
        return None
    transaction = result.get("transaction")
    meta = result.get("meta")
    loaded = _loaded_addresses(meta if isinstance(meta, Mapping) else {})
    if isinstance(transaction, list):
        return _wire_instructions(transaction, loaded)
    if isinstance(transaction, Mapping):
        return _json_instructions(transaction, loaded)
    return None


def _loaded_addresses(meta: Mapping[str, Any]) -> list[str]:
    loaded = meta.get("loadedAddresses")
    if not isinstance(loaded, Mapping):
        return []
    writable = loaded.get("writable")
    readonly = loaded.get("readonly")
    keys = [*(writable if isinstance(writable, list) else []), *(readonly if isinstance(readonly, list) else [])]
    return [key for key in keys if isinstance(key, str)]


def _wire_instructions(transaction: list[Any], loaded: list[str]) -> list[_TopLevel] | None:
    if len(transaction) != 2 or transaction[1] != "base64" or not isinstance(transaction[0], str):
        return None
    try:
        decoded = wire.decode_transaction(base64.b64decode(transaction[0], validate=True))
    except (binascii.Error, ValueError):  # WireFormatError is a ValueError
        return None
    keys = [based58.b58encode(key).decode("ascii") for key in decoded.keys] + loaded
    return [
        _TopLevel(_key_at(keys, instruction.program_id_index), instruction.data, None)
        for instruction in decoded.instructions
    ]


def _json_instructions(transaction: Mapping[str, Any], loaded: list[str]) -> list[_TopLevel] | None:
    message = transaction.get("message")
    if not isinstance(message, Mapping):
        return None
    account_keys = message.get("accountKeys")
    instructions = message.get("instructions")
    if not isinstance(account_keys, list) or not isinstance(instructions, list):
        return None
    if account_keys and isinstance(account_keys[0], Mapping):
        # jsonParsed: the list already holds the loaded addresses.
        keys = [str(key.get("pubkey", "")) if isinstance(key, Mapping) else "" for key in account_keys]
    else:
        keys = [key if isinstance(key, str) else "" for key in account_keys] + loaded
    return [_json_instruction(instruction, keys) for instruction in instructions]


def _json_instruction(instruction: Any, keys: Sequence[str]) -> _TopLevel:
    if not isinstance(instruction, Mapping):
        return _TopLevel("", None, None)
    program_id = instruction.get("programId")
    if not isinstance(program_id, str):
        index = instruction.get("programIdIndex")
        program_id = _key_at(keys, index) if isinstance(index, int) else ""
    data: bytes | None = None
    text = instruction.get("data")
    if isinstance(text, str):
        try:
            data = ix.b58decode(text)
        except ix.InstructionDataError:
            data = None
    parsed = instruction.get("parsed")
    parsed_type = parsed.get("type") if isinstance(parsed, Mapping) else None
    return _TopLevel(program_id, data, parsed_type if isinstance(parsed_type, str) else None)


def _key_at(keys: Sequence[str], index: int) -> str:
    return keys[index] if 0 <= index < len(keys) else ""
