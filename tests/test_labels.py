"""Program labels on real recorded transactions (tests/data/solana, copies of shared/fixtures/solana).

Expected program ids are read off the fixtures by hand (the comments say where); discriminators are
sha256("global:<snake_case_name>")[:8], checked here against the instruction bytes seen in the fixture.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import based58
import pytest
from solders.hash import Hash
from solders.instruction import CompiledInstruction
from solders.message import Message, MessageHeader, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from indexer.labels import IDL_FILES, KNOWN_PROGRAMS, ProgramLabel, _idl_names, label_deposit
from tests.conftest import SOLANA

PUMPSWAP = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
SERUM_SWAP = "22Y43yTVxuUkoRKdm9thyRhQ3SdgQS7c7kB6UNCiaczD"
ORCA_SWAP_V1 = "DjVE6JNiYqPL2QXyCUUh8rNjHrbz9hXHNYt99MQ59qw1"
JUPITER_V6 = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"
VOTE = "Vote111111111111111111111111111111111111111"
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"


def read(name: str) -> str:
    return (SOLANA / name).read_text()


def result_of(name: str) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(read(name))
    return reply.get("result", reply)


def discriminator(snake_name: str) -> bytes:
    return hashlib.sha256(f"global:{snake_name}".encode()).digest()[:8]


# --- json encoding ---


def test_pumpswap_buy_json_v0() -> None:
    # Top-level 1 has programIdIndex 13 = accountKeys[13] = pAMMBay6… (PumpSwap AMM). Its data begins
    # 66 06 3d 12 01 da eb ea = sha256("global:buy")[:8], the `buy` discriminator that pump-fun's
    # idl/pump_amm.json lists as [102, 6, 61, 18, 1, 218, 235, 234]. That IDL is in the Anchor 0.30 format,
    # which anchorpy-core 0.2 cannot read, so PumpSwap is named from the table, without instruction.
    data = based58.b58decode(
        result_of("pumpswap_buy_token2022_transferchecked_v0_json_response.json")["transaction"]["message"][
            "instructions"
        ][1]["data"].encode()
    )
    assert bytes(data[:8]) == discriminator("buy") == bytes([102, 6, 61, 18, 1, 218, 235, 234])
    # The Token-2022 TransferChecked is inner instruction 2 of top-level 1: labelled by the top level.
    label = label_deposit(read("pumpswap_buy_token2022_transferchecked_v0_json_response.json"), "1.2", None)
    assert label == ProgramLabel(PUMPSWAP, "PumpSwap AMM", None, "table")
    assert label is not None and label.text() == "PumpSwap AMM"


def test_top_level_ata_create_is_plain() -> None:
    # Top-level 0 is the associated-token program (index 9 = ATokenGP…): a plain path gets no label.
    assert label_deposit(read("pumpswap_buy_token2022_transferchecked_v0_json_response.json"), "0.1", None) is None


# --- jsonParsed encoding ---


def test_serum_swap_inner_transfer_jsonparsed() -> None:
    # Top-level 5 is programId 22Y43y… (Serum Swap); inner 5.1 is a Token transfer and 5.0 a Serum DEX v3
    # CPI (9xQeWv…): the label names the top level, not the inner programs.
    result = result_of("serum_swap_usdc_inner_transfers_jsonparsed_result.json")
    assert result["transaction"]["message"]["instructions"][5]["programId"] == SERUM_SWAP
    inner = result["meta"]["innerInstructions"][1]
    assert inner["index"] == 5 and inner["instructions"][1]["programId"] == TOKEN
    # Its data starts f8 c6 9e 91 e1 75 87 c8 = sha256("global:swap")[:8]; no Serum Swap IDL is bundled.
    data = based58.b58decode(result["transaction"]["message"]["instructions"][5]["data"].encode())
    assert bytes(data[:8]) == discriminator("swap") == bytes.fromhex("f8c69e91e17587c8")
    label = label_deposit(read("serum_swap_usdc_inner_transfers_jsonparsed_result.json"), "5.1", None)
    assert label == ProgramLabel(SERUM_SWAP, "Serum Swap", None, "table")


def test_failed_orca_swap_jsonparsed() -> None:
    # Top-level 3 is programId DjVE6J… (Orca Swap v1, a token-swap fork: not Anchor, no IDL).
    label = label_deposit(read("failed_orca_swap_jsonparsed_result.json"), "3", None)
    assert label == ProgramLabel(ORCA_SWAP_V1, "Orca Swap v1", None, "table")
    assert label.text() == "Orca Swap v1"


def test_parsed_type_names_a_native_program() -> None:
    # The vote transaction's instruction 0 is jsonParsed {"type": "vote"} of Vote111…; in the json
    # encoding of the same transaction the RPC names nothing, so the label is the table's name alone.
    assert label_deposit(read("vote_tx_jsonparsed_response.json"), "0", None) == ProgramLabel(
        VOTE, "Vote Program", "vote", "parsed"
    )
    assert label_deposit(read("vote_tx_json_response.json"), "0", None) == ProgramLabel(
        VOTE, "Vote Program", None, "table"
    )


# --- plain transfers ---


@pytest.mark.parametrize(
    "name",
    [
        "sol_transfer_jsonparsed_result.json",  # System transfer at 0
        "spl_transfer_jsonparsed_result.json",  # Token transfer at 0
        "spl_transferchecked_jsonparsed_result.json",  # Token transferChecked at 0
        "sol_transfer_computebudget_memo_v0_json_response.json",  # System transfer at 0 (json, v0)
        "sol_transfer_devnet_base64_result.json",  # System transfer at 0 (base64)
    ],
)
def test_plain_transfers_get_no_label(name: str) -> None:
    assert label_deposit(read(name), "0", None) is None


def test_compute_budget_and_memo_are_plain() -> None:
    # sol_transfer_computebudget_memo_v0: 1 and 2 are ComputeBudget111…, 3 is the Memo v2 program.
    for path in ("1", "2", "3"):
        assert label_deposit(read("sol_transfer_computebudget_memo_v0_json_response.json"), path, None) is None


# --- base64 encoding ---


def _as_base64_v0(result: dict[str, Any]) -> dict[str, Any]:
    """The same json-encoded v0 transaction serialised to wire bytes with solders, as a base64 reply."""
    message = result["transaction"]["message"]
    header = message["header"]
    v0 = MessageV0(
        MessageHeader(
            header["numRequiredSignatures"], header["numReadonlySignedAccounts"], header["numReadonlyUnsignedAccounts"]
        ),
        [Pubkey.from_string(key) for key in message["accountKeys"]],
        Hash.from_string(message["recentBlockhash"]),
        [
            CompiledInstruction(
                item["programIdIndex"], based58.b58decode(item["data"].encode()), bytes(item["accounts"])
            )
            for item in message["instructions"]
        ],
        [],  # addressTableLookups is [] in this fixture
    )
    signatures = [Signature.from_string(text) for text in result["transaction"]["signatures"]]
    wire = VersionedTransaction.populate(v0, signatures)
    converted = copy.deepcopy(result)
    converted["transaction"] = [base64.b64encode(bytes(wire)).decode(), "base64"]
    return converted


def test_pumpswap_buy_base64() -> None:
    result = result_of("pumpswap_buy_token2022_transferchecked_v0_json_response.json")
    converted = _as_base64_v0(result)
    assert label_deposit(converted, "1.2", None) == ProgramLabel(PUMPSWAP, "PumpSwap AMM", None, "table")
    # The converted reply as JSON text too.
    assert label_deposit(json.dumps(converted), "1", None) == ProgramLabel(PUMPSWAP, "PumpSwap AMM", None, "table")


def test_base64_fixture_through_the_vote_program() -> None:
    # vote_tx_base64_response.json: keys decoded from the bytes, instruction 0 runs Vote111….
    assert label_deposit(read("vote_tx_base64_response.json"), "0", None) == ProgramLabel(
        VOTE, "Vote Program", None, "table"
    )


# --- v0 with loaded addresses ---


def test_program_in_the_loaded_addresses() -> None:
    # arbitrage_multi_dex: 17 static keys, then 8 loaded writable (17–24), then 10 loaded readonly (25–34).
    # Readonly[5] = key 30 = pAMMBay6… (PumpSwap). The recorded instruction 0 runs Ceu4aCc… (static key 16,
    # an arbitrage bot not in the table): no label. Pointing it at key 30 shows the loaded part is counted.
    name = "arbitrage_multi_dex_v0_alt_loadedaddresses_json_response.json"
    result = result_of(name)
    assert result["meta"]["loadedAddresses"]["readonly"][5] == PUMPSWAP
    assert len(result["transaction"]["message"]["accountKeys"]) == 17
    assert label_deposit(read(name), "0", None) is None
    moved = copy.deepcopy(result)
    moved["transaction"]["message"]["instructions"][0]["programIdIndex"] = 17 + 8 + 5
    assert label_deposit(moved, "0", None) == ProgramLabel(PUMPSWAP, "PumpSwap AMM", None, "table")


# --- Jupiter, decoded with the bundled IDL ---
# No recorded fixture passes through Jupiter, so these transactions are built here; the discriminators
# are the published ones: sharedAccountsRoute [193, 32, 155, 51, 65, 214, 156, 129], route
# [229, 23, 203, 151, 122, 227, 173, 42] (e.g. the Jupiter v6 program constants of public tx parsers).

SHARED_ACCOUNTS_ROUTE = bytes([193, 32, 155, 51, 65, 214, 156, 129])
ROUTE = bytes([229, 23, 203, 151, 122, 227, 173, 42])


def _jupiter_legacy(data: bytes) -> dict[str, Any]:
    """A legacy transaction: fee payer 1…(32 ones), Jupiter v6 at key 1, one Jupiter instruction."""
    payer = Pubkey(bytes([1] * 32))
    jupiter = Pubkey.from_string(JUPITER_V6)
    message = Message.new_with_compiled_instructions(
        1, 0, 1, [payer, jupiter], Hash(bytes(32)), [CompiledInstruction(1, data, bytes([0]))]
    )
    wire = VersionedTransaction.populate(message, [Signature(bytes(64))])
    return {
        "slot": 1,
        "meta": {"err": None, "preBalances": [1, 1], "postBalances": [1, 1]},
        "transaction": [base64.b64encode(bytes(wire)).decode(), "base64"],
    }


def test_jupiter_shared_accounts_route_in_three_encodings() -> None:
    assert discriminator("shared_accounts_route") == SHARED_ACCOUNTS_ROUTE
    # id 0, empty route plan, in 1_000, quoted out 990, slippage 50 bps, platform fee 0.
    args = bytes([0]) + (0).to_bytes(4, "little") + (1000).to_bytes(8, "little") + (990).to_bytes(8, "little")
    args += (50).to_bytes(2, "little") + bytes([0])
    data = SHARED_ACCOUNTS_ROUTE + args
    expected = ProgramLabel(JUPITER_V6, "Jupiter Aggregator v6", "sharedAccountsRoute", "idl")
    as_base64 = _jupiter_legacy(data)
    assert label_deposit(as_base64, "0.3", JUPITER_V6) == expected
    assert expected.text() == "Jupiter Aggregator v6: sharedAccountsRoute"
    keys = ["11111111111111111111111111111111", JUPITER_V6]  # any fee payer: only the program key matters
    encoded = based58.b58encode(data).decode()
    as_json = {
        "meta": {"err": None},
        "transaction": {
            "signatures": ["1" * 64],
            "message": {
                "accountKeys": keys,
                "header": {"numRequiredSignatures": 1},
                "instructions": [{"programIdIndex": 1, "accounts": [0], "data": encoded}],
            },
        },
    }
    assert label_deposit(json.dumps(as_json), "0", None) == expected
    as_parsed = copy.deepcopy(as_json)
    as_parsed["transaction"]["message"]["accountKeys"] = [{"pubkey": key, "signer": False} for key in keys]
    as_parsed["transaction"]["message"]["instructions"] = [
        {"programId": JUPITER_V6, "accounts": [keys[0]], "data": encoded}
    ]
    assert label_deposit(as_parsed, "0.1", None) == expected


def test_jupiter_route_discriminator_alone_names_it() -> None:
    assert discriminator("route") == ROUTE
    # Arguments are not needed for the name (and not checked: newer routes add Swap variants).
    assert label_deposit(_jupiter_legacy(ROUTE), "0", None) == ProgramLabel(
        JUPITER_V6, "Jupiter Aggregator v6", "route", "idl"
    )


def test_unknown_or_truncated_discriminator_keeps_the_program() -> None:
    unnamed = ProgramLabel(JUPITER_V6, "Jupiter Aggregator v6", None, "table")
    assert label_deposit(_jupiter_legacy(bytes(8) + b"\x01"), "0", None) == unnamed  # no instruction hashes to 0s
    assert label_deposit(_jupiter_legacy(SHARED_ACCOUNTS_ROUTE[:7]), "0", None) == unnamed  # 7 of 8 bytes
    assert label_deposit(_jupiter_legacy(b""), "0", None) == unnamed


def test_the_wire_bytes_carry_the_program_key() -> None:
    # Guard for the hand-built transaction: key 1 of the serialised message is Jupiter v6.
    transaction = VersionedTransaction.from_bytes(base64.b64decode(_jupiter_legacy(ROUTE)["transaction"][0]))
    assert str(transaction.message.account_keys[1]) == JUPITER_V6


# --- Squads v4, Orca Whirlpool, Raydium CLMM and CPMM, Meteora DLMM, decoded with their bundled IDLs ---
# Built here like the Jupiter ones (no recorded fixture runs through them). Each discriminator is worked out
# by hand as sha256("global:<snake_case_name>")[:8]; where the program's own newer (Anchor 0.30) IDL
# publishes it, the bytes are compared with that too.

SQUADS_V4 = "SQDS4ep65T869zMMBKyuUq6aD6EgTu8psMjkvj52pCf"
WHIRLPOOL = "whirLbMiicVdio4qvUfM5KAg6Ct8VwpYzGff3uctyCc"
RAYDIUM_CLMM = "CAMMCzo5YL8w4VFF8KVHrK22GGUsp5VTaW7grrKgrWqK"
RAYDIUM_CPMM = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
METEORA_DLMM = "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"


def _one_instruction_base64(program_id: str, data: bytes) -> dict[str, Any]:
    """A legacy transaction in the base64 encoding: fee payer 1…, `program_id` at key 1, one instruction."""
    payer = Pubkey(bytes([1] * 32))
    message = Message.new_with_compiled_instructions(
        1, 0, 1, [payer, Pubkey.from_string(program_id)], Hash(bytes(32)), [CompiledInstruction(1, data, bytes([0]))]
    )
    wire = VersionedTransaction.populate(message, [Signature(bytes(64))])
    return {"slot": 1, "meta": {"err": None}, "transaction": [base64.b64encode(bytes(wire)).decode(), "base64"]}


def _one_instruction_json(program_id: str, data: bytes) -> dict[str, Any]:
    """The same transaction in the json encoding (data in base58)."""
    return {
        "meta": {"err": None},
        "transaction": {
            "signatures": ["1" * 64],
            "message": {
                "accountKeys": ["11111111111111111111111111111111", program_id],
                "header": {"numRequiredSignatures": 1},
                "instructions": [{"programIdIndex": 1, "accounts": [0], "data": based58.b58encode(data).decode()}],
            },
        },
    }


def test_squads_v4_vault_transaction_execute() -> None:
    # A payment out of a Squads vault runs vault_transaction_execute (no arguments) at the top level; the
    # transfer to the treasury is its inner CPI.
    data = discriminator("vault_transaction_execute")
    assert data == bytes([194, 8, 161, 87, 153, 164, 25, 171])
    expected = ProgramLabel(SQUADS_V4, "Squads Multisig v4", "vaultTransactionExecute", "idl")
    assert label_deposit(_one_instruction_base64(SQUADS_V4, data), "0.1", None) == expected
    assert label_deposit(json.dumps(_one_instruction_json(SQUADS_V4, data)), "0", None) == expected
    assert expected.text() == "Squads Multisig v4: vaultTransactionExecute"
    # jsonParsed: the RPC does not parse Squads, so the instruction keeps its programId and base58 data.
    parsed = _one_instruction_json(SQUADS_V4, data)
    message = parsed["transaction"]["message"]
    message["accountKeys"] = [{"pubkey": key, "signer": False} for key in message["accountKeys"]]
    message["instructions"] = [{"programId": SQUADS_V4, "accounts": [], "data": based58.b58encode(data).decode()}]
    assert label_deposit(parsed, "0.2", None) == expected


def test_squads_v4_spending_limit_use() -> None:
    # spending_limit_use(amount u64, decimals u8, memo Option<String>): 1 USDC, 6 decimals, no memo.
    data = discriminator("spending_limit_use") + (1_000_000).to_bytes(8, "little") + bytes([6, 0])
    assert label_deposit(_one_instruction_base64(SQUADS_V4, data), "0", None) == ProgramLabel(
        SQUADS_V4, "Squads Multisig v4", "spendingLimitUse", "idl"
    )


def test_orca_whirlpool_collect_fees_v2() -> None:
    # orca-so/whirlpools' Anchor 0.30 IDL lists collect_fees_v2 as [207, 117, 95, 191, 229, 180, 226, 15].
    data = discriminator("collect_fees_v2") + bytes([0])  # remaining_accounts_info: None
    assert data[:8] == bytes([207, 117, 95, 191, 229, 180, 226, 15])
    expected = ProgramLabel(WHIRLPOOL, "Orca Whirlpool", "collectFeesV2", "idl")
    assert label_deposit(_one_instruction_base64(WHIRLPOOL, data), "0", None) == expected
    assert label_deposit(_one_instruction_json(WHIRLPOOL, data), "0.3", None) == expected


def test_orca_whirlpool_swap_and_two_hop_swap_v2() -> None:
    # swap(amount, other_amount_threshold, sqrt_price_limit, amount_specified_is_input, a_to_b): the plain
    # "swap" discriminator f8c69e91e17587c8 is the same as Serum Swap's; the program id tells them apart.
    args = (1000).to_bytes(8, "little") + (990).to_bytes(8, "little") + bytes(16) + bytes([1, 1])
    assert label_deposit(_one_instruction_base64(WHIRLPOOL, discriminator("swap") + args), "0", None) == ProgramLabel(
        WHIRLPOOL, "Orca Whirlpool", "swap", "idl"
    )
    # two_hop_swap_v2 is [186, 143, 209, 29, 254, 2, 194, 117] in the same 0.30 IDL.
    data = discriminator("two_hop_swap_v2")
    assert data == bytes([186, 143, 209, 29, 254, 2, 194, 117])
    assert label_deposit(_one_instruction_json(WHIRLPOOL, data), "0", None) == ProgramLabel(
        WHIRLPOOL, "Orca Whirlpool", "twoHopSwapV2", "idl"
    )


def test_raydium_clmm_swap_v2() -> None:
    # swap_v2(amount u64, other_amount_threshold u64, sqrt_price_limit_x64 u128, is_base_input bool).
    data = discriminator("swap_v2") + (5000).to_bytes(8, "little") + (4900).to_bytes(8, "little") + bytes(16)
    data += bytes([1])
    assert data[:8] == bytes([43, 4, 237, 11, 26, 201, 30, 98])
    expected = ProgramLabel(RAYDIUM_CLMM, "Raydium CLMM", "swapV2", "idl")
    assert label_deposit(_one_instruction_base64(RAYDIUM_CLMM, data), "0.2", None) == expected
    assert label_deposit(json.dumps(_one_instruction_json(RAYDIUM_CLMM, data)), "0", None) == expected


def test_raydium_cpmm_swap_base_input() -> None:
    # swap_base_input(amount_in u64, minimum_amount_out u64).
    data = discriminator("swap_base_input") + (5000).to_bytes(8, "little") + (4900).to_bytes(8, "little")
    assert data[:8] == bytes([143, 190, 90, 218, 196, 30, 51, 222])
    expected = ProgramLabel(RAYDIUM_CPMM, "Raydium CPMM", "swapBaseInput", "idl")
    assert label_deposit(_one_instruction_base64(RAYDIUM_CPMM, data), "0", None) == expected
    assert label_deposit(_one_instruction_json(RAYDIUM_CPMM, data), "0.1", None) == expected


def test_meteora_dlmm_swap_and_add_liquidity() -> None:
    # swap(amount_in u64, min_amount_out u64).
    data = discriminator("swap") + (5000).to_bytes(8, "little") + (4900).to_bytes(8, "little")
    expected = ProgramLabel(METEORA_DLMM, "Meteora DLMM", "swap", "idl")
    assert label_deposit(_one_instruction_base64(METEORA_DLMM, data), "0.1", None) == expected
    assert label_deposit(_one_instruction_json(METEORA_DLMM, data), "0", None) == expected
    # MeteoraAg/dlmm-sdk's Anchor 0.30 idls/dlmm.json (address LBUZKh…) lists add_liquidity as
    # [181, 157, 89, 67, 143, 182, 52, 72]; the bundled legacy IDL names the same bytes.
    add_liquidity = discriminator("add_liquidity")
    assert add_liquidity == bytes([181, 157, 89, 67, 143, 182, 52, 72])
    assert label_deposit(_one_instruction_base64(METEORA_DLMM, add_liquidity), "0", None) == ProgramLabel(
        METEORA_DLMM, "Meteora DLMM", "addLiquidity", "idl"
    )


def test_a_discriminator_of_another_program_is_not_borrowed() -> None:
    # CPMM's swap_base_input is no instruction of the Whirlpool IDL: the Whirlpool keeps its name alone.
    data = discriminator("swap_base_input") + bytes(16)
    assert label_deposit(_one_instruction_base64(WHIRLPOOL, data), "0", None) == ProgramLabel(
        WHIRLPOOL, "Orca Whirlpool", None, "table"
    )


def test_every_bundled_idl_loads_with_anchorpy() -> None:
    # A file anchorpy could not read would only log a warning and leave its program unnamed: fail here instead.
    counts: dict[str, int] = {}
    for program_id, file_name in IDL_FILES.items():
        names = _idl_names(program_id)
        assert names is not None, file_name
        counts[program_id] = len(names._names)
    assert counts == {
        JUPITER_V6: 38,
        SQUADS_V4: 31,
        WHIRLPOOL: 45,
        RAYDIUM_CLMM: 23,
        RAYDIUM_CPMM: 10,
        METEORA_DLMM: 47,
    }
    assert set(IDL_FILES) <= set(KNOWN_PROGRAMS)


# --- the recorded program, the path, garbage ---


def test_path_missing_uses_the_recorded_program() -> None:
    # Without a path, the first top-level instruction of the recorded program (PumpSwap at 1) is read.
    text = read("pumpswap_buy_token2022_transferchecked_v0_json_response.json")
    assert label_deposit(text, None, PUMPSWAP) == ProgramLabel(PUMPSWAP, "PumpSwap AMM", None, "table")
    assert label_deposit(text, None, None) is None


def test_index_out_of_range() -> None:
    text = read("pumpswap_buy_token2022_transferchecked_v0_json_response.json")  # 3 top-level instructions
    assert label_deposit(text, "7", None) is None
    assert label_deposit(text, "7.0", PUMPSWAP) == ProgramLabel(PUMPSWAP, "PumpSwap AMM", None, "table")


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        b"\xff\xfe",
        "[]",
        "null",
        '{"result": null}',
        {"transaction": {"message": {"accountKeys": "x", "instructions": []}}},
        {"transaction": ["!!!", "base64"]},
        {"transaction": ["AAAA", "base64"]},
        {"transaction": {"message": {"accountKeys": ["a"], "instructions": [{"programIdIndex": 99, "data": "0OIl"}]}}},
        {"transaction": {"message": {"accountKeys": [], "instructions": [7, None, {"programId": 5}]}}},
        "[" * 100_000,
    ],
)
def test_garbage_never_raises(raw: Any) -> None:
    for path in (None, "0", "1.0", "x", "-1", ""):
        assert label_deposit(raw, path, None) is None
    # With a recorded program there is still a name to give.
    assert label_deposit(raw, "0", PUMPSWAP) == ProgramLabel(PUMPSWAP, "PumpSwap AMM", None, "table")


def test_recorded_plain_or_unknown_program_alone() -> None:
    assert label_deposit("not json", "0", TOKEN) is None
    assert label_deposit("not json", "0", "Ceu4aCcSV624aRGUoWt2pPd5YuLZM4gyos7kyrPrpGG1") is None


def test_table_ids_are_valid_keys() -> None:
    for program_id in KNOWN_PROGRAMS:
        assert str(Pubkey.from_string(program_id)) == program_id
