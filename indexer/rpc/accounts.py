"""SPL account layouts: decoding mint accounts (Token and Token-2022) and building them. Pure.

A mint is 82 bytes (spl-token `Mint::LEN`): mint authority `COption<Pubkey>` (4 + 32), supply u64,
decimals u8 at offset 44, is_initialized, freeze authority `COption<Pubkey>`. A Token-2022 mint
with extensions is padded with zeros to 165 bytes (the token account length, so the two kinds can be
told apart), then one account-type byte (1 = mint) at offset 165, then TLV entries (u16 type, u16
length, value). The owning program, not the layout, says Token vs Token-2022.

Token accounts are 165 bytes: mint, owner, amount u64 at offset 64, delegate, state, is_native,
delegated amount, close authority; the same in Token-2022, whose extensions follow likewise.

Errors:
    AccountLayoutError   the bytes are not the layout asked for (the message says why)
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

import based58

from pricing.assets import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

MINT_LENGTH: Final = 82
TOKEN_ACCOUNT_LENGTH: Final = 165
ACCOUNT_TYPE_MINT: Final = 1
ACCOUNT_TYPE_ACCOUNT: Final = 2
TOKEN_PROGRAMS: Final = frozenset({TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID})
_MAX_EXTENSIONS: Final = 64  # a real mint carries a dozen at most; bounds the TLV walk


class AccountLayoutError(ValueError):
    """The bytes are not the SPL account layout asked for."""


class MintInfo(NamedTuple):
    """What check_mint learns about a mint from its account."""

    decimals: int
    token_program: str  # the owning program: Token or Token-2022
    supply_raw: int
    mint_authority: str | None  # None: revoked
    freeze_authority: str | None  # None: revoked
    extension_types: tuple[int, ...] = ()  # Token-2022 TLV types, in account order


def decode_mint(data: bytes, owner_program: str) -> MintInfo:
    """Decode a mint account's data; `owner_program` is the account's owner as the node reported it."""
    if owner_program not in TOKEN_PROGRAMS:
        raise AccountLayoutError(f"owned by {owner_program}, not by the Token or Token-2022 program")
    if len(data) < MINT_LENGTH:
        raise AccountLayoutError(f"{len(data)} bytes, a mint has at least {MINT_LENGTH}")
    extension_types: tuple[int, ...] = ()
    if len(data) > MINT_LENGTH:
        if owner_program != TOKEN_2022_PROGRAM_ID:
            raise AccountLayoutError(f"{len(data)} bytes: a Token program mint has exactly {MINT_LENGTH}")
        if len(data) <= TOKEN_ACCOUNT_LENGTH:
            raise AccountLayoutError(f"{len(data)} bytes: neither a plain mint nor a mint with extensions")
        if data[TOKEN_ACCOUNT_LENGTH] != ACCOUNT_TYPE_MINT:
            raise AccountLayoutError(f"account type {data[TOKEN_ACCOUNT_LENGTH]} at offset 165, not a mint")
        if any(data[MINT_LENGTH:TOKEN_ACCOUNT_LENGTH]):
            raise AccountLayoutError("padding between the mint and its extensions is not zero")
        extension_types = _extension_types(data, TOKEN_ACCOUNT_LENGTH + 1)
    mint_authority = _option_key(data, 0)
    (supply_raw,) = struct.unpack_from("<Q", data, 36)
    decimals = data[44]
    if data[45] != 1:
        raise AccountLayoutError("the mint is not initialised")
    freeze_authority = _option_key(data, 46)
    return MintInfo(decimals, owner_program, supply_raw, mint_authority, freeze_authority, extension_types)


def _option_key(data: bytes, offset: int) -> str | None:
    (tag,) = struct.unpack_from("<I", data, offset)
    if tag == 0:
        return None
    if tag != 1:
        raise AccountLayoutError(f"bad option tag {tag} at offset {offset}")
    return based58.b58encode(data[offset + 4 : offset + 36]).decode("ascii")


def _extension_types(data: bytes, offset: int) -> tuple[int, ...]:
    types: list[int] = []
    for _ in range(_MAX_EXTENSIONS):
        if offset + 4 > len(data):
            break
        kind, length = struct.unpack_from("<HH", data, offset)
        if kind == 0:  # "uninitialized": the rest is unused space
            break
        if offset + 4 + length > len(data):
            raise AccountLayoutError(f"extension {kind} runs past the end of the account")
        types.append(kind)
        offset += 4 + length
    else:
        raise AccountLayoutError(f"more than {_MAX_EXTENSIONS} extensions")
    return tuple(types)


def encode_mint(
    *,
    decimals: int,
    supply_raw: int = 0,
    mint_authority: str | None = None,
    freeze_authority: str | None = None,
) -> bytes:
    """An 82-byte mint account (no extensions), for the replay server's synthesised accounts."""
    return (
        _encode_option_key(mint_authority)
        + struct.pack("<QBB", supply_raw, decimals, 1)
        + _encode_option_key(freeze_authority)
    )


def encode_token_account(*, mint: str, owner: str, amount_raw: int) -> bytes:
    """A 165-byte initialised token account (no delegate, not native, no close authority)."""
    state_initialized = 1
    return (
        _key_bytes(mint)
        + _key_bytes(owner)
        + struct.pack("<Q", amount_raw)
        + _encode_option_key(None)  # delegate
        + bytes([state_initialized])
        + struct.pack("<IQ", 0, 0)  # is_native: None
        + struct.pack("<Q", 0)  # delegated amount
        + _encode_option_key(None)  # close authority
    )


def decode_token_account(data: bytes) -> tuple[str, str, int]:
    """(mint, owner, amount_raw) of a token account's data."""
    if len(data) < TOKEN_ACCOUNT_LENGTH:
        raise AccountLayoutError(f"{len(data)} bytes, a token account has at least {TOKEN_ACCOUNT_LENGTH}")
    mint = based58.b58encode(data[0:32]).decode("ascii")
    owner = based58.b58encode(data[32:64]).decode("ascii")
    (amount_raw,) = struct.unpack_from("<Q", data, 64)
    return mint, owner, amount_raw


def _encode_option_key(key: str | None) -> bytes:
    if key is None:
        return bytes(36)
    return struct.pack("<I", 1) + _key_bytes(key)


def _key_bytes(key: str) -> bytes:
    raw = bytes(based58.b58decode(key.encode("ascii")))
    if len(raw) != 32:
        raise AccountLayoutError(f"not a 32-byte address: {key[:60]!r}")
    return raw
