"""The Solana transaction wire format (legacy and v0), read just far enough for the parser. Pure.

solders decodes the same bytes, but builds a Python object per key and per instruction; the parser
needs raw key bytes to compare with watched wallets and only a few of them as text, so this reader
slices the bytes and leaves text encoding to the caller (docs/BENCHMARKS.md has the figures).

Errors:
    WireFormatError   the bytes are not a transaction (truncated, bad lengths, unknown version)
"""

from __future__ import annotations

from typing import NamedTuple

_SIGNATURE_BYTES = 64
_KEY_BYTES = 32


class WireFormatError(ValueError):
    """The bytes are not a legacy or v0 transaction."""


class WireInstruction(NamedTuple):
    program_id_index: int
    accounts: bytes  # one byte per account index
    data: bytes


class WireTransaction(NamedTuple):
    signatures: list[bytes]
    num_required_signatures: int
    keys: list[bytes]  # static account keys, 32 bytes each
    instructions: list[WireInstruction]


def _compact_u16(data: bytes, offset: int) -> tuple[int, int]:
    value = 0
    for shift in (0, 7, 14):
        if offset >= len(data):
            raise WireFormatError("truncated length")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
    raise WireFormatError("length longer than 3 bytes")


def _take(data: bytes, offset: int, size: int) -> tuple[bytes, int]:
    end = offset + size
    if end > len(data):
        raise WireFormatError("truncated transaction")
    return data[offset:end], end


def decode_transaction(data: bytes) -> WireTransaction:
    """Signatures, header count, static keys and top-level instructions of a serialised transaction."""
    count, offset = _compact_u16(data, 0)
    signatures = []
    for _ in range(count):
        signature, offset = _take(data, offset, _SIGNATURE_BYTES)
        signatures.append(signature)
    if offset >= len(data):
        raise WireFormatError("no message")
    if data[offset] & 0x80:
        version = data[offset] & 0x7F
        if version != 0:
            raise WireFormatError(f"unsupported transaction version {version}")
        offset += 1
    header, offset = _take(data, offset, 3)
    key_count, offset = _compact_u16(data, offset)
    keys = []
    for _ in range(key_count):
        key, offset = _take(data, offset, _KEY_BYTES)
        keys.append(key)
    _, offset = _take(data, offset, _KEY_BYTES)  # recent blockhash
    instruction_count, offset = _compact_u16(data, offset)
    instructions = []
    for _ in range(instruction_count):
        if offset >= len(data):
            raise WireFormatError("truncated instruction")
        program_id_index = data[offset]
        account_count, offset = _compact_u16(data, offset + 1)
        accounts, offset = _take(data, offset, account_count)
        data_length, offset = _compact_u16(data, offset)
        payload, offset = _take(data, offset, data_length)
        instructions.append(WireInstruction(program_id_index, accounts, payload))
    # v0 address-table lookups follow; the loaded addresses themselves come from the reply's meta.
    return WireTransaction(signatures, header[0], keys, instructions)
