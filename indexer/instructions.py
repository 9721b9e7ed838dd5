"""Instructions of a transaction, normalised across RPC encodings. Pure.

`jsonParsed` replies describe System, Token, associated-token and Memo instructions as
`{"type": …, "info": {…}}`; `json` and `base64` replies carry raw program data. The few raw
instructions the indexer reads (transfers, mints, burns, account initialisation, memos) are decoded
here into the field names `jsonParsed` uses, so the rest of the parser reads one shape. Instructions of
other programs are named (program id, position) but never decoded. Instructions only annotate
deposits (memo, sender, the instruction that moved them); amounts always come from balance deltas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import based58
import msgspec
from solders.pubkey import Pubkey

from pricing.assets import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

SYSTEM_PROGRAM_ID: Final = "11111111111111111111111111111111"
ASSOCIATED_TOKEN_PROGRAM_ID: Final = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
MEMO_V1_PROGRAM_ID: Final = "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"
MEMO_V2_PROGRAM_ID: Final = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
MEMO_PROGRAM_IDS: Final = frozenset({MEMO_V1_PROGRAM_ID, MEMO_V2_PROGRAM_ID})
TOKEN_PROGRAM_IDS: Final = frozenset({TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID})
# Only these programs' instructions are decoded; others (routers, compute budget) are named, not read.
DECODED_PROGRAM_IDS: Final = frozenset(
    {SYSTEM_PROGRAM_ID, ASSOCIATED_TOKEN_PROGRAM_ID, *MEMO_PROGRAM_IDS, *TOKEN_PROGRAM_IDS}
)

# Kinds (jsonParsed `type` names) that move value, by where they move it.
SOL_TRANSFER_KINDS: Final = frozenset({"transfer", "transferWithSeed", "createAccount", "createAccountWithSeed"})
TOKEN_TRANSFER_KINDS: Final = frozenset({"transfer", "transferChecked", "transferCheckedWithFee"})
TOKEN_MINT_KINDS: Final = frozenset({"mintTo", "mintToChecked"})
TOKEN_BURN_KINDS: Final = frozenset({"burn", "burnChecked"})
TOKEN_INIT_KINDS: Final = frozenset({"initializeAccount", "initializeAccount2", "initializeAccount3"})
ATA_CREATE_KINDS: Final = frozenset({"create", "createIdempotent"})
MEMO_KIND: Final = "memo"

_MAX_DATA_CHARS: Final = 4096  # longer base58 data is no transfer or memo we read


class InstructionDataError(ValueError):
    """Instruction data that is not valid base58."""


def b58decode(text: str) -> bytes:
    """Decode base58 instruction data; raises InstructionDataError when it is not base58."""
    if len(text) > _MAX_DATA_CHARS:
        raise InstructionDataError("instruction data too long")
    try:
        return bytes(based58.b58decode(text.encode("ascii")))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InstructionDataError(str(exc)) from None


class Instruction(msgspec.Struct, frozen=True):
    """One decoded instruction: top-level (`path` "3") or inner ("3.1": inner 1 of top-level 3)."""

    path: str
    top_level_program: str
    program_id: str
    kind: str | None  # the jsonParsed `type`, "memo" for memos, None when not one we read
    info: dict[str, Any]


def decode_raw(program_id: str, accounts: Sequence[str], data: bytes) -> tuple[str | None, dict[str, Any]]:
    """Kind and info (jsonParsed field names) of a raw instruction of a program in DECODED_PROGRAM_IDS."""
    if program_id == SYSTEM_PROGRAM_ID:
        return _decode_system(accounts, data)
    if program_id in TOKEN_PROGRAM_IDS:
        return _decode_token(accounts, data)
    if program_id == ASSOCIATED_TOKEN_PROGRAM_ID:
        return _decode_associated_token(accounts, data)
    if program_id in MEMO_PROGRAM_IDS:
        return MEMO_KIND, {"memo": data.decode("utf-8", errors="replace")}
    return None, {}


def _u64(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 8], "little")


def _decode_system(accounts: Sequence[str], data: bytes) -> tuple[str | None, dict[str, Any]]:
    if len(data) < 12:
        return None, {}
    tag = int.from_bytes(data[:4], "little")
    if tag == 2 and len(accounts) >= 2:
        return "transfer", {"source": accounts[0], "destination": accounts[1], "lamports": _u64(data, 4)}
    if tag == 11 and len(accounts) >= 3:
        return "transferWithSeed", {"source": accounts[0], "destination": accounts[2], "lamports": _u64(data, 4)}
    if tag == 0 and len(accounts) >= 2:
        return "createAccount", {"source": accounts[0], "newAccount": accounts[1], "lamports": _u64(data, 4)}
    return None, {}


def _decode_token(accounts: Sequence[str], data: bytes) -> tuple[str | None, dict[str, Any]]:
    if not data:
        return None, {}
    tag = data[0]
    count = len(accounts)
    if tag == 3 and count >= 3 and len(data) >= 9:
        return "transfer", {
            "source": accounts[0],
            "destination": accounts[1],
            "authority": accounts[2],
            "amount": str(_u64(data, 1)),
        }
    if tag == 12 and count >= 4 and len(data) >= 10:
        return "transferChecked", {
            "source": accounts[0],
            "mint": accounts[1],
            "destination": accounts[2],
            "authority": accounts[3],
            "tokenAmount": {"amount": str(_u64(data, 1)), "decimals": data[9]},
        }
    if tag == 26 and len(data) >= 2 and data[1] == 1 and count >= 4:
        return "transferCheckedWithFee", {
            "source": accounts[0],
            "mint": accounts[1],
            "destination": accounts[2],
            "authority": accounts[3],
        }
    if tag in (7, 14) and count >= 3 and len(data) >= 9:
        kind = "mintTo" if tag == 7 else "mintToChecked"
        return kind, {"mint": accounts[0], "account": accounts[1], "mintAuthority": accounts[2]}
    if tag in (8, 15) and count >= 3 and len(data) >= 9:
        kind = "burn" if tag == 8 else "burnChecked"
        return kind, {
            "account": accounts[0],
            "mint": accounts[1],
            "authority": accounts[2],
            "amount": str(_u64(data, 1)),
        }
    if tag == 1 and count >= 3:
        return "initializeAccount", {"account": accounts[0], "mint": accounts[1], "owner": accounts[2]}
    if tag in (16, 18) and count >= 2 and len(data) >= 33:
        kind = "initializeAccount2" if tag == 16 else "initializeAccount3"
        return kind, {"account": accounts[0], "mint": accounts[1], "owner": str(Pubkey.from_bytes(data[1:33]))}
    if tag == 9 and count >= 3:
        return "closeAccount", {"account": accounts[0], "destination": accounts[1], "owner": accounts[2]}
    return None, {}


def _decode_associated_token(accounts: Sequence[str], data: bytes) -> tuple[str | None, dict[str, Any]]:
    if len(accounts) < 4 or (data and data[0] not in (0, 1)):
        return None, {}
    kind = "createIdempotent" if data and data[0] == 1 else "create"
    return kind, {"source": accounts[0], "account": accounts[1], "wallet": accounts[2], "mint": accounts[3]}
