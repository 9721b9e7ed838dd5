"""The chain side's reading of balances out of a stored or fetched reply (indexer.proof.account_balances),
in every encoding, and the RPC chain source's balance of a closed token account. Figures are the
recorded replies' meta.preBalances/postBalances and token balances at the account's index."""

from __future__ import annotations

import asyncio

from indexer.proof import RpcChainSource, account_balances
from indexer.replay import ReplayServer
from reconcile.chain import Balances, TreasuryAccount
from tests.conftest import SOLANA
from tests.replay_support import fast_rpc, recorded_chain

DEVNET_USDC = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def wallet(address: str) -> TreasuryAccount:
    return TreasuryAccount(address, address, "SOL", "SOL", 9, "wallet")


def token_account(address: str, mint: str) -> TreasuryAccount:
    return TreasuryAccount(address, "owner", mint, "USDC", 6, "token_account")


def reply(name: str) -> bytes:
    return (SOLANA / name).read_bytes()


def test_balances_of_a_base64_reply() -> None:
    # Keys decoded from the wire bytes: 1 Hzn3n9… 869,985,000 -> 1,869,985,000 lamports.
    found = account_balances(
        reply("sol_transfer_devnet_base64_result.json"), wallet("Hzn3n914JaSpnxo5mBbmuCDmGL6mxWN9Ac2HzEXFSGtb")
    )
    assert found == Balances(869_985_000, 1_869_985_000)
    # Token account 6Yg9Gt… (index 1, devnet USDC): 1,000,000 -> 1,200,000.
    account = token_account("6Yg9GttAiHjbHMoiomBuGBDULP7HxQyez45dEiR9CJqw", DEVNET_USDC)
    assert account_balances(reply("spl_transferchecked_devnet_usdc_base64_result.json"), account) == Balances(
        1_000_000, 1_200_000
    )


def test_balances_of_a_v0_json_reply_with_loaded_addresses() -> None:
    # 17 static keys, then 8 loaded writable: 2yC9PA… is index 17 (USDC 48,758,393,994 before and after),
    # FWsW1x… index 23 (13,903,614,998,705 lamports before and after); 7zujqo… (index 0) paid 5,031.
    data = reply("arbitrage_multi_dex_v0_alt_loadedaddresses_json_response.json")
    assert account_balances(data, token_account("2yC9PAQvtxFjdV2G79N7cGsFhitbNiEQmZ3Z6dmLWfQg", USDC)) == Balances(
        48_758_393_994, 48_758_393_994
    )
    assert account_balances(data, wallet("FWsW1xNtWscwNmKv6wVsU1iTzRN6wmmk3MjxRP5tT7hz")) == Balances(
        13_903_614_998_705, 13_903_614_998_705
    )
    assert account_balances(data, wallet("7zujqoQsFic14ncDYhBSVGvDnqc94rE49c1ZJCHvAtiW")) == Balances(
        85_513_499_399, 85_513_494_368
    )


def test_balances_of_a_jsonparsed_reply_and_refusals() -> None:
    data = reply("usdc_transferchecked_durable_nonce_mainnet_jsonparsed_response.json")
    usdc = token_account("Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv", USDC)
    assert account_balances(data, usdc) == Balances(11_200_000, 15_000_000)
    # A token account of another mint than its entries name, an address not in the keys, garbage: None.
    assert account_balances(data, token_account("Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv", DEVNET_USDC)) is None
    assert account_balances(data, wallet("B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M")) is None
    assert account_balances(b'{"result": null}', usdc) is None
    assert account_balances(b"not json", usdc) is None
    # A token account listed in the keys with no token balance entry (not a token account then): 0 and 0.
    assert account_balances(data, token_account("FqCmnwUjWecdGFV1rtfUQRiB3p6hwFkZRByixzjwk1gB", USDC)) == Balances(0, 0)


def test_the_live_balance_of_a_token_account_the_node_does_not_know_is_zero() -> None:
    chain = recorded_chain()
    with ReplayServer(chain) as server:

        async def main() -> tuple[tuple[int, int], tuple[int, int]]:
            async with fast_rpc(server) as rpc:
                source = RpcChainSource(rpc)
                closed = await source.balance(token_account("11111111111111111111111111111112", USDC))
                known = await source.balance(token_account("Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv", USDC))
                return closed, known

        closed, known = asyncio.run(main())
    # getTokenAccountBalance answers -32602 "could not find account": the account holds nothing.
    assert closed[0] == 0
    assert known[0] == 15_000_000  # after the newest transaction touching it
    assert closed[1] == known[1] == chain.slot("finalized")
