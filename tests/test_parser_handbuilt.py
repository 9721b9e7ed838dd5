"""Hand-built cases for what the recordings lack, each derived from a real recorded transaction by
changing a few balances or fields (the change and the arithmetic are in each test)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from solders.pubkey import Pubkey

from indexer.config import DEFAULT_DUST_RAW
from indexer.parser import Watch, parse_transaction, split_memo
from tests.conftest import SOLANA

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
PYUSD = "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
FAKE_USDC = str(Pubkey.from_bytes(bytes([7]) * 32))  # a mint that calls itself USDC but is not Circle's

# usdc_transferchecked_durable_nonce: 3V9bd3… (signer, fee payer) sends USDC from 2e3Eb9… (index 3)
# to Efc6bp… (index 4, owner B2v68t…) with transferChecked (instruction 1).
SENDER = "3V9bd3EN5aNuhE4RiHGbZ1eZakJ1F9cDb8V4YLjCG8cg"
TREASURY = "B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M"
TREASURY_ACCOUNT = "Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv"


def durable_nonce_usdc() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (SOLANA / "usdc_transferchecked_durable_nonce_mainnet_jsonparsed_response.json").read_text()
    )
    return document["result"]


def set_amounts(result: dict[str, Any], index: int, pre: int | None, post: int | None) -> None:
    """Set the token amounts of one account; None removes the entry (a missing entry counts as 0)."""
    meta = result["meta"]
    for key, amount in (("preTokenBalances", pre), ("postTokenBalances", post)):
        entries = meta[key]
        [entry] = [e for e in entries if e["accountIndex"] == index]
        if amount is None:
            entries.remove(entry)
        else:
            entry["uiTokenAmount"]["amount"] = str(amount)


def watch(*wallets: str, token_accounts: dict[str, str] | None = None) -> Watch:
    return Watch(frozenset(wallets), dust_raw=DEFAULT_DUST_RAW, token_accounts=token_accounts)


def test_token_2022_transfer_fee_credits_what_arrived() -> None:
    # PYUSD (Token-2022) sent with transferCheckedWithFee: 1,000,000 left the sender, 10,000 was withheld
    # as the transfer fee, 990,000 arrived in a new account (no pre entry: 0). Credit 990,000 = 0.99.
    result = durable_nonce_usdc()
    meta = result["meta"]
    for entry in meta["preTokenBalances"] + meta["postTokenBalances"]:
        entry["mint"] = PYUSD
        entry["programId"] = TOKEN_2022
    set_amounts(result, 3, 5_000_000, 4_000_000)
    meta["preTokenBalances"] = [e for e in meta["preTokenBalances"] if e["accountIndex"] != 4]
    [post4] = [e for e in meta["postTokenBalances"] if e["accountIndex"] == 4]
    post4["uiTokenAmount"]["amount"] = "990000"
    instruction = result["transaction"]["message"]["instructions"][1]
    instruction["programId"] = TOKEN_2022
    instruction["program"] = "spl-token-2022"
    instruction["parsed"]["type"] = "transferCheckedWithFee"
    instruction["parsed"]["info"]["mint"] = PYUSD
    instruction["parsed"]["info"]["tokenAmount"]["amount"] = "1000000"
    [change] = parse_transaction(result, watch(TREASURY)).inflows
    assert (change.asset, change.token_program, change.amount_raw, change.amount) == (
        PYUSD,
        TOKEN_2022,
        990_000,
        "0.99",
    )
    assert (change.counterparty, change.instruction_kind, change.status) == (
        SENDER,
        "transferCheckedWithFee",
        "creditable",
    )


def test_fake_usdc_mint_is_ignored() -> None:
    result = durable_nonce_usdc()
    for entry in result["meta"]["preTokenBalances"] + result["meta"]["postTokenBalances"]:
        entry["mint"] = FAKE_USDC
    [change] = parse_transaction(result, watch(TREASURY)).inflows
    assert (change.asset, change.amount_raw, change.status, change.reason) == (
        FAKE_USDC,
        3_800_000,
        "ignored",
        "unsupported_mint",
    )


@pytest.mark.parametrize(
    ("received_raw", "status", "reason"), [(9_999, "ignored", "dust"), (10_000, "creditable", None)]
)
def test_dust_threshold_of_usdc(received_raw: int, status: str, reason: str | None) -> None:
    # USDC dust is 10,000 base units (0.01 USDC): below it is dust, at it is creditable.
    result = durable_nonce_usdc()
    set_amounts(result, 3, 101_903_768_394, 101_903_768_394 - received_raw)
    set_amounts(result, 4, 11_200_000, 11_200_000 + received_raw)
    [change] = parse_transaction(result, watch(TREASURY)).inflows
    assert (change.amount_raw, change.status, change.reason) == (received_raw, status, reason)


def test_dust_threshold_is_configurable() -> None:
    result = durable_nonce_usdc()
    lowered = Watch(frozenset({TREASURY}), dust_raw={**DEFAULT_DUST_RAW, "USDC": 4_000_000})
    [change] = parse_transaction(result, lowered).inflows
    assert (change.amount_raw, change.reason) == (3_800_000, "dust")


def test_self_transfer_by_the_treasury() -> None:
    # Both ends are treasury wallets: 6QuXb6… signs and sends 10,000,000 lamports to 3h1zGm….
    parsed = parse_transaction(
        (SOLANA / "sol_transfer_jsonparsed_result.json").read_bytes(),
        watch("6QuXb6mB6WmRASP2y8AavXh6aabBXEH5ZzrSH5xRrgSm", "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG"),
    )
    assert [(c.direction, c.account, c.amount_raw, c.status, c.reason) for c in parsed.changes] == [
        ("out", "6QuXb6mB6WmRASP2y8AavXh6aabBXEH5ZzrSH5xRrgSm", 10_005_000, None, None),
        ("in", "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG", 10_000_000, "ignored", "treasury_signed"),
    ]


def test_owner_missing_from_the_post_entry_is_taken_from_the_pre_entry() -> None:
    result = durable_nonce_usdc()
    [post4] = [e for e in result["meta"]["postTokenBalances"] if e["accountIndex"] == 4]
    del post4["owner"]
    [change] = parse_transaction(result, watch(TREASURY)).inflows
    assert (change.owner, change.amount_raw) == (TREASURY, 3_800_000)


def test_owner_missing_everywhere_comes_from_known_token_accounts() -> None:
    result = durable_nonce_usdc()
    for entry in result["meta"]["preTokenBalances"] + result["meta"]["postTokenBalances"]:
        del entry["owner"]
    assert parse_transaction(result, watch(TREASURY)).changes == ()
    [change] = parse_transaction(result, watch(TREASURY, token_accounts={TREASURY_ACCOUNT: TREASURY})).inflows
    assert (change.account, change.owner, change.amount_raw) == (TREASURY_ACCOUNT, TREASURY, 3_800_000)
    # The debited account's owner is unknown too: the transfer's authority is the sender.
    assert change.counterparty == SENDER


def test_reasons_are_given_in_order() -> None:
    # A dust amount of an unsupported mint: unsupported_mint comes first.
    result = durable_nonce_usdc()
    for entry in result["meta"]["preTokenBalances"] + result["meta"]["postTokenBalances"]:
        entry["mint"] = FAKE_USDC
    set_amounts(result, 3, 101_903_768_394, 101_903_768_393)
    set_amounts(result, 4, 11_200_000, 11_200_001)
    [change] = parse_transaction(result, watch(TREASURY)).inflows
    assert change.reason == "unsupported_mint"
    # The same, signed by the treasury as well: treasury_signed comes before both.
    signed = copy.deepcopy(result)
    signed["transaction"]["message"]["accountKeys"][0]["pubkey"] = TREASURY
    signed["transaction"]["message"]["accountKeys"][0]["signer"] = True
    [change] = parse_transaction(signed, watch(TREASURY)).inflows
    assert change.reason == "treasury_signed"


def test_inflow_to_a_loaded_address_of_a_v0_transaction() -> None:
    # Arbitrage v0 (json): 17 static keys, then loaded 8 writable + 10 readonly. Index 17 is the first
    # writable loaded address, 2yC9PA… (USDC, owner FWsW1x…). Move 5,000,000 USDC base units into it
    # from index 7 (owner 7zujqo…, the signer).
    document = json.loads((SOLANA / "arbitrage_multi_dex_v0_alt_loadedaddresses_json_response.json").read_text())
    meta = document["result"]["meta"]
    for key in ("postTokenBalances",):
        for entry in meta[key]:
            amount = int(entry["uiTokenAmount"]["amount"])
            if entry["accountIndex"] == 17:
                entry["uiTokenAmount"]["amount"] = str(amount + 5_000_000)
            if entry["accountIndex"] == 7:
                entry["uiTokenAmount"]["amount"] = str(amount - 5_000_000)
    [change] = parse_transaction(document, watch("FWsW1xNtWscwNmKv6wVsU1iTzRN6wmmk3MjxRP5tT7hz")).inflows
    assert (change.account, change.asset, change.amount_raw, change.amount, change.counterparty, change.status) == (
        "2yC9PAQvtxFjdV2G79N7cGsFhitbNiEQmZ3Z6dmLWfQg",
        USDC,
        5_000_000,
        "5",
        "7zujqoQsFic14ncDYhBSVGvDnqc94rE49c1ZJCHvAtiW",
        "creditable",
    )


def test_memo_prefix_of_the_rpc_is_removed() -> None:
    reply = json.loads((SOLANA / "getsignaturesforaddress_with_memo_response.json").read_text())
    assert reply["result"][0]["memo"] == "[8] transfer"
    assert split_memo(reply["result"][0]["memo"]) == ["transfer"]
    assert split_memo("[3] abc; [5] hello") == ["abc", "hello"]
    assert split_memo("[6] a; b c; [1] x") == ["a; b c", "x"]  # the length cuts a memo holding "; "
    assert split_memo("[4] é!!") == ["é!!"]  # the length counts bytes: é is two
    assert split_memo("plain memo") == ["plain memo"]


def test_memo_with_prefix_in_an_instruction_is_stripped() -> None:
    document = json.loads((SOLANA / "sol_transfer_with_memo_jsonparsed_response.json").read_text())
    document["result"]["transaction"]["message"]["instructions"][1]["parsed"] = "[12] SR-ABCD-1234"
    [change] = parse_transaction(document, watch("2b7iQq3PbWwWTotRSDFNXT9DauU418aCHK4jcAzETUem")).inflows
    assert change.memo == "SR-ABCD-1234"


def test_same_transaction_in_jsonparsed_and_json_gives_the_same_changes() -> None:
    # The json encoding of the memo deposit, built by hand from the jsonParsed reply: keys as text,
    # a header, and instructions as program index + account indexes + base58 data.
    parsed_document = json.loads((SOLANA / "sol_transfer_with_memo_jsonparsed_response.json").read_text())
    result = copy.deepcopy(parsed_document["result"])
    message = result["transaction"]["message"]
    message["accountKeys"] = [key["pubkey"] for key in message["accountKeys"]]
    message["header"] = {"numRequiredSignatures": 2, "numReadonlySignedAccounts": 0, "numReadonlyUnsignedAccounts": 2}
    # System transfer: u32 2 then u64 1,000,000 lamports, base58; memo "transfer" as base58 of its bytes.
    message["instructions"] = [
        {"programIdIndex": 3, "accounts": [1, 2], "data": "3Bxs4Bc3VYuGVB19"},
        {"programIdIndex": 4, "accounts": [], "data": "LUgRuuHTzg9"},
    ]
    watched = watch("2b7iQq3PbWwWTotRSDFNXT9DauU418aCHK4jcAzETUem")
    assert parse_transaction(result, watched) == parse_transaction(parsed_document, watched)
