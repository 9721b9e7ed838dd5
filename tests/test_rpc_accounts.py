"""SPL account layouts on recorded mint data: PYUSD (Token-2022 with extensions) and USDC (Token).
Expected values come from ../shared/fixtures/SOURCES.md, which decoded the same bytes independently."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from indexer.rpc.accounts import (
    AccountLayoutError,
    decode_mint,
    decode_token_account,
    encode_mint,
    encode_token_account,
)

RPC_DATA = Path(__file__).parent / "data" / "rpc"
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
SYSTEM = "11111111111111111111111111111111"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def pyusd_data() -> bytes:
    return base64.b64decode((RPC_DATA / "pyusd_mint_account_data_base64.txt").read_text().strip())


def usdc_data() -> bytes:
    document = orjson.loads((RPC_DATA / "usdc_mint_getaccountinfo_base64_response.json").read_bytes())
    return base64.b64decode(document["result"]["value"]["data"][0])


def test_pyusd_token_2022_mint_with_extensions() -> None:
    data = pyusd_data()
    assert len(data) == 866  # SOURCES.md
    mint = decode_mint(data, TOKEN_2022)
    assert mint.decimals == 6
    assert mint.token_program == TOKEN_2022
    assert mint.supply_raw == 126875521509678  # SOURCES.md: supply 126875521509678 (6 dp)
    assert mint.mint_authority is not None and mint.mint_authority.startswith("FtrZqgM9")
    assert mint.freeze_authority is not None and mint.freeze_authority.startswith("2apBGMs")
    # SOURCES.md: TLV extensions 3,12,1,4,16,14,18,19.
    assert mint.extension_types == (3, 12, 1, 4, 16, 14, 18, 19)


def test_usdc_token_mint() -> None:
    data = usdc_data()
    assert len(data) == 82
    mint = decode_mint(data, TOKEN)
    assert mint.decimals == 6
    assert mint.token_program == TOKEN
    assert mint.supply_raw == 5034942469126966  # SOURCES.md
    assert mint.extension_types == ()
    assert mint.mint_authority is not None
    assert mint.freeze_authority is not None


def test_owner_program_decides_and_is_checked() -> None:
    with pytest.raises(AccountLayoutError, match="not by the Token or Token-2022 program"):
        decode_mint(usdc_data(), SYSTEM)
    # 866 bytes owned by the classic Token program cannot be a mint: it has exactly 82.
    with pytest.raises(AccountLayoutError, match="exactly 82"):
        decode_mint(pyusd_data(), TOKEN)


def test_bad_layouts() -> None:
    with pytest.raises(AccountLayoutError, match="at least 82"):
        decode_mint(usdc_data()[:81], TOKEN)
    uninitialised = bytearray(usdc_data())
    uninitialised[45] = 0
    with pytest.raises(AccountLayoutError, match="not initialised"):
        decode_mint(bytes(uninitialised), TOKEN)
    token_account = bytearray(pyusd_data())
    token_account[165] = 2  # account type 2 = token account, not a mint
    with pytest.raises(AccountLayoutError, match="account type 2"):
        decode_mint(bytes(token_account), TOKEN_2022)
    truncated_extension = pyusd_data()[:300]  # inside the third extension
    with pytest.raises(AccountLayoutError, match="runs past the end"):
        decode_mint(truncated_extension, TOKEN_2022)


def test_synthesised_mint_and_token_account_round_trip() -> None:
    data = encode_mint(decimals=9, supply_raw=123_456, mint_authority=None, freeze_authority=USDC)
    assert len(data) == 82
    mint = decode_mint(data, TOKEN)
    assert (mint.decimals, mint.supply_raw, mint.mint_authority, mint.freeze_authority) == (9, 123_456, None, USDC)
    account = encode_token_account(mint=USDC, owner=TOKEN_2022, amount_raw=2**64 - 1)
    assert len(account) == 165
    assert decode_token_account(account) == (USDC, TOKEN_2022, 2**64 - 1)
