"""The parser on real recorded transactions. Every expected value is worked out by hand from the
reply's pre/post balances (the arithmetic is in the comments), never printed by the parser."""

from __future__ import annotations

from typing import Any

import pytest

from indexer.commands.parse import change_record
from indexer.config import DEFAULT_DUST_RAW
from indexer.parser import Watch, parse_transaction
from tests.conftest import SOLANA

SYSTEM = "11111111111111111111111111111111"
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def parse(name: str, *wallets: str, token_accounts: dict[str, str] | None = None) -> Any:
    return parse_transaction(
        (SOLANA / name).read_bytes(),
        Watch(frozenset(wallets), dust_raw=DEFAULT_DUST_RAW, token_accounts=token_accounts),
    )


def inflow_records(name: str, *wallets: str, token_accounts: dict[str, str] | None = None) -> list[dict[str, Any]]:
    return [change_record(change) for change in parse(name, *wallets, token_accounts=token_accounts).inflows]


def test_plain_sol_transfer() -> None:
    # 3h1zGm…: 24,252,840 -> 34,252,840 lamports = +10,000,000 (0.01 SOL).
    # 6QuXb6… paid 10,005,000 = 10,000,000 + the 5,000 fee, so it is the sender.
    assert inflow_records("sol_transfer_jsonparsed_result.json", "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG") == [
        {
            "signature": "5hJfaZoyjTrJcchXLFXRySgDMtGRiLsqvmrtpXcQjZq1Zc2d7Qj3LisaAtaFDtS9tDdv4aZ5n4fbtJNfVMCNV8Lj",
            "slot": 72410024,
            "block_time": 1617684067,
            "asset": "SOL",
            "token_program": None,
            "account": "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG",
            "owner": "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG",
            "amount_raw": "10000000",
            "decimals": 9,
            "amount": "0.01",
            "sender": "6QuXb6mB6WmRASP2y8AavXh6aabBXEH5ZzrSH5xRrgSm",
            "memo": None,
            "status": "creditable",
            "reason": None,
        }
    ]


def test_outflow_of_the_sender_includes_the_fee() -> None:
    parsed = parse("sol_transfer_jsonparsed_result.json", "6QuXb6mB6WmRASP2y8AavXh6aabBXEH5ZzrSH5xRrgSm")
    assert parsed.inflows == ()
    [out] = parsed.outflows
    # 216,570,964 -> 206,565,964 = -10,005,000 (transfer 10,000,000 + fee 5,000).
    assert (out.asset, out.amount_raw, out.counterparty) == (
        "SOL",
        10_005_000,
        "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG",
    )
    assert (out.instruction_path, out.instruction_kind, out.top_level_program) == ("0", "transfer", SYSTEM)
    assert parsed.fee_lamports == 5000
    assert parsed.treasury_signed


def test_sol_with_memo_and_a_relayer_paying_the_fee() -> None:
    # Fee payer FG4Y3y… lost exactly its 10,000 fee; DT1mBD… lost 1,000,000: DT1mBD… is the sender.
    [record] = inflow_records(
        "sol_transfer_with_memo_jsonparsed_response.json", "2b7iQq3PbWwWTotRSDFNXT9DauU418aCHK4jcAzETUem"
    )
    assert record["amount_raw"] == "1000000"
    assert record["amount"] == "0.001"
    assert record["sender"] == "DT1mBDFsNBc1UXa25RdxNvnjL5Lro7su7gX1zpLyCmWe"
    assert record["memo"] == "transfer"
    assert record["status"] == "creditable"
    assert record["slot"] == 185471096
    assert record["block_time"] == 1680146043


def test_sol_transfer_current_rpc_shape() -> None:
    # 3eF3iB…: +24,922,118; 4Y5YjA… -24,927,118 of which 5,000 fee.
    [record] = inflow_records(
        "sol_transfer_mainnet_2025_jsonparsed_response.json", "3eF3iBQqi2DmDLS7o9y8gG7necF5VBbwYy5gqF7sh899"
    )
    assert (record["amount_raw"], record["amount"], record["sender"]) == (
        "24922118",
        "0.024922118",
        "4Y5YjAPB4hMdCsiFy7BaBSscyiAvB7cuAbhxnBZ5xmgy",
    )


def test_spl_transfer_without_mint_or_owner_in_the_reply() -> None:
    # Old reply: token balances name no owner and the plain `transfer` names no mint. The receiving
    # account 3Yuhjs… is known to the treasury; it went 0 -> 12,111 SRM base units (6 decimals).
    name = "spl_transfer_jsonparsed_result.json"
    treasury = "9Nc6u9ft3uAr6DSaqHijFjQS53hZPDRL2LoVYvH4vK5H"
    assert inflow_records(name, treasury) == []  # unknown owner: not the treasury's
    [record] = inflow_records(name, treasury, token_accounts={"3YuhjsaohzpzEYAsonBQakYDj3VFWimhDn7bci8ERKTh": treasury})
    assert record["asset"] == "SRMuApVNdxXokk5GT7XD5cUUgXMBCoAz2LHeuAoKWRt"
    assert (record["amount_raw"], record["decimals"], record["amount"]) == ("12111", 6, "0.012111")
    assert record["owner"] == treasury
    assert record["token_program"] is None  # the old reply does not say, and SRM is not in the table
    # The debited account's owner is unknown; the transfer's authority 3h1zGm… signed it.
    assert record["sender"] == "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG"
    assert (record["status"], record["reason"]) == ("ignored", "unsupported_mint")


def test_transfer_checked_into_existing_account() -> None:
    # 4ijqHi…: 630 -> 1,712 = +1,082 RAY base units (6 decimals).
    treasury = "9Nc6u9ft3uAr6DSaqHijFjQS53hZPDRL2LoVYvH4vK5H"
    parsed = parse(
        "spl_transferchecked_jsonparsed_result.json",
        treasury,
        token_accounts={"4ijqHixcbzhxQbfJWAoPkvBhokBDRGtXyqVcMN8ywj8W": treasury},
    )
    [change] = parsed.inflows
    assert (change.amount_raw, change.amount, change.counterparty) == (
        1082,
        "0.001082",
        "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG",
    )
    assert (change.instruction_path, change.instruction_kind) == ("0", "transferChecked")


def test_account_created_in_the_same_transaction_names_its_owner() -> None:
    # EP4oAd… has no pre entry (0) and 1,000 MAPS after; its owner 4SSqj9… is named where the
    # associated-token program initialises it (inner instruction 0.3).
    [record] = inflow_records(
        "ata_create_plus_transferchecked_jsonparsed_result.json", "4SSqj9qMm4GGt8LFonZKDRwE6oYZ9XdJ21bh37oiYHmC"
    )
    assert record["account"] == "EP4oAd4JdAkTrfbSfbozQVdZaQAhnbGA1QCiUhz3ZcNG"
    assert (record["amount_raw"], record["amount"]) == ("1000", "0.001")
    assert record["sender"] == "6QuXb6mB6WmRASP2y8AavXh6aabBXEH5ZzrSH5xRrgSm"  # authority of the transfer
    assert record["reason"] == "unsupported_mint"


def test_account_created_then_plain_transfer() -> None:
    # FPrjLA… created for 3h1zGm… (create's `wallet`), then +1,000 MAPS by a plain transfer.
    [record] = inflow_records(
        "ata_create_plus_transfer_jsonparsed_result.json", "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG"
    )
    assert (record["account"], record["amount_raw"]) == ("FPrjLAMYCJTonEdY1eheRVjkPA3ewPhbxVQYmrnX6WSA", "1000")


def test_usdc_deposit_below_dust_with_memo() -> None:
    # H51DXR… created for 3i476k…, +1,000 USDC base units = 0.001 USDC < dust 10,000: ignored as dust.
    # 8fusVw…'s account 9rB2Po… fell 5,847 -> 4,847: 8fusVw… is the sender. Memo v2 "transfer".
    [record] = inflow_records(
        "ata_create_transferchecked_usdc_memo_jsonparsed_response.json", "3i476kTBBTy7pBGx4CXwJpJ6phuwLQgcwLTdHhU3c7ui"
    )
    assert record == {
        "signature": "2S2rTZjaqzxYRw9mnqzwtyqitKtSsnE8GVqLn1KrD5R2YpXZnU4GdjppsgfSAbrzJfaqadfi8CtrqEBy588WVQ3E",
        "slot": 184930610,
        "block_time": 1679899845,
        "asset": USDC,
        "token_program": TOKEN,
        "account": "H51DXRt3ubThhdhNeDMScfkbC5X4AWzYfHaZS3JKEfPh",
        "owner": "3i476kTBBTy7pBGx4CXwJpJ6phuwLQgcwLTdHhU3c7ui",
        "amount_raw": "1000",
        "decimals": 6,
        "amount": "0.001",
        "sender": "8fusVwhgo4oS1fGpZKeRaXrJXQk9auKnAgcj9A97wR3t",
        "memo": "transfer",
        "status": "ignored",
        "reason": "dust",
    }


def test_usdc_transfer_checked_with_durable_nonce() -> None:
    # Efc6bp… (owner B2v68t…): 11,200,000 -> 15,000,000 = +3,800,000 = 3.8 USDC, from 3V9bd3…'s account.
    [record] = inflow_records(
        "usdc_transferchecked_durable_nonce_mainnet_jsonparsed_response.json",
        "B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M",
    )
    assert (record["amount_raw"], record["amount"], record["sender"], record["status"]) == (
        "3800000",
        "3.8",
        "3V9bd3EN5aNuhE4RiHGbZ1eZakJ1F9cDb8V4YLjCG8cg",
        "creditable",
    )


def test_inner_transfers_of_a_swap() -> None:
    # Serum swap: 375DTP… (created in this transaction for D7XYER…) gets 0 -> 14,198,095 USDC base
    # units through inner instruction 5.4 of the swap program 22Y43y…. D7XYER… signed: its own swap.
    parsed = parse(
        "serum_swap_usdc_inner_transfers_jsonparsed_result.json", "D7XYERWodEGaoN2X855T2qLvse28BSjfkvfCyW2EDBWy"
    )
    usdc = [change for change in parsed.inflows if change.asset == USDC]
    assert len(usdc) == 1
    change = usdc[0]
    assert (change.account, change.amount_raw, change.amount) == (
        "375DTPnEBUjCnvQpGQtg5nRQudwa6oXWEYB15X6MmJs6",
        14_198_095,
        "14.198095",
    )
    assert (change.instruction_path, change.instruction_kind, change.top_level_program) == (
        "5.4",
        "transfer",
        "22Y43yTVxuUkoRKdm9thyRhQ3SdgQS7c7kB6UNCiaczD",
    )
    assert (change.status, change.reason) == ("ignored", "treasury_signed")
    # D7XYER… itself only paid: 597,945,720 -> 472,533,680 = -125,412,040 lamports.
    [sol_out] = parsed.outflows
    assert (sol_out.asset, sol_out.amount_raw) == ("SOL", 125_412_040)


def test_cpi_transfers_from_a_program() -> None:
    # Surfpool recording: program GuoKrz… moves USDC by CPI (inner 2.0-2.3). BF9fcS… (owner F8mszY…):
    # 989,998,416 -> 999,997,057 = +9,998,641 via inner 2.2. F8mszY… also got 3,535,680 lamports
    # (the closed account's rent) through closeAccount, which is no System transfer: no instruction.
    parsed = parse(
        "surfpool_cpi_multi_usdc_transferchecked_closeaccount_jsonparsed_response.json",
        "F8mszYiAMqr1EEDuwoSjSAfwWtJArr58PgKXRBFn9gpH",
    )
    by_asset = {change.asset: change for change in parsed.inflows}
    usdc = by_asset[USDC]
    assert (usdc.amount_raw, usdc.instruction_path, usdc.top_level_program) == (
        9_998_641,
        "2.2",
        "GuoKrzaBiZnW5DvJ3yZVE7xHqbcBvaX9SH6P6Cn9gNvc",
    )
    # No USDC balance fell in this (simulated) recording, so the transfer's authority is the sender.
    assert usdc.counterparty == "At4u6xXnARsRow7EzozCZ8iesMSs5zZy6tKXVs6JSw2b"
    sol = by_asset["SOL"]
    # 99,994,658,640 -> 99,998,194,320 = +3,535,680; 8gabpu… fell most (2,039,280 -> 0).
    assert (sol.amount_raw, sol.instruction_path, sol.counterparty) == (
        3_535_680,
        None,
        "8gabpuuY68dnRmEDjMK5v46JsqxPArEs1wMCVSJT8vos",
    )


def test_token_2022_transfer_checked_in_a_swap() -> None:
    # PumpSwap: fee recipient JCRGum…'s account DgRrNv…: 1,956,211,068,348,207 -> 1,956,444,834,189,033
    # = +233,765,840,826 base units of the Token-2022 mint EWV6bj… (9 decimals), inner 1.3.
    [record] = inflow_records(
        "pumpswap_buy_token2022_transferchecked_v0_json_response.json", "JCRGumoE9Qi5BBgULTgdgTLjSgkCMSbF62ZZfGs84JeU"
    )
    assert record["asset"] == "EWV6bjhKF5zkXANCdWPvDs7dofRVk4pKyVTitqgEWj8E"
    assert record["token_program"] == TOKEN_2022
    assert (record["amount_raw"], record["amount"]) == ("233765840826", "233.765840826")
    # 95rVs9…'s account 7Pex41… fell by 944,780,237,596,635 - 475,845,960,900,177 = 468,934,276,696,458.
    assert record["sender"] == "95rVs91daKmzom4SM41dg4MRmy5M7rMEHPerenZwWaCq"
    assert record["reason"] == "unsupported_mint"
    change = parse(
        "pumpswap_buy_token2022_transferchecked_v0_json_response.json", "JCRGumoE9Qi5BBgULTgdgTLjSgkCMSbF62ZZfGs84JeU"
    ).inflows[0]
    assert (change.instruction_path, change.instruction_kind, change.top_level_program) == (
        "1.3",
        "transferChecked",
        "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA",
    )


def test_failed_transactions_give_nothing() -> None:
    orca = parse("failed_orca_swap_jsonparsed_result.json", "G8PrkEwmVx3kt3rXBin5o1bdDC1cvz7oBnXbHksNg7R4")
    assert orca.failed
    assert orca.changes == ()
    assert orca.fee_lamports == 15000  # charged anyway: 0 -> -15,000 on the fee payer
    rent = parse("failed_tx_invalid_rent_paying_json_response.json", "H5pamkZhqFna6stoe79SUt71JiTt34GssgtqoztxX6py")
    assert (rent.failed, rent.changes) == (True, ())


def test_v0_with_loaded_addresses_in_json_encoding() -> None:
    # 17 static keys + 8 writable + 10 readonly loaded = 35 balances; HLnpSz…'s token accounts (some
    # loaded) did not change, so there is nothing; the fee payer 7zujqo… paid its 5,031 fee.
    name = "arbitrage_multi_dex_v0_alt_loadedaddresses_json_response.json"
    assert parse(name, "HLnpSz9h2S4hiLQ43rnSD9XkcUThA7B8hQMKmDaiTLcC").changes == ()
    [out] = parse(name, "7zujqoQsFic14ncDYhBSVGvDnqc94rE49c1ZJCHvAtiW").outflows
    assert (out.asset, out.amount_raw) == ("SOL", 5031)


def test_sol_transfer_v0_json_with_memo() -> None:
    # AjWkS3…: +42,000,000 = 0.042 SOL; F5Ytng… -42,005,730 of which fee 5,730. Memo "CFP #4115716"
    # is base58 program data in this encoding.
    [record] = inflow_records(
        "sol_transfer_computebudget_memo_v0_json_response.json", "AjWkS35VV8eptekzw59fAyXXQRXjcwanPezL4EDQfSd8"
    )
    assert (record["amount_raw"], record["amount"], record["sender"], record["memo"]) == (
        "42000000",
        "0.042",
        "F5YtngCQs6QCUdy2vqT6hMtFyNkLpkJSTQF2WZKV1y8e",
        "CFP #4115716",
    )


def test_memo_v1_and_account_creation_in_json_encoding() -> None:
    # getBlock entry (no slot, no blockTime). BrvPSQ… created by the associated-token program for
    # 65EoWs… (its accounts: payer, account, wallet, mint…), then 0 -> 25,000 base units, 2 decimals.
    [record] = inflow_records(
        "ata_create_transfer_memo_v1_json_block_tx.json", "65EoWs57dkMEWbK4TJkPDM76rnbumq7r3fiZJnxggj2G"
    )
    assert record["slot"] is None
    assert record["block_time"] is None
    assert (record["account"], record["amount_raw"], record["decimals"], record["amount"]) == (
        "BrvPSQpe6rYdvsS4idWPSKdUzyF8v3ZySVYYTuyCJnH5",
        "25000",
        2,
        "250",
    )
    assert record["memo"] == "Hello from Sol.Net"
    assert record["sender"] == "5omQJtDUHA3gMFdHEQg1zZSvcBUVzey5WaKWYRmqF1Vj"  # the transfer's signer


def test_two_transfers_and_a_memo() -> None:
    # 7crim3… sends 50,000,000 to CSMd42… and 100,000,000 to GQaASw… (instructions 2 and 1).
    parsed = parse(
        "multi_sol_transfers_with_memo_devnet_jsonparsed_response.json",
        "CSMd42huTby7YceoTtDLmb8N41aWJnB38dRtSUfgUPdS",
        "GQaASwJHkkzi4j2nnjvYBErKwHFGu554oFWU6h4gV8JP",
    )
    got = {(c.account, c.amount_raw, c.instruction_path, c.memo) for c in parsed.inflows}
    assert got == {
        ("CSMd42huTby7YceoTtDLmb8N41aWJnB38dRtSUfgUPdS", 50_000_000, "2", "test-multi-transfer-receipt"),
        ("GQaASwJHkkzi4j2nnjvYBErKwHFGu554oFWU6h4gV8JP", 100_000_000, "1", "test-multi-transfer-receipt"),
    }


def test_wrapped_sol_account_is_not_counted_as_sol() -> None:
    # CXirU4… gets 0 -> 1,000,000 lamports directly; its new wSOL account 2sWE3t… gets 890,880 ->
    # 2,039,280 lamports of rent, but its token balance is 0: one SOL inflow and nothing for wSOL.
    parsed = parse(
        "sol_transfer_plus_wsol_ata_createidempotent_devnet_jsonparsed_response.json",
        "CXirU4FJDRmyFKB3K6N8Qd8Rxeaxi1osi7kDa1ZRGp8B",
    )
    assert [(c.direction, c.asset, c.amount_raw, c.instruction_path) for c in parsed.changes] == [
        ("in", "SOL", 1_000_000, "0")
    ]


@pytest.mark.parametrize(
    "name",
    ["vote_tx_jsonparsed_response.json", "vote_tx_json_response.json", "vote_tx_base64_response.json"],
)
def test_vote_transaction_same_in_every_encoding(name: str) -> None:
    # 5p8qKV… pays the 5,000 fee: 65,966,805,251 -> 65,966,800,251. Nothing comes in.
    parsed = parse(name, "5p8qKVyKthA9DUb1rwQDzjcmTkaZdwN97J3LiaEywUjd")
    assert (
        parsed.signature == "4zExa66hUSr28i2ma6EJwEsm3nZo4VFryEyRYE5Zrr4Q6dZpP1ctzsoMqUhLnp6iHGPp5MB722rZXRBKg927WXN9"
    )
    assert (parsed.slot, parsed.block_time, parsed.fee_lamports) == (147558327, 1661417105, 5000)
    assert parsed.inflows == ()
    [out] = parsed.outflows
    assert (out.asset, out.account, out.amount_raw, out.counterparty, out.instruction_path) == (
        "SOL",
        "5p8qKVyKthA9DUb1rwQDzjcmTkaZdwN97J3LiaEywUjd",
        5000,
        None,
        None,
    )
    assert parsed.treasury_signed


def test_vote_encodings_are_identical() -> None:
    wallet = "5p8qKVyKthA9DUb1rwQDzjcmTkaZdwN97J3LiaEywUjd"
    results = {
        name: parse(name, wallet)
        for name in ("vote_tx_jsonparsed_response.json", "vote_tx_json_response.json", "vote_tx_base64_response.json")
    }
    assert len(set(results.values())) == 1


def test_base64_sol_transfer() -> None:
    # Keys decoded from the wire bytes: 0 9B5Xsz… (signer), 1 Hzn3n9…, 2 System.
    # Hzn3n9…: 869,985,000 -> 1,869,985,000 = +1,000,000,000 = 1 SOL; instruction 0 is the transfer.
    parsed = parse("sol_transfer_devnet_base64_result.json", "Hzn3n914JaSpnxo5mBbmuCDmGL6mxWN9Ac2HzEXFSGtb")
    assert (
        parsed.signature == "5U2YvvKUS6NUrDAJnABHjx2szwLCVmg8LCRK9BDbZwVAbf2q5j8D9Sc9kUoqanoqpn6ZpDguY3rip9W7N7vwCjSw"
    )
    [change] = parsed.inflows
    assert (change.amount_raw, change.amount, change.counterparty) == (
        1_000_000_000,
        "1",
        "9B5XszUGdMaxCZ7uSQhPzdks5ZQSmWxrmzCSvtJ6Ns6g",
    )
    assert (change.instruction_path, change.instruction_kind) == ("0", "transfer")


def test_base64_token_transfers() -> None:
    # Devnet USDC (4zMMC9…, not the mainnet mint): 6Yg9Gt… (owner 91t4uS…) 1,000,000 -> 1,200,000.
    [change] = parse(
        "spl_transferchecked_devnet_usdc_base64_result.json", "91t4uSdtBiftqsB24W2fRXFCXjUyc6xY3WMGFedAaTHh"
    ).inflows
    assert (change.account, change.amount_raw, change.amount, change.counterparty, change.reason) == (
        "6Yg9GttAiHjbHMoiomBuGBDULP7HxQyez45dEiR9CJqw",
        200_000,
        "0.2",
        "Hzn3n914JaSpnxo5mBbmuCDmGL6mxWN9Ac2HzEXFSGtb",
        "unsupported_mint",
    )
    assert (change.instruction_path, change.instruction_kind) == ("0", "transferChecked")
    # Account created for Hzn3n9… in the same transaction, then 0 -> 1,000,000.
    parsed = parse(
        "ata_create_plus_transferchecked_devnet_usdc_base64_result.json", "Hzn3n914JaSpnxo5mBbmuCDmGL6mxWN9Ac2HzEXFSGtb"
    )
    assert (
        parsed.signature == "2xRfP3gythPLBNUFtfNQ48nD9QBJjvh6AEz6xPgnrGkpQy1RBEvKveMUjix7t3rdPCpemdcS4DaKMLT5t27f92yQ"
    )
    [change] = parsed.inflows
    assert (change.account, change.amount_raw, change.counterparty, change.instruction_path) == (
        "DvSgNMRxVSMBpLp4hZeBrmQo8ZRFne72actTZ3PYE3AA",
        1_000_000,
        "HzcTrHjkEhjFTHEsC6Dsv8DXCh21WgujD4s5M15Sm94g",
        "1",
    )
